import StorageKit
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Recompresses one sealed shard at a higher zstd level: decompress, recompress frame by
/// frame, verify the new file in place against the shard's recorded content checksum,
/// rename it over the old one, update the catalog. A crash or a cancel at any point
/// leaves the old file (temporary files are removed by the next start).
struct ShardCompactor {
    let directory: URL
    let level: Int32
    let frameSize: Int

    struct Cancelled: Error {}

    func compact(id: ShardID, relativePath relative: String, checksum: String?, catalog: Catalog,
                 shouldCancel: () -> Bool = { false }) throws -> ShardStore.CompactionSummary {
        let started = Date()
        let path = directory.appendingPathComponent(relative).path
        let plain = path + ".compact.tmp"
        let recompressed = path + ".tmp"
        defer { for p in [plain, recompressed] { try? FileManager.default.removeItem(atPath: p) } }
        let before = fileSize(path)
        try SeekableZstd.decompress(source: path, destination: plain)
        // The same layout as a fresh seal: frames start at the granules (none in a shard
        // sealed before flowrec had them).
        let boundaries = (try? FrameLayout.boundaries(of: SQLiteDatabase(path: plain, mode: .readOnly))) ?? []
        try SeekableZstd.compress(source: plain, destination: recompressed, level: level, frameSize: frameSize,
                                  boundaries: boundaries, shouldCancel: shouldCancel)
        if shouldCancel() { throw Cancelled() }
        let check = try ShardReader(path: recompressed)
        if let problem = try check.quickCheck() { throw ShardStoreError(.verificationFailed, "compacting \(id): quick_check failed (\(problem)); the shard is unchanged") }
        let (_, sum) = try check.contentChecksum()
        if let checksum, checksum != String(sum, radix: 16) {
            throw ShardStoreError(.verificationFailed, "compacting \(id): content checksum \(String(sum, radix: 16)) differs from the recorded \(checksum); the shard is unchanged")
        }
        let after: Int64 = try ShardFiles.lock.withLock { _ in
            // Retention may have deleted the shard meanwhile: do not bring it back.
            guard try catalog.contains(id) else { throw Cancelled() }
            guard rename(recompressed, path) == 0 else {
                throw ShardStoreError(.fileOperationFailed, "compacting \(id): cannot replace \(relative) (errno \(errno)); the shard is unchanged")
            }
            fsyncDirectory((path as NSString).deletingLastPathComponent)
            ReadConnectionPool.shared.forget(path: path)  // kept connections read the replaced file
            let after = fileSize(path)
            try catalog.markSealed(id, relativePath: relative, bytes: after, checksum: sum, level: level)
            return after
        }
        return ShardStore.CompactionSummary(id: id, bytesBefore: before, bytesAfter: after,
                                            seconds: Date().timeIntervalSince(started))
    }
}
