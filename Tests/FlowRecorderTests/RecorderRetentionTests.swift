import FlowrecTestTraits
import FlowGenerator
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Testing

/// Retention inside `record`: shards older than the age limit are deleted as the
/// recorder runs, and their flows are not consumed again after a restart.
@Suite(.serialized, .ownThread) struct RecorderRetentionTests {
    @Test func recordPrunesShardsPastTheAgeLimit() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 1])
        defer { broker.stop() }
        // 3000 flows: three 1-minute windows of early 2026, long past a 1-day limit.
        try broker.produceGeneratedFlows(3000, flowsPerSecond: 20)

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.store = ShardStore.Options(windowMs: 60_000, graceMs: 0, sealInBackground: true)
        config.exitWhenIdleSeconds = 5
        config.deepCompaction = nil
        config.retention = RetentionPolicy(maxAgeMs: 86_400_000)
        config.retentionIntervalSeconds = 1
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        let recorder = Recorder(configuration: config)
        try recorder.run(shouldStop: { false })

        let store = try ShardStore.openExisting(directory: dir.path)
        #expect(recorder.counters.shardsPruned >= 2, "the sealed windows were pruned while recording")
        #expect(try store.shards().allSatisfy { $0.state == .active })
        // A second run over the same topic stores nothing again.
        let again = Recorder(configuration: config)
        try again.run(shouldStop: { false })
        #expect(again.counters.stored == 0)
    }

    /// Garbage on the topic, with a size limit set: `record` keeps the dead letters
    /// within their share of the limit, and counts what it deleted.
    @Test func recordKeepsDeadLettersWithinTheirShare() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 1])
        defer { broker.stop() }
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties(["bootstrap.servers": broker.bootstrapServers]))
        let filler = String(repeating: "x", count: 1_000)
        for i in 0..<3_000 { try producer.send(Array("not a flow \(i) \(filler)".utf8), partition: 0) }
        try producer.flush()

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.exitWhenIdleSeconds = 5
        config.deepCompaction = nil
        config.retention = RetentionPolicy(maxTotalBytes: 16 << 20)  // dead letters may take 1.6 MiB
        config.retentionIntervalSeconds = 1
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        let recorder = Recorder(configuration: config)
        try recorder.run(shouldStop: { false })

        #expect(recorder.counters.deadLetters == 3_000, "every message was kept as a dead letter first")
        let metrics = recorder.metrics.registry.emitToString()
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("flowrec_dead_letters_deleted_total{reason=\"share\"}") }
        let deleted = line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        let store = try ShardStore.openExisting(directory: dir.path)
        let kept = try store.deadLetterCount()
        #expect(deleted > 0 && Int64(deleted) == 3_000 - kept, "counted: \(line ?? "no metric"), \(kept) kept")
        #expect(try store.deadLetterBytes() <= (16 << 20) / 10)
    }
}
