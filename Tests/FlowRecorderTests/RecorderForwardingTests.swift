import FlowrecTestTraits
import FlowModel
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Forwarders
import Foundation
import ShardStore
import Testing

/// `record --forward`: each shard sealed while recording reaches ClickHouse and a
/// directory without a separate sync, and the metrics say so.
@Suite(.serialized, .ownThread) struct RecorderForwardingTests {
    @Test func sealedShardsAreForwardedWhileRecording() throws {
        guard let ch = ClickHouseTestServer.fromEnvironment() else {
            #expect(!TestEnvironment.requireServers, "FLOWREC_CLICKHOUSE_URL is not set")
            return
        }
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 1])
        defer { broker.stop() }
        // 6000 flows at 20/s: five 1-minute windows, four of which close while recording.
        try broker.produceGeneratedFlows(6000, flowsPerSecond: 20)
        let database = "forwarding_\(UInt32.random(in: 0...UInt32.max))"
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }

        let dir = TemporaryDirectory()
        let archive = TemporaryDirectory()
        var clickhouse = ClickHouseForwarderOptions(endpoint: ClickHouseEndpoint(url: ch.endpoint, user: ch.user, password: ch.password))
        clickhouse.database = database
        clickhouse.createTable = true
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.store = ShardStore.Options(windowMs: 60_000, graceMs: 0, sealInBackground: true)
        config.deepCompaction = nil
        config.merge = nil  // one delivery per sealed window is what this test checks; merges have their own
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        config.forwarders = [try ClickHouseForwarder(options: clickhouse), DirectoryForwarder(options: .init(path: archive.path))]
        config.forwardIntervalSeconds = 1
        let recorder = Recorder(configuration: config)
        // Run until every flow is stored and the forwarders have caught up with the
        // seals (or a deadline passes: then the checks below say what is missing).
        let deadline = Date().addingTimeInterval(120)
        var lastCheck = Date.distantPast
        try recorder.run(shouldStop: {
            guard Date() < deadline else { return true }
            guard recorder.counters.stored == 6000, Date().timeIntervalSince(lastCheck) > 0.5 else { return false }
            lastCheck = Date()
            guard let ledger = try? DeliveryLedger(directory: dir.path), let sealed = try? ledger.sealedShards(), sealed.count >= 4 else { return false }
            return ["clickhouse", "directory"].allSatisfy { name in
                let states = (try? ledger.deliveries(forwarder: name)) ?? [:]
                return sealed.allSatisfy { states[$0.id]?.complete == true }
            }
        })

        let store = try ShardStore.openExisting(directory: dir.path)
        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(sealed.count >= 3)
        for name in ["clickhouse", "directory"] {
            let delivered = try store.deliveries(forwarder: name).filter(\.value.complete)
            #expect(Set(delivered.keys) == Set(sealed.map(\.id)), "\(name) received every sealed shard")
        }
        let rows = sealed.reduce(Int64(0)) { $0 + $1.rowCount }
        #expect(try ch.query("SELECT count() FROM \(database).flows").trimmingCharacters(in: .whitespacesAndNewlines) == String(rows))
        let metrics = recorder.metrics.registry.emitToString()
        #expect(metrics.contains(#"flowrec_forwarded_rows_total{forwarder="clickhouse"} \#(rows)"#), "\(metrics)")
        #expect(metrics.contains(#"flowrec_forwarder_pending_shards{forwarder="directory"} 0"#))
    }
}
