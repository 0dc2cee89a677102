import StorageKit
import ArgumentParser
import FlowGenerator
import FlowModel
import Forwarders
import FileSource
import Foundation
import ShardStore

/// Sealed size and seal speed, beside the best whole-file compression of the same
/// JSON lines (`zstd -3`, `zstd -19`, not queryable) and a tuned modern ClickHouse
/// MergeTree (chdb) holding the same flows, all measured in the same run.
struct SealBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal", abstract: "Seal speed and bytes per flow, beside zstd and ClickHouse MergeTree.")

    @Option(help: "Generated medium-cluster flows.")
    var flows = 1_000_000

    @Option(help: "Event-time flows per second (with the window, this sets the shard size).")
    var rate = 1000

    @Option(help: "Shard window in minutes (flowrec's default is 60). Larger shards sort more of a conversation's flows side by side, so they compress better.")
    var windowMinutes = 60

    @Flag(help: "Only ingest, seal and print the seal's step times (no baselines, no level table): a quick loop while working on the sealer.")
    var stepsOnly = false

    @Option(help: "Flows per ingest batch. Each batch is one sorted run of the active shard (`SealRun`): a recorder that keeps up with its topic writes small batches, so this shows what the seal's copy costs with many short runs.")
    var batchSize = 20_000

    @Option(help: "Flows given to zstd -19 (it compresses at about 1-2 MB/s; the ratio is what matters).")
    var zstd19Flows = 200_000

    @Flag(help: "With --steps-only: write each batch in arrival order, not as a sorted run (the baseline of `SealRun`).")
    var arrivalOrder = false

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-seal"

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let generated = try workspace.writeGeneratedFlows("flows.jsonl", flows: flows, rate: rate, sampleFlows: zstd19Flows)
        let input = generated.path

        // Ingest, then seal every window at the default level and frame size.
        let storeDir = scratch + "/store"
        var options = ShardStore.Options(windowMs: Int64(windowMinutes) * 60_000, graceMs: 0)
        options.writesSortedRuns = !arrivalOrder
        let store = try ShardStore(directory: storeDir, options: options)
        let batcher = FlowLineBatcher(reader: try LineReader(path: input), sourceName: "file:bench", batchSize: batchSize,
                                      decoder: FlowDecoder())
        batcher.ranksInSealOrder = !arrivalOrder
        try BatchPipeline().run(produce: { try batcher.fill(&$0) }, consume: { _ = try store.append($0) })
        let sealStart = monotonicSeconds()
        let sealed = try store.sealClosedWindows(watermarkMs: .max)
        let sealSeconds = monotonicSeconds() - sealStart
        let sealedRows = sealed.reduce(Int64(0)) { $0 + $1.rows }
        let sealedBytes = sealed.reduce(Int64(0)) { $0 + $1.sealedBytes }
        let compactBytes = sealed.reduce(Int64(0)) { $0 + $1.compactBytes }
        guard sealedRows == flows else { throw ValidationError("sealed \(sealedRows) of \(flows) flows") }
        let steps = sealed.reduce(SealStepTimes()) { $0 + $1.steps }
        if stepsOnly {
            print("\(flows) flows in batches of \(batchSize)\(arrivalOrder ? " (arrival order)" : " (sorted runs)"), \(sealed.count) shards: \(Int(Double(flows) / sealSeconds)) flows/s, \(String(format: "%.1f", Double(sealedBytes) / Double(flows))) bytes per flow")
            printStepTable(steps, shards: sealed.count, sealSeconds: sealSeconds)
            try printChecksumReads(store: store, shard: try requireShard(sealed.max { $0.rows < $1.rows }, store: store))
            return
        }

        // Level and frame-size trade-off on the largest shard's compact copy.
        let largest = try requireShard(sealed.max { $0.rows < $1.rows }, store: store)
        let compact = scratch + "/compact.sqlite"
        try SeekableZstd.decompress(source: storeDir + "/" + largest.path, destination: compact)
        var tradeOff: [(Int32, Int, Double, Double)] = []
        for (level, frame) in [(1, 1 << 20), (3, 1 << 20), (6, 1 << 20), (9, 1 << 20), (19, 1 << 20), (19, 4 << 20)] as [(Int32, Int)] {
            let out = scratch + "/tradeoff.zst"
            let t = monotonicSeconds()
            try SeekableZstd.compress(source: compact, destination: out, level: level, frameSize: frame)
            let seconds = monotonicSeconds() - t
            tradeOff.append((level, frame, Double(fileBytes(out)) / Double(largest.rowCount), Double(largest.rowCount) / seconds))
        }

        // What the traffic series (a projection for the console's topology) costs after
        // deep compaction: the same copy without it, at the deep-compaction setting.
        let rowsOnly = scratch + "/rows-only.sqlite"
        try? FileManager.default.removeItem(atPath: rowsOnly)
        try FileManager.default.copyItem(atPath: compact, toPath: rowsOnly)
        try SQLiteDatabase(path: rowsOnly).execute("""
            DROP TABLE IF EXISTS series_data; DROP TABLE IF EXISTS series_groups;
            DELETE FROM meta WHERE key = '\(TrafficSeries.metaKey)'; VACUUM;
            """)
        try SeekableZstd.compress(source: rowsOnly, destination: scratch + "/rows-only.zst", level: 19, frameSize: 4 << 20)
        let deepRowsOnly = Double(fileBytes(scratch + "/rows-only.zst")) / Double(largest.rowCount)

        // Baselines on the same JSON lines.
        let inputBytes = fileBytes(input)
        let zstd3 = try shellSize("zstd -3 -T1 -q -c \(input)")
        let zstd19 = try shellSize("zstd -19 -T1 -q -c \(generated.samplePath)")
        let sampleFlows = min(zstd19Flows, flows)
        let mergeTree = try chdbMergeTreeBytes(input: input)

        let perFlow = { (bytes: Int64, n: Int) in Double(bytes) / Double(n) }
        let ours = perFlow(sealedBytes, flows)
        print("## Sealing: compact copy + seekable zstd\n")
        print("Input: \(flows) generated medium-cluster flows (\(inputBytes / Int64(flows)) bytes of JSON each), \(windowMinutes)-minute windows at \(rate) flows/s of event time (\(sealed.count) shards), sealed at zstd level \(ShardStore.Options.defaultSealLevel) (flowrec's default) with 1 MiB frames.\n")
        print("| store | bytes per flow | vs flowrec sealed | queryable |")
        print("|---|---:|---:|---|")
        print("| JSON lines | \(inputBytes / Int64(flows)) | \(String(format: "%.1f", Double(inputBytes) / Double(flows) / ours))x | no |")
        print("| active shard (before sealing, compact copy uncompressed) | \(String(format: "%.1f", perFlow(compactBytes, flows))) | \(String(format: "%.1f", perFlow(compactBytes, flows) / ours))x | yes |")
        print("| `zstd -3` of the JSON lines | \(String(format: "%.1f", perFlow(zstd3, flows))) | \(String(format: "%.2f", perFlow(zstd3, flows) / ours))x | no |")
        print("| `zstd -19` of the JSON lines (first \(sampleFlows) flows) | \(String(format: "%.1f", perFlow(zstd19, sampleFlows))) | \(String(format: "%.2f", perFlow(zstd19, sampleFlows) / ours))x | no |")
        if let mergeTree {
            print("| ClickHouse 26 MergeTree (chdb, modern DDL, OPTIMIZE FINAL) | \(String(format: "%.1f", perFlow(mergeTree, flows))) | \(String(format: "%.2f", perFlow(mergeTree, flows) / ours))x | yes |")
        } else {
            print("| ClickHouse MergeTree (chdb) | not measured: chdb unavailable | | |")
        }
        print("| **flowrec sealed (level \(ShardStore.Options.defaultSealLevel), 1 MiB frames)** | **\(String(format: "%.1f", ours))** | 1.00x | yes, in place |")
        print()
        print("Seal speed: \(Int(Double(flows) / sealSeconds)) flows/s on one core (compact copy, compress, verify, rename), \(String(format: "%.1f", sealSeconds)) s for \(sealed.count) shards.\n")
        printStepTable(steps, shards: sealed.count, sealSeconds: sealSeconds)
        print()
        try printChecksumReads(store: store, shard: largest)
        print("Level and frame size on the largest shard (\(largest.rowCount) flows):\n")
        print("| zstd level | frame | bytes per flow | compress flows/s |")
        print("|---:|---:|---:|---:|")
        for (level, frame, bpf, speed) in tradeOff {
            print("| \(level) | \(frame >> 20) MiB | \(String(format: "%.1f", bpf)) | \(Int(speed)) |")
        }
        print()
        // The deep-compaction targets, stated against the baselines of this run.
        let deep = tradeOff.filter { $0.0 == 19 }.map(\.2).min() ?? .nan
        var verdicts = ["smaller than `zstd -19` of the JSON lines: \(String(format: "%.1f", deep)) vs \(String(format: "%.1f", perFlow(zstd19, sampleFlows))) bytes per flow (\(String(format: "%.2f", deep / perFlow(zstd19, sampleFlows)))x)"]
        if let mergeTree {
            verdicts.append("ClickHouse MergeTree: \(String(format: "%.2f", deep / perFlow(mergeTree, flows)))x its size (target: within 1.25x)")
        }
        print("After deep compaction (level 19, best frame size above): " + verdicts.joined(separator: "; ") + ".\n")
        var rowsOnlyLine = "The same shard without its traffic series (rows, strings and skip index alone; level 19, 4 MiB frames): \(String(format: "%.1f", deepRowsOnly)) bytes per flow"
        if let mergeTree { rowsOnlyLine += ", \(String(format: "%.2f", deepRowsOnly / perFlow(mergeTree, flows)))x MergeTree's" }
        print(rowsOnlyLine + "; the series costs \(String(format: "%.1f", deep - deepRowsOnly)) bytes per flow there.\n")
    }

    private func printStepTable(_ steps: SealStepTimes, shards: Int, sealSeconds: Double) {
        print("| seal step (all \(shards) shards) | seconds | share |")
        print("|---|---:|---:|")
        for (name, seconds) in [("compact copy (rows ordered by endpoint pair, then time)", steps.compactCopy),
                                ("seekable zstd compression", steps.compress),
                                ("`PRAGMA quick_check` through the VFS", steps.quickCheck),
                                ("content checksum through the VFS (aggregating rollups on the way)", steps.verifyChecksum),
                                ("writing minute, hour and day rollups", steps.rollups),
                                ("rename, fsync, remove active shard", steps.rename)] {
            print("| \(name) | \(String(format: "%.2f", seconds)) | \(String(format: "%.0f", 100 * seconds / sealSeconds))% |")
        }
    }

    private func shellSize(_ command: String) throws -> Int64 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command + " | wc -c"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard let n = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ValidationError("\(command) failed") }
        return n
    }

    /// Loads the JSON lines into a modern MergeTree in chdb and returns its active parts' size.
    private func chdbMergeTreeBytes(input: String) throws -> Int64? {
        let ddl = ClickHouseSchema.createTable(database: "netobserv", table: "flows", dialect: .modern)
        let script = """
            import sys, chdb.session as cs
            s = cs.Session(sys.argv[1])
            s.query("CREATE DATABASE netobserv")
            s.query(sys.stdin.read())
            s.query("INSERT INTO netobserv.flows SELECT * EXCEPT (_extras, _shard), NULL, '' FROM file('" + sys.argv[2] + "', JSONEachRow) "
                    "SETTINGS input_format_json_read_arrays_as_strings=1, input_format_json_read_objects_as_strings=1, "
                    "input_format_json_read_numbers_as_strings=1, input_format_skip_unknown_fields=1")
            s.query("OPTIMIZE TABLE netobserv.flows FINAL")
            print(s.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE database='netobserv' AND table='flows' AND active", "CSV"), end="")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, scratch + "/chdb", input]
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = FileHandle.nullDevice
        try p.run()
        stdin.fileHandleForWriting.write(Data(ddl.utf8))
        try stdin.fileHandleForWriting.close()
        let text = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) : nil
    }
}

func fileBytes(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
}

/// The store's row for a seal summary (its path), or a clear failure.
/// The verification's content checksum of one sealed shard, read through SQLite (as
/// before 2026-12-06) and from its pages (`TableCursor`), best of 3 each, its frames
/// cached by a first read.
private func printChecksumReads(store: ShardStore, shard: ShardRecord) throws {
    var best: [Bool: Double] = [:]
    var sums: Set<UInt64> = []
    for round in 0..<4 {
        for direct in [false, true] {
            let reader = try store.reader(for: shard.id)
            reader.readsPagesDirectly = direct
            let t = monotonicSeconds()
            sums.insert(try reader.contentChecksum().checksum)
            if round > 0 { best[direct] = min(best[direct] ?? .infinity, monotonicSeconds() - t) }
        }
    }
    guard sums.count == 1 else { throw ValidationError("the two reads of \(shard.id) disagree on its checksum") }
    let rows = Double(shard.rowCount)
    print("""
        Content checksum of the largest sealed shard (\(shard.rowCount) flows, frames cached), best of 3: through SQLite \
        \(Int(rows / best[false]!)) flows/s, from its pages (`TableCursor`) \(Int(rows / best[true]!)) flows/s \
        (\(String(format: "%.2fx", best[false]! / best[true]!))).

        """)
}

func requireShard(_ summary: ShardStore.SealSummary?, store: ShardStore) throws -> ShardRecord {
    guard let summary, let info = try store.shards().first(where: { $0.id == summary.id }) else {
        throw ValidationError("no shard was sealed")
    }
    return info
}

/// A scratch directory for one benchmark, emptied first and removed by `remove()`.
struct BenchScratch {
    let path: String

    init(_ path: String) throws {
        self.path = path
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    struct GeneratedFile {
        let path: String
        /// The first `sampleFlows` lines alone (for baselines too slow for the whole input).
        let samplePath: String
        let bytes: Int64
    }

    /// Streams `flows` generated medium-cluster flows as JSON lines to `name` (10M flows
    /// are ~10 GB: written in 8 MiB chunks, never held in memory).
    func writeGeneratedFlows(_ name: String, flows: Int, rate: Int? = nil, sampleFlows: Int = 0) throws -> GeneratedFile {
        var options = GeneratorOptions()
        options.flowsPerSecond = rate
        var generator = FlowGenerator(options: options)
        let file = path + "/" + name
        let sample = path + "/sample-" + name
        for created in [file, sample] {
            guard FileManager.default.createFile(atPath: created, contents: nil) else { throw ValidationError("cannot create \(created)") }
        }
        guard let output = FileHandle(forWritingAtPath: file), let sampleOutput = FileHandle(forWritingAtPath: sample) else {
            throw ValidationError("cannot write \(file)")
        }
        defer { try? output.close(); try? sampleOutput.close() }
        var text: [UInt8] = []
        text.reserveCapacity(9 << 20)
        var total: Int64 = 0
        for i in 0..<flows {
            let start = text.count
            generator.nextRecord(into: &text)
            text.append(UInt8(ascii: "\n"))
            if i < sampleFlows { try sampleOutput.write(contentsOf: text[start...]) }
            if text.count >= 8 << 20 || i == flows - 1 {
                try output.write(contentsOf: text)
                total += Int64(text.count)
                text.removeAll(keepingCapacity: true)
            }
        }
        return GeneratedFile(path: file, samplePath: sample, bytes: total)
    }
}
