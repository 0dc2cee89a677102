import StorageKit
import ArgumentParser
import FlowGenerator
import FlowrecConfig
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore

/// `flowrec record` consuming pre-produced flows from the test broker into a store,
/// beside kcat consuming the same topic to /dev/null in the same run: the rate and the
/// recorder's peak memory.
struct KafkaBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka", abstract: "Kafka → store flows/s and peak RSS of flowrec record, beside kcat's consume rate.")

    @Option(help: "Flows to pre-produce (zstd-compressed, as NetObserv's exporter can).")
    var flows = 1_000_000

    @Option(help: "Partitions of the topic.")
    var partitions = 48

    @Option(help: "Rounds of kcat and the recorder at each queue size, interleaved; rates are the median of the rounds.")
    var rounds = 3

    @Option(help: "Flows per second of the steady-state rounds, produced while the recorder runs (0 skips them).")
    var steadyRate = 20_000

    @Option(help: "Seconds of production in each steady-state round.")
    var steadySeconds = 30

    @Flag(help: "Run only the steady-state rounds (by hand).")
    var steadyOnly = false

    @Option(name: .customLong("record-arg"), help: "An argument added to every `flowrec record` (repeat it), for trying a setting by hand: --record-arg=--batch-size --record-arg=4000.")
    var recordArguments: [String] = []

    /// `kafka.batchWait` of the steady-state rounds: none (each poll's messages are a
    /// batch, as before the setting) against flowrec's default.
    static let steadyWaits = ["0ms", String.duration(ms: RecorderConfiguration(bootstrapServers: "").batchWaitMs)]

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-kafka"

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let flowrec = TestEnvironment.executable("flowrec", env: "FLOWREC_BIN")
        let steadyTopics = (0..<max(1, rounds)).flatMap { round in Self.steadyWaits.map { "steady-\($0)-\(round)" } }
        let broker = try TestKafkaBroker.start(topics: ["flows-export": partitions].merging(steadyTopics.map { ($0, 12) }) { $1 })
        defer { broker.stop() }

        if steadyOnly { return try steadyState(flowrec: flowrec, broker: broker) }
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "compression.codec": "zstd", "linger.ms": "50"]))
        var generator = FlowGenerator(options: GeneratorOptions())
        var line: [UInt8] = []
        var payloadBytes = 0
        for i in 0..<flows {
            line.removeAll(keepingCapacity: true)
            generator.nextRecord(into: &line)
            payloadBytes += line.count
            try producer.send(line, partition: Int32(i % partitions))
        }
        try producer.flush()

        // Rounds of: kcat reads every message to the end of each partition (to /dev/null),
        // then flowrec record with librdkafka's default queue, then with a 16 MiB one,
        // each recorder from its own empty store, in its own consumer group, from the
        // first offset. Each recorder's ratio is to the kcat of its own round.
        var kcatRuns: [(seconds: Double, cpuMicros: Double)] = []
        var runs: [[RecordRun]] = [[], []]
        for round in 0..<max(1, rounds) {
            kcatRuns.append(try kcatRun(broker))
            runs[0].append(try record(flowrec: flowrec, broker: broker, store: scratch + "/store-64mib-\(round)", group: "bench-64mib-\(round)",
                                      extra: ["--kafka-property", "queued.max.messages.kbytes=65536"]))
            runs[1].append(try record(flowrec: flowrec, broker: broker, store: scratch + "/store-16mib-\(round)", group: "bench-16mib-\(round)",
                                      extra: ["--kafka-property", "queued.max.messages.kbytes=16384"]))
        }

        print("## Kafka → store: flowrec record beside kcat\n")
        print("\(flows) generated medium-cluster flows (\(payloadBytes / flows) bytes of JSON each), zstd-compressed by the producer, pre-produced into the test broker (librdkafka's mock cluster, \(partitions) partitions, loopback), consumed from the beginning. flowrec stores them in 1-minute shards (sealing in the background); kcat writes them to /dev/null. \(rounds) rounds of kcat, then the recorder with each queue size: the seconds and rates are the median of the rounds, \"vs kcat\" the median of each round's ratio to its own kcat (their range in brackets), peak RSS the largest of the rounds. CPU µs per flow is the process's user + system time over the flows (for flowrec record: consuming, decoding, storing and sealing every window, until it exits).\n")
        print("| consumer | seconds | flows/s | vs kcat | CPU µs per flow | peak RSS |")
        print("|---|---:|---:|---:|---:|---:|")
        let kcatSeconds = median(kcatRuns.map(\.seconds))
        print("| kcat -C -e (to /dev/null) | \(String(format: "%.1f", kcatSeconds)) | \(Int(Double(flows) / kcatSeconds)) | 1.00x | \(String(format: "%.1f", median(kcatRuns.map(\.cpuMicros)) / Double(flows))) | - |")
        for (variant, name) in zip(runs, ["librdkafka's default queue, flowrec's default (`queued.max.messages.kbytes=65536`)", "a 16 MiB queue"]) {
            let fromFirst = variant.map { $0.allStored - $0.firstStored }
            let ratios = zip(kcatRuns, fromFirst).map { $0.seconds / $1 }
            let ratiosAll = zip(kcatRuns, variant).map { $0.seconds / $1.allStored }
            let peak = variant.map(\.peakRSS).max() ?? 0
            print("| **flowrec record**, \(name), from the first stored flow | \(String(format: "%.1f", median(fromFirst))) | **\(Int(Double(flows) / median(fromFirst)))** | \(ratioWithRange(ratios, digits: 2)) | \(String(format: "%.1f", median(variant.map(\.cpuMicros)) / Double(flows))) | **\(peak / 1024) MiB** (\(variant.map { String($0.peakRSS / 1024) }.joined(separator: ", "))) |")
            print("| same, including start-up and group join | \(String(format: "%.1f", median(variant.map(\.allStored)))) | \(Int(Double(flows) / median(variant.map(\.allStored)))) | \(ratioWithRange(ratiosAll, digits: 2)) | | |")
        }
        print()
        guard let first = runs[0].max(by: { $0.peakRSS < $1.peakRSS }) else { return }
        print("Peak resident memory is VmHWM. Sampled every 100 ms from /proc, the largest seen of its parts in the round with the highest peak at librdkafka's default queue: \(first.peakAnonymous / 1024) MiB anonymous (heaps, librdkafka's queues, page caches), \(first.peakFile / 1024) MiB file-backed (the binary and its libraries). Targets: 0.6x kcat, RSS ≤ 256 MiB.\n")
        guard steadyRate > 0 else { return }
        try steadyState(flowrec: flowrec, broker: broker)
    }

    /// A recorder that keeps up with its topic: flows produced at `steadyRate` while it
    /// runs (hourly window, so nothing seals meanwhile), then its one active shard sealed
    /// with `flowrec seal --all`. With and without `kafka.batchWait`, interleaved per round.
    func steadyState(flowrec: URL, broker: TestKafkaBroker) throws {
        var results: [String: [SteadyRun]] = [:]
        for round in 0..<max(1, rounds) {
            for wait in Self.steadyWaits {
                results[wait, default: []].append(try steadyRun(flowrec: flowrec, broker: broker, topic: "steady-\(wait)-\(round)", wait: wait))
            }
        }
        let flows = steadyRate * steadySeconds
        print("### Kafka → store at a steady rate: filling batches for up to `kafka.batchWait`\n")
        print("\(flows) generated flows produced at \(steadyRate) flows/s (12 partitions, uncompressed, by the benchmark's own producer) while `flowrec record` runs (timestamped from the wall clock, hourly windows: nothing seals meanwhile); once all are stored it stops, and `flowrec seal --all` seals its active shard. \(rounds) rounds, the two settings interleaved; medians, range in brackets. Recorder CPU is the process's user + system time until every flow was stored, over the flows.\n")
        print("| `kafka.batchWait` | recorder CPU µs per flow | batches | flows per batch | seal of the shard, flows/s | seal vs no wait |")
        print("|---|---:|---:|---:|---:|---:|")
        let baseline = results[Self.steadyWaits[0]] ?? []
        for wait in Self.steadyWaits {
            let runs = results[wait] ?? []
            let sealRatios = zip(runs, baseline).map { $1.sealSeconds / $0.sealSeconds }
            let batches = median(runs.map { Double($0.batches) })
            print("| \(wait)\(wait == Self.steadyWaits.last ? " (default)" : "") | \(medianWithRange(runs.map { $0.cpuMicros / Double(flows) })) | \(Int(batches)) | \(Int(Double(flows) / max(1, batches))) | \(Int(median(runs.map { Double(flows) / $0.sealSeconds }))) | \(ratioWithRange(sealRatios, digits: 2)) |")
        }
        print()
    }

    struct SteadyRun {
        var cpuMicros: Double
        var batches: Int
        var sealSeconds: Double
    }

    /// One steady-state round on its own topic, store and consumer group.
    func steadyRun(flowrec: URL, broker: TestKafkaBroker, topic: String, wait: String) throws -> SteadyRun {
        let store = scratch + "/\(topic)"
        let record = try ChildProcess.start(flowrec, ["record", "--brokers", broker.bootstrapServers, "--topic", topic, "--data", store,
                                                      "--http-listen", "127.0.0.1:19475", "--group", topic, "--window", "1h",
                                                      "--compact-level", "0", "--batch-wait", wait] + recordArguments)
        defer { if record.isRunning { record.terminate() } }
        // Produce once the recorder has joined (it has answered /metrics).
        while Self.storedFlows(port: 19475) == nil {
            guard record.isRunning else { throw ValidationError("flowrec record exited with status \(record.terminationStatus) before it served /metrics") }
            usleep(100_000)
        }
        let producer = try KafkaProducer(topic: topic, properties: KafkaProperties(["bootstrap.servers": broker.bootstrapServers, "linger.ms": "5"]))
        var options = GeneratorOptions()
        options.flowsPerSecond = steadyRate
        // Flows of now: a window the wall clock has closed would be sealed by the recorder.
        options.startMs = Int64(Date().timeIntervalSince1970 * 1000)
        var generator = FlowGenerator(options: options)
        var line: [UInt8] = []
        let flows = steadyRate * steadySeconds, start = monotonicSeconds()
        for i in 0..<flows {
            if i % 200 == 0 {  // pace: flow i leaves at i / rate seconds
                let ahead = Double(i) / Double(steadyRate) - (monotonicSeconds() - start)
                if ahead > 0 { usleep(UInt32(ahead * 1e6)) }
            }
            line.removeAll(keepingCapacity: true)
            generator.nextRecord(into: &line)
            try producer.send(line, partition: Int32(i % 12))
        }
        try producer.flush()
        var watch = ProgressWatch(stallSeconds: 60)
        var stored = 0
        while stored < flows {
            stored = Self.storedFlows(port: 19475) ?? stored
            guard record.isRunning, !watch.stalled(progress: stored) else { throw ValidationError("flowrec record stored \(stored) of \(flows) flows") }
            usleep(100_000)
        }
        let cpu = cpuSeconds(ofRunning: record.processIdentifier)
        let batches = Self.metric("flowrec_batch_duration_seconds_count", port: 19475) ?? 0
        record.terminate()
        record.waitUntilExit()

        let t = monotonicSeconds()
        let sealStatus = try ChildProcess.run(flowrec, ["seal", "--all", "--data", store])
        guard sealStatus == 0 else { throw ValidationError("flowrec seal --all exited with status \(sealStatus)") }
        return SteadyRun(cpuMicros: cpu * 1e6, batches: batches, sealSeconds: monotonicSeconds() - t)
    }

    /// kcat consuming the whole topic once, from the beginning to the end of every partition.
    func kcatRun(_ broker: TestKafkaBroker) throws -> (seconds: Double, cpuMicros: Double) {
        let kcat = Process()
        kcat.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        kcat.arguments = ["-C", "-b", broker.bootstrapServers, "-t", "flows-export", "-o", "beginning", "-e", "-q",
                          "-X", "fetch.message.max.bytes=1048576"]
        kcat.standardOutput = FileHandle.nullDevice
        kcat.standardError = FileHandle.nullDevice
        let cpu = cpuSeconds(children: true)
        let t = monotonicSeconds()
        try kcat.run()
        kcat.waitUntilExit()
        let seconds = monotonicSeconds() - t
        guard kcat.terminationStatus == 0 else { throw ValidationError("kcat failed with status \(kcat.terminationStatus)") }
        return (seconds, (cpuSeconds(children: true) - cpu) * 1e6)
    }

    struct RecordRun {
        var firstStored: Double
        var allStored: Double
        var cpuMicros: Double
        var peakRSS: Int
        var peakAnonymous: Int
        var peakFile: Int
    }

    /// Runs `flowrec record` until every flow is stored (the recorder's own counter on
    /// /metrics) and it exits when idle, sampling its resident memory throughout.
    func record(flowrec: URL, broker: TestKafkaBroker, store: String, group: String, extra: [String]) throws -> RecordRun {
        let cpu = cpuSeconds(children: true)
        let t = monotonicSeconds()
        let record = try ChildProcess.start(flowrec, ["record", "--brokers", broker.bootstrapServers, "--data", store, "--http-listen", "127.0.0.1:19474",
                                                      "--group", group, "--window", "1m", "--compact-level", "0", "--exit-when-idle", "3s"]
                                                      + extra + recordArguments)
        var peakRSS = 0, peakAnonymous = 0, peakFile = 0
        var firstStored: Double?
        var allStored: Double?
        while record.isRunning {
            let status = Self.memoryStatus(of: record.processIdentifier)
            peakRSS = max(peakRSS, status["VmHWM"] ?? 0)
            peakAnonymous = max(peakAnonymous, status["RssAnon"] ?? 0)
            peakFile = max(peakFile, status["RssFile"] ?? 0)
            if allStored == nil, let stored = Self.storedFlows(port: 19474) {
                if stored > 0, firstStored == nil { firstStored = monotonicSeconds() - t }
                if stored >= flows { allStored = monotonicSeconds() - t }
            }
            usleep(100_000)
        }
        record.waitUntilExit()
        guard record.terminationStatus == 0, let total = allStored else {
            throw ValidationError("flowrec record exited with status \(record.terminationStatus) before storing every flow")
        }
        return RecordRun(firstStored: firstStored ?? 0, allStored: total, cpuMicros: (cpuSeconds(children: true) - cpu) * 1e6, peakRSS: peakRSS,
                         peakAnonymous: peakAnonymous, peakFile: peakFile)
    }

    /// The memory lines of /proc/PID/status (VmHWM, RssAnon, RssFile...), in KiB.
    static func memoryStatus(of pid: Int32) -> [String: Int] {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return [:] }
        var values: [String: Int] = [:]
        for line in status.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, parts[0].hasSuffix(":"), let kib = Int(parts[1]) else { continue }
            values[String(parts[0].dropLast())] = kib
        }
        return values
    }

    /// `flowrec_flows_stored_total` from the recorder's /metrics.
    static func storedFlows(port: Int) -> Int? { metric("flowrec_flows_stored_total", port: port) }

    /// A metric without labels from the recorder's /metrics.
    static func metric(_ name: String, port: Int) -> Int? {
        guard let response = try? LoopbackHTTP.get(port: port, path: "/metrics") else { return nil }
        let text = String(decoding: response.body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "").map { Int($0) }
        }
        return nil
    }
}
