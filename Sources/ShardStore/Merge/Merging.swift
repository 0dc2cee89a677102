import Foundation
import Logging
import StorageKit

/// Which sealed shards are merged, when, and how a merge is committed or recovered.
///
/// A merge group is the sealed shards of one merge window (a day by default) once that
/// window is over: every shard of it sealed, none still active, its end plus the grace
/// period behind the wall clock. Consecutive shards are merged until `maxRows`. A
/// merged shard is never merged again; late flows that open new parts of a merged day
/// are merged among themselves. Delivery is kept exactly once: a group is merged only
/// when each forwarder known to the store has delivered all of it or none of it; the
/// merged shard counts as delivered to the forwarders that had all of it, and is new to
/// the others.
package struct MergePolicy: Sendable, Equatable {
    /// The span of a merged shard: shards of one such window (aligned to the epoch) merge.
    package var windowMs: Int64 = 86_400_000
    /// At most this many rows per merged shard (a day of a busy cluster is split).
    package var maxRows: Int64 = 50_000_000
    /// Forwarders that must have delivered a shard (or none of its group) before it merges,
    /// beside every forwarder the catalog has delivery records of.
    package var requiredForwarders: [String] = []
    /// zstd level of merged shards (deep compaction's, so a merge is also a compaction).
    package var level: Int32 = 19
    package var frameSize: Int = 1 << 20
    /// Whether merged shards get column blocks (`ColumnBlocks`): needle counts over weeks
    /// several times faster, for about 4.6 bytes per flow.
    package var columnBlocks = true
    /// How long a merged-away shard's file stays after the swap, so a query that listed
    /// the shard just before can still read it.
    package var sourceGraceMs: Int64 = 120_000

    package init(windowMs: Int64 = 86_400_000, maxRows: Int64 = 50_000_000, requiredForwarders: [String] = [], level: Int32 = 19) {
        self.windowMs = windowMs
        self.maxRows = maxRows
        self.requiredForwarders = requiredForwarders
        self.level = level
    }

    package func validate(storeWindowMs: Int64) throws(ShardStoreError) {
        guard windowMs > storeWindowMs, windowMs % storeWindowMs == 0, windowMs <= 7 * 86_400_000 else {
            throw ShardStoreError(.invalidOptions, "the merge window must be a multiple of the shard window (\(storeWindowMs / 60_000)m), larger than it, and at most 7d; got \(windowMs / 60_000)m")
        }
        guard maxRows >= 1000 else { throw ShardStoreError(.invalidOptions, "merges need room for at least 1000 rows per merged shard; got \(maxRows)") }
    }
}

extension ShardStore {
    /// One merge that was (or would be) done.
    package struct MergeSummary: Sendable {
        package let merged: ShardID
        package let sources: [ShardID]
        package let rows: Int64
        package let bytesBefore: Int64
        package let bytesAfter: Int64
        package let seconds: Double
    }

