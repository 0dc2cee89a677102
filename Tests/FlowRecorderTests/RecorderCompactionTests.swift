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
        config.deepCompaction = .init(level: 9, idleSeconds: 1)
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        // The compactor runs at idle priority, so on a busy machine (CI runs many suites
        // at once) it may wait long for a core: the run ends when every sealed shard is
        // recompressed, and gives up only after a minute and a half without progress.
        var watch = ProgressWatch(stallSeconds: 90)
        var lastLook = Date.distantPast
        let recorder = Recorder(configuration: config)
        try recorder.run(shouldStop: {
            // Asked between batches: look at the catalog at most twice a second.
            guard Date().timeIntervalSince(lastLook) >= 0.5 else { return false }
            lastLook = Date()
            let stored = recorder.counters.stored
            // Done once every flow is stored (so the topic has been quiet for the
            // compactor) and every sealed shard is at the deep level.
            guard let (sealed, compacted) = try? Self.counts(dir.path) else { return watch.stalled(progress: stored) }
            let done = stored == 3000 && sealed >= 2 && compacted == sealed
            return done || watch.stalled(progress: stored + sealed + compacted)
        })

        let (sealed, compacted) = try Self.counts(dir.path)
        #expect(sealed >= 2, "the first two windows closed and were sealed")
        #expect(compacted == sealed, "every sealed shard was recompressed while the topic was quiet")
        let store = try ShardStore.openExisting(directory: dir.path)
        #expect(try store.shards().reduce(0) { $0 + $1.rowCount } == 3000)
        var read = 0
        for shard in try store.shards() { try store.forEachFlow(in: shard.id) { _ in read += 1 } }
        #expect(read == 3000, "recompressed shards read back whole")
    }

    /// Sealed shards, and those of them at the deep level, from the catalog.
    private static func counts(_ directory: String) throws -> (sealed: Int, compacted: Int) {
        let catalog = try SQLiteDatabase(path: directory + "/catalog.sqlite", mode: .readOnly)
        let sealed = try catalog.scalarInteger("SELECT count(*) FROM shards WHERE state = 'sealed'") ?? 0
        let compacted = try catalog.scalarInteger("SELECT count(*) FROM shards WHERE state = 'sealed' AND zstd_level = 9") ?? 0
        return (Int(sealed), Int(compacted))
    }
}
