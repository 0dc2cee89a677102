import StorageKit
import ArgumentParser
import FlowGenerator
import FlowModel
import Foundation
import ShardStore

/// Decode speed on one core: flowrec's byte-level decoder against Foundation's
/// JSONSerialization, on the same generated medium-cluster flows and on the shared
/// NetObserv corpus.
struct DecodeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Decode flows/s and MB/s per core, beside JSONSerialization.")

    @Option(help: "Generated medium-cluster flows to decode.")
    var flows = 1_000_000

    @Option(help: "Flows given to JSONSerialization (it is slow; its rate is per flow either way).")
    var baselineFlows = 100_000

    @Option(help: "Generator seed.")
    var seed: UInt64 = 1

    @Option(help: "Repetitions; the best is reported.")
    var repeats = 3

    @Option(help: "Path of the shared corpus (netobserv-flows.jsonl); skipped if absent.")
    var corpus: String = "../shared/corpus/netobserv-flows.jsonl"

    func run() throws {
        var options = GeneratorOptions()
        options.seed = seed
        var generator = FlowGenerator(options: options)
        let generated = MessageSet { set in for _ in 0..<flows { generator.nextRecord(into: &set.bytes); set.endMessage() } }
        print("## Decode (one core)\n")
        print("Input: \(flows) generated medium-cluster flows (seed \(seed), default features), mean \(generated.meanSize) bytes.\n")
        print("| input | decoder | flows/s | MB/s | vs JSONSerialization |")
        print("|---|---|---:|---:|---:|")
        try report("generated medium", generated)

        if let data = FileManager.default.contents(atPath: corpus) {
            let lines = data.split(separator: UInt8(ascii: "\n"))
            // Repeat the 151 records to a measurable size.
            let repeated = MessageSet { set in
                for _ in 0..<max(1, 200_000 / lines.count) { for line in lines { set.append(line); set.endMessage() } }
            }
            try report("shared corpus x\(200_000 / lines.count)", repeated)
        } else {
            print("| shared corpus | skipped: \(corpus) not found | | | |")
        }
        print()
    }

    func report(_ name: String, _ input: MessageSet) throws {
        let decoder = FlowDecoder()
        var flow = Flow()
        var best = Double.infinity
        var failures = 0
        for _ in 0..<repeats {
            failures = 0
            let t = monotonicSeconds()
            input.forEach { bytes in
                do { try decoder.decode(bytes, into: &flow) } catch { failures += 1 }
            }
            best = min(best, monotonicSeconds() - t)
        }
        if failures > 0 { throw ValidationError("\(failures) of \(input.count) messages failed to decode") }
        let ours = Double(input.count) / best

        let sample = min(baselineFlows, input.count)
        var foundationBest = Double.infinity
        for _ in 0..<max(1, repeats - 1) {
            var parsed = 0
            let t = monotonicSeconds()
            input.forEach(limit: sample) { bytes in
                let data = Data(bytes: bytes.baseAddress!, count: bytes.count)
                if (try? JSONSerialization.jsonObject(with: data)) != nil { parsed += 1 }
            }
            foundationBest = min(foundationBest, monotonicSeconds() - t)
            if parsed != sample { throw ValidationError("JSONSerialization rejected \(sample - parsed) messages") }
        }
        let theirs = Double(sample) / foundationBest
        let mb = { (rate: Double) in rate * input.meanSize / 1_000_000 }
        print("| \(name) | flowrec FlowDecoder | \(Int(ours)) | \(Int(mb(ours))) | \(String(format: "%.1f", ours / theirs))x |")
        print("| \(name) | Foundation JSONSerialization | \(Int(theirs)) | \(Int(mb(theirs))) | 1.0x |")
    }
}

/// Messages packed back to back in one buffer, like a batch of Kafka payloads.
final class MessageSet {
    private(set) var bytes: [UInt8] = []
    private(set) var ends: [Int] = []

    init(_ fill: (inout Builder) -> Void) {
        var builder = Builder()
        fill(&builder)
        bytes = builder.bytes
        ends = builder.ends
    }

    struct Builder {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        mutating func append(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
        mutating func endMessage() { ends.append(bytes.count) }
    }

    var count: Int { ends.count }
    var meanSize: Double { Double(bytes.count) / Double(max(1, ends.count)) }

    func forEach(limit: Int = .max, _ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { all in
            var start = 0
            for end in ends.prefix(limit) {
                body(UnsafeRawBufferPointer(rebasing: all[start..<end]))
                start = end
            }
        }
    }
}

/// Monotonic seconds.
