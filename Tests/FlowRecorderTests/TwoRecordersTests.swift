import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// Two recorders in one consumer group, the second joining while traffic flows: they
/// split the partitions and together store every produced flow.
///
/// "None twice" rests on the revocation commit: the member giving a partition up commits
/// what it stored, and the new owner starts there. The cooperative protocol makes that
/// commit land in a settled generation; with the eager one librdkafka's mock broker
/// rejects it ("Group rebalance in progress") and flows were stored by both.
@Suite(.serialized) struct TwoRecordersTests {
    @Test func twoRecordersSplitThePartitionsWithoutOverlap() throws {
        let flowrec = try ChildProcess.flowrec()
        // 24 partitions: the mock cluster keeps only about 5 MiB per partition and drops the
        // oldest messages beyond that (with 8 partitions, about 18,000 of these 60,000 flows
        // were gone before a recorder could read them, which read as flows "lost").
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 24])
        defer { broker.stop() }
        let a = TemporaryDirectory(), b = TemporaryDirectory()
        func recorder(_ dir: TemporaryDirectory) throws -> Process {
            try ChildProcess.start(flowrec, ["record", "--brokers", broker.bootstrapServers, "--group", "pair", "--http-listen", "127.0.0.1:0", "--data", dir.path,
                                "--window", "5m", "--exit-when-idle", "8s", "--kafka-property", "session.timeout.ms=6000"])
        }
        // 60,000 flows produced over about 12 s of wall time.
        let producer = try ChildProcess.start(flowrec, ["generate", "--kafka", broker.bootstrapServers, "--rate", "500", "--duration", "120s",
                                           "--speedup", "10", "--seed", "5"])
        let first = try recorder(a)
        usleep(4_000_000)
        let second = try recorder(b)
        producer.waitUntilExit()
        #expect(producer.terminationStatus == 0)
        first.waitUntilExit()
        second.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(second.terminationStatus == 0)

        var options = GeneratorOptions()
        options.seed = 5
        options.flowsPerSecond = 500
        var generator = FlowGenerator(options: options)
        let produced: [String] = (0..<60_000).map { _ in
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            return String(decoding: line, as: UTF8.self)
        }
        let inA = try storedFlows(ShardStore.openExisting(directory: a.path))
        let inB = try storedFlows(ShardStore.openExisting(directory: b.path))
        #expect(!inA.isEmpty && !inB.isEmpty, "both recorders stored something (A \(inA.count), B \(inB.count))")
        let union = Set(inA).union(inB)
        let missing = Set(produced).subtracting(union).count, unexpected = union.subtracting(produced).count
        #expect(missing == 0 && unexpected == 0, "together they hold every produced flow: \(missing) missing, \(unexpected) not produced")
        let overlap = Set(inA).intersection(Set(inB)).count
        #expect(overlap == 0, "\(overlap) flows are stored by both recorders")
        #expect(inA.count + inB.count == produced.count)
    }
}
