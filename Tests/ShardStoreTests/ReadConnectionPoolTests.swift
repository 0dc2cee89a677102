import FlowrecTestTraits
import FlowrecTesting
import Foundation
@testable import ShardStore
import StorageKit
import Testing

/// Query readers of sealed shards keep their connection for the next query, and never
/// one to a file that is gone or replaced: a kept connection would hold a deleted
/// file's space, or read an old version of a recompressed shard.
@Suite(.ownThread, .serialized) struct ReadConnectionPoolTests {
    func sealedStore(_ dir: TemporaryDirectory) throws -> (ShardStore, [ShardRecord]) {
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch(generatedLines(12_000)[...], firstLine: 1))
        try store.sealClosedWindows()
        return (store, try store.shards().filter { $0.state == .sealed })
    }

    /// Open descriptors of this process that point at `path` (or at it deleted).
    func descriptors(to path: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { return false }
            return target == path || target == path + " (deleted)"
        }.count
    }

    @Test func aQueryReadersConnectionServesTheNextOne() throws {
        let dir = TemporaryDirectory()
        let (store, sealed) = try sealedStore(dir)
        let path = store.filePath(of: sealed[0].id)
        ReadConnectionPool.shared.forget(path: path)
        var first: ShardReader? = try ShardReader(path: path, reusable: true)
        let handle = try #require(first?.db.handle)
        #expect(try first?.rowIDRange() != nil)
        first = nil
        #expect(descriptors(to: path) == 1, "kept open for the next query")
        let second = try ShardReader(path: path, reusable: true)
        #expect(second.db.handle == handle, "the same connection")
        #expect(try second.rowIDRange() == 1...sealed[0].rowCount)
        // Sealing, merging and checking open afresh, and give nothing back.
        var other: ShardReader? = try ShardReader(path: path)
        #expect(other?.db.handle != handle)
        other = nil
        #expect(descriptors(to: path) == 1)
    }

    @Test func deletingOrReplacingASealedFileLeavesNoConnectionToTheOldOne() throws {
        let dir = TemporaryDirectory()
        let (store, sealed) = try sealedStore(dir)
        // Retention deletes a shard a query has read: its space must come back.
        let oldest = store.filePath(of: sealed[0].id)
        do { _ = try ShardReader(path: oldest, reusable: true).rowIDRange() }
        #expect(descriptors(to: oldest) == 1)
        let now = sealed[0].id.windowEndMs + 60_000
        let report = try store.prune(RetentionPolicy(maxAgeMs: 60_000), nowMs: now, volume: VolumeSpace(freeBytes: 1 << 40, totalBytes: 1 << 41))
        #expect(report.deleted.map(\.shard).contains(sealed[0].id))
        #expect(descriptors(to: oldest) == 0, "no descriptor holds the deleted file")

        // A file replaced behind the pool's back (renamed over): the kept connection is
        // not handed out; the reader opens the file the path names now.
        let a = store.filePath(of: sealed[1].id), b = store.filePath(of: sealed[2].id)
        do { _ = try ShardReader(path: a, reusable: true).rowIDRange() }
        #expect(ReadConnectionPool.shared.idleCount >= 1)
        try FileManager.default.removeItem(atPath: a)
        try FileManager.default.copyItem(atPath: b, toPath: a)
        let reader = try ShardReader(path: a, reusable: true)
        #expect(try reader.rowIDRange() == 1...sealed[2].rowCount, "the new file's rows")
        #expect(descriptors(to: a) == 1)
    }

    @Test func idleConnectionsCloseAfterTheirTimeAndBeyondCapacity() throws {
        let dir = TemporaryDirectory()
        let (store, sealed) = try sealedStore(dir)
        let pool = ReadConnectionPool(capacity: 2, idleSeconds: 0.2)
        let paths = sealed.prefix(3).map { store.filePath(of: $0.id) }
        for path in paths {
            let db = try SQLiteDatabase(path: SeekableZstdVFS.uri(for: path), mode: .readOnly, vfs: SeekableZstdVFS.name)
            pool.give(path, db: db, timeEncoding: .plain, identity: try #require(FileIdentity(path: path)))
        }
        #expect(pool.idleCount == 2, "the longest idle is closed past the capacity")
        #expect(pool.take(paths[0], identity: try #require(FileIdentity(path: paths[0]))) == nil)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(pool.take(paths[2], identity: try #require(FileIdentity(path: paths[2]))) == nil, "expired")
        #expect(pool.idleCount == 0)
    }
}
