import FlowrecTestTraits
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Testing

/// `flowrec record` against the test broker, killed with SIGKILL at random moments and
/// restarted: at the end the store holds each produced flow exactly once.
///
/// The test run uses 1,000,000 flows and 20 kills; `scripts/chaos` runs the same test
/// with more (FLOWREC_CHAOS_KILLS, FLOWREC_CHAOS_FLOWS, FLOWREC_CHAOS_SEED).
@Suite(.serialized, .ownThread) struct RecorderKillTests {
    static func setting(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? fallback
    }

    /// A stable 64-bit hash of a flow's JSON (FNV-1a): the test compares multisets of
    /// hashes rather than a million strings.
    static func fingerprint<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        return hash
    }

    @Test func killedAndRestartedRecorderStoresEachFlowOnce() throws {
        let flows = Self.setting("FLOWREC_CHAOS_FLOWS", 1_000_000)
        let wantedKills = Self.setting("FLOWREC_CHAOS_KILLS", 20)
        var random = SeededRandom(seed: UInt64(Self.setting("FLOWREC_CHAOS_SEED", 3)))
        let flowrec = try ChildProcess.flowrec()
        // The mock cluster keeps about 5 MiB per partition: 48 partitions hold 1M
        // zstd-compressed flows with room to spare.
        let partitions = 48
        let broker = try TestKafkaBroker.start(topics: ["flows-export": partitions])
        defer { broker.stop() }
        var options = GeneratorOptions()
        options.seed = 21
        options.flowsPerSecond = 2000
        var generator = FlowGenerator(options: options)
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "compression.codec": "zstd", "linger.ms": "50"]))
        var produced: [UInt64] = []
        produced.reserveCapacity(flows)
        var line: [UInt8] = []
        for i in 0..<flows {
            line.removeAll(keepingCapacity: true)
            generator.nextRecord(into: &line)
            try producer.send(line, partition: Int32(i % partitions))
            produced.append(Self.fingerprint(line))
        }
        try producer.flush()
        #expect(producer.delivered == flows)

        let dir = TemporaryDirectory()
        let logs = TemporaryDirectory()  // each run's standard error, quoted when the test fails
        var runLogs: [String] = []
        func nextLog() -> String {
            runLogs.append("\(logs.path)/run-\(runLogs.count + 1).log")
            return runLogs[runLogs.count - 1]
        }
        let args = ["record", "--brokers", broker.bootstrapServers, "--data", dir.path, "--http-listen", "127.0.0.1:0",
                    "--window", "1m", "--grace", "0s", "--batch-size", "5000", "--compact-level", "0",
                    "--kafka-property", "session.timeout.ms=6000"]
        var kills = 0
        var attempts = 0
        while kills < wantedKills && attempts < wantedKills * 3 {
            attempts += 1
            let p = try ChildProcess.start(flowrec, args, errorLog: nextLog())
            // Anywhere from start-up (opening the store, joining the group, which takes
            // longer after a kill: the dead member's session must expire) to mid-batch
            // and mid-seal.
            usleep(UInt32(500_000 + random.below(8_500_000)))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            p.waitUntilExit()
            if p.terminationReason == .exit { break }  // finished early: nothing left to kill
        }
        let final = try ChildProcess.start(flowrec, args + ["--exit-when-idle", "10s"], errorLog: nextLog())
        final.waitUntilExit()
        #expect(final.terminationStatus == 0)
        #expect(kills >= wantedKills, "only \(kills) kills landed; the recorder finished first")

        let store = try ShardStore.openExisting(directory: dir.path)
        var stored: [UInt64] = []
        stored.reserveCapacity(flows)
        let encoder = FlowEncoder()
        for shard in try store.shards() {
            try store.forEachFlow(in: shard.id) { stored.append(Self.fingerprint(encoder.encode($0).utf8)) }
        }
        #expect(stored.count == produced.count, "each produced flow stored exactly once (\(stored.count) stored, \(produced.count) produced, \(kills) kills)")
        if stored.sorted() != produced.sorted() {
            let explanation = Self.explainDifference(produced: produced, stored: stored, partitions: partitions,
                                                     store: store, logs: runLogs)
            Issue.record("the stored flows are not the produced ones: \(explanation)")
        }
    }

    /// What a failure needs to be understood after the fact (CI keeps only the output):
    /// which produced flows are missing or stored twice, by partition and offset (the
    /// producer sent flow `i` to partition `i % partitions`, in order), where each
    /// partition resumes, and every warning or error the runs logged.
    static func explainDifference(produced: [UInt64], stored: [UInt64], partitions: Int,
                                  store: ShardStore, logs: [String]) -> String {
        var storedCount: [UInt64: Int] = [:]
        for hash in stored { storedCount[hash, default: 0] += 1 }
        var lines: [String] = []
        var missing = 0, twice = 0
        var seen: Set<UInt64> = []
        for (i, hash) in produced.enumerated() where seen.insert(hash).inserted {
            let count = storedCount[hash] ?? 0
            guard count != 1 else { continue }
            if count == 0 { missing += 1 } else { twice += 1 }
            if lines.count < 40 {
                lines.append("flow \(i) (partition \(i % partitions), offset \(i / partitions)): stored \(count) times")
            }
        }
        let unknown = Set(stored).subtracting(produced).count
        var report = ["\(missing) produced flows missing, \(twice) stored more than once, \(unknown) stored but never produced"]
        report += lines
        if let resume = try? store.resumePositions() {
            report.append("resume positions: " + resume.sorted { $0.key.partition < $1.key.partition }
                .map { "\($0.key.partition)→\($0.value)" }.joined(separator: " "))
        }
        for (n, log) in logs.enumerated() {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let notable = text.split(separator: "\n").filter { $0.contains(" warning ") || $0.contains(" error ") || $0.contains(" critical ") }
            report.append("run \(n + 1): \(notable.count) warnings or errors" + (notable.isEmpty ? "" : ":"))
            report += notable.suffix(20).map { "  \($0)" }
        }
        return report.joined(separator: "\n")
    }
}
