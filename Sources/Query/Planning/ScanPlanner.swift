package import ShardStore
import FlowModel
import StorageKit
import Synchronization

/// Where a query over a time range decides what to read: which shards to open (the
/// catalog's time ranges and skip summaries rule the others out without opening them),
/// and which rows of each opened shard (the granules of its skip index whose zone maps
/// can hold the filter's values). Used by `flowrec sql` (the multi-shard `flows`
/// table), `flowrec query`, the JSON API and Loki's queries; `statistics` is what
/// `--explain` prints.
package struct ScanPlanner {
    package let store: ShardStore
    package let statistics: ScanStatistics

    package init(store: ShardStore, statistics: ScanStatistics = ScanStatistics()) {
        self.store = store
        self.statistics = statistics
    }

    /// The readable shards that may hold rows matching `filter`, oldest first.
    package func shards(for filter: SkipFilter) throws -> [ShardRecord] {
        try withoutRuledOut(shardsInRange(for: filter), filter: filter, summaries: nil)
    }

    /// The readable shards whose time range meets the filter's, oldest first, before the
    /// skip summaries are consulted.
    package func shardsInRange(for filter: SkipFilter) throws -> [ShardRecord] {
        if let from = filter.fromMs, let to = filter.toMs, from >= to { return [] }
        let inRange = try store.shards(overlappingFromMs: filter.fromMs, toMs: filter.toMs)
        statistics.add(\.shardsInRange, inRange.count)
        return inRange
    }

    /// Calls `body` with each group of `groups` (shards in range, in the order to read
    /// them) less the shards their skip summaries rule out, until it returns false. The
    /// summaries are read from the catalog a slice of groups at a time, the slices
    /// doubling: a query that stops after its first rows (`--limit`, the flow table)
    /// reads a few shards' summaries instead of every one in the range (721 of them over
    /// 30 days of hourly shards), and one that reads everything makes about ten reads.
    package func forEachCandidateGroup(_ groups: [[ShardRecord]], filter: SkipFilter,
                                       _ body: ([ShardRecord]) throws -> Bool) throws {
        var start = 0, slice = 1
        while start < groups.count {
            let end = min(groups.count, start + slice)
            let sealed = groups[start..<end].flatMap { $0 }.filter { $0.state == .sealed }.map(\.id)
            // Named one by one while few (SQLite binds at most 32,766 parameters): a slice
            // of many overlapping shards reads every summary of the fields instead.
            let summaries = filter.equalities.isEmpty ? [:]
                : try store.skipSummaries(fields: Self.summaryFields(filter), shards: sealed.count <= 1_000 ? sealed : nil)
            for group in groups[start..<end] {
                let kept = try withoutRuledOut(group, filter: filter, summaries: summaries)
                if !kept.isEmpty, try !body(kept) { return }
            }
            start = end
            slice = min(slice * 2, 256)
        }
    }

    /// `shards` less those whose summaries (all of them loaded when nil) rule `filter` out.
    private func withoutRuledOut(_ shards: [ShardRecord], filter: SkipFilter,
                                 summaries: [ShardID: [SkipSummary]]?) throws -> [ShardRecord] {
        guard !filter.equalities.isEmpty else { return shards }
        let summaries = try summaries ?? store.skipSummaries(fields: Self.summaryFields(filter))
        let kept = shards.filter { shard in
            guard shard.state == .sealed, let summary = summaries[shard.id] else { return true }
            return filter.mayMatch(summary)
        }
        statistics.add(\.shardsRuledOut, shards.count - kept.count)
        return kept
    }

    private static func summaryFields(_ filter: SkipFilter) -> [FieldID] {
        Array(Set(filter.equalities.map { SkipIndex.fields[$0.0] }))
    }

    /// What `filter` (a `--where` expression) and the time range let the skip index prune
    /// on, as SQLite pushes them into `flowrec sql`'s table (`FlowsAcrossShards`).
    package func skipFilter(where filter: WhereClause?, fromMs: Int64?, toMs: Int64?) throws -> SkipFilter {
        try FlowsAcrossShards(store: store, fromMs: fromMs, toMs: toMs).skipFilter(where: filter)
    }

    /// Opens each shard that may hold rows matching `filter`, oldest first, and calls
    /// `body` with it, its reader and what a statement should read `FROM` in place of
    /// `flows` (the candidate granules only); `body` returns false to stop. A damaged
    /// shard is skipped and recorded in `unreadable` when one is given.
    package func forEachShard(_ filter: SkipFilter, guarding: QueryGuard, unreadable: UnreadableShards? = nil,
                              _ body: (ShardRecord, ShardReader, _ source: String) throws -> Bool) throws {
        for shard in try shards(for: filter) {
            let reader: ShardReader
            let ranges: [ClosedRange<Int64>]?
            do {
                reader = try guarding.reader(for: shard.id, in: store)
                statistics.add(\.shardsOpened, 1)
                ranges = try rowRanges(reader, filter: filter)
            } catch where unreadable?.skip(shard.id, after: error) == true {
                continue
            }
            if ranges == nil { statistics.add(\.shardsReadWhole, 1) }
            if ranges?.isEmpty == true { continue }
            guard try body(shard, reader, Self.flowsSource(reader, ranges: ranges)) else { return }
        }
    }

    /// The row id ranges of `reader`'s shard that may hold matching rows, within
    /// `rowids` (a part of the shard: above its lower bound, up to its upper bound);
    /// nil when the shard has no skip index (active, or sealed before there was one):
    /// then every row is read.
    package func rowRanges(_ reader: ShardReader, filter: SkipFilter,
                           within rowids: (above: Int64?, atMost: Int64?) = (nil, nil)) throws -> [ClosedRange<Int64>]? {
        try Self.rowRanges(reader, filter: filter, within: rowids, statistics: statistics)
    }

    /// `rowRanges` for a worker thread, which has the statistics but not the store.
    package static func rowRanges(_ reader: ShardReader, filter: SkipFilter, within rowids: (above: Int64?, atMost: Int64?),
                                  statistics: ScanStatistics) throws -> [ClosedRange<Int64>]? {
        guard !filter.isEmpty, let inPart = try reader.granules(within: rowids, for: filter) else { return nil }
        let ranges = filter.candidateRanges(inPart)
        statistics.add(\.granules, inPart.count)
        statistics.add(\.granulesRead, inPart.filter { $0.mayMatch(filter) }.count)
        return ranges
    }

    /// What a per-shard statement reads `FROM` in place of the shard's `flows` view: the
    /// view itself when every row is read, else the view's columns over the candidate
    /// row ranges of `flow_rows` (`RowSelection`: each range is one seek).
    /// With `withRowID`, the source also has `__rowid`, each row's id in the shard.
    package static func flowsSource(_ reader: ShardReader, ranges: [ClosedRange<Int64>]?, withRowID: Bool = false) -> String {
        let rows = RowSelection(ranges)
        guard !rows.isWhole || withRowID else { return "flows" }
        return "(SELECT " + (withRowID ? "r.rowid AS __rowid, " : "")
            + ShardSchema.viewColumnExpressions(timeEncoding: reader.timeEncoding).joined(separator: ",")
            + " FROM \(rows.source()))"
    }

    /// A rowid range of one shard, read by one worker: a big shard is cut into several
    /// so that every core shares it. The first range has no lower bound and the last no
    /// upper one, so rows outside the catalog's count (an active shard still growing)
    /// are read too.
    package struct Part: Sendable {
        package var shard: Int
        package var rowids: (above: Int64?, atMost: Int64?)

        /// SQL conditions keeping `table`'s rows to the part (none for a whole shard).
        package func conditions(table: String) -> [String] {
            (rowids.above.map { ["\(table)rowid > \($0)"] } ?? []) + (rowids.atMost.map { ["\(table)rowid <= \($0)"] } ?? [])
        }
    }

    /// Rows per part: a whole number of granules (no granule is read by two workers),
    /// about a quarter of a million rows, so an hour of a medium cluster is 15 parts.
    package static let rowsPerPart: Int64 = 120 * SkipIndex.granuleRows

    /// `shards` (by index) cut into parts of about `rowsPerPart` rows.
    package static func parts(of shards: [ShardRecord], rowsPerPart: Int64 = rowsPerPart) -> [Part] {
        var parts: [Part] = []
        for (index, shard) in shards.enumerated() {
            let count = max(1, (shard.rowCount + rowsPerPart - 1) / rowsPerPart)
            for k in 0..<count {
                parts.append(Part(shard: index, rowids: (above: k == 0 ? nil : k * rowsPerPart,
                                                         atMost: k == count - 1 ? nil : (k + 1) * rowsPerPart)))
            }
        }
        return parts
    }

}

