import FlowrecTestTraits
import FlowModel
import FlowrecTesting
@testable import Forwarders
import Foundation
import ShardStore
import Testing

/// The exact bytes the forwarder sends, loaded by a modern ClickHouse (chdb) into the
/// modern table: same totals as the shards, in both formats.
@Suite(.ownThread) struct ChdbPayloadTests {
    /// One shard encoded as the forwarder sends it (read in place, in the table's key
    /// order), written to `path`.
    func writePayload(of shard: ShardRecord, in store: ShardStore, with encoder: ClickHouseBlockEncoder,
                      to path: String) throws {
        let reader = try store.reader(for: shard.id)
        let rows = try #require(try reader.rowIDRange())
        let key = ClickHouseSchema.sortKey.compactMap { FlowSchema.id(named: $0) }
        try encoder.append(rowsOf: reader, rowIDs: rows, orderedBy: key, shard: Array(shard.id.description.utf8))
        try Data(try encoder.finish()).write(to: URL(fileURLWithPath: path))
    }

    @Test(arguments: ClickHouseBlockEncoder.Format.allCases)
    func modernServerLoadsThePayloadWithEqualTotals(format: ClickHouseBlockEncoder.Format) throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 30_000)
        let expected = try ReplicationTotals(sealedShardsOf: store)
        let encoder = try ClickHouseBlockEncoder(format: format, dialect: .modern)
        var files: [String] = []
        for shard in try store.shards() where shard.state == .sealed {
            // As the forwarder reads it: in place, sorted by the table's key.
            let path = dir.path + "/\(shard.id).\(format.rawValue)"
            try writePayload(of: shard, in: store, with: encoder, to: path)
            files.append(path)
        }
        let ddl = ClickHouseSchema.createTable(database: "d", table: "flows", dialect: .modern, ttlDays: 3650)
        let script = """
            import sys, json, chdb.session as cs
            args = json.loads(sys.stdin.read())
            s = cs.Session()
            s.query("CREATE DATABASE d")
            s.query(args["ddl"])
            for f in args["files"]:
                s.query("INSERT INTO d.flows (\(encoder.columnList)) FROM INFILE '" + f + "' SETTINGS low_cardinality_allow_in_native_format = 0 FORMAT \(format.rawValue)")
            print(s.query("SELECT count(), sum(Bytes), sum(Packets), uniqExact(_shard) FROM d.flows", "TSV"), end="")
            """
        let input = try JSONSerialization.data(withJSONObject: ["ddl": ddl, "files": files])
        let result = try Chdb.run(script, input: input)
        if result.isMissing {
            #expect(!TestEnvironment.requireServers, "chdb is not installed: run scripts/setup-deps")
            return
        }
        #expect(result.status == 0, "chdb refused the payload: \(result.errors.suffix(800))")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines)
                == "\(expected.rows)\t\(expected.bytes)\t\(expected.packets)\t\(expected.rowsByShard.count)")
    }

    /// On a modern server, a chunk sent twice with the forwarder's deduplication token
    /// is stored once (the modern table sets non_replicated_deduplication_window).
    @Test func aRetriedChunkIsStoredOnceOnAModernServer() throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 15_000)
        let shard = try #require(try store.shards().first { $0.state == .sealed })
        let encoder = try ClickHouseBlockEncoder(format: .native, dialect: .modern)
        let path = dir.path + "/chunk.native"
        try writePayload(of: shard, in: store, with: encoder, to: path)
        let tokens = [0, 0, 1].map { ClickHouseForwarder.deduplicationToken(shard: shard.id, chunkRows: 100_000, chunk: $0) }
        let script = """
            import sys, json, chdb.session as cs
            args = json.loads(sys.stdin.read())
            s = cs.Session()
            s.query("CREATE DATABASE d")
            s.query(args["ddl"])
            for token in args["tokens"]:
                s.query("INSERT INTO d.flows (\(encoder.columnList)) FROM INFILE '" + args["file"] + "' SETTINGS low_cardinality_allow_in_native_format = 0, insert_deduplication_token = '" + token + "' FORMAT Native")
                print(str(s.query("SELECT count() FROM d.flows", "TSV")).strip())
            """
        let ddl = ClickHouseSchema.createTable(database: "d", table: "flows", dialect: .modern)
        let input = try JSONSerialization.data(withJSONObject: ["ddl": ddl, "file": path, "tokens": tokens])
        let result = try Chdb.run(script, input: input)
        if result.isMissing {
            #expect(!TestEnvironment.requireServers, "chdb is not installed: run scripts/setup-deps")
            return
        }
        #expect(result.status == 0, "\(result.errors.suffix(600))")
        let n = shard.rowCount
        #expect(result.output.split(separator: "\n").map(String.init) == ["\(n)", "\(n)", "\(2 * n)"],
                "same token: stored once; the next chunk's token: stored")
    }
}
