import ArgumentParser
import FlowGenerator
import FlowModel
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

    @Option(help: "Scratch directory (the input file and stores go here, then are removed).")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-ingest"

    func run() throws {
        let scratch = try BenchScratch(self.scratch)
        defer { scratch.remove() }
        let (input, _, text) = try scratch.writeGeneratedFlows("flows.jsonl", flows: flows)
        let inputBytes = text.count

        // Baseline 1: read + decode only, same reader and batcher.
        let decodeOnly = try timed {
            let batcher = FlowLineBatcher(reader: try LineReader(path: input), sourceName: "file:bench",
                                          batchSize: 20_000, decoder: FlowDecoder())
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

        // flowrec ingest: the pipelined path the CLI uses.
        let storeDir = scratch.path + "/store"
        var stored = 0
        let ours = try timed {
            let store = try ShardStore(directory: storeDir)
            let batcher = FlowLineBatcher(reader: try LineReader(path: input), sourceName: "file:bench",
                                          batchSize: 20_000, decoder: FlowDecoder())
            try BatchPipeline().run(produce: { try batcher.fill(&$0) }, consume: { stored += try store.append($0).stored })
        }
        guard stored == flows else { throw ValidationError("stored \(stored) of \(flows) flows") }
        let storeBytes = directorySize(storeDir + "/shards", prefixOnly: false)

        let rate = { (seconds: Double) in Int(Double(flows) / seconds) }
        print("## Ingest: JSON-lines file → active shards\n")
        print("Input: \(flows) generated medium-cluster flows, \(inputBytes / flows) bytes each on average. Release build, 2 cores.\n")
        print("| path | flows/s | vs flowrec ingest | bytes on disk per flow |")
        print("|---|---:|---:|---:|")
        print("| read + decode only (ceiling) | \(rate(decodeOnly)) | \(String(format: "%.2f", ours / decodeOnly))x | - |")
        print("| SQLite, raw JSON line per row | \(rate(raw)) | \(String(format: "%.2f", ours / raw))x | \(rawBytes / flows) |")
        print("| **flowrec ingest** (decode ‖ write, integer rows + string dictionary) | **\(rate(ours))** | 1.00x | \(storeBytes / flows) |")
        print()
    }

    func timed(_ body: () throws -> Void) throws -> Double {
        let start = monotonicSeconds()
        try body()
        return monotonicSeconds() - start
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
