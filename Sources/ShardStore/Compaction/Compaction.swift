import Foundation

/// Deep compaction of a whole store, on demand (`flowrec compact`); the recorder's idle
/// compaction is `IdleCompactor`.
extension ShardStore {
    package struct CompactionSummary: Sendable {
        package let id: ShardID
        package let bytesBefore: Int64
        package let bytesAfter: Int64
        package let seconds: Double
    }

    /// Recompresses sealed shards below `level` at `level` (frame by frame, `frameSize`
    /// bytes each), verifies each new file in place against the shard's content checksum,
    /// and swaps it in atomically. Readers of the old file keep reading it until they close.
    @discardableResult
    package func compact(level: Int32 = 19, frameSize: Int = 1 << 20, limit: Int = .max,
                        progress: (CompactionSummary) -> Void = { _ in }) throws -> [CompactionSummary] {
        var results: [CompactionSummary] = []
        let compactor = ShardCompactor(directory: directory, level: level, frameSize: frameSize)
        for (id, relative, checksum) in try catalog.sealedBelow(level: level).prefix(limit) {
            let summary = try compactor.compact(id: id, relativePath: relative, checksum: checksum, catalog: catalog)
            progress(summary)
            results.append(summary)
        }
        return results
    }
}
