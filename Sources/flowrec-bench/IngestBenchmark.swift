import StorageKit
import ArgumentParser
import FlowGenerator
import FlowModel
import FileSource
import Foundation
import ShardStore

/// File → active shards, the `flowrec ingest` path, beside two baselines measured in
/// the same run: reading and decoding alone (the ceiling the writer could reach), and
/// SQLite storing each raw JSON line in one TEXT column (storage with no structure).
struct IngestBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Ingest flows/s from a JSON-lines file into active shards, beside baselines.")

    @Option(help: "Generated medium-cluster flows.")
    var flows = 1_000_000

    @Flag(help: "Write each batch in arrival order, not as a sorted run (the baseline of `SealRun`).")
    var arrivalOrder = false

    @Option(help: "Scratch directory (the input file and stores go here, then are removed).")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-ingest"

    func run() throws {
        let scratch = try BenchScratch(self.scratch)
        defer { scratch.remove() }
        let generated = try scratch.writeGeneratedFlows("flows.jsonl", flows: flows)
        let input = generated.path
        let inputBytes = Int(generated.bytes)

        // Baseline 1: read + decode only, same reader and batcher.
        let decodeOnly = try timed {
            let batcher = FlowLineBatcher(reader: try LineReader(path: input), sourceName: "file:bench",
                                          batchSize: 20_000, decoder: FlowDecoder())
            batcher.ranksInSealOrder = false  // reading and decoding alone, as before the ranks
            var batch = IngestBatch()
            while try batcher.fill(&batch) { batch.removeAll() }
        }

        // Baseline 2: SQLite, same settings, one TEXT column holding each raw line.
        let rawPath = scratch.path + "/raw.sqlite"
        let raw = try timed {
            let db = try SQLiteDatabase(path: rawPath)
            try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=OFF; CREATE TABLE lines (json TEXT)")
            let insert = try db.prepare("INSERT INTO lines (json) VALUES (?1)")
            let reader = try LineReader(path: input)
            var inBatch = 0
            try db.execute("BEGIN")
            while let line = try reader.nextLine() {
                line.withUnsafeBufferPointer { insert.bind(1, borrowedUTF8: $0) }
                try insert.step()
                insert.reset()
                inBatch += 1
                if inBatch == 20_000 { try db.execute("COMMIT; BEGIN"); inBatch = 0 }
            }
            try db.execute("COMMIT")
        }
        let rawBytes = directorySize(rawPath, prefixOnly: true)

        // flowrec ingest: the pipelined path the CLI uses. At the generator's 5,000 flows/s
        // of event time, 1M flows span 200 s: one hourly window, so nothing is sealed.
        let storeDir = scratch.path + "/store"
        let ours = try ingest(input, into: storeDir, options: .init())
        let storeBytes = directorySize(storeDir + "/shards", prefixOnly: false)

        // The same with 1-minute windows sealed in the background while ingest goes on
        // (three of the four windows close during the run), timed until the last seal ends.
        let sealingDir = scratch.path + "/store-sealing"
        let withSealing = try ingest(input, into: sealingDir, options: .init(windowMs: 60_000, graceMs: 0, sealInBackground: true))

        let rate = { (m: Measurement) in Int(Double(flows) / m.seconds) }
        let cpu = { (m: Measurement) in String(format: "%.1f", m.cpuSeconds / Double(flows) * 1e6) }
        print("## Ingest: JSON-lines file → active shards\n")
        print("Input: \(flows) generated medium-cluster flows, \(inputBytes / flows) bytes each on average. Release build, 2 cores.\n")
        print("| path | flows/s | vs flowrec ingest | CPU µs per flow (both threads) | bytes on disk per flow |")
        print("|---|---:|---:|---:|---:|")
        print("| read + decode only (ceiling) | \(rate(decodeOnly)) | \(String(format: "%.2f", ours.seconds / decodeOnly.seconds))x | \(cpu(decodeOnly)) | - |")
        print("| SQLite, raw JSON line per row | \(rate(raw)) | \(String(format: "%.2f", ours.seconds / raw.seconds))x | \(cpu(raw)) | \(rawBytes / flows) |")
        print("| **flowrec ingest** (decode ‖ write, integer rows + string dictionary) | **\(rate(ours))** | 1.00x | \(cpu(ours)) | \(storeBytes / flows) |")
        print("| flowrec ingest, 1-minute windows sealed in the background meanwhile | \(rate(withSealing)) | \(String(format: "%.2f", ours.seconds / withSealing.seconds))x | \(cpu(withSealing)) | - |")
        print()
        print("Two cores give at most 2,000,000 µs of CPU per second, so 300,000 flows/s needs at most")
        print("6.7 µs of CPU per flow for everything: reading, decoding, writing and sealing.\n")
    }

    struct Measurement {
        let seconds: Double
        /// User + system CPU of the whole process (every thread) during the run.
        let cpuSeconds: Double
    }

    func ingest(_ input: String, into directory: String, options: ShardStore.Options) throws -> Measurement {
        var options = options
        options.writesSortedRuns = !arrivalOrder
        var stored = 0
        let measurement = try timed {
            let store = try ShardStore(directory: directory, options: options)
            let batcher = FlowLineBatcher(reader: try LineReader(path: input), sourceName: "file:bench",
                                          batchSize: 20_000, decoder: FlowDecoder())
            batcher.ranksInSealOrder = !arrivalOrder
            try BatchPipeline().run(produce: { try batcher.fill(&$0) }, consume: { stored += try store.append($0).stored })
            try store.close()
        }
        guard stored == flows else { throw ValidationError("stored \(stored) of \(flows) flows") }
        return measurement
    }

    func timed(_ body: () throws -> Void) throws -> Measurement {
        let cpuStart = cpuSeconds()
        let start = monotonicSeconds()
        try body()
        return Measurement(seconds: monotonicSeconds() - start, cpuSeconds: cpuSeconds() - cpuStart)
    }

    /// Bytes of a file (and its -wal) or of every file under a directory.
    func directorySize(_ path: String, prefixOnly: Bool) -> Int {
        let fm = FileManager.default
        func size(_ p: String) -> Int { ((try? fm.attributesOfItem(atPath: p))?[.size] as? NSNumber)?.intValue ?? 0 }
        if prefixOnly { return size(path) + size(path + "-wal") }
        var total = 0
        for case let f as String in fm.enumerator(atPath: path) ?? FileManager.DirectoryEnumerator() { total += size(path + "/" + f) }
        return total
    }
}
