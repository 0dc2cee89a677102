import FlowGenerator
import Foundation
import Synchronization
import KafkaSource

/// Starts `flowrec-testkafka` (librdkafka's mock cluster) for one test and stops it.
///
/// ```swift
/// let broker = try TestKafkaBroker.start(topics: ["flows-export": 4])
/// defer { broker.stop() }
/// try broker.command("down 1")   // fault injection
/// ```
package final class TestKafkaBroker: @unchecked Sendable {  // the pipes are used under `commands` only; Process is thread-safe
    package let bootstrapServers: String
    private let process: Process
    private let input: FileHandle
    private let output: LineReader
    /// One fault-injection command at a time on the pipe pair.
    private let commands = Mutex<Void>(())

    private init(bootstrapServers: String, process: Process, input: FileHandle, output: LineReader) {
        self.bootstrapServers = bootstrapServers
        self.process = process
        self.input = input
        self.output = output
    }

    package static func start(topics: [String: Int], brokers: Int = 1) throws -> TestKafkaBroker {
        let binary = TestEnvironment.executable("flowrec-testkafka", env: "FLOWREC_TESTKAFKA")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestServerUnavailable("\(binary.path) is missing: run `swift build` (scripts/test does) first")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--brokers", String(brokers), "--exit-on-eof"]
            + topics.sorted { $0.key < $1.key }.flatMap { ["--topic", "\($0.key):\($0.value)"] }
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        let reader = LineReader(stdout.fileHandleForReading)
        guard let first = reader.readLine(), first.hasPrefix("BOOTSTRAP ") else {
            process.terminate()
            throw TestServerUnavailable("flowrec-testkafka did not print its bootstrap address")
        }
        return TestKafkaBroker(bootstrapServers: String(first.dropFirst("BOOTSTRAP ".count)),
                               process: process, input: stdin.fileHandleForWriting, output: reader)
    }

    /// Sends a fault-injection command (see `flowrec-testkafka --help`) and waits for `ok`.
    package func command(_ line: String) throws {
        try commands.withLock { _ in
            input.write(Data((line + "\n").utf8))
            guard let reply = output.readLine() else { throw TestServerUnavailable("flowrec-testkafka exited") }
            guard reply == "ok" else { throw TestServerUnavailable("flowrec-testkafka: \(reply)") }
        }
    }

    package func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Reads newline-terminated lines from a pipe, blocking.
final class LineReader {
    private let handle: FileHandle
    private var buffer = Data()

    init(_ handle: FileHandle) { self.handle = handle }

    func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                return line
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }
}

extension TestKafkaBroker {
    /// What librdkafka's mock cluster keeps of a partition (about 5 MiB) less a margin:
    /// beyond it the broker drops the oldest messages, and a test that produced more
    /// before its recorder started would silently read fewer than it sent.
    package static let partitionBytesKept = 4_500_000

    /// The test asked the mock broker to keep more than it does.
    package struct PartitionOverflow: Error, CustomStringConvertible {
        package let description: String
    }

    /// Produces `count` generated flows to `topic`, round robin over `partitions`, and
    /// waits until the broker has them. `flowsPerSecond` sets the event-time rate (so how
    /// many windows they span); nil keeps the generator's default. Throws before sending
    /// anything if a partition would outgrow what the mock broker keeps.
    package func produceGeneratedFlows(_ count: Int, flowsPerSecond: Int? = nil, partitions: Int = 1,
                                      topic: String = "flows-export") throws {
        var options = GeneratorOptions()
        options.flowsPerSecond = flowsPerSecond
        var generator = FlowGenerator(options: options)
        var lines: [[UInt8]] = []
        var bytes = [Int](repeating: 0, count: partitions)
        var line: [UInt8] = []
        for i in 0..<count {
            line.removeAll(keepingCapacity: true)
            generator.nextRecord(into: &line)
            lines.append(line)
            bytes[i % partitions] += line.count
        }
        if let largest = bytes.max(), largest > Self.partitionBytesKept {
            throw PartitionOverflow(description: "\(count) flows put \(largest) bytes in one partition; the mock broker keeps about \(Self.partitionBytesKept) and would drop the oldest: produce fewer or use more partitions")
        }
        let producer = try KafkaProducer(topic: topic, properties: KafkaProperties(["bootstrap.servers": bootstrapServers]))
        for (i, line) in lines.enumerated() { try producer.send(line, partition: Int32(i % partitions)) }
        try producer.flush()
    }
}