    /// The groups that would merge now, oldest first (nothing is written).
    package func mergePlan(_ policy: MergePolicy, nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws -> [[ShardRecord]] {
        try Self.mergePlan(policy, catalog: catalog, windowMs: options.windowMs, graceMs: options.graceMs, nowMs: nowMs,
                           storeMarks: checkpoint.marks)
    }

    /// `storeMarks` are the store-wide marks (`ResumeCheckpoint`), beside the shards'.
    static func mergePlan(_ policy: MergePolicy, catalog: Catalog, windowMs: Int64, graceMs: Int64, nowMs: Int64,
                          storeMarks: [SourcePartition: Int64]) throws -> [[ShardRecord]] {
        let shards = try catalog.shards()
        let deliveries = try catalog.deliveries()
        let forwarders = Set(deliveries.map(\.forwarder)).union(policy.requiredForwarders)
        var complete: [String: Set<String>] = [:]  // forwarder → shards delivered completely
        var touched: [String: Set<String>] = [:]   // forwarder → shards it has a record of
        for row in deliveries {
            touched[row.forwarder, default: []].insert(row.shardID)
            if row.complete { complete[row.forwarder, default: []].insert(row.shardID) }
        }
        // Merge windows that something still writes to are not merged.
        var busy = Set<Int64>()
        for shard in shards where shard.state == .active { busy.insert(floorDiv(shard.id.windowStartMs, policy.windowMs)) }
        // Nor those holding part of a batch still being stored. A batch commits one window
        // at a time and records its high-water mark with the last, so a crash can leave
        // its first windows stored and its last ones not; the replay then skips, window by
        // window, the positions each window already holds (`append`). A merged shard
        // spans many windows and cannot say which of them holds a position: merged, the
        // stored part would make the replay skip the flows of the windows the crash left
        // empty. Such a shard holds a position past its partition's high-water mark; the
        // replay, or any later batch of the partition, moves the mark past it.
        let highWater = try catalog.highWater().merging(storeMarks) { max($0, $1) }
        let unfinished = try catalog.sealedShardsPast(highWater, windowMs: windowMs)
        for shard in shards where unfinished.contains(shard.id.description) {
            busy.insert(floorDiv(shard.id.windowStartMs, policy.windowMs))
        }
        var byWindow: [Int64: [ShardRecord]] = [:]
        for shard in shards where shard.state == .sealed && shard.id.windowEndMs - shard.id.windowStartMs == windowMs {
            let window = floorDiv(shard.id.windowStartMs, policy.windowMs)
            guard floorDiv(shard.id.windowEndMs - 1, policy.windowMs) == window else { continue }
            byWindow[window, default: []].append(shard)
        }
        var groups: [[ShardRecord]] = []
        for window in byWindow.keys.sorted() {
            guard !busy.contains(window), (window + 1) * policy.windowMs + graceMs <= nowMs else { continue }
            var run: [ShardRecord] = []
            var rows: Int64 = 0
            func close() {
                if run.count >= 2, deliveredAlike(run) { groups.append(run) }
                run = []
                rows = 0
            }
            for shard in byWindow[window]!.sorted(by: { $0.id < $1.id }) {
                if !run.isEmpty, rows + shard.rowCount > policy.maxRows { close() }
                run.append(shard)
                rows += shard.rowCount
            }
            close()
        }
        return groups

        /// Each forwarder has all of the group or none of it.
        func deliveredAlike(_ group: [ShardRecord]) -> Bool {
            let ids = group.map(\.id.description)
            return forwarders.allSatisfy { forwarder in
                let all = ids.allSatisfy { complete[forwarder]?.contains($0) == true }
                let none = ids.allSatisfy { touched[forwarder]?.contains($0) != true }
                return all || none
            }
        }
    }

    /// Merges what `mergePlan` lists, one group after the other, and removes the files of
    /// sources merged away long enough ago. `shouldCancel` stops between frames and rows
    /// (the group in progress is simply merged another time).
    @discardableResult
    package func mergeSealedShards(_ policy: MergePolicy, nowMs: Int64? = nil, shouldCancel: () -> Bool = { false },
                                   progress: (MergeSummary) -> Void = { _ in }) throws -> [MergeSummary] {
        guard !isReadOnly else { throw ShardStoreError(.readOnly, "this store was opened for reading; merging writes") }
        try policy.validate(storeWindowMs: options.windowMs)
        let done = try Self.merge(policy, catalog: catalog, directory: directory, windowMs: options.windowMs, graceMs: options.graceMs,
                                  nowMs: nowMs ?? Int64(Date().timeIntervalSince1970 * 1000), logger: logger,
                                  shouldCancel: shouldCancel, progress: progress)
        try Self.removeMergedSourceFiles(catalog: catalog, directory: directory, logger: logger, graceMs: policy.sourceGraceMs)
        return done
    }

    static func merge(_ policy: MergePolicy, catalog: Catalog, directory: URL, windowMs: Int64, graceMs: Int64, nowMs: Int64,
                      logger: Logger, shouldCancel: () -> Bool, progress: (MergeSummary) -> Void) throws -> [MergeSummary] {
        var done: [MergeSummary] = []
        let merger = ShardMerger(directory: directory, level: policy.level, frameSize: policy.frameSize, columnBlocks: policy.columnBlocks)
        let plan = try mergePlan(policy, catalog: catalog, windowMs: windowMs, graceMs: graceMs, nowMs: nowMs,
                                 storeMarks: ResumeCheckpoint.marks(inStoreAt: directory))
        for group in plan {
            if shouldCancel() { break }
            let first = group[0].id, last = group[group.count - 1].id
            let span = (first.windowStartMs, last.windowEndMs)
            let id = ShardID(windowStartMs: span.0, windowEndMs: span.1,
                             part: try catalog.nextPart(windowStartMs: span.0, windowEndMs: span.1))
            let result: ShardMerger.Result
            do {
                result = try merger.merge(group, into: id, shouldCancel: shouldCancel)
            } catch is ShardMerger.Cancelled {
                break
            }
            if try commit(result, catalog: catalog, directory: directory, logger: logger) {
                let summary = MergeSummary(merged: id, sources: group.map(\.id), rows: result.merged.rows,
                                           bytesBefore: group.reduce(0) { $0 + $1.bytesOnDisk }, bytesAfter: result.merged.bytes,
                                           seconds: result.seconds)
                logger.info("merged sealed shards", metadata: [
                    "shard": "\(id)", "sources": "\(group.count)", "rows": "\(summary.rows)",
                    "bytes_before": "\(summary.bytesBefore)", "bytes_after": "\(summary.bytesAfter)",
                    "seconds": "\(String(format: "%.1f", summary.seconds))",
                ])
                progress(summary)
                done.append(summary)
            }
        }
        return done
    }

    /// Swaps the sources for the merged shard: journal, rename, catalog, journal removed.
    /// Under the shard-file lock, so retention, compaction and the catalog's
    /// reconciliation never see a half-swapped group. False (and the merged file removed)
    /// when retention deleted a source meanwhile.
    static func commit(_ result: ShardMerger.Result, catalog: Catalog, directory: URL, logger: Logger) throws -> Bool {
        let merged = result.merged
        return try ShardFiles.lock.withLock { _ in
            defer { try? FileManager.default.removeItem(atPath: result.verifiedPath) }
            let journal = try MergeJournal.write(merged.id, sources: merged.sources.map(\.id), in: directory)
            CrashPoint.reached("merge.journaled")
            let path = directory.appendingPathComponent(merged.relativePath).path
            guard rename(result.verifiedPath, path) == 0 else {
                try? FileManager.default.removeItem(atPath: journal)
                throw ShardStoreError(.fileOperationFailed, "merging into \(merged.id): cannot rename the merged file into place (errno \(errno)); the sources are kept")
            }
            fsyncDirectory((path as NSString).deletingLastPathComponent)
            CrashPoint.reached("merge.renamed")
            let applied = try catalog.recordMerge(merged, nowMs: Int64(Date().timeIntervalSince1970 * 1000))
            CrashPoint.reached("merge.cataloged")
            if !applied {
                logger.notice("a merge was dropped: retention deleted one of its shards meanwhile", metadata: ["shard": "\(merged.id)"])
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(merged.relativePath))
            }
            try? FileManager.default.removeItem(atPath: journal)
            return applied
        }
    }

