import FlowrecTestTraits
import FlowGenerator
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Synchronization
import Testing

/// The broker goes away for 30 s mid-stream, and then fails fetches for a while: the
/// recorder keeps running, resumes on its own, and ends with every produced flow stored
/// exactly once.
@Suite(.serialized, .ownThread) struct RecorderFaultTests {
    // No `.timeLimit`: it would count the wait for a turn among the heavy tests
    // (`.ownThread`), which in a full CI run can exceed any sensible limit on the test
    // itself (a run on 2026-12-07 waited out its ten minutes). Every wait below is bounded
    // instead, so a hang fails the test rather than stalling the run.
    @Test func brokerDownAndFetchErrorsLoseNothing() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 8])
        defer { broker.stop() }
        var options = GeneratorOptions()
        options.seed = 31
        var generator = FlowGenerator(options: options)
        let produced: [String] = (0..<20_000).map { _ in
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            return String(decoding: line, as: UTF8.self)
        }
        // Idempotent (KafkaProducer's default), so the broker's log holds each produced
        // flow once: otherwise a produce request the outage cut off before its answer is
        // sent again, and the topic holds two copies (two offsets) that flowrec rightly
        // stores twice. The topic's size is checked below all the same.
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "message.timeout.ms": "300000"]))
        for (i, line) in produced.prefix(10_000).enumerated() { try producer.send(Array(line.utf8), partition: Int32(i % 8)) }
        try producer.flush()

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.deepCompaction = nil
        config.kafkaProperties = ["session.timeout.ms": "45000"]
        let recorder = UncheckedBox(Recorder(configuration: config))
        let stop = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
        let failure = Mutex<String?>(nil)
        Thread.detachNewThread {
            do { try recorder.value.run(shouldStop: { stop.load(ordering: .relaxed) }) } catch { failure.withLock { $0 = "\(error)" } }
            finished.signal()
        }
        func stored() -> Int {
            let text = recorder.value.metrics.registry.emitToString()
            let line = text.split(separator: "\n").first { $0.hasPrefix("flowrec_flows_stored_total ") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }
        func waitFor(_ count: Int, seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if stored() >= count { return true }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }

        #expect(waitFor(10_000, seconds: 60), "the first half is stored before the outage")
        // 30 s without the broker; the second half is produced meanwhile (the producer
        // holds it until the broker is back).
        try broker.command("down 1")
        for (i, line) in produced.dropFirst(10_000).prefix(5_000).enumerated() { try producer.send(Array(line.utf8), partition: Int32(i % 8)) }
        Thread.sleep(forTimeInterval: 30)
        try broker.command("up 1")
        try producer.flush()
        // Then fetches fail for a while (6: NOT_LEADER_OR_FOLLOWER, which clients retry).
        try broker.command("errors 1 6 20")
        for (i, line) in produced.dropFirst(15_000).enumerated() { try producer.send(Array(line.utf8), partition: Int32(i % 8)) }
        try producer.flush()
        let inTopic = try producer.endOffsets(partitions: 8).reduce(0, +)
        #expect(inTopic == Int64(produced.count), "the topic holds each produced flow once: \(inTopic) messages")
        #expect(waitFor(Int(inTopic), seconds: 90), "everything is stored after the outage (\(stored()) of \(inTopic))")
        stop.store(true, ordering: .relaxed)
        let stopped = finished.wait(timeout: .now() + 120) == .success
        try #require(stopped, "the recorder stops within two minutes of being told to")
        #expect(failure.withLock { $0 } == nil, "the recorder kept running: \(failure.withLock { $0 } ?? "")")

        let flows = try storedFlows(ShardStore.openExisting(directory: dir.path))
        #expect(flows.count == inTopic, "each message once: \(flows.count) stored of \(inTopic)")
        let same = Set(flows) == Set(produced)
        #expect(same, "the stored flows are the produced ones")
    }
}
