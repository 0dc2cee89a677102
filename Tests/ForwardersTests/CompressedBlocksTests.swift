import FlowrecTestTraits
import FlowModel
import FlowrecTesting
@testable import Forwarders
import Foundation
import Testing

/// ClickHouse's compressed framing (`decompress=1`): the blocks hold the body, checked
/// by the system's `zstd`, and their CityHash128 v1.0.2 checksums are the ones the real
/// server computes and checks.
@Suite(.ownThread) struct CompressedBlocksTests {
    /// One block of a framed body, as the server reads it.
    struct Block {
        let checksum: (low: UInt64, high: UInt64)
        let method: UInt8
        /// The block from the method byte on: what the checksum covers.
        let checked: Data
        let plainBytes: Int
        var data: Data { checked.dropFirst(ClickHouseCompressedBlocks.headerBytes) }
    }

    /// The blocks of `body`; fails the test if they do not tile it exactly.
    static func blocks(of body: Data) throws -> [Block] {
        func u32(_ at: Int) -> Int { Int(body[at]) | Int(body[at + 1]) << 8 | Int(body[at + 2]) << 16 | Int(body[at + 3]) << 24 }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(body[at + $1]) << (8 * $1) } }
        var blocks: [Block] = []
        var at = body.startIndex
        while at < body.endIndex {
            try #require(body.endIndex - at >= 25, "a block shorter than its header at byte \(at)")
            let compressed = u32(at + 17)
            try #require(compressed >= 9 && at + 16 + compressed <= body.endIndex, "block size \(compressed) at byte \(at) runs past the body")
            blocks.append(Block(checksum: (u64(at), u64(at + 8)), method: body[at + 16],
                                checked: body[(at + 16)..<(at + 16 + compressed)], plainBytes: u32(at + 21)))
            at += 16 + compressed
        }
        return blocks
    }

    static func cityHash(_ data: Data) -> (low: UInt64, high: UInt64) {
        Data(data).withUnsafeBytes { CityHash102.hash128($0) }
    }

    /// A Native and a RowBinary body over 1 MiB, framed from the encoder's buffers: each
    /// block's sizes and checksum are right, and `zstd -d` of its frames gives back the
    /// plain body. Two chunks in a row, as the forwarder reuses its encoder.
    @Test(arguments: ClickHouseBlockEncoder.Format.allCases)
    func framedBodyHoldsThePlainOne(format: ClickHouseBlockEncoder.Format) throws {
        let dir = TemporaryDirectory()
        let chunks = try ForwarderUnitTests.plainAndCompressedChunks(format: format, compression: .zstd, flows: 4_000, firstChunk: 3_000)
        for (body, framed) in chunks {
            let compressed = Data(framed)
            #expect(compressed.count * 3 < body.count, "\(compressed.count) bytes framed from \(body.count)")
            let blocks = try Self.blocks(of: compressed)
            #expect(blocks.count == (body.count + ClickHouseCompressedBlocks.blockBytes - 1) / ClickHouseCompressedBlocks.blockBytes)
            #expect(blocks.dropLast().allSatisfy { $0.plainBytes == ClickHouseCompressedBlocks.blockBytes })
            #expect(blocks.reduce(0) { $0 + $1.plainBytes } == body.count)
            for block in blocks {
                #expect(block.method == ClickHouseCompressedBlocks.methodZstd)
                #expect(Self.cityHash(block.checked) == block.checksum)
            }
            // zstd decompresses concatenated frames as one stream.
            let path = dir.path + "/body.zst"
            try blocks.reduce(Data()) { $0 + $1.data }.write(to: URL(fileURLWithPath: path))
            #expect(try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/zstd"), ["-qdf", path]) == 0)
            #expect(try Array(Data(contentsOf: URL(fileURLWithPath: dir.path + "/body"))) == body)
        }
        #expect(try ClickHouseCompressedBlocks.compress([]).isEmpty, "an empty body has no block")
    }

    func server() -> ClickHouseTestServer? {
        let server = ClickHouseTestServer.fromEnvironment()
        if server == nil { #expect(!TestEnvironment.requireServers, "FLOWREC_CLICKHOUSE_URL is not set") }
        return server
    }

    /// The server writes the same framing into its MergeTree column files (`*.bin`, LZ4
    /// blocks): our CityHash128 of each block equals the checksum the server wrote, for
    /// blocks from 11 bytes to several KB (every branch of the hash: under 16 bytes,
    /// under 128, and 128 and more with every class of tail). Debian's 18.16 answers
    /// `compress=1` queries with an empty body, so its parts are the reference here.
    @Test func cityHashEqualsTheServersChecksums() throws {
        guard let ch = server() else { return }
        let database = ClickHouseTestServer.uniqueDatabase("cityhash")
        _ = try ch.query("CREATE DATABASE \(database)")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        _ = try ch.query("CREATE TABLE \(database).t (a UInt8, x UInt64) ENGINE = MergeTree ORDER BY tuple()")
        // Parts stay as inserted, so every block length below is on disk when read.
        _ = try ch.query("SYSTEM STOP MERGES \(database).t")
        // One part per INSERT. Hashes are close to incompressible, so `x`'s block grows
        // about 8 bytes a row; `a`'s stays tiny.
        for rows in Array(1...90) + [200, 1_000, 30_000] {
            _ = try ch.query("INSERT INTO \(database).t SELECT number % 3, cityHash64(number) FROM system.numbers LIMIT \(rows)")
        }
        let parts = try ch.query("SELECT path FROM system.parts WHERE database = '\(database)' AND table = 't' AND active")
            .split(separator: "\n").map(String.init)
        #expect(parts.count == 93)
        var lengths = Set<Int>()
        for part in parts {
            for column in ["a", "x"] {
                let file = try #require(FileManager.default.contents(atPath: part + "\(column).bin"), "\(part)\(column).bin")
                for block in try Self.blocks(of: file) {
                    lengths.insert(block.checked.count)
                    #expect(Self.cityHash(block.checked) == block.checksum, "a \(block.checked.count)-byte block in \(part)\(column).bin")
                }
            }
        }
        #expect(lengths.contains { $0 < 16 } && lengths.contains { (16..<128).contains($0) })
        #expect(Set(lengths.filter { $0 >= 144 }.map { ($0 - 16) % 128 / 32 }).count == 4, "tails of every length class past 128 bytes")
    }

    /// An INSERT in compressed blocks is stored; the same body with one checksum bit
    /// flipped is refused and stores nothing (so the server does check ours).
    @Test func theServerStoresFramedBodiesAndRefusesABadChecksum() throws {
        guard let ch = server() else { return }
        let database = ClickHouseTestServer.uniqueDatabase("framing")
        _ = try ch.query("CREATE DATABASE \(database)")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        _ = try ch.query("CREATE TABLE \(database).t (x UInt64, s String) ENGINE = Memory")
        var plain: [UInt8] = []
        for x in UInt64(0)..<200_000 {
            withUnsafeBytes(of: x.littleEndian) { plain += $0 }
            let text = Array("row \(x % 977)".utf8)
            plain.append(UInt8(text.count))
            plain += text
        }
        let body = try ClickHouseCompressedBlocks.compress(plain)
        #expect(try Self.blocks(of: Data(body)).count == 4, "3.4 MB in 1 MiB blocks")
        let insert = "INSERT INTO \(database).t FORMAT RowBinary"
        _ = try ch.request(insert, parameters: ["decompress": "1"], body: Data(body))
        #expect(try ch.query("SELECT count(), sum(x) FROM \(database).t") == "200000\t19999900000\n")

        var damaged = body
        damaged[3] ^= 0x10
        #expect(throws: ClickHouseTestServer.QueryFailed.self) {
            try ch.request(insert, parameters: ["decompress": "1"], body: Data(damaged))
        }
        #expect(try ch.query("SELECT count() FROM \(database).t") == "200000\n")
    }
}
