import FlowrecTestTraits
import FlowGenerator
import FlowModel
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import KafkaSource
import Query
import ShardStore
import Testing

@Suite(.serialized, .ownThread) struct RecorderDeadLetterTests {
    @Test func badMessagesBecomeDeadLettersAndGoodOnesAroundThemAreStored() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 1])
        defer { broker.stop() }
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "message.max.bytes": "20000000", "compression.codec": "zstd"]))
        let good = generatedLines(300)
        let bad: [(payload: [UInt8], reason: String)] = [
            (Array("{not json".utf8), "invalid JSON"),
            (Array(good[0].prefix(good[0].count / 2)), "invalid JSON"),                    // truncated record
            ([UInt8](repeating: UInt8(ascii: "a"), count: 10 << 20), "exceeds"),          // 10 MB
            (Array(#"{"SrcK8S_Name":""#.utf8) + [0xC3, 0x28] + Array(#"","TimeFlowEndMs":1}"#.utf8), "UTF-8"),
        ]
        var order: [[UInt8]] = []
        for (i, line) in good.enumerated() {
            order.append(line)
            if i % 75 == 10 { order.append(bad[i / 75].payload) }
        }
        for message in order { try producer.send(message, partition: 0) }
        try producer.flush()
        #expect(producer.delivered == order.count)

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.exitWhenIdleSeconds = 3
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        try Recorder(configuration: config).run(shouldStop: { false })

        let store = try ShardStore.openExisting(directory: dir.path)
        #expect(try storedCount(store) == good.count, "every good flow is stored")
        var reasons: [String] = []
        var sizes: [Int] = []
        try store.forEachDeadLetter { _, _, _, reason, payload in
            reasons.append(reason)
            sizes.append(payload.count)
        }
        #expect(reasons.count == bad.count, "every bad message is a dead letter")
        for (expected, reason) in zip(bad.map(\.reason), reasons) {
            #expect(reason.contains(expected), "\(reason) should mention \(expected)")
        }
        #expect(sizes.max() ?? 0 <= 1 << 20, "an oversized payload is kept up to the limit, not whole")
    }

    /// A poison end time (Int64.max trapped in window routing on every start, year 9999
    /// made the store unopenable, year 0 broke every `sql`, 2099 split a window into one
    /// part per batch) is a dead letter; the recorder keeps running and restarts.
    @Test func poisonEndTimesAreDeadLetteredAndTheRecorderRestarts() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 1])
        defer { broker.stop() }
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers]))
        let good = generatedLines(400)
        let poison = ["9223372036854775807", "253402300799999", "1000000000000000", "-62167219200000", "4070908800000"]
            .map { Array(#"{"Bytes":1,"SrcK8S_Namespace":"poison","TimeFlowEndMs":\#($0)}"#.utf8) }
        for (i, line) in good.enumerated() {
            try producer.send(line, partition: 0)
            if i % 80 == 5 { try producer.send(poison[i / 80], partition: 0) }
        }
        try producer.flush()

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.exitWhenIdleSeconds = 3
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        config.store = ShardStore.Options(windowMs: 60_000, graceMs: 0, sealInBackground: true)
        // The generator's flows are from 2026-01-01: accept them, refuse the far future.
        config.eventTimes = EventTime.Plausibility(maxAgeMs: 5 * 365 * 86_400_000, maxAheadMs: 3_600_000)
        try Recorder(configuration: config).run(shouldStop: { false })
        // A second start over the same store and topic: nothing traps, nothing is added.
        try Recorder(configuration: config).run(shouldStop: { false })

        let store = try ShardStore.openExisting(directory: dir.path)
        #expect(try storedCount(store) == good.count)
        var reasons: [String] = []
        try store.forEachDeadLetter { _, _, _, reason, _ in reasons.append(reason) }
        #expect(reasons.count == poison.count, "\(reasons)")
        #expect(reasons.allSatisfy { $0.contains("TimeFlowEndMs") && $0.contains("outside the accepted range") }, "\(reasons)")
        #expect(try store.shards().allSatisfy { $0.id.part == 0 }, "no window was split into parts by a far-future flow")
        var total: Int64 = 0
        try SQLQuery(store: store).run("SELECT count(*) FROM flows", columns: { _ in }) { row in
            if case .integer(let n) = row[0] { total = n }
            return true
        }
        #expect(total == Int64(good.count), "a query over every shard answers")
    }

    private func storedCount(_ store: ShardStore) throws -> Int {
        try store.shards().reduce(0) { $0 + Int($1.rowCount) }
    }

    private func generatedLines(_ n: Int) -> [[UInt8]] {
        var generator = FlowGenerator(options: GeneratorOptions())
        return (0..<n).map { _ in
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            return line
        }
    }
}

