import Foundation
package import Logging
import StorageKit

/// Opening a store: finding the window an existing store was written with, and the crash
/// recovery a writer does before its first batch.
extension ShardStore {
    /// The window width an existing store was written with (from its catalog), so
    /// commands that only read or maintain it need not be told.
    package static func existingWindowMs(directory: String) -> Int64? {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("catalog.sqlite").path
        guard FileManager.default.fileExists(atPath: path),
              let db = try? SQLiteDatabase(path: path, mode: .readOnly) else { return nil }
        // Recorded by the writer; in an older store, read off a shard that is not a merge.
        if let recorded = try? db.scalarInteger("SELECT value FROM store_facts WHERE key = 'window_ms'") { return recorded }
        if let unmerged = try? db.scalarInteger("""
            SELECT window_end_ms - window_start_ms FROM shards WHERE id NOT IN (SELECT merged_into FROM merged_sources) LIMIT 1
            """) { return unmerged }
        return try? db.scalarInteger("SELECT window_end_ms - window_start_ms FROM shards LIMIT 1")
    }

    /// The store of a running recorder, for queries: shards are found through the catalog
    /// and read through read-only connections; appending or sealing is refused.
    package static func openForReading(directory: String, logger: Logger = Logger(label: "flowrec.store")) throws -> ShardStore {
        try ShardStore(directory: directory, options: .init(windowMs: existingWindowMs(directory: directory) ?? Options().windowMs),
                       readOnly: true, logger: logger)
    }

    /// Opens an existing store for writing, with the window it was written with.
    package static func openExisting(directory: String, logger: Logger = Logger(label: "flowrec.store")) throws -> ShardStore {
        try ShardStore(directory: directory, options: .init(windowMs: existingWindowMs(directory: directory) ?? Options().windowMs),
                       readOnly: false, logger: logger)
    }

    /// Crash recovery: opens every active shard file on disk (also ones the catalog
    /// missed because of a crash just after creating them), removes what an interrupted
    /// seal left, finishes the bookkeeping of a seal that crashed after its rename, and
    /// refreshes the catalog from the shards.
    func reopenActiveShards() throws {
        let shardsDir = directory.appendingPathComponent("shards")
        guard let files = FileManager.default.enumerator(atPath: shardsDir.path) else { return }
        var activeFiles: [String] = []
        for case let relative as String in files {
            let full = shardsDir.appendingPathComponent(relative).path
            if relative.hasSuffix(".tmp") {
                // An interrupted seal: the active shard is still complete; redo it later.
                try? FileManager.default.removeItem(atPath: full)
            } else if relative.hasSuffix(".sqlite") {
                activeFiles.append(relative)
            }
        }
        for relative in activeFiles {
            let full = shardsDir.appendingPathComponent(relative).path
            if FileManager.default.fileExists(atPath: full + ".zst") {
                // Crashed after the sealed file was verified and renamed: it wins.
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: full + suffix) }
                continue
            }
            let name = (relative as NSString).lastPathComponent.dropLast(".sqlite".count)
            guard let id = ShardID(String(name)) else {
                // Not a name flowrec writes (a copy, a stray file): leave it alone, say so.
                logger.warning("a file under shards/ is not named like a shard; it is ignored",
                               metadata: ["file": "shards/\(relative)"])
                continue
            }
            guard id.windowEndMs - id.windowStartMs == options.windowMs else {
                throw ShardStoreError(.wrongWindow, "shards/\(relative) does not belong to a store with \(options.windowMs / 60000)-minute windows: open the store with the window it was written with",
                                      shard: id)
            }
            let shard = try ActiveShard(id: id, path: full)
            if let existing = active[id.windowStartMs] {
                if existing.id.part > id.part { supersededShards.append(shard); continue }
                supersededShards.append(existing)
            }
            active[id.windowStartMs] = shard
            try catalog.record(shard, relativePath: id.activeRelativePath)
            restoredWatermarkMs = max(restoredWatermarkMs, shard.maxTimeMs ?? .min)
        }
        // Shards the catalog lists as active whose sealed file exists: finish the bookkeeping.
        for row in try catalog.shards() where row.state == .active && active[row.id.windowStartMs]?.id != row.id {
            let sealed = directory.appendingPathComponent(row.id.sealedRelativePath).path
            if FileManager.default.fileExists(atPath: sealed) {
                let reader = try ShardReader(path: sealed)
                let checksum = try reader.meta("content_checksum").flatMap { UInt64($0, radix: 16) } ?? 0
                try catalog.markSealed(row.id, relativePath: row.id.sealedRelativePath, bytes: fileSize(sealed), checksum: checksum,
                                       summaries: try reader.skipSummaries())
            }
        }
        for row in try catalog.shards() { restoredWatermarkMs = max(restoredWatermarkMs, row.maxTimeMs ?? .min) }
    }
}
