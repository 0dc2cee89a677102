import StorageKit
import ArgumentParser
import FlowModel
import FileSource
import Foundation
import Query
import ShardStore

/// `flowrec export` of sealed shards: rate and file size of each format beside the
/// SQLite export (the baseline, the format analysts had), and how long pandas takes to
/// load the SQLite file and the Parquet one.
struct ExportBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export rate and size: Parquet and JSON lines beside the SQLite export; pandas load times.")

    @Option(help: "Generated medium-cluster flows to store and export (at its 5,000 flows/s, in 10-minute shards).")
    var flows = 1_000_000

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-export"

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let generated = try workspace.writeGeneratedFlows("flows.jsonl", flows: flows, rate: 5000)
        let store = try ShardStore(directory: scratch + "/data", options: .init(windowMs: 600_000, graceMs: 0))
        let batcher = FlowLineBatcher(reader: try LineReader(path: generated.path), sourceName: "file:bench", batchSize: 20_000,
                                      decoder: FlowDecoder())
        try BatchPipeline().run(produce: { try batcher.fill(&$0) }, consume: { _ = try store.append($0) })
        try store.sealClosedWindows(watermarkMs: .max)
        let shards = try store.shards()
        let stored = shards.reduce(Int64(0)) { $0 + $1.rowCount }
        let exporter = FlowExporter(store: store)

        struct Row { let name: String; let seconds: Double; let bytes: Int64; let rows: Int }
        var rows: [Row] = []
        func measure(_ name: String, _ file: String, _ body: () throws -> Int) throws {
            let t = monotonicSeconds()
            let count = try body()
            let seconds = monotonicSeconds() - t
            let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0
            guard Int64(count) == stored else { throw ValidationError("\(name) exported \(count) of \(stored) flows") }
            rows.append(Row(name: name, seconds: seconds, bytes: size, rows: count))
        }
        let sqlite = scratch + "/flows.sqlite", parquet = scratch + "/flows.parquet", narrow = scratch + "/narrow.parquet"
        let jsonl = scratch + "/flows.jsonl.out"
        let narrowFields = ["TimeFlowEndMs", "SrcK8S_Namespace", "DstK8S_Namespace", "DstPort", "Bytes"]
        try measure("sqlite (baseline)", sqlite) { try exporter.exportSQLite(to: sqlite, fromMs: nil, toMs: nil) }
        try measure("parquet, every field", parquet) { try exporter.exportParquet(to: parquet, fromMs: nil, toMs: nil).rows }
        try measure("parquet, 5 fields", narrow) { try exporter.exportParquet(to: narrow, fromMs: nil, toMs: nil, fields: narrowFields).rows }
        /// `path` created and opened for `body`, closed after it.
        func writing(_ path: String, _ body: (FileHandle) throws -> Int) throws -> Int {
            guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("cannot create \(path)")
            }
            defer { try? out.close() }
            return try body(out)
        }
        try measure("jsonl", jsonl) { try writing(jsonl) { out in
            var buffer: [UInt8] = []
            let n = try exporter.exportJSONLines(fromMs: nil, toMs: nil) { line in
                buffer += line
                if buffer.count >= 8 << 20 { try out.write(contentsOf: buffer); buffer.removeAll(keepingCapacity: true) }
            }
            try out.write(contentsOf: buffer)
            return n
        } }
        let csv = scratch + "/flows.csv"
        try measure("csv, every field", csv) {
            try writing(csv) { out in try exporter.exportCSV(fromMs: nil, toMs: nil) { try out.write(contentsOf: $0) } }
        }

        let base = rows[0]
        let sealedBytes = shards.reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        print("## Export: Parquet, JSON lines, CSV and SQLite\n")
        print("\(stored) generated medium-cluster flows in \(shards.count) sealed 10-minute shards (\(String(format: "%.1f", Double(sealedBytes) / 1_048_576)) MiB on disk), exported whole by `FlowExporter` (what `flowrec export` runs).\n")
        print("| format | seconds | flows/s | vs sqlite | file MiB | bytes/flow | size vs sqlite |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row in rows {
            let rate = Double(row.rows) / row.seconds
            print("| \(row.name) | \(String(format: "%.2f", row.seconds)) | \(String(format: "%.0f", rate)) | \(String(format: "%.2f", base.seconds / row.seconds))x | \(String(format: "%.1f", Double(row.bytes) / 1_048_576)) | \(String(format: "%.1f", Double(row.bytes) / Double(row.rows))) | \(String(format: "%.3f", Double(row.bytes) / Double(base.bytes)))x |")
        }
        print()

        // What an analyst then waits for: pandas loading each file.
        let script = """
        import sys, time, sqlite3
        import pandas as pd
        t = time.perf_counter(); df = pd.read_sql("SELECT * FROM flows", sqlite3.connect(sys.argv[1])); a = time.perf_counter() - t
        t = time.perf_counter(); dp = pd.read_parquet(sys.argv[2], dtype_backend="pyarrow"); b = time.perf_counter() - t
        t = time.perf_counter(); dn = pd.read_parquet(sys.argv[2], dtype_backend="pyarrow", columns=["SrcK8S_Namespace", "DstK8S_Namespace", "Bytes"]); c = time.perf_counter() - t
        assert len(df) == len(dp) == len(dn)
        print(f"{a:.2f} {b:.2f} {c:.2f} {df.memory_usage(deep=True).sum() / 1048576:.0f} {dp.memory_usage(deep=True).sum() / 1048576:.0f} {df['DstPort'].dtype} {dp['DstPort'].dtype}")
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, sqlite, parquet]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let words = output.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        if process.terminationStatus == 0, words.count == 7, let a = Double(words[0]), let b = Double(words[1]), let c = Double(words[2]) {
            print("Loading into pandas (\(stored) rows): the SQLite export with `read_sql` takes \(words[0]) s (\(words[3]) MiB in memory, DstPort as \(words[5])); the Parquet export with `read_parquet(dtype_backend=\"pyarrow\")` \(words[1]) s (\(String(format: "%.0f", a / b))x faster, \(words[4]) MiB, DstPort as \(words[6])); three columns of it \(words[2]) s (\(String(format: "%.0f", a / c))x).\n")
        } else {
            print("pandas was not available for the load comparison (run scripts/setup-deps).\n")
        }
    }
}