/// What a query read, for `--explain`: a query is fast when few shards are opened and
/// few granules read, and this says which.
package final class ScanStatistics: Sendable, CustomStringConvertible {
    package struct Counts: Sendable, Equatable {
        /// Shards whose time range overlaps the query's.
        package var shardsInRange = 0
        /// Of those, the shards the catalog's skip summaries ruled out (never opened).
        package var shardsRuledOut = 0
        /// Shards actually opened.
        package var shardsOpened = 0
        /// Granules of the opened sealed shards' skip indexes, and those read.
        package var granules = 0
        package var granulesRead = 0
        /// Of those, the granules read from column blocks instead of rows (`ColumnBlockScan`).
        package var granulesFromColumnBlocks = 0
        /// Opened shards without a skip index (active ones, older sealed ones): read whole.
        package var shardsReadWhole = 0

        package init() {}
    }

    private let counts = Mutex(Counts())

    package init() {}

    package var current: Counts { counts.withLock { $0 } }

    func add(_ key: WritableKeyPath<Counts, Int>, _ n: Int) {
        guard n != 0 else { return }
        counts.withLock { $0[keyPath: key] += n }
    }

    package var description: String {
        let c = current
        var text = "\(c.shardsInRange) shard\(c.shardsInRange == 1 ? "" : "s") in the range"
        if c.shardsRuledOut > 0 { text += ", \(c.shardsRuledOut) ruled out by their skip summaries" }
        text += ", \(c.shardsOpened) opened"
        if c.granules > 0 { text += "; \(c.granulesRead) of \(c.granules) granules read" }
        if c.granulesFromColumnBlocks > 0 { text += " (\(c.granulesFromColumnBlocks) from column blocks, not rows)" }
        if c.shardsReadWhole > 0 { text += "; \(c.shardsReadWhole) read whole (no skip index: active, or sealed before flowrec had one)" }
        return text
    }
}