/// Offsets the broker deleted before the recorder read them (its retention outran a
/// stopped recorder) cannot be stored, nor kept as dead letters: the recorder says so
/// in a warning and counts them in `flowrec_offsets_skipped_total`, and stores the rest.
@Suite(.serialized, .ownThread) struct SkippedOffsetTests {
    @Test func offsetsTheBrokerNoLongerHasAreCountedAndLogged() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 1])
        defer { broker.stop() }
        let producer = try broker.messageByMessageProducer()
        let lines = generatedLines(9_000, seed: 4)
        for line in lines.prefix(1000) { try producer.send(line, partition: 0) }
        try producer.flush()
        let dir = TemporaryDirectory()
        let config = broker.drainingRecorder(into: dir)
        try Recorder(configuration: config).run(shouldStop: { false })
        #expect(try storedFlows(ShardStore.openExisting(directory: dir.path)).count == 1000)

        // While the recorder is stopped, the partition outgrows what the broker keeps
        // (librdkafka's mock cluster keeps about 5 MiB per partition): its oldest
        // messages, the next ones the recorder would read among them, are dropped.
        for line in lines.dropFirst(1000) { try producer.send(line, partition: 0) }
        try producer.flush()
        let recorder = Recorder(configuration: config)
        try recorder.run(shouldStop: { false })
        let metrics = recorder.metrics.registry.emitToString()
        let skipped = metrics.split(separator: "\n").first { $0.hasPrefix("flowrec_offsets_skipped_total{") }
            .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        let stored = try storedFlows(ShardStore.openExisting(directory: dir.path)).count
        #expect(skipped > 0, "the broker dropped the oldest offsets: \(metrics.split(separator: "\n").filter { $0.contains("skipped") })")
        #expect(stored + skipped == lines.count, "every offset is stored or counted as skipped: \(stored) + \(skipped)")
    }
}

/// A store that holds nothing of a partition starts it wherever the consumer starts (the
/// group's committed offset, else the broker's oldest): the recorder names that offset
/// once per partition, so a new store whose topic's retention had already deleted the
/// start is told apart from one that lost its first flows.
@Suite(.serialized, .ownThread) struct FirstOffsetTests {
    @Test func aPartitionNewToTheStoreLogsWhereItStarts() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 2])
        defer { broker.stop() }
        let producer = try broker.messageByMessageProducer()
        // Partition 0 outgrows what the mock broker keeps (about 5 MiB per partition), so
        // it drops the oldest messages before any recorder runs; partition 1 keeps all.
        let lines = generatedLines(9_000, seed: 5)
        for line in lines { try producer.send(line, partition: 0) }
        for line in lines.prefix(100) { try producer.send(line, partition: 1) }
        try producer.flush()
        let ranges = try producer.offsetRanges(partitions: 2)
        try #require(ranges[0].start > 0, "the broker kept all of partition 0, so this test checks nothing: \(ranges)")
        #expect(ranges[1].start == 0)

        let dir = TemporaryDirectory()
        let config = broker.drainingRecorder(into: dir)
        let log = CapturedLog()
        try Recorder(configuration: config, logger: log.logger()).run(shouldStop: { false })
        let starts = log.messages.filter { $0.contains("a partition new to this store") }
        #expect(starts.count == 2, "one line per partition: \(starts)")
        #expect(starts.contains { $0.hasPrefix("notice:") && $0.contains("first_offset=\(ranges[0].start)") && $0.contains("partition=0") },
                "\(starts)")
        #expect(starts.contains { $0.hasPrefix("info:") && $0.contains("first_offset=0") && $0.contains("partition=1") }, "\(starts)")
        let stored = try storedFlows(ShardStore.openExisting(directory: dir.path)).count
        #expect(Int64(stored) == (ranges[0].end - ranges[0].start) + ranges[1].end)

        // A second run resumes from the store's checkpoint: nothing new to name.
        let again = CapturedLog()
        try Recorder(configuration: config, logger: again.logger()).run(shouldStop: { false })
        #expect(!again.messages.contains { $0.contains("a partition new to this store") }, "\(again.messages)")
    }
}

extension TestKafkaBroker {
    /// A producer of `flows-export` that sends each message in its own request, in no
    /// compressed batch: the mock broker keeps about 5 MiB a partition, so a few
    /// thousand flows outgrow it and it drops the oldest.
    fileprivate func messageByMessageProducer() throws -> KafkaProducer {
        try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": bootstrapServers, "linger.ms": "0", "batch.num.messages": "1"]))
    }

    /// A recorder of `flows-export` into `dir` that exits once the topic is drained.
    fileprivate func drainingRecorder(into dir: TemporaryDirectory) -> RecorderConfiguration {
        var config = RecorderConfiguration(bootstrapServers: bootstrapServers)
        config.dataDirectory = dir.path
        config.exitWhenIdleSeconds = 3
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        return config
    }
}
