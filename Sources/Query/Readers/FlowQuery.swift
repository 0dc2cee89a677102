import StorageKit
import Foundation
package import ShardStore

/// A query over flows: a time range, a filter in SQL syntax on NetObserv's field names,
/// the fields to return, and a row limit.
package struct FlowQuery: Sendable {
    /// Inclusive start and exclusive end on `TimeFlowEndMs`, epoch milliseconds.
    package var fromMs: Int64?
    package var toMs: Int64?
    /// An SQL boolean expression, e.g. `SrcK8S_Namespace = 'shop' AND DstPort = 443`.
    package var whereSQL: String?
    /// Fields to return; empty means every field.
    package var fields: [String] = []
    package var limit: Int?
    /// Read this shard only (an export per shard); nil: every shard of the range.
    package var onlyShard: ShardID?

    package init() {}
}

/// Runs a `FlowQuery` over the shards of a store, oldest first, streaming rows.
///
/// Only shards whose stored time range overlaps the query are opened (the catalog knows
/// each shard's min and max `TimeFlowEndMs`); each is opened read-only (sealed ones in
/// place), so no statement can change stored data. Rows arrive shard by shard, in time
/// order within a shard, and the run stops as soon as `limit` rows were produced.
package struct FlowQueryRunner {
    package let store: ShardStore
    package var limits: QueryLimits
    /// Damaged shards skipped by the runs (the answer's warning names them).
    package let unreadable = UnreadableShards()
    /// What the runs read (`--explain`).
    package let statistics = ScanStatistics()

    package init(store: ShardStore, limits: QueryLimits = .commandLine) {
        self.store = store
        self.limits = limits
    }

    /// Column names of the result, in order.
    package func columns(for query: FlowQuery) -> [String] {
        query.fields.isEmpty ? ShardSchemaColumns.fieldNames : query.fields
    }

    /// Calls `row` with each result row's values (nil for SQL NULL); return false to stop.
    package func run(_ query: FlowQuery, row: ([QueryValue]) throws -> Bool) throws {
        try run(query) { values, _, _ in try row(values) }
    }

    /// As `run(_:row:)`, also handing over the shard's reader and the row's id, so that
    /// a caller can read the whole stored flow (`ShardReader.readFlow`): the JSON-lines
    /// export gives back records exactly as NetObserv wrote them.
    ///
    /// Rows come in `TimeFlowEndMs` order over the whole range: shards whose time ranges
    /// overlap (a window's late part, a merged day and the parts that came after it) are
    /// read side by side and merged, the others one after the other.
    ///
    /// The readers are bounded by this run's `QueryGuard` and must not be used after it
    /// returns: `afterLastRow` is called when the rows (or the limit) ran out, while they
    /// still may be, for a caller that reads ahead (not when `row` returned false).
    package func run(_ query: FlowQuery, row: ([QueryValue], ShardReader, Int64) throws -> Bool,
                     afterLastRow: () throws -> Void = {}) throws {
        let columns = columns(for: query)
        for name in columns where !ShardSchemaColumns.selectable.contains(name) {
            throw QueryError(.unknownField, "unknown field \(name); fields are NetObserv's names, e.g. SrcK8S_Namespace, Bytes (see `flowrec schema`)")
        }
        var remaining = query.limit ?? .max
        guard remaining > 0 else { return try afterLastRow() }
        let selected = (columns.map { "\"\($0)\"" } + ["TimeFlowEndMs", "__rowid"]).joined(separator: ", ")
        var conditions: [String] = []
        if query.fromMs != nil { conditions.append("TimeFlowEndMs >= ?1") }
        if query.toMs != nil { conditions.append("TimeFlowEndMs < ?2") }
        let filter = try WhereClause(query.whereSQL)
        if let filter { conditions.append("(\(filter.text))") }
        let clauses = (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) + " ORDER BY TimeFlowEndMs, __rowid LIMIT ?3"
        let unsigned = QueryValue.UnsignedColumns(names: columns)
        let width = Int32(columns.count)
        let guarding = QueryGuard(limits)
        // The filter's time bounds and `field = value` terms, as SQLite pushes them into
        // `flowrec sql`'s table: shards and granules that cannot match are skipped.
        let planner = ScanPlanner(store: store, statistics: statistics)
        let skip: SkipFilter
        do {
            skip = try planner.skipFilter(where: filter, fromMs: query.fromMs, toMs: query.toMs)
        } catch {
            throw guarding.explain(error, "the query is not valid SQL over the flows table", check: "Check --where and --fields.")
        }
        /// One shard's rows in time order, stepped by the merge.
        final class Cursor {
            let shard: ShardRecord
            let reader: ShardReader
            let statement: SQLiteStatement
            var time: Int64 = 0
            var rowID: Int64 = 0
            init(shard: ShardRecord, reader: ShardReader, statement: SQLiteStatement) {
                self.shard = shard
                self.reader = reader
                self.statement = statement
            }
        }
        func open(_ shard: ShardRecord) throws -> Cursor? {
            let reader: ShardReader
            let ranges: [ClosedRange<Int64>]?
            do {
                let opened = try guarding.reader(for: shard.id, in: store)
                statistics.add(\.shardsOpened, 1)
                (reader, ranges) = (opened, try planner.rowRanges(opened, filter: skip))
            } catch {
                if unreadable.skip(shard.id, after: error) { return nil }
                throw error
            }
            if ranges == nil { statistics.add(\.shardsReadWhole, 1) }
            if ranges?.isEmpty == true { return nil }
            do {
                let statement = try reader.db.prepare("SELECT \(selected) FROM \(ScanPlanner.flowsSource(reader, ranges: ranges, withRowID: true))" + clauses)
                if let from = query.fromMs { statement.bind(1, from) }
                if let to = query.toMs { statement.bind(2, to) }
                statement.bind(3, Int64(min(remaining, Int(Int32.max))))
                return Cursor(shard: shard, reader: reader, statement: statement)
            } catch {
                throw guarding.explain(error, "the query is not valid SQL over the flows table", check: "Check --where and --fields.")
            }
        }
        /// Steps `cursor`; false at its end (or when its shard turns out damaged: skipped).
        func step(_ cursor: Cursor) throws -> Bool {
            do {
                guard try cursor.statement.step() else { return false }
                cursor.time = cursor.statement.integer(width)
                cursor.rowID = cursor.statement.integer(width + 1)
                return true
            } catch where guarding.interruption() == nil && unreadable.skip(cursor.shard.id, after: error) {
                return false
            } catch {
                throw guarding.explain(error, "the query is not valid SQL over the flows table", check: "Check --where and --fields.")
            }
        }
        // Shards are grouped by time range first and pruned by their skip summaries as
        // the query reaches them: a limited query stops after a few.
        let groups = Self.overlapping(try planner.shardsInRange(for: skip).filter { query.onlyShard == nil || $0.id == query.onlyShard })
        var stopped = false
        try planner.forEachCandidateGroup(groups, filter: skip) { cluster in
            var live: [Cursor] = []
            for shard in cluster {
                if let cursor = try open(shard), try step(cursor) { live.append(cursor) }
            }
            while !live.isEmpty {
                // The earliest row among the shards of the cluster (few: usually one).
                var next = 0
                for i in live.indices.dropFirst() where (live[i].time, live[i].rowID) < (live[next].time, live[next].rowID) { next = i }
                let cursor = live[next]
                let values = QueryValue.row(of: cursor.statement, columns: width, unsigned: unsigned)
                remaining -= 1
                if try !row(values, cursor.reader, cursor.rowID) {
                    stopped = true
                    return false
                }
                if remaining == 0 {
                    try afterLastRow()
                    stopped = true
                    return false
                }
                if try !step(cursor) { live.remove(at: next) }
            }
            return true
        }
        if !stopped { try afterLastRow() }
    }

    /// Shards grouped so that no two groups overlap in time, in time order.
    static func overlapping(_ shards: [ShardRecord]) -> [[ShardRecord]] {
        let sorted = shards.sorted { ($0.minTimeMs ?? .min, $0.id) < ($1.minTimeMs ?? .min, $1.id) }
        var clusters: [[ShardRecord]] = []
        var end = Int64.min
        for shard in sorted {
            if let last = clusters.indices.last, (shard.minTimeMs ?? .min) <= end {
                clusters[last].append(shard)
            } else {
                clusters.append([shard])
            }
            end = max(end, shard.maxTimeMs ?? .min)
        }
        return clusters
    }
}

/// The flows view's column names (NetObserv's field names), in schema order.
package enum ShardSchemaColumns {
    package static let fieldNames: [String] = ShardSchema.viewFieldNames
    /// Field names and the view's bookkeeping columns (`_nulls`, `_quoted`, `_extras`).
    package static let selectable: Set<String> = Set(fieldNames + ShardSchema.bookkeepingColumns.map(\.name))
}
