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
        // 4000 flows at 20/s span 200 s of event time: four or five 1-minute windows, all
        // sealed while recording (the last by the wall clock, its events being in the
        // past). More would not fit the mock broker's partition.
        try broker.produceGeneratedFlows(4000, flowsPerSecond: 20)
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
        // seals, or nothing moves for two minutes: then the checks below say what is missing.
        var watch = ProgressWatch(stallSeconds: 120)
        var lastCheck = Date.distantPast
        try recorder.run(shouldStop: {
            guard Date().timeIntervalSince(lastCheck) > 0.5 else { return false }
            lastCheck = Date()
            let stored = recorder.counters.stored
            guard stored == 4000, let ledger = try? DeliveryLedger(directory: dir.path), let sealed = try? ledger.sealedShards() else {
                return watch.stalled(progress: stored)
            }
            let delivered = ["clickhouse", "directory"].map { name in
                let states = (try? ledger.deliveries(forwarder: name)) ?? [:]
                return sealed.count { states[$0.id]?.complete == true }
            }
            // Every window sealed too (the last by the wall clock, on an idle poll): a
            // seal still under way when the delivered ones caught up would end the run
            // with a shard no forwarder had a turn at.
            let anyActive = (try? ShardStore.openForReading(directory: dir.path).shards().contains { $0.state == .active }) ?? true
            let done = sealed.count >= 4 && !anyActive && delivered.allSatisfy { $0 == sealed.count }
            return done || watch.stalled(progress: stored + sealed.count + delivered.reduce(0, +))
        })

        let store = try ShardStore.openExisting(directory: dir.path)
        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(recorder.counters.stored == 4000, "every flow produced was stored")
        #expect(sealed.count >= 4)
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
