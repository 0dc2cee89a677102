import FlowrecTestTraits
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
@Suite(.serialized, .ownThread) struct TwoRecordersTests {
    /// A recorder in `group` that exits 8 s after the topic goes quiet; a short session
    /// timeout so a departed member's partitions move quickly. Its log goes to `errorLog`.
    static func startRecorder(_ flowrec: URL, broker: TestKafkaBroker, group: String, data: TemporaryDirectory,
                              errorLog: String) throws -> Process {
        try ChildProcess.start(flowrec, ["record", "--brokers", broker.bootstrapServers, "--group", group, "--http-listen", "127.0.0.1:0",
                                         "--data", data.path, "--window", "5m", "--exit-when-idle", "8s", "--kafka-property", "session.timeout.ms=6000",
                                         "--log-format", "human"],
                               errorLog: errorLog)
    }

    @Test func twoRecordersSplitThePartitionsWithoutOverlap() throws {
        let flowrec = try ChildProcess.flowrec()
        // 24 partitions: the mock cluster keeps only about 5 MiB per partition and drops the
        // oldest messages beyond that (with 8 partitions, about 18,000 of these 60,000 flows
        // were gone before a recorder could read them, which read as flows "lost").
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 24])
        defer { broker.stop() }
        let a = TemporaryDirectory(), b = TemporaryDirectory(), logs = TemporaryDirectory()
        func recorder(_ dir: TemporaryDirectory, log: String) throws -> Process {
            try Self.startRecorder(flowrec, broker: broker, group: "pair", data: dir, errorLog: logs.path + "/" + log)
        }
        // 60,000 flows produced over about 12 s of wall time.
        let producer = try ChildProcess.start(flowrec, ["generate", "--kafka", broker.bootstrapServers, "--rate", "500", "--duration", "120s",
                                           "--speedup", "10", "--seed", "5"])
        let first = try recorder(a, log: "a.log")
        usleep(4_000_000)
        let second = try recorder(b, log: "b.log")
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
        // A handover the broker refused is reported by the recorder that gave the
        // partitions up. librdkafka 2.0.2's mock broker does refuse some (a member whose
        // SyncGroup arrives after the leader's is sent back to rejoin, and the commit made
        // meanwhile is "rebalance in progress"; real Kafka waits for every member): then
        // the new owner restarts from the older commit, and flows stored by both are a
        // known issue of the test broker. Without such a report any overlap fails.
        let reports = ["a.log", "b.log"].compactMap { try? String(contentsOfFile: logs.path + "/" + $0, encoding: .utf8) }
            .flatMap { $0.split(separator: "\n") }.filter { $0.contains("their new owner may store some of those flows again") }
        if overlap > 0 && !reports.isEmpty {
            withKnownIssue("a recorder handed partitions over without committing: \(reports.joined(separator: " / "))") {
                #expect(overlap == 0, "\(overlap) flows are stored by both recorders")
            }
        } else {
            #expect(overlap == 0, "\(overlap) flows are stored by both recorders, and neither recorder reported a refused handover")
            #expect(inA.count + inB.count == produced.count)
        }
    }

    /// A handover the broker refuses (every commit answered "rebalance in progress" from
    /// the moment the second recorder joins) is logged by the recorder giving the
    /// partitions up, naming them; and still no flow is lost.
    @Test func aRefusedHandoverCommitIsReported() throws {
        let flowrec = try ChildProcess.flowrec()
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 8])
        defer { broker.stop() }
        let a = TemporaryDirectory(), b = TemporaryDirectory(), logs = TemporaryDirectory()
        func recorder(_ dir: TemporaryDirectory, log: String) throws -> Process {
            try Self.startRecorder(flowrec, broker: broker, group: "refused", data: dir, errorLog: logs.path + "/" + log)
        }
        let producer = try ChildProcess.start(flowrec, ["generate", "--kafka", broker.bootstrapServers, "--rate", "500", "--duration", "60s",
                                                        "--speedup", "10", "--seed", "6"])
        let first = try recorder(a, log: "a.log")
        usleep(4_000_000)
        try broker.command("errors 8 27 1000")  // OffsetCommit answers REBALANCE_IN_PROGRESS
        let second = try recorder(b, log: "b.log")
        for process in [producer, first, second] { process.waitUntilExit() }
        #expect(first.terminationStatus == 0 && second.terminationStatus == 0)
        let firstLog = (try? String(contentsOfFile: logs.path + "/a.log", encoding: .utf8)) ?? ""
        #expect(firstLog.contains("warning: the broker refused the commit of partitions flows-export["),
                "the recorder that gave partitions up says so: \(firstLog.suffix(600))")
        let stored = Set(try storedFlows(ShardStore.openExisting(directory: a.path)))
            .union(try storedFlows(ShardStore.openExisting(directory: b.path)))
        #expect(stored.count == 30_000, "every produced flow is stored at least once")
    }
}
