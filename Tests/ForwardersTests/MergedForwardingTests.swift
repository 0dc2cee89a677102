import FlowrecTestTraits
import FlowModel
import FlowrecTesting
@testable import Forwarders
import Foundation
import ShardStore
import Testing

/// Forwarding across merges sends every flow exactly once: a target that had every
/// source gets nothing again from the merged shard, a target that had none gets the
/// merged shard, and ClickHouse ends with the store's totals.
@Suite(.serialized, .ownThread) struct MergedForwardingTests {
    static func policy() -> MergePolicy {
        var policy = MergePolicy(windowMs: 6 * 3_600_000, maxRows: 10_000_000, level: 3)
        policy.sourceGraceMs = 0
        return policy
    }

    /// Flows and bytes of the sealed shards, as the forwarders see them.
    static func sealedTotals(_ store: ShardStore) throws -> (rows: Int64, bytes: Int64) {
        var rows: Int64 = 0, bytes: Int64 = 0
        for shard in try store.shards() where shard.state == .sealed {
            try store.forEachFlow(in: shard.id) { flow in
                rows += 1
                bytes &+= flow.integer(FlowSchema.id(of: "Bytes")) ?? 0
            }
        }
        return (rows, bytes)
    }

    @Test func directoryAndCommandTargetsGetEachFlowOnceAcrossAMerge() async throws {
        let dir = TemporaryDirectory()
        let (store, _) = try mergeableStore(at: dir.path + "/store", hours: 8)
        let before = try Self.sealedTotals(store)
        let directory = DirectoryForwarder(options: DirectoryForwarderOptions(path: dir.path + "/archive"))
        let first = try await ShardReplicator(store: store, forwarder: directory).run()
        #expect(first.rowsDelivered == Int(before.rows))

        let merges = try store.mergeSealedShards(Self.policy())
        #expect(merges.count == 2)
        #expect(try Self.sealedTotals(store) == before, "the merge keeps every flow")
        let again = try await ShardReplicator(store: store, forwarder: directory).run()
        #expect(again.rowsDelivered == 0, "the directory had every source: the merged shards count as delivered")

        // A command target that delivered nothing before the merge gets the merged shards.
        let log = dir.path + "/runs.log"
        let exec = ExecForwarder(options: ExecForwarderOptions(command: #"echo "$FLOWREC_SHARD_ID $FLOWREC_ROWS" >> "\#(log)""#))
        let sent = try await ShardReplicator(store: store, forwarder: exec).run()
        let runs = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        let rows = runs.compactMap { $0.split(separator: " ").last.flatMap { Int64($0) } }.reduce(0, +)
        #expect(rows == before.rows && sent.rowsDelivered == Int(before.rows), "each flow once: \(runs)")
        #expect(runs.contains { $0.hasPrefix(merges[0].merged.description) })
    }

    @Test func clickHouseHoldsEveryFlowOnceWhenShardsMergeBetweenSyncs() async throws {
        guard let ch = ClickHouseTestServer.fromEnvironment() else {
            #expect(!TestEnvironment.requireServers, "FLOWREC_CLICKHOUSE_URL is not set")
            return
        }
        let dir = TemporaryDirectory()
        let (store, _) = try mergeableStore(at: dir.path, hours: 8, seed: 9)
        let database = ClickHouseTestServer.uniqueDatabase("merged")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        let forwarder = try ClickHouseForwarder(options: ch.forwarderOptions(database: database, format: .native, chunkRows: 5_000))
        // The first six hours are delivered, then everything merges, then a second sync.
        let start: Int64 = 1_767_225_600_000
        _ = try await ShardReplicator(store: store, forwarder: forwarder).run(fromMs: start, toMs: start + 6 * 3_600_000)
        let merges = try store.mergeSealedShards(Self.policy())
        #expect(merges.count == 2)
        _ = try await ShardReplicator(store: store, forwarder: forwarder).run()
        let expected = try Self.sealedTotals(store)
        let answer = try ch.query("SELECT count(), sum(Bytes) FROM \(database).flows").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(answer == "\(expected.rows)\t\(expected.bytes)", "ClickHouse holds each flow once")
    }
}
