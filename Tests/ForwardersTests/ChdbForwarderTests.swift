import FlowrecTestTraits
import FlowrecTesting
@testable import Forwarders
import Foundation
import ShardStore
import Testing

/// The forwarder end to end against a modern engine: chdb behind
/// `scripts/chdb-http-server`, over HTTP as to a current clickhouse-server. Debian's 18.16
/// cannot show this path: the modern DDL it creates and checks (LowCardinality columns),
/// the settings it sends, and the deduplication tokens that make a re-sent chunk a no-op.
@Suite(.serialized, .ownThread) struct ChdbForwarderTests {
    /// A front of its own (on a port the kernel picks), or nil when chdb is missing
    /// outside CI.
    func server() throws -> ChdbHTTPServer? {
        guard Chdb.isInstalled else {
            #expect(!TestEnvironment.requireServers, "chdb is not installed: run scripts/setup-deps")
            return nil
        }
        return try ChdbHTTPServer()
    }

    /// Every row arrives once with equal totals; then a second forwarder with delivery
    /// state of its own (as after a crash that lost the catalog's progress) sends every
    /// chunk again, and the tokens keep the table as it was.
    @Test(arguments: ClickHouseBlockEncoder.Format.allCases)
    func everyRowIsStoredOnceEvenWhenEveryChunkIsSentTwice(format: ClickHouseBlockEncoder.Format) async throws {
        guard let front = try server() else { return }
        defer { front.stop() }
        let ch = front.testServer
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 48_000)
        let expected = try ReplicationTotals(sealedShardsOf: store)
        #expect(expected.rowsByShard.count >= 3)
        let database = ClickHouseTestServer.uniqueDatabase("modern")

        var options = ch.forwarderOptions(database: database, format: format, chunkRows: 5_000)
        let forwarder = try ClickHouseForwarder(options: options)
        let summary = try await ShardReplicator(store: store, forwarder: forwarder).run()
        #expect(forwarder.serverFacts?.dialect == .modern, "chdb reports a current version: the modern table")
        #expect(forwarder.serverFacts?.deduplicationTokens == true)
        #expect(summary.rowsDelivered == expected.rows)
        #expect(try ReplicationTotals(table: "\(database).flows", on: ch) == expected)
        let namespaceType = try ch.query("SELECT type FROM system.columns WHERE database = '\(database)' AND table = 'flows' AND name = 'SrcK8S_Namespace'")
        #expect(namespaceType.hasPrefix("LowCardinality("), "the modern DDL was created: \(namespaceType)")

        options.name = "clickhouse-again"
        let again = try ClickHouseForwarder(options: options)
        let resent = try await ShardReplicator(store: store, forwarder: again).run()
        #expect(resent.rowsDelivered == expected.rows, "the second forwarder sent every chunk again")
        #expect(try ReplicationTotals(table: "\(database).flows", on: ch) == expected, "and the table holds each row once")
    }

    /// What the front answers for a body it cannot take reaches the forwarder as the
    /// server's own refusal, not as a success: a damaged framed body is not inserted.
    @Test func aDamagedBodyIsRefusedAndNothingIsInserted() throws {
        guard let front = try server() else { return }
        defer { front.stop() }
        let ch = front.testServer
        let database = ClickHouseTestServer.uniqueDatabase("damaged")
        _ = try ch.query("CREATE DATABASE \(database)")
        _ = try ch.query(ClickHouseSchema.createTable(database: database, table: "flows", dialect: .modern))
        let statement = "INSERT INTO \(database).flows (\(ClickHouseBlockEncoder.columnList(dialect: .modern))) FORMAT Native"
        #expect(throws: ClickHouseTestServer.QueryFailed.self) {
            try ch.request(statement, parameters: ["decompress": "1"], body: Data([1, 2, 3, 4]))
        }
        #expect(try ch.query("SELECT count() FROM \(database).flows").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}
