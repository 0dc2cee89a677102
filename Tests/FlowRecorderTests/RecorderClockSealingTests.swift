import FlowrecTestTraits
import FlowGenerator
import FlowrecConfig
import FlowRecorder
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Testing

/// A quiet topic still gets its windows sealed: once the recorder has read everything,
/// a window whose end plus grace is in the past on the wall clock is sealed without
/// waiting for newer flows (which used to be the only thing that closed it).
@Suite(.serialized, .ownThread) struct RecorderClockSealingTests {
    @Test func windowsThatEndedAreSealedWhileTheTopicIsQuiet() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 2])
        defer { broker.stop() }
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers]))
        var options = GeneratorOptions()
        options.flowsPerSecond = 20
        // Three minutes of flows that ended ten minutes ago.
        options.startMs = (Int64(Date().timeIntervalSince1970 * 1000) - 13 * 60_000) / 60_000 * 60_000
        var generator = FlowGenerator(options: options)
        for i in 0..<3600 {
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            try producer.send(line, partition: Int32(i % 2))
        }
        try producer.flush()

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.store = ShardStore.Options(windowMs: 60_000, graceMs: 5_000, sealInBackground: true)
        config.exitWhenIdleSeconds = 15
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        config.deepCompaction = nil
        try Recorder(configuration: config).run(shouldStop: { false })

        let shards = try ShardStore.openForReading(directory: dir.path).shards()
        #expect(shards.reduce(0) { $0 + $1.rowCount } == 3600)
        #expect(shards.count >= 3)
        #expect(shards.allSatisfy { $0.state == .sealed }, "every window is sealed: \(shards.map { "\($0.id) \($0.state)" })")
    }
}
