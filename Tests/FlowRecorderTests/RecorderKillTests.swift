import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Testing

/// `flowrec record` against the test broker, killed with SIGKILL at random moments and
/// restarted: at the end the store holds each produced flow exactly once.
@Suite(.serialized) struct RecorderKillTests {
    @Test func killedAndRestartedRecorderStoresEachFlowOnce() throws {
        let flowrec = try ChildProcess.flowrec()
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 16])
        defer { broker.stop() }
        var options = GeneratorOptions()
        options.seed = 21
        options.flowsPerSecond = 100
        var generator = FlowGenerator(options: options)
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "compression.codec": "lz4"]))
        var produced: [String] = []
        for _ in 0..<60_000 {
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            try producer.send(line)
            produced.append(String(decoding: line, as: UTF8.self))
        }
        try producer.flush()
        #expect(producer.delivered == produced.count)

        let dir = TemporaryDirectory()
        let args = ["record", "--brokers", broker.bootstrapServers, "--data", dir.path, "--http-listen", "127.0.0.1:0", "--window", "5m", "--grace", "0s",
                    "--batch-size", "2000", "--kafka-property", "session.timeout.ms=6000"]
        var random = SeededRandom(seed: 3)
        var kills = 0
        for _ in 0..<4 {
            let p = try ChildProcess.start(flowrec, args)
            // Group join takes ~3 s (longer after a kill: the dead member's session must expire).
            usleep(UInt32(4_000_000 + random.below(4_000_000)))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            p.waitUntilExit()
        }
        let final = try ChildProcess.start(flowrec, args + ["--exit-when-idle", "8s"])
        final.waitUntilExit()
        #expect(final.terminationStatus == 0)
        #expect(kills >= 2)

        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 300_000, graceMs: 0))
        let stored = try storedFlows(store)
        #expect(stored.count == produced.count, "each produced flow stored exactly once")
        let same = stored.sorted() == produced.sorted()
        #expect(same, "the stored flows are the produced ones")
    }
}
