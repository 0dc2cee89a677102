import StorageKit
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing

@Suite(.serialized) struct SeekableZstdVFSTests {
    func sealedShardPath(_ dir: TemporaryDirectory, flows: Int = 20_000) throws -> (path: String, rows: Int64) {
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0, frameSize: 64 << 10))
        try store.append(batch(generatedLines(flows, rate: 5000)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let shard = try #require(try store.shards().first { $0.state == .sealed })
        return (dir.path + "/" + shard.path, shard.rowCount)
    }

    @Test func aPointQueryDecompressesOnlyTheFramesItTouches() throws {
        let dir = TemporaryDirectory()
        let (sealed, rows) = try sealedShardPath(dir)
        // A copy (a file of its own): the seal's verification left the original's frames cached.
        let path = dir.path + "/copy.sqlite.zst"
        try FileManager.default.copyItem(atPath: sealed, toPath: path)
        let reader = try ShardReader(path: path)
        let file = try #require(FileIdentity(path: path))
        let before = SeekableZstdVFS.frameCache.loads(of: file).frames
        var found: Int64 = 0
        try reader.query("SELECT \"TimeFlowEndMs\" FROM flow_rows WHERE rowid = \(rows / 2)") { found = $0.integer(0) }
        let used = SeekableZstdVFS.frameCache.loads(of: file).frames - before
        #expect(found > 0)
        #expect(used > 0)
        // The compact copy of 20k flows is ~3.7 MB: ~57 frames of 64 KiB; a rowid lookup needs a few.
        #expect(used < 15, "a point query decompressed \(used) frames")
    }

    /// The forwarders cut a shard into chunks by its rowid range, read when they plan
    /// it: the two ends of the table's B-tree, not its every row (SQLite scans the whole
    /// table for `min(rowid), max(rowid)` side by side).
    @Test func theRowIDRangeReadsOnlyTheTablesEnds() throws {
        let dir = TemporaryDirectory()
        let (sealed, rows) = try sealedShardPath(dir)
        let path = dir.path + "/copy.sqlite.zst"
        try FileManager.default.copyItem(atPath: sealed, toPath: path)
        let file = try #require(FileIdentity(path: path))
        let before = SeekableZstdVFS.frameCache.loads(of: file).frames
        let range = try #require(try ShardReader(path: path).rowIDRange())
        let used = SeekableZstdVFS.frameCache.loads(of: file).frames - before
        #expect(Int64(range.count) == rows)
        #expect(used < 15, "reading the rowid range decompressed \(used) frames")
    }

    @Test func aFullScanThroughTheVFSSeesEveryRow() throws {
        let dir = TemporaryDirectory()
        let (path, rows) = try sealedShardPath(dir)
        let reader = try ShardReader(path: path)
        var count: Int64 = 0, namespaces = 0
        try reader.query("SELECT count(*), count(DISTINCT \"SrcK8S_Namespace\") FROM flows") {
            count = $0.integer(0)
            namespaces = Int($0.integer(1))
        }
        #expect(count == rows)
        #expect(namespaces > 10)
        #expect(try reader.meta("row_count") == String(rows))
        #expect(try reader.quickCheck() == nil)
    }

    @Test func writesThroughTheVFSFailCleanly() throws {
        let dir = TemporaryDirectory()
        let (path, rows) = try sealedShardPath(dir, flows: 2000)
        let reader = try ShardReader(path: path)
        for sql in ["INSERT INTO strings (id, value) VALUES (999999, 'x')", "DELETE FROM flow_rows", "CREATE TABLE t(a)"] {
            #expect(throws: SQLiteError.self) { try reader.query(sql) { _ in } }
        }
        var count: Int64 = 0
        try reader.query("SELECT count(*) FROM flow_rows") { count = $0.integer(0) }
        #expect(count == rows)
    }

    @Test func theFrameCacheStaysWithinItsBound() throws {
        let cache = FrameCache(limitBytes: 1 << 20)
        let file = FileIdentity(device: 1, inode: 1, size: 1, modifiedNanoseconds: 1)
        for i in 0..<100 {
            _ = try cache.frame(file: file, index: i) { [UInt8](repeating: UInt8(i), count: 64 << 10) }
            #expect(cache.bytes <= 1 << 20)
        }
        #expect(cache.loads == 100)
        #expect(cache.loads(of: file).frames == 100)
        #expect(cache.loads(of: file).bytes == 100 * (64 << 10))
        let other = FileIdentity(device: 1, inode: 2, size: 1, modifiedNanoseconds: 1)
        #expect(cache.loads(of: other).frames == 0, "a file never read has no loads")
        _ = try cache.frame(file: file, index: 99) { Issue.record("the newest frame should still be cached"); return [] }
    }

    /// A second reader of an unchanged sealed shard finds its frames decompressed; a
    /// shard replaced by a new file (deep compaction renames one over it) never gets the
    /// old file's frames.
    @Test func framesOutliveTheirReaderButNotTheirFile() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch(generatedLines(3000)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let shard = try #require(try store.shards().first { $0.state == .sealed })
        let path = dir.path + "/" + shard.path
        func count() throws -> Int64 {
            var rows: Int64 = 0
            try ShardReader(path: path).query("SELECT count(*) FROM flows") { rows = $0.integer(0) }
            return rows
        }
        // Counted per file: other tests read other shards through the same cache meanwhile.
        let sealed = try #require(FileIdentity(path: path))
        #expect(try count() == shard.rowCount)
        let loads = SeekableZstdVFS.frameCache.loads(of: sealed)
        #expect(loads.frames > 0)
        #expect(try count() == shard.rowCount)
        #expect(SeekableZstdVFS.frameCache.loads(of: sealed) == loads, "the second reader decompressed nothing")
        try store.compact(level: ShardStore.Options.defaultSealLevel + 3, frameSize: 1 << 20, limit: .max) { _ in }  // above the seal's level
        let recompressed = try #require(FileIdentity(path: path))
        #expect(recompressed != sealed)
        #expect(try count() == shard.rowCount)
        #expect(SeekableZstdVFS.frameCache.loads(of: recompressed).frames > 0, "the recompressed file's frames are its own")
    }
}

