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
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: catalogPath + suffix) }
        let catalog = try Catalog(path: catalogPath)
        for delivery in deliveries { try catalog.recordDelivery(delivery) }
        var report = Report()
        let files = (FileManager.default.enumerator(atPath: shardsDir.path)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".sqlite") || $0.hasSuffix(".sqlite.zst") }.sorted()
        for relative in files {
            let full = shardsDir.appendingPathComponent(relative).path
            let sealed = relative.hasSuffix(".zst")
            report.checked += 1
            progress(relative[...])
            do {
                let reader = try ShardReader(path: full)
                if let problem = try reader.quickCheck() { throw ShardStoreError(.unreadableShard, "quick_check: \(problem)") }
                guard let start = try reader.meta("window_start_ms").flatMap({ Int64($0) }),
                      let end = try reader.meta("window_end_ms").flatMap({ Int64($0) }),
                      let part = try reader.meta("part").flatMap({ Int($0) }) else {
                    throw ShardStoreError(.unreadableShard, "its meta table has no window")
                }
                let id = ShardID(windowStartMs: start, windowEndMs: end, part: part)
                var checksum: String?
                if sealed {
                    let (_, sum) = try reader.contentChecksum()
                    checksum = String(sum, radix: 16)
                    if let recorded = try reader.meta("content_checksum"), recorded != checksum {
                        throw ShardStoreError(.unreadableShard, "content checksum \(checksum ?? "") differs from the recorded \(recorded)")
                    }
                }
                var rows: Int64 = 0, minT: Int64?, maxT: Int64?
                try reader.query("SELECT count(*), min(TimeFlowEndMs), max(TimeFlowEndMs) FROM flow_rows") { r in
                    rows = r.integer(0)
                    minT = r.isNull(1) ? nil : r.integer(1)
                    maxT = r.isNull(2) ? nil : r.integer(2)
                }
                try catalog.recordScanned(id: id, state: sealed ? .sealed : .active, relativePath: "shards/" + relative,
                                          rows: rows, minTimeMs: minT, maxTimeMs: maxT, bytes: fileSize(full),
                                          checksum: checksum, positions: try reader.positions())
                if sealed {
                    // The shard's own skip summaries; computed from its rows for a shard
                    // sealed before flowrec had them (its granules come with its next merge).
                    try catalog.replaceSummaries(try reader.skipSummaries() ?? reader.computeSkipSummaries(), of: id)
                }
                report.rows += rows
                if sealed { report.sealed += 1 } else { report.active += 1 }
            } catch {
                let target = root.appendingPathComponent("quarantine").appendingPathComponent(relative)
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.moveItem(atPath: full, toPath: target.path)
                for suffix in ["-wal", "-shm"] { try? FileManager.default.moveItem(atPath: full + suffix, toPath: target.path + suffix) }
                report.quarantined.append((relative, "\(error)"))
                if let id = ShardID(String((relative as NSString).lastPathComponent.split(separator: ".sqlite").first ?? "")) {
                    try catalog.recordScanned(id: id, state: .quarantined, relativePath: "quarantine/" + relative, rows: 0,
                                              minTimeMs: nil, maxTimeMs: nil, bytes: fileSize(target.path), checksum: nil,
                                              positions: [:])
                }
            }
        }
        return report
    }
}
