import ArgumentParser
import FlowGenerator
import FlowModel
import FlowrecTesting
import Forwarders
import Foundation
import Query
import ShardStore
import StorageKit

/// Needle questions over weeks of flows, before and after merging the hourly shards into
/// daily ones, beside modern ClickHouse (chdb, MergeTree with the same rows) in the same
/// run: a namespace pair, one address, one port, one pod, and the console's flow-table
/// question (the newest 100 flows of one pod over 7 days). Also the merge's own cost,
/// ingest beside a merge, and bytes per flow after merging.
struct LongRangeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "longrange", abstract: "Needle queries over 30 days, hourly then merged daily, beside chdb; the merge's cost.")

    @Option(help: "Days of hourly shards.")
    var days = 30

    @Option(help: "Flows per second of event time.")
    var rate = 1

    @Option(help: "Flows ingested alone, then beside a merge.")
    var ingestFlows = 400_000

    @Option(help: "Flows given to zstd -19 (it compresses at 1-2 MB/s).")
    var zstd19Flows = 200_000

    @Option(help: "Rounds of the merged store's questions, each timing flowrec then chdb back to back; the ratio reported is the median of the rounds' ratios.")
    var rounds = 5

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-longrange"

    struct Question {
        let name: String
        let where_: String
        let sql: String
        let chdb: String
    }

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let store = try ScanBenchmark.generatedStore(at: scratch + "/store", seconds: days * 86_400, rate: rate, seed: 11)
        let shards = try store.shards()
        let rows = shards.reduce(Int64(0)) { $0 + $1.rowCount }
        let unmergedBytes = shards.reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        let end = shards.compactMap(\.maxTimeMs).max() ?? 0

        // Needles: the namespace pair nearest 1% of the flows, an address, a port and a pod
        // nearest 0.1%.
        let pair = try ScanBenchmark.selectivePair(store, rows: rows)
        let address = try Self.needle(store, "DstAddr", share: 0.001, rows: rows)
        let port = try Self.needle(store, "DstPort", share: 0.001, rows: rows)
        let pod = try Self.needle(store, "SrcK8S_Name", share: 0.001, rows: rows)
        let weekAgo = end + 1 - 7 * 86_400_000
        let questions = [
            ("namespace pair, count and bytes", "SrcK8S_Namespace = '\(pair.0)' AND DstK8S_Namespace = '\(pair.1)'"),
            ("one address (DstAddr)", "DstAddr = '\(address.0)'"),
            ("one port (DstPort)", "DstPort = \(port.0)"),
            ("one pod (SrcK8S_Name)", "SrcK8S_Name = '\(pod.0)'"),
        ].map { name, filter in
            Question(name: name, where_: filter, sql: "SELECT count(*), sum(Bytes) FROM flows WHERE \(filter)",
                     chdb: "SELECT count(), sum(Bytes) FROM d.flows WHERE \(filter)")
        } + [Question(
            name: "newest 100 flows of one pod, last 7 days", where_: "SrcK8S_Name = '\(pod.0)'",
            sql: "SELECT TimeFlowEndMs, SrcAddr, DstAddr, Bytes FROM flows WHERE SrcK8S_Name = '\(pod.0)' AND TimeFlowEndMs >= \(weekAgo) ORDER BY TimeFlowEndMs DESC, SrcAddr, DstAddr, Bytes LIMIT 100",
            chdb: "SELECT TimeFlowEndMs, SrcAddr, DstAddr, Bytes FROM d.flows WHERE SrcK8S_Name = '\(pod.0)' AND TimeFlowEndMs >= \(weekAgo) ORDER BY TimeFlowEndMs DESC, SrcAddr, DstAddr, Bytes LIMIT 100")]

        let hourly = try questions.map { try Self.timed(store, $0.sql) }

        // A copy of the hourly store, merged while an ingest runs (below).
        try FileManager.default.copyItem(atPath: scratch + "/store", toPath: scratch + "/copy")

        // Merge the hourly shards into days, at the compaction level.
        var policy = MergePolicy(windowMs: 86_400_000, maxRows: 50_000_000, level: 19)
        policy.sourceGraceMs = 0
        let cpuBefore = cpuSeconds(), wallBefore = monotonicSeconds()
        let merges = try store.mergeSealedShards(policy)
        let mergeCPU = cpuSeconds() - cpuBefore, mergeWall = monotonicSeconds() - wallBefore
        let merged = try store.shards()
        let mergedBytes = merged.reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        // chdb: the same rows, the same questions, asked in the same rounds as flowrec's
        // (flowrec best of 3, then chdb best of 3, per question, `rounds` times).
        let (chdb, chdbBytes) = try ScanBenchmark.loadedChdb(store: store, scratch: scratch)
        defer { chdb.close() }
        let daily = try questions.map { try Self.paired(store, $0, with: chdb, rounds: rounds) }
        // The same merged days read through their rows only (as before column blocks).
        let dailyRows = try questions.map { try Self.timed(store, $0.sql, readsColumnBlocks: false) }
        let blocksSample = try Self.columnBlocksCost(store, scratch: scratch)

        // Ingest alone, then beside a merge of the copy (SCHED_IDLE, as in flowrec record).
        let alone = try Self.ingestRate(flows: ingestFlows, at: scratch + "/ingest-alone")
        let merger = BackgroundMerger(directory: scratch + "/copy", policy: policy, windowMs: 3_600_000, graceMs: 0, intervalSeconds: 3600)
        merger.start()
        let beside = try Self.ingestRate(flows: ingestFlows, at: scratch + "/ingest-beside")
        let mergesDuringIngest = merger.merged
        merger.stop()

        // Every answer, before and after merging, equals chdb's.
        for (i, question) in questions.enumerated() {
            let expected = daily[i].chdbAnswer
            for (answer, what) in [(daily[i].answer, "merged"), (dailyRows[i].answer, "merged rows only"), (hourly[i].answer, "hourly")]
            where Self.text(answer) != expected {
                throw ValidationError("\(question.name): flowrec, \(what) (\(Self.text(answer))) and chdb (\(expected)) disagree")
            }
        }

        // zstd -19 of the JSON lines, on a sample.
        let sample = try workspace.writeGeneratedFlows("sample.jsonl", flows: zstd19Flows, rate: rate).path
        let zstd19 = try Self.shellSize("zstd -19 -T1 -q -c \(sample)")

        print("## Long ranges: merged shards, skip indexes, beside ClickHouse (chdb)\n")
        print("\(rows) generated medium-cluster flows over \(days) days (\(rate) flow/s of event time): \(shards.count) hourly sealed shards, then merged into \(merged.count) (\(merges.count) merges of a day each). The same rows in chdb's modern MergeTree table (`ORDER BY` namespaces, owners, time; OPTIMIZE FINAL). Every answer is checked equal to chdb's. `flowrec sql` through the multi-shard table with the skip index. Each time is a best of 3; on the merged store flowrec and chdb are timed back to back, per question, in \(rounds) rounds: their columns give the median of the rounds, and \"merged vs chdb\" the median of the rounds' ratios (their range in brackets).\n")
        print("| question | flowrec, hourly shards | flowrec, merged daily | merged daily, rows only (no column blocks) | chdb | merged vs chdb | shards opened (merged) | granules read (merged; from column blocks) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for (i, q) in questions.enumerated() {
            let merged = daily[i], plan = merged.plan
            let ratio = ratioWithRange(merged.ratios)
            print("| \(q.name) | \(Self.ms(hourly[i].seconds)) | **\(Self.ms(median(merged.flowrecSeconds)))** | \(Self.ms(dailyRows[i].seconds)) | \(Self.ms(median(merged.chdbSeconds))) | **\(ratio)** | \(plan.shardsOpened) of \(plan.shardsInRange) | \(plan.granulesRead) of \(plan.granules); \(plan.granulesFromColumnBlocks) |")
        }
        print()
        print("Filters: pair `\(questions[0].where_)` (\(pair.2) flows), address `\(address.0)` (\(address.1)), port \(port.0) (\(port.1)), pod `\(pod.0)` (\(pod.1)). Targets: needle counts within 2x of chdb, the flow-table question within 100 ms.\n")
        let zstdPerFlow = Double(zstd19) / Double(zstd19Flows)
        print("| store | bytes per flow | vs MergeTree |")
        print("|---|---:|---:|")
        print("| flowrec, hourly shards at seal (level \(ShardStore.Options.defaultSealLevel)) | \(String(format: "%.1f", Double(unmergedBytes) / Double(rows))) | \(String(format: "%.2f", Double(unmergedBytes) / Double(chdbBytes)))x |")
        print("| **flowrec, merged daily (level 19)** | **\(String(format: "%.1f", Double(mergedBytes) / Double(rows)))** | \(String(format: "%.2f", Double(mergedBytes) / Double(chdbBytes)))x |")
        print("| ClickHouse 26 MergeTree (chdb, modern DDL, OPTIMIZE FINAL) | \(String(format: "%.1f", Double(chdbBytes) / Double(rows))) | 1.00x |")
        print("| `zstd -19` of the JSON lines (first \(zstd19Flows) flows) | \(String(format: "%.1f", zstdPerFlow)) | \(String(format: "%.2f", zstdPerFlow * Double(rows) / Double(chdbBytes)))x |")
        print()
        print("Column blocks, measured on one merged day (\(blocksSample.rows) flows, recompressed at level 19 with and without them): \(String(format: "%.1f", blocksSample.with)) bytes per flow with them, \(String(format: "%.1f", blocksSample.without)) without; the blocks cost \(String(format: "%.1f", blocksSample.with - blocksSample.without)) bytes per flow (\(String(format: "%.0f", (blocksSample.with / blocksSample.without - 1) * 100))%).\n")
        print("Merging: \(String(format: "%.1f", mergeCPU)) CPU seconds for \(rows) flows (\(String(format: "%.1f", mergeCPU / Double(rows) * 1_000_000)) CPU s per million flows, \(String(format: "%.1f", mergeWall)) s wall, zstd level 19). Ingest of \(ingestFlows) flows (decode + write + background seals): \(Int(alone)) flows/s alone, \(Int(beside)) flows/s while a merge of a copy of the store ran at SCHED_IDLE (\(String(format: "%.2f", beside / alone))x; \(mergesDuringIngest) merges finished meanwhile).\n")
        print("Command: `swift run -c release flowrec-bench longrange --days \(days)` (needs chdb).\n")
    }

    /// The value of `field` whose share of the flows is nearest `share`, and its count.
    static func needle(_ store: ShardStore, _ field: String, share: Double, rows: Int64) throws -> (String, Int64) {
        var values: [(String, Int64)] = []
        try SQLQuery(store: store).run("SELECT \(field), count(*) FROM flows WHERE \(field) IS NOT NULL GROUP BY 1", columns: { _ in }) { row in
            switch (row[0], row[1]) {
            case (.text(let t), .integer(let n)): values.append((t, n))
            case (.integer(let v), .integer(let n)): values.append((String(v), n))
            default: break
            }
            return true
        }
        guard let best = values.min(by: { abs(Double($0.1) / Double(rows) - share) < abs(Double($1.1) / Double(rows) - share) }) else {
            throw ValidationError("no \(field) in the data")
        }
        return best
    }

    /// One merged day (the middle one), recompressed as the merge writes it (level 19,
    /// the frame layout), with and without its column blocks: bytes per flow of each.
    static func columnBlocksCost(_ store: ShardStore, scratch: String) throws -> (rows: Int64, with: Double, without: Double) {
        let merged = try store.shards().filter { $0.id.windowEndMs - $0.id.windowStartMs >= 86_400_000 }
        guard !merged.isEmpty else { throw ValidationError("no merged day to measure column blocks on") }
        let day = merged[merged.count / 2]
        let plain = scratch + "/day.sqlite"
        try SeekableZstd.decompress(source: store.directory.appendingPathComponent(day.path).path, destination: plain)
        func compressed() throws -> Double {
            let boundaries = try FrameLayout.boundaries(of: SQLiteDatabase(path: plain, mode: .readOnly))
            try SeekableZstd.compress(source: plain, destination: plain + ".zst", level: 19, boundaries: boundaries)
            return Double(fileBytes(plain + ".zst")) / Double(day.rowCount)
        }
        let with = try compressed()
        try SQLiteDatabase(path: plain).execute("DROP TABLE column_blocks; DELETE FROM meta WHERE key = '\(ColumnBlocks.metaKey)'; VACUUM;")
        return (day.rowCount, with, try compressed())
    }

    /// One question timed in `rounds` pairs: flowrec (best of 3), then chdb (best of 3).
    struct Paired {
        var flowrecSeconds: [Double] = [], chdbSeconds: [Double] = []
        var answer: [[QueryValue]] = [], chdbAnswer = ""
        var plan = ScanStatistics.Counts()
        var ratios: [Double] { zip(flowrecSeconds, chdbSeconds).map { $0 / $1 } }
    }

    static func paired(_ store: ShardStore, _ question: Question, with chdb: ChdbSession, rounds: Int) throws -> Paired {
        var result = Paired()
        for _ in 0..<max(1, rounds) {
            let mine = try timed(store, question.sql)
            let theirs = try chdb.query(question.chdb, repeats: 3)
            result.flowrecSeconds.append(mine.seconds)
            result.chdbSeconds.append(theirs.seconds)
            (result.answer, result.plan, result.chdbAnswer) = (mine.answer, mine.plan, theirs.tsv)
        }
        return result
    }

    static func timed(_ store: ShardStore, _ sql: String, readsColumnBlocks: Bool = true) throws -> (seconds: Double, answer: [[QueryValue]], plan: ScanStatistics.Counts) {
        var best = Double.infinity
        var answer: [[QueryValue]] = []
        var plan = ScanStatistics.Counts()
        for _ in 0..<3 {
            var rows: [[QueryValue]] = []
            let statistics = ScanStatistics()
            let t = monotonicSeconds()
            var query = SQLQuery(store: store)
            query.readsColumnBlocks = readsColumnBlocks
            try query.run(sql, statistics: statistics, columns: { _ in }) { rows.append($0); return true }
            best = min(best, monotonicSeconds() - t)
            answer = rows
            plan = statistics.current
        }
        return (best, answer, plan)
    }

    /// Rows as chdb's TSV prints them.
    static func text(_ rows: [[QueryValue]]) -> String {
        rows.map { row in
            row.map { value -> String in
                switch value {
                case .integer(let v): return String(v)
                case .text(let t): return t
                case .real(let d): return String(d)
                case .unsigned(let v): return String(v)
                case .null: return "\\N"
                }
            }.joined(separator: "\t")
        }.joined(separator: "\n")
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }

    /// Flows per second of decode + append with background seals, into a fresh store.
    static func ingestRate(flows: Int, at path: String) throws -> Double {
        var options = GeneratorOptions()
        options.flowsPerSecond = 1000
        options.seed = 21
        var generator = FlowGenerator(options: options)
        var lines: [[UInt8]] = []
        lines.reserveCapacity(flows)
        for _ in 0..<flows {
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            lines.append(line)
        }
        let store = try ShardStore(directory: path, options: .init(windowMs: 60_000, graceMs: 0, sealInBackground: true))
        let decoder = FlowDecoder()
        let t = monotonicSeconds()
        var first = 0
        while first < flows {
            let last = min(flows, first + 20_000)
            var batch = IngestBatch()
            let source = batch.sourceIndex("file:bench")
            for i in first..<last {
                batch.decodeFlowOrDeadLetter(lines[i], at: SourcePosition(source: source, partition: 0, position: Int64(i + 1)),
                                             with: decoder, maxPayloadBytes: .max)
            }
            try store.append(batch)
            first = last
        }
        try store.waitForBackgroundSeals()
        let rate = Double(flows) / (monotonicSeconds() - t)
        try store.close()
        return rate
    }

    static func shellSize(_ command: String) throws -> Int64 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command + " | wc -c"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Int64(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
}
