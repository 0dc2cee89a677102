import StorageKit
import ArgumentParser
import FlowGenerator
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

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-kafka"

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let flowrec = TestEnvironment.executable("flowrec", env: "FLOWREC_BIN")
        let broker = try TestKafkaBroker.start(topics: ["flows-export": partitions])
        defer { broker.stop() }

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

        // Baseline: kcat reads every message to the end of each partition, to /dev/null.
        let kcat = Process()
        kcat.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        kcat.arguments = ["-C", "-b", broker.bootstrapServers, "-t", "flows-export", "-o", "beginning", "-e", "-q",
                          "-X", "fetch.message.max.bytes=1048576"]
        kcat.standardOutput = FileHandle.nullDevice
        kcat.standardError = FileHandle.nullDevice
        let kcatCPU = cpuSeconds(children: true)
        let t = monotonicSeconds()
        try kcat.run()
        kcat.waitUntilExit()
        let kcatSeconds = monotonicSeconds() - t
        let kcatMicros = (cpuSeconds(children: true) - kcatCPU) * 1e6
        guard kcat.terminationStatus == 0 else { throw ValidationError("kcat failed with status \(kcat.terminationStatus)") }

        // flowrec record with librdkafka's default queue, then with flowrec's (16 MiB):
        // each from its own empty store, in its own consumer group, from the first offset.
        let runs = [
            try record(flowrec: flowrec, broker: broker, store: scratch + "/store-64mib", group: "bench-64mib",
                       extra: ["--kafka-property", "queued.max.messages.kbytes=65536"]),
            try record(flowrec: flowrec, broker: broker, store: scratch + "/store-default", group: "bench-default", extra: []),
        ]

        print("## Kafka → store: flowrec record beside kcat\n")
        print("\(flows) generated medium-cluster flows (\(payloadBytes / flows) bytes of JSON each), zstd-compressed by the producer, pre-produced into the test broker (librdkafka's mock cluster, \(partitions) partitions, loopback), consumed from the beginning. flowrec stores them in 1-minute shards (sealing in the background); kcat writes them to /dev/null. CPU µs per flow is the process's user + system time over the flows (for flowrec record: consuming, decoding, storing and sealing every window, until it exits).\n")
        print("| consumer | seconds | flows/s | vs kcat | CPU µs per flow | peak RSS |")
        print("|---|---:|---:|---:|---:|---:|")
        print("| kcat -C -e (to /dev/null) | \(String(format: "%.1f", kcatSeconds)) | \(Int(Double(flows) / kcatSeconds)) | 1.00x | \(String(format: "%.1f", kcatMicros / Double(flows))) | - |")
        for (run, name) in zip(runs, ["librdkafka's default queue (`queued.max.messages.kbytes=65536`)", "flowrec's default (a 16 MiB queue)"]) {
            let fromFirst = run.allStored - run.firstStored
            print("| **flowrec record**, \(name), from the first stored flow | \(String(format: "%.1f", fromFirst)) | **\(Int(Double(flows) / fromFirst))** | \(String(format: "%.2f", kcatSeconds / fromFirst))x | \(String(format: "%.1f", run.cpuMicros / Double(flows))) | **\(run.peakRSS / 1024) MiB** |")
            print("| same, including start-up and group join | \(String(format: "%.1f", run.allStored)) | \(Int(Double(flows) / run.allStored)) | \(String(format: "%.2f", kcatSeconds / run.allStored))x | | |")
        }
        print()
        let first = runs[0]
        print("Peak resident memory is VmHWM. Sampled every 100 ms from /proc, the largest seen of its parts with librdkafka's default queue: \(first.peakAnonymous / 1024) MiB anonymous (heaps, librdkafka's queues, page caches), \(first.peakFile / 1024) MiB file-backed (the binary and its libraries). Targets: 0.6x kcat, RSS ≤ 256 MiB.\n")
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
        let record = Process()
        record.executableURL = flowrec
        record.arguments = ["record", "--brokers", broker.bootstrapServers, "--data", store, "--http-listen", "127.0.0.1:19474",
                            "--group", group, "--window", "1m", "--compact-level", "0", "--exit-when-idle", "3s"] + extra
        record.standardOutput = FileHandle.nullDevice
        record.standardError = FileHandle.nullDevice
        let cpu = cpuSeconds(children: true)
        let t = monotonicSeconds()
        try record.run()
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
    static func storedFlows(port: Int) -> Int? {
        guard let response = try? LoopbackHTTP.get(port: port, path: "/metrics") else { return nil }
        let text = String(decoding: response.body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("flowrec_flows_stored_total ") {
            return Double(line.split(separator: " ").last ?? "").map { Int($0) }
        }
        return nil
    }
}
