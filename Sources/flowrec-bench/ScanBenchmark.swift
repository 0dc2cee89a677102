import StorageKit
import ArgumentParser
import FlowGenerator
import FlowModel
import Forwarders
import FlowrecTesting
import Foundation
import Query
import ShardStore

/// Queries over 30 days of hourly shards: a selective filter scanned over every shard
/// (`flowrec sql`), and the time to the first row of `query --limit 20`; beside the same
/// questions asked of modern ClickHouse (chdb, in process) over the same rows, loaded
/// into the modern MergeTree table, in the same run.
struct ScanBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan", abstract: "Filtered scan rate and time to first row over 30 days of shards, beside chdb.")

    @Option(help: "Days of hourly shards.")
    var days = 30

    @Option(help: "Flows per second of event time (30 days at 1/s is 2.6M flows in 720 shards).")
    var rate = 1

    @Option(help: "Seconds of event time of the dense data set (one busy hour by default).")
    var denseSeconds = 3600

    @Option(help: "Flows per second of the dense data set.")
    var denseRate = 1000

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-scan"

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let store = try Self.generatedStore(at: scratch + "/store", seconds: days * 86_400, rate: rate, seed: 11)
        let shards = try store.shards()
        let rows = shards.reduce(Int64(0)) { $0 + $1.rowCount }

        let pair = try Self.selectivePair(store, rows: rows)
        let filter = "SrcK8S_Namespace = '\(pair.0)' AND DstK8S_Namespace = '\(pair.1)'"
        let scanSQL = "SELECT count(*), sum(Bytes) FROM flows WHERE \(filter)"
        // flowrec sql: every shard opened and scanned.
        let (scanSeconds, scanAnswer, opened) = try Self.timedSQL(store, scanSQL)

        // The same filter over denser shards (one hour of a busy cluster in one shard):
        // per-shard costs (opening, the first frames) no longer dominate.
        let dense = try Self.generatedStore(at: scratch + "/dense", seconds: denseSeconds, rate: denseRate, seed: 12)
        let denseRows = try dense.shards().reduce(Int64(0)) { $0 + $1.rowCount }
        let densePair = try Self.selectivePair(dense, rows: denseRows)
        let denseFilter = "SrcK8S_Namespace = '\(densePair.0)' AND DstK8S_Namespace = '\(densePair.1)'"
        let denseScan = try Self.timedSQL(dense, "SELECT count(*), sum(Bytes) FROM flows WHERE \(denseFilter)")

        // query --limit 20 over the whole range: time to the first row and to all 20 (best of 3).
        let from = try requireValue(shards.compactMap(\.minTimeMs).min()), to = try requireValue(shards.compactMap(\.maxTimeMs).max()) + 1
        var firstRow = Double.infinity, twenty = Double.infinity
        for _ in 0..<3 {
            var query = FlowQuery()
            query.fromMs = from
            query.toMs = to
            query.whereSQL = filter
            query.limit = 20
            query.fields = ["TimeFlowEndMs", "SrcAddr", "DstAddr", "Bytes"]
            var seen = 0
            let t = monotonicSeconds()
            try FlowQueryRunner(store: store).run(query) { _ in
                if seen == 0 { firstRow = min(firstRow, monotonicSeconds() - t) }
                seen += 1
                return true
            }
            twenty = min(twenty, monotonicSeconds() - t)
        }

        // The same rows in chdb, the same two questions.
        let chdb = try Self.chdbAnswers(store: store, scratch: scratch, queries: [
            "SELECT count(), sum(Bytes) FROM d.flows WHERE " + filter,
            "SELECT TimeFlowEndMs, SrcAddr, DstAddr, Bytes FROM d.flows WHERE " + filter + " ORDER BY TimeFlowEndMs LIMIT 20",
        ])
        let chScan = chdb.seconds[0], chLimit = chdb.seconds[1], chAnswer = chdb.answers[0]
        let result: [String: Any] = ["bytes": chdb.bytes]
        let flowrecAnswer = scanAnswer.map { value -> String in
            if case .integer(let v) = value { return String(v) }
            return "?"
        }.joined(separator: "\t")
        guard flowrecAnswer == chAnswer else { throw ValidationError("flowrec (\(flowrecAnswer)) and chdb (\(chAnswer)) disagree") }

        let storeBytes = shards.reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        print("## Queries over 30 days of shards, beside ClickHouse (chdb)\n")
        print("\(rows) generated medium-cluster flows over \(days) days (\(rate) flow/s of event time) in \(shards.count) hourly shards (\(shards.filter { $0.state == .sealed }.count) sealed, read in place; \(storeBytes / 1_048_576) MiB). The same rows loaded into chdb's modern MergeTree table (ClickHouse in process, `ORDER BY` namespaces, owners, time; \((result["bytes"] as? Int ?? 0) / 1_048_576) MiB). Filter: `\(filter)` (\(pair.2) flows, \(String(format: "%.2f", Double(pair.2) * 100 / Double(rows)))%). Best of 3.\n")
        print("| question | flowrec | chdb | flowrec rows scanned/s |")
        print("|---|---:|---:|---:|")
        print("| `SELECT count(*), sum(Bytes) ... WHERE <pair>` over every shard (`flowrec sql`, \(opened) shards opened) | \(String(format: "%.2f", scanSeconds)) s | \(String(format: "%.3f", chScan)) s | **\(Int(Double(rows) / scanSeconds))** |")
        print("| same filter over \(denseRows) flows in \(try dense.shards().count) dense hourly shards (\(denseRate) flows/s), flowrec only | \(String(format: "%.2f", denseScan.seconds)) s | | **\(Int(Double(denseRows) / denseScan.seconds))** |")
        print("| `query --where <pair> --limit 20` over the \(days) days: first row | \(String(format: "%.3f", firstRow)) s | — | |")
        print("| same: all 20 rows | \(String(format: "%.3f", twenty)) s | \(String(format: "%.3f", chLimit)) s (ORDER BY TimeFlowEndMs LIMIT 20) | |")
        print()
        print("Both answered \(chAnswer.replacingOccurrences(of: "\t", with: " flows, ")) bytes. Target: 5,000,000 flows/s scanned for a selective filter.\n")
    }

    /// The store's sealed rows loaded into chdb's modern MergeTree table (Native blocks
    /// from the forwarder's encoder, then OPTIMIZE FINAL), and each of `queries` asked
    /// of it: the answers as TSV, the best of 3 times, and the table's bytes on disk.
    static func chdbAnswers(store: ShardStore, scratch: String, queries: [String]) throws -> (answers: [String], seconds: [Double], bytes: Int) {
        let (session, bytes) = try loadedChdb(store: store, scratch: scratch)
        defer { session.close() }
        let answers = try queries.map { try session.query($0, repeats: 3) }
        return (answers.map(\.tsv), answers.map(\.seconds), bytes)
    }

    /// A chdb session holding the store's sealed rows in database `d`, table `flows` (the
    /// modern MergeTree DDL, after OPTIMIZE FINAL), and the table's bytes on disk.
    static func loadedChdb(store: ShardStore, scratch: String) throws -> (session: ChdbSession, bytes: Int) {
        let encoder = try ClickHouseBlockEncoder(format: .native, dialect: .modern)
        var files: [String] = []
        let shards = try store.shards()
        for shard in shards {
            let reader = try store.reader(for: shard.id)
            guard let range = try reader.rowIDRange() else { continue }
            try encoder.append(rowsOf: reader, rowIDs: range, orderedBy: [], shard: Array(shard.id.description.utf8))
            if encoder.rowCount >= 200_000 || shard.id == shards.last?.id {
                let path = scratch + "/chunk-\(files.count).native"
                try Data(try encoder.finish()).write(to: URL(fileURLWithPath: path))
                files.append(path)
            }
        }
        let session = try ChdbSession()
        try session.query("CREATE DATABASE d")
        try session.query(ClickHouseSchema.createTable(database: "d", table: "flows", dialect: .modern))
        for file in files {
            try session.query("INSERT INTO d.flows (\(encoder.columnList)) FROM INFILE '\(file)' SETTINGS low_cardinality_allow_in_native_format = 0 FORMAT Native")
        }
        try session.query("OPTIMIZE TABLE d.flows FINAL")
        let size = try session.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'd' AND active").tsv
        guard let bytes = Int(size) else { throw ValidationError("chdb gave no table size: \(size.prefix(200))") }
        return (session, bytes)
    }

    /// `seconds` of event time at `rate` flows/s, ingested into hourly shards, all sealed.
    static func generatedStore(at path: String, seconds: Int, rate: Int, seed: UInt64) throws -> ShardStore {
        let flows = seconds * rate
        var options = GeneratorOptions()
        options.flowsPerSecond = rate
        options.seed = seed
        var generator = FlowGenerator(options: options)
        let store = try ShardStore(directory: path, options: .init(windowMs: 3_600_000, graceMs: 0))
        let decoder = FlowDecoder()
        var produced = 0
        var line: [UInt8] = []
        while produced < flows {
            var batch = IngestBatch()
            let source = batch.sourceIndex("file:bench")
            for _ in 0..<min(50_000, flows - produced) {
                line.removeAll(keepingCapacity: true)
                generator.nextRecord(into: &line)
                produced += 1
                try batch.appendFlow(at: SourcePosition(source: source, partition: 0, position: Int64(produced))) { (flow: inout Flow) throws(FlowDecodingError) in
                    try decoder.decode(line, into: &flow)
                }
            }
            try store.append(batch)
            try store.sealClosedWindows()
        }
        try store.sealClosedWindows(watermarkMs: .max)
        return store
    }

    /// The most selective-but-not-rare namespace pair: the one closest to 1% of the flows.
    static func selectivePair(_ store: ShardStore, rows: Int64) throws -> (String, String, Int64) {
        var pairs: [(String, String, Int64)] = []
        try SQLQuery(store: store).run("""
            SELECT SrcK8S_Namespace, DstK8S_Namespace, count(*) FROM flows
            WHERE SrcK8S_Namespace IS NOT NULL AND DstK8S_Namespace IS NOT NULL GROUP BY 1, 2
            """, columns: { _ in }) { values in
            if case .text(let a) = values[0], case .text(let b) = values[1], case .integer(let n) = values[2] { pairs.append((a, b, n)) }
            return true
        }
        guard let pair = pairs.min(by: { abs(Double($0.2) / Double(rows) - 0.01) < abs(Double($1.2) / Double(rows) - 0.01) }) else {
            throw ValidationError("no namespace pair in the data")
        }
        return pair
    }

    /// Best of 3 of a `flowrec sql` statement: seconds, the answer, shards opened.
    static func timedSQL(_ store: ShardStore, _ sql: String) throws -> (seconds: Double, answer: [QueryValue], shards: Int) {
        var best = Double.infinity
        var answer: [QueryValue] = []
        var opened = 0
        for _ in 0..<3 {
            let t = monotonicSeconds()
            opened = try SQLQuery(store: store).run(sql, columns: { _ in }) { answer = $0; return true }
            best = min(best, monotonicSeconds() - t)
        }
        return (best, answer, opened)
    }

    private func requireValue<T>(_ value: T?) throws -> T {
        guard let value else { throw ValidationError("the store is empty") }
        return value
    }
}
