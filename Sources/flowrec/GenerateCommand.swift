import ArgumentParser
package import FlowGenerator
import FlowModel
import Foundation
import KafkaSource

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate realistic NetObserv flow records (JSON lines or into Kafka).",
        discussion: """
        Models a Kubernetes cluster (nodes in zones, namespaces, deployments, pods, services, external hosts) with skewed traffic between pairs, and writes flows exactly as NetObserv's Kafka exporter does: one JSON object per record, keys sorted, absent fields omitted. The same seed always gives the same flows.

        Event time starts at --start and advances by 1/--rate per flow, so hours of traffic can be generated in seconds; --speedup paces output against the wall clock.

        Examples:
          flowrec generate --cluster medium --flows 1000000 --seed 1 > flows.jsonl
          flowrec generate --rate 5000 --duration 2h --features all --stats > /dev/null
          flowrec generate --kafka 127.0.0.1:9092 --topic flows-export --compression zstd --flows 100000
        """)

    @Option(help: "Cluster size: small, medium or large.")
    var cluster: ClusterModel.Size = .medium

    @Option(help: "Number of records to write. Default: --rate x --duration, or 10000.")
    var flows: Int?

    @Option(help: "Flows per second of event time (default depends on --cluster: 200, 5000, 50000).")
    var rate: Int?

    @Option(help: "Event-time span to generate, e.g. 90s, 30m, 2h, 1d (with --rate).")
    var duration: DurationArgument?

    @Option(help: "Event time of the first flow: RFC 3339, a date, or epoch seconds or milliseconds (default 2026-01-01T00:00:00Z).")
    var start: TimeArgument?

    @Option(help: "Seed of the generator; the same seed gives the same flows.")
    var seed: UInt64 = 1

    @Option(help: "Record shape: current (NetObserv 1.12) or legacy (before 1.6).")
    var shape: GeneratorOptions.Shape = .current

    @Option(help: ArgumentHelp(
        "Optional features, comma separated, or 'all' / 'none'.",
        discussion: "Available: \(GeneratorOptions.Feature.allCases.map(\.rawValue).joined(separator: ", ")). Default: \(GeneratorOptions.defaultFeatures.map(\.rawValue).sorted().joined(separator: ","))."))
    var features: String?

    @Option(help: "Pace output so event time runs this many times faster than wall time (default: as fast as possible).")
    var speedup: Double?

    @Option(name: .shortAndLong, help: "Write JSON lines to this file instead of stdout.")
    var output: String?

    @Option(help: "Produce into Kafka at these bootstrap servers instead of writing JSON lines.")
    var kafka: String?

    @Option(help: "Kafka topic to produce to.")
    var topic: String = "flows-export"

    @Option(help: "Kafka compression codec: none, gzip, snappy, lz4 or zstd.")
    var compression: String = "none"

    @Option(name: .customLong("kafka-property"), help: "Extra librdkafka property KEY=VALUE (repeatable).")
    var kafkaProperties: [String] = []

    @Flag(help: "Print field presence and cardinalities to stderr at the end.")
    var stats = false

    func validate() throws {
        _ = try start?.parsed("--start")
        if let flows, flows < 0 { throw ValidationError("--flows must be 0 or more") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        if let speedup, speedup <= 0 { throw ValidationError("--speedup must be positive, e.g. 60 for one event-hour per wall minute") }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(compression) {
            throw ValidationError("--compression must be none, gzip, snappy, lz4 or zstd")
        }
        _ = try parsedFeatures()
        if kafka != nil && output != nil { throw ValidationError("use either --kafka or --output, not both") }
    }

    func parsedFeatures() throws -> Set<GeneratorOptions.Feature> {
        guard let features else { return GeneratorOptions.defaultFeatures }
        if features == "all" { return Set(GeneratorOptions.Feature.allCases) }
        if features == "none" || features.isEmpty { return [] }
        var set = Set<GeneratorOptions.Feature>()
        for name in features.split(separator: ",") {
            guard let f = GeneratorOptions.Feature(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown feature '\(name)'; choose from \(GeneratorOptions.Feature.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            set.insert(f)
        }
        return set
    }

    func run() throws {
        var options = GeneratorOptions()
        options.cluster = cluster
        options.shape = shape
        options.features = try parsedFeatures()
        options.seed = seed
        if let start { options.startMs = try start.parsed("--start").epochMilliseconds }
        options.flowsPerSecond = rate
        var generator = FlowGenerator(options: options)
        let eventRate = rate ?? cluster.typicalFlowRate
        let total = flows ?? duration.map { Int($0.seconds * Double(eventRate)) } ?? 10_000

        let sink: any RecordSink
        if let kafka {
            var props = KafkaProperties(["bootstrap.servers": kafka, "compression.codec": compression])
            for entry in kafkaProperties {
                guard let eq = entry.firstIndex(of: "=") else { throw ValidationError("--kafka-property needs KEY=VALUE, got \(entry)") }
                props[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
            }
            sink = try KafkaRecordSink(producer: KafkaProducer(topic: topic, properties: props))
        } else {
            sink = try LineRecordSink(path: output)
        }
        var statistics = stats ? GeneratorStatistics() : nil
        let pacer = speedup.map { EventPacer(speedup: $0, firstEventMs: generator.eventClockMs) }
        var record: [UInt8] = []
        record.reserveCapacity(2048)
        for _ in 0..<total {
            record.removeAll(keepingCapacity: true)
            if statistics != nil {
                let flow = generator.nextFlow()
                statistics?.add(flow)
                FlowEncoder().encode(flow, into: &record)
            } else {
                generator.nextRecord(into: &record)
            }
            try sink.write(record)
            pacer?.wait(untilEventMs: generator.eventClockMs)
        }
        try sink.finish()
        if let statistics {
            FileHandle.standardError.write(Data(statistics.report(total: total).utf8))
        }
    }
}

/// Where generated records go.
protocol RecordSink {
    func write(_ record: [UInt8]) throws
    func finish() throws
}

/// JSON lines to a file or stdout, through `LineSink`'s buffer.
final class LineRecordSink: RecordSink {
    private let sink: LineSink

    init(path: String?) throws { sink = try LineSink(path: path ?? "-") }

    func write(_ record: [UInt8]) throws { try sink.writeLine(record) }

    func finish() throws { try sink.finish() }
}

/// Records into a Kafka topic; fails if any message was not acknowledged.
final class KafkaRecordSink: RecordSink {
    let producer: KafkaProducer
    init(producer: KafkaProducer) { self.producer = producer }

    func write(_ record: [UInt8]) throws { try producer.send(record) }

    func finish() throws {
        try producer.flush()
        if producer.failed > 0 {
            throw CommandFailure("\(producer.failed) of \(producer.failed + producer.delivered) messages were not delivered: \(producer.lastFailure ?? "unknown error")", exit: .unavailable)
        }
        FileHandle.standardError.write(Data("produced \(producer.delivered) records to \(producer.topicName)\n".utf8))
    }
}

/// Sleeps so that event time advances `speedup` times faster than wall time.
final class EventPacer {
    let speedup: Double
    let firstEventMs: Int64
    let startedAt = DispatchTime.now()

    init(speedup: Double, firstEventMs: Int64) {
        self.speedup = speedup
        self.firstEventMs = firstEventMs
    }

    func wait(untilEventMs eventMs: Int64) {
        let dueNanos = Double(eventMs - firstEventMs) / speedup * 1_000_000
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - startedAt.uptimeNanoseconds)
        if dueNanos - elapsed > 2_000_000 { usleep(UInt32(min((dueNanos - elapsed) / 1000, 1_000_000))) }
    }
}

extension ClusterModel.Size: ExpressibleByArgument {}
extension GeneratorOptions.Shape: ExpressibleByArgument {}