    /// Finishes what a crash interrupted: a merged shard renamed in place but not yet in
    /// the catalog is swapped in from its journal (its flows verified before the rename);
    /// a journal without its merged file is dropped (the sources are untouched).
    func recoverMerges() throws {
        for (journalPath, entry) in MergeJournal.pending(in: directory) {
            let path = directory.appendingPathComponent(entry.merged.sealedRelativePath).path
            if FileManager.default.fileExists(atPath: path), try !catalog.contains(entry.merged) {
                let reader = try ShardReader(path: path)
                var rows: Int64 = 0, minT: Int64?, maxT: Int64?
                try reader.query("SELECT count(*), min(TimeFlowEndMs), max(TimeFlowEndMs) FROM flow_rows") { r in
                    rows = r.integer(0)
                    minT = r.isNull(1) ? nil : r.integer(1)
                    maxT = r.isNull(2) ? nil : r.integer(2)
                }
                let sources = try catalog.shards().filter { entry.sources.contains($0.id) }
                let merged = Catalog.MergedShard(
                    id: entry.merged, relativePath: entry.merged.sealedRelativePath, rows: rows, minTimeMs: minT, maxTimeMs: maxT,
                    bytes: fileSize(path), checksum: try reader.meta("content_checksum").flatMap { UInt64($0, radix: 16) } ?? 0,
                    level: 0, positions: try reader.positions(), summaries: try reader.skipSummaries() ?? [], sources: sources)
                if sources.count == entry.sources.count, try catalog.recordMerge(merged, nowMs: Int64(Date().timeIntervalSince1970 * 1000)) {
                    logger.notice("finished a merge interrupted by a crash", metadata: ["shard": "\(entry.merged)"])
                } else {
                    // A source went away (retention): the merged file must not bring it back.
                    try? FileManager.default.removeItem(atPath: path)
                    logger.notice("dropped a merge interrupted by a crash: one of its shards is gone", metadata: ["shard": "\(entry.merged)"])
                }
            }
            try? FileManager.default.removeItem(atPath: journalPath)
        }
        try Self.removeMergedSourceFiles(catalog: catalog, directory: directory, logger: logger, graceMs: MergePolicy().sourceGraceMs)
    }