/// Found by `TARGET=sealed scripts/fuzz`: a damaged seek table must not make the reader
/// allocate what it claims.
@Suite struct SeekTableValidationTests {
    @Test func aSeekTableClaimingHugeFramesIsRejectedBeforeAllocating() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch(generatedLines(500)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let shard = try #require(try store.shards().first { $0.state == .sealed })
        let path = dir.path + "/" + shard.path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // The footer is 9 bytes; the last entry's decompressed size sits just before it.
        let sizeField = bytes.count - 9 - 4
        for i in 0..<4 { bytes[sizeField + i] = 0x7F }  // about 2 GiB
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: (any Error).self) { _ = try ShardReader(path: path) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("seek table entry"))
    }
}

/// Frames begin where the sealer asks (each granule, the schema and dictionary apart
/// from the rows), and none is longer than the frame size.
@Suite struct FrameLayoutTests {
    @Test func framesBeginAtTheBoundariesAndStayWithinTheFrameSize() throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/plain"
        let bytes = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        let boundaries: [Int64] = [700_000, 10, 123_457, 250_000]
        let frames = try SeekableZstd.compress(source: source, destination: dir.path + "/out.zst", level: 3, frameSize: 200_000,
                                               boundaries: boundaries)
        let starts = Set(frames.map(\.decompressedOffset))
        #expect(boundaries.allSatisfy { starts.contains($0) }, "\(frames.map(\.decompressedOffset))")
        #expect(frames.allSatisfy { $0.decompressedSize <= 200_000 })
        #expect(frames.reduce(0) { $0 + $1.decompressedSize } == bytes.count)
        try SeekableZstd.decompress(source: dir.path + "/out.zst", destination: dir.path + "/back")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/back")) == Data(bytes))
    }

    /// A sealed shard's granules each begin a frame: reading one granule's rows
    /// decompresses that granule's frames, the head (schema, dictionary) and the tail
    /// (the skip index), nothing else.
    @Test func aSealedShardsGranulesBeginFrames() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0))
        try store.append(batch(generatedLines(60_000, rate: 50)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let shard = try #require(try store.shards().filter { $0.state == .sealed }.max { $0.rowCount < $1.rowCount })
        let copy = dir.path + "/copy.sqlite.zst"
        try FileManager.default.copyItem(atPath: dir.path + "/" + shard.path, toPath: copy)
        let reader = try ShardReader(path: copy)
        let granules = try #require(try reader.granules())
        #expect(granules.count >= 3)
        let file = try #require(FileIdentity(path: copy))
        let before = SeekableZstdVFS.frameCache.loads(of: file).bytes
        let middle = granules[granules.count / 2]
        var rows: Int64 = 0
        try reader.query("SELECT count(*), sum(Bytes) FROM flow_rows WHERE rowid BETWEEN \(middle.firstRowID) AND \(middle.lastRowID)") { rows = $0.integer(0) }
        #expect(rows == middle.rowCount)
        let loaded = SeekableZstdVFS.frameCache.loads(of: file).bytes - before
        // A frame of four granules of 2,048 rows of ~175 bytes is about 1.4 MB, and the schema and dictionary a few
        // hundred KB: 1 MiB frames cut anywhere would decompress 3 MiB or more.
        #expect(loaded < 2 << 20, "one granule decompressed \(loaded) bytes")
    }
}
