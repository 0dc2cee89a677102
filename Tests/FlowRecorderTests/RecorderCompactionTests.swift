import FlowrecTestTraits
import StorageKit
import FlowGenerator
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Testing

/// Deep compaction inside `record`: once the topic goes quiet, sealed shards are
/// recompressed at the configured level, and every flow stays readable.
@Suite(.serialized, .ownThread) struct RecorderCompactionTests {
    @Test func quietTopicsLetSealedShardsBeRecompressed() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 2])
        defer { broker.stop() }
        // 3000 flows at 20/s span 150 s of event time: three 1-minute windows.
        try broker.produceGeneratedFlows(3000, flowsPerSecond: 20, partitions: 2)

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.store = ShardStore.Options(windowMs: 60_000, graceMs: 0, sealInBackground: true)
        config.exitWhenIdleSeconds = 8
        config.deepCompaction = .init(level: 9, idleSeconds: 1)
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        try Recorder(configuration: config).run(shouldStop: { false })

        let catalog = try SQLiteDatabase(path: dir.path + "/catalog.sqlite", mode: .readOnly)
        let sealed = try catalog.scalarInteger("SELECT count(*) FROM shards WHERE state = 'sealed'") ?? 0
        let compacted = try catalog.scalarInteger("SELECT count(*) FROM shards WHERE state = 'sealed' AND zstd_level = 9") ?? 0
        #expect(sealed >= 2, "the first two windows closed and were sealed")
        #expect(compacted == sealed, "every sealed shard was recompressed while the topic was quiet")
        let store = try ShardStore.openExisting(directory: dir.path)
        #expect(try store.shards().reduce(0) { $0 + $1.rowCount } == 3000)
        var read = 0
        for shard in try store.shards() { try store.forEachFlow(in: shard.id) { _ in read += 1 } }
        #expect(read == 3000, "recompressed shards read back whole")
    }
}