    /// Removes the files of shards merged away more than `graceMs` ago (queries that
    /// listed them before the swap have had time to read them).
    static func removeMergedSourceFiles(catalog: Catalog, directory: URL, logger: Logger, graceMs: Int64,
                                        nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws {
        for source in try catalog.sourceFilesToRemove(mergedBeforeMs: nowMs - graceMs) {
            let path = directory.appendingPathComponent(source.path).path
            ReadConnectionPool.shared.forget(path: path)  // or a kept connection holds the space
            if unlink(path) != 0 && errno != ENOENT {
                logger.warning("cannot remove a merged-away shard file; it is tried again later",
                               metadata: ["file": "\(source.path)", "errno": "\(errno)"])
                continue
            }
            fsyncDirectory((path as NSString).deletingLastPathComponent)
            try catalog.markSourceFileRemoved(source.id)
            CrashPoint.reached("merge.sourceRemoved")
        }
    }
}

/// `<data>/merging/<id>.json`: a merge about to be swapped in, so a crash between the
/// rename and the catalog's transaction is finished at the next start.
enum MergeJournal {
    struct Entry: Codable {
        let mergedID: String
        let sources: [String]

        var merged: ShardID { ShardID(mergedID) ?? ShardID(windowStartMs: 0, windowEndMs: 0, part: 0) }
        var sourceIDs: [ShardID] { sources.compactMap { ShardID($0) } }
    }

    static func folder(_ directory: URL) -> URL { directory.appendingPathComponent("merging") }

    static func write(_ merged: ShardID, sources: [ShardID], in directory: URL) throws -> String {
        let folder = folder(directory)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("\(merged).json").path
        let data = try JSONEncoder().encode(Entry(mergedID: merged.description, sources: sources.map(\.description)))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ShardStoreError(.fileOperationFailed, "cannot write the merge journal \(path) (errno \(errno))") }
        defer { close(fd) }
        let written = data.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(fd) == 0 else {
            throw ShardStoreError(.fileOperationFailed, "cannot write the merge journal \(path) (errno \(errno))")
        }
        fsyncDirectory(folder.path)
        return path
    }

    static func pending(in directory: URL) -> [(String, (merged: ShardID, sources: [ShardID]))] {
        let folder = folder(directory)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { name in
            let path = folder.appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path), let entry = try? JSONDecoder().decode(Entry.self, from: data),
                  ShardID(entry.mergedID) != nil else {
                try? FileManager.default.removeItem(atPath: path)  // torn by a crash while written: nothing was renamed yet
                return nil
            }
            return (path, (entry.merged, entry.sourceIDs))
        }
    }
}
