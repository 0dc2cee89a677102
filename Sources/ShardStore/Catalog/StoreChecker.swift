import StorageKit
import Foundation

/// `flowrec fsck`: checks every shard file and rebuilds the catalog from the shards alone.
///
/// A shard that fails (unreadable, `quick_check` errors, a sealed shard whose content
/// no longer matches its recorded checksum) is moved to `<data>/quarantine/` with the
/// same relative path, never deleted, and listed as quarantined; the rest keep working.
/// Run it with the recorder stopped.
package enum StoreChecker {
    package struct Report: Sendable {
        package var checked = 0
        package var active = 0
        package var sealed = 0
        package var quarantined: [(path: String, reason: String)] = []
        package var rows: Int64 = 0
        /// Files of shards already merged into another (verified) shard, removed.
        package var mergedLeftovers = 0
    }

    /// What one sound shard file says about itself, counted from its rows rather than
    /// taken from its `meta` as `SealedShardFacts` does: fsck trusts nothing it can check.
    private struct Scanned {
        let relative: String
        let id: ShardID
        let sealed: Bool
        let rows: Int64
        let minTimeMs: Int64?
        let maxTimeMs: Int64?
        let checksum: String?
        let positions: [SourcePartition: PositionRange]
        let summaries: [SkipSummary]?
        /// For a merged shard: the shards it replaced, and when it was sealed.
        let mergedFrom: [ShardID]
        let sealedMs: Int64?
    }

    /// Checks one shard file: quick_check, its window, and for a sealed one its content
    /// checksum against the one it recorded, and its column blocks and traffic series
    /// against its rows.
    private static func scan(_ full: String, relative: String) throws -> Scanned {
        let sealed = relative.hasSuffix(".zst")
        let reader = try ShardReader(path: full)
        if let problem = try reader.quickCheck() { throw ShardStoreError(.unreadableShard, "quick_check: \(problem)") }
        guard let id = try SealedShardFacts.id(of: reader) else {
            throw ShardStoreError(.unreadableShard, "its meta table has no window")
        }
        var checksum: String?
        if sealed {
            let (_, sum) = try reader.contentChecksum()
            checksum = String(sum, radix: 16)
            if let recorded = try reader.meta("content_checksum"), recorded != checksum {
                throw ShardStoreError(.unreadableShard, "content checksum \(checksum ?? "") differs from the recorded \(recorded)")
            }
            guard try reader.columnBlocksMatchRows() else {
                throw ShardStoreError(.unreadableShard, "its column blocks do not hold its rows' values")
            }
            guard try reader.trafficSeriesMatchesRows() else {
                throw ShardStoreError(.unreadableShard, "its traffic series does not hold its rows' counts and sums")
            }
        }
        var rows: Int64 = 0, minT: Int64?, maxT: Int64?
        try reader.query("SELECT count(*), min(TimeFlowEndMs), max(TimeFlowEndMs) FROM flow_rows") { r in
            rows = r.integer(0)
            minT = r.isNull(1) ? nil : r.integer(1)
            maxT = r.isNull(2) ? nil : r.integer(2)
        }
        // The shard's own skip summaries; computed from its rows for a shard sealed before
        // flowrec had them (its granules come with its next merge).
        let summaries = sealed ? try reader.skipSummaries() ?? reader.computeSkipSummaries() : nil
        return Scanned(relative: relative, id: id, sealed: sealed, rows: rows,
                       minTimeMs: minT, maxTimeMs: maxT, checksum: checksum, positions: try reader.positions(), summaries: summaries,
                       mergedFrom: try SealedShardFacts.mergedFrom(of: reader), sealedMs: try reader.meta("sealed_ms").flatMap { Int64($0) })
    }

    /// Moves a shard that failed its checks under `quarantine/`, never deleting it.
    private static func quarantine(_ relative: String, root: URL, because error: any Error, catalog: Catalog, report: inout Report) throws {
        let full = root.appendingPathComponent("shards").appendingPathComponent(relative).path
        let target = root.appendingPathComponent("quarantine").appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: target)
        ReadConnectionPool.shared.forget(path: full)
        try FileManager.default.moveItem(atPath: full, toPath: target.path)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.moveItem(atPath: full + suffix, toPath: target.path + suffix) }
        report.quarantined.append((relative, "\(error)"))
        if let id = ShardID(String((relative as NSString).lastPathComponent.split(separator: ".sqlite").first ?? "")) {
            try catalog.recordScanned(id: id, state: .quarantined, relativePath: "quarantine/" + relative, rows: 0,
                                      minTimeMs: nil, maxTimeMs: nil, bytes: fileSize(target.path), checksum: nil,
                                      positions: [:])
        }
    }

    /// `progress` hears each shard file (relative to `shards/`) as it starts checking it.
    package static func check(directory: String, progress: (_ shardFile: Substring) -> Void = { _ in }) throws -> Report {
        let root = URL(fileURLWithPath: directory)
        let shardsDir = root.appendingPathComponent("shards")
        let catalogPath = root.appendingPathComponent("catalog.sqlite").path
        let lock = try DataDirectoryLock(directory: directory)  // rebuilding the catalog is writing
        defer { withExtendedLifetime(lock) {} }
        // The catalog is a cache: start it afresh from what the shards say. Forwarders'
        // delivery records are the one thing the shards cannot tell: carry them over.
        let deliveries = (try? Catalog(path: catalogPath).deliveries()) ?? []
        // So are the ids of shards merged away whose merged shard is gone since (retention).
        let mergedEarlier = (try? Catalog(path: catalogPath).sourceFilesToRemove(mergedBeforeMs: .max, includingRemoved: true)) ?? []
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: catalogPath + suffix) }
        let catalog = try Catalog(path: catalogPath)
        for delivery in deliveries { try catalog.recordDelivery(delivery) }
        for source in mergedEarlier {
            try catalog.recordMergedSource(source.id, into: source.mergedInto, path: source.path, mergedMs: source.mergedMs, fileRemoved: true)
        }
        var report = Report()
        let files = (FileManager.default.enumerator(atPath: shardsDir.path)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".sqlite") || $0.hasSuffix(".sqlite.zst") }.sorted()
        // First every file is checked; then the catalog is written, so that a merged
        // shard's leftover sources (a crash, or the grace before their removal) are known
        // before they would be listed beside it.
        var sound: [Scanned] = []
        for relative in files {
            let full = shardsDir.appendingPathComponent(relative).path
            report.checked += 1
            progress(relative[...])
            do {
                sound.append(try scan(full, relative: relative))
            } catch {
                try quarantine(relative, root: root, because: error, catalog: catalog, report: &report)
            }
        }
        var mergedAway: [ShardID: (into: ShardID, mergedMs: Int64)] = [:]
        for shard in sound { for source in shard.mergedFrom { mergedAway[source] = (shard.id, shard.sealedMs ?? 0) } }
        for shard in sound {
            if let merge = mergedAway[shard.id] {
                // Its flows are in a verified merged shard: the file is a leftover.
                let leftover = shardsDir.appendingPathComponent(shard.relative).path
                ReadConnectionPool.shared.forget(path: leftover)
                try? FileManager.default.removeItem(atPath: leftover)
                try catalog.recordMergedSource(shard.id, into: merge.into, path: "shards/" + shard.relative, mergedMs: merge.mergedMs,
                                               fileRemoved: true)
                report.mergedLeftovers += 1
                continue
            }
            // A file whose merged shard is gone (quarantined, or deleted): it is the only
            // copy of its flows again.
            try catalog.forgetMergedSource(shard.id)
            try catalog.recordScanned(id: shard.id, state: shard.sealed ? .sealed : .active, relativePath: "shards/" + shard.relative,
                                      rows: shard.rows, minTimeMs: shard.minTimeMs, maxTimeMs: shard.maxTimeMs,
                                      bytes: fileSize(shardsDir.appendingPathComponent(shard.relative).path),
                                      checksum: shard.checksum, positions: shard.positions)
            if let summaries = shard.summaries { try catalog.replaceSummaries(summaries, of: shard.id) }
            report.rows += shard.rows
            if shard.sealed { report.sealed += 1 } else { report.active += 1 }
        }
        // Every merged-away id stays taken, so a late flow never reuses it.
        for (source, merge) in mergedAway where try !catalog.isMergedAway(source) {
            try catalog.recordMergedSource(source, into: merge.into, path: source.sealedRelativePath, mergedMs: merge.mergedMs, fileRemoved: true)
        }
        // The catalog now says what the files say: an interrupted merge's journal is moot.
        try? FileManager.default.removeItem(at: MergeJournal.folder(root))
        return report
    }
}
