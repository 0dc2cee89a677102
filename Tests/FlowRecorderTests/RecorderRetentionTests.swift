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
}
