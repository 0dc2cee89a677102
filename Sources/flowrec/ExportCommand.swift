import ArgumentParser
import Forwarders
import Foundation
import Query
import ShardStore

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export flows of a time range as Parquet, JSON lines, CSV, one plain SQLite file, or copies of the sealed shards.",
        discussion: """
        parquet writes one Parquet file (or one per shard with --split) that pyarrow, pandas, polars, DuckDB and ClickHouse read directly: NetObserv's field names, TimeFlowEndMs and TimeFlowStartMs as UTC timestamps, counters as 64-bit integers, names as dictionary-encoded strings, Interfaces and Flags as lists of strings, IfDirections as a list of integers, zstd-compressed row groups (--row-group-rows), the flows in time order, flowrec's schema version and the range in the footer. Unknown fields are in _extras, one JSON object per flow; a value with no faithful form in its typed column (a non-integer in IfDirections) is written as null, counted in the footer and warned about. jsonl gives back the records exactly as NetObserv wrote them (unknown fields included), in time order. sqlite writes one file with a flat flows table (NetObserv's column names, explicit INTEGER/TEXT types) that sqlite3, DuckDB, pandas and ClickHouse's sqlite() open. csv has a header row. --where and --fields apply to parquet, jsonl (--where only: a record is whole), csv and sqlite (--where). shards copies the sealed shards overlapping the range into the --output directory as they are (.sqlite.zst: flowrec reads them in place, `zstd -d` gives plain SQLite), each verified by SHA-256 and with its own manifest, plus manifest.json listing them all; active shards are not copied (they still change), and the summary says how many were left out.

        Examples:
          flowrec export --since 1d --format parquet --output day.parquet
          flowrec export --since 7d --format parquet --where "SrcK8S_Namespace = 'shop'" --fields TimeFlowEndMs,SrcAddr,DstAddr,DstPort,Bytes --output shop.parquet
          flowrec export --since 1h --format jsonl --output - | gzip > last-hour.jsonl.gz
          flowrec export --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --format sqlite --output day.sqlite
          flowrec export --since 7d --format shards --output /mnt/usb/flowrec-week
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case parquet, jsonl, csv, sqlite, shards }

    @OptionGroup var data: DataOptions

    @Option(help: "parquet, jsonl, csv, sqlite or shards.")
    var format: Format = .jsonl

    @Option(name: .shortAndLong, help: "Output file; '-' for stdout (jsonl and csv); a directory for shards.")
    var output: String

    @OptionGroup var range: TimeRangeOptions

    @Option(name: .customLong("where"), help: "Filter in SQL syntax over the fields (every format but shards).")
    var filter: String?

    @Option(help: "Comma-separated fields (parquet and csv; default: every field).")
    var fields: String?

    @Option(help: "Rows per Parquet row group (the unit a reader skips or reads).")
    var rowGroupRows = 131_072

    @Flag(help: "parquet: one file per shard of the range in the --output directory, instead of one file.")
    var split = false

    var fieldList: [String] { fields?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? [] }

    func validate() throws {
        if [.sqlite, .parquet].contains(format) && output == "-" { throw ValidationError("--format \(format.rawValue) needs a file for --output") }
        if format == .shards && output == "-" { throw ValidationError("--format shards needs a directory for --output") }
        if format == .shards && filter != nil { throw ValidationError("--format shards copies whole shards; --where works with the other formats") }
        if fields != nil && ![.parquet, .csv].contains(format) { throw ValidationError("--fields works with parquet and csv (jsonl and sqlite keep whole records)") }
        if split && format != .parquet { throw ValidationError("--split works with --format parquet") }
        if rowGroupRows < 1000 { throw ValidationError("--row-group-rows must be at least 1000") }
    }

    func run() async throws {
        let store = try data.openForReading()
        let fromMs = range.fromMs, toMs = range.toMs
        if format == .shards {
            try await exportShards(store, fromMs: fromMs, toMs: toMs)
            return
        }
        let progress = Progress(enabled: isatty(STDERR_FILENO) == 1 && output != "-")
        let started = Date()
        let count: Int
        var unconverted: [String: Int] = [:]
        do {
            switch format {
            case .shards:
                return  // exported above
            case .sqlite:
                count = try FlowExporter(store: store).exportSQLite(to: output, fromMs: fromMs, toMs: toMs, whereSQL: filter) {
                    progress.update(lines: Int64($0), stored: $0, since: started)
                }
            case .parquet where split:
                (count, unconverted) = try exportParquetPerShard(store, fromMs: fromMs, toMs: toMs, progress: progress, started: started)
            case .parquet:
                let written = try FlowExporter(store: store).exportParquet(to: output, fromMs: fromMs, toMs: toMs, whereSQL: filter,
                                                                           fields: fieldList, rowGroupRows: rowGroupRows) {
                    progress.update(lines: Int64($0), stored: $0, since: started)
                }
                (count, unconverted) = (written.rows, written.unconverted)
            case .jsonl:
                let sink = try LineSink(path: output)
                count = try FlowExporter(store: store).exportJSONLines(fromMs: fromMs, toMs: toMs, whereSQL: filter, progress: {
                    progress.update(lines: Int64($0), stored: $0, since: started)
                }, write: { try sink.write($0) })
                try sink.finish()
            case .csv:
                let sink = try LineSink(path: output)
                count = try FlowExporter(store: store).exportCSV(fromMs: fromMs, toMs: toMs, whereSQL: filter, fields: fieldList, progress: {
                    progress.update(lines: Int64($0), stored: $0, since: started)
                }, write: { try sink.write($0) })
                try sink.finish()
            }
        } catch let error as QueryError {
            throw CommandFailure(error.description, exit: ExitClass.of(error))
        }
        progress.finish()
        if output != "-" { FileHandle.standardError.write(Data("exported \(count) flows to \(output)\n".utf8)) }
        for (field, n) in unconverted.sorted(by: { $0.key < $1.key }) {
            FileHandle.standardError.write(Data("warning: \(n) values of \(field) have no faithful form in its Parquet column and were written as null; --format jsonl keeps them as they came\n".utf8))
        }
    }

    /// `--split`: one Parquet file per shard of the range, named after it, in `output`.
    private func exportParquetPerShard(_ store: ShardStore, fromMs: Int64?, toMs: Int64?, progress: Progress,
                                       started: Date) throws -> (Int, [String: Int]) {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var total = 0
        var unconverted: [String: Int] = [:]
        for shard in try store.shards(overlappingFromMs: fromMs, toMs: toMs) {
            let from = max(fromMs ?? .min, shard.minTimeMs ?? .min), to = min(toMs ?? .max, (shard.maxTimeMs ?? .max - 1) + 1)
            guard from < to else { continue }
            // The shard's own flows: its time range, read from this shard only by its window.
            let file = output + "/\(shard.id).parquet"
            let written = try FlowExporter(store: store).exportParquet(to: file, fromMs: from, toMs: to, whereSQL: filter, fields: fieldList,
                                                                       rowGroupRows: rowGroupRows, only: shard.id) {
                progress.update(lines: Int64(total + $0), stored: total + $0, since: started)
            }
            total += written.rows
            unconverted.merge(written.unconverted, uniquingKeysWith: +)
        }
        return (total, unconverted)
    }

    /// Copies of the sealed shards, each verified and with its manifest, and
    /// `manifest.json` over all of them.
    private func exportShards(_ store: ShardStore, fromMs: Int64?, toMs: Int64?) async throws {
        let shards = try store.shards(overlappingFromMs: fromMs, toMs: toMs)
        let sealed = shards.filter { $0.state == .sealed }
        let copier = DirectoryForwarder(options: DirectoryForwarderOptions(path: output))
        try await copier.prepare()
        var manifests: [ShardManifest] = []
        for (i, info) in sealed.enumerated() {
            let shard = SealedShard(id: info.id, path: store.filePath(of: info.id), rowCount: info.rowCount,
                                    minTimeMs: info.minTimeMs, maxTimeMs: info.maxTimeMs, bytesOnDisk: info.bytesOnDisk)
            try await copier.deliver(shard, plan: .whole, fromChunk: 0) { _, _ in }
            let manifestPath = copier.destination(of: info.id).manifest
            var manifest = try JSONDecoder().decode(ShardManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            // Relative to the export's root, for the overall manifest.
            manifest.file = String(copier.destination(of: info.id).file.dropFirst(output.count).drop { $0 == "/" })
            manifests.append(manifest)
            if isatty(STDERR_FILENO) == 1 { FileHandle.standardError.write(Data("\r\(i + 1)/\(sealed.count) shards copied   ".utf8)) }
        }
        let overall = ExportManifest(fromMs: fromMs, toMs: toMs, shards: manifests,
                                     rows: manifests.reduce(0) { $0 + $1.rows }, activeShardsLeftOut: shards.count - sealed.count)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(overall) + Data("\n".utf8)).write(to: URL(fileURLWithPath: output + "/manifest.json"), options: .atomic)
        if isatty(STDERR_FILENO) == 1 { FileHandle.standardError.write(Data("\n".utf8)) }
        var summary = "exported \(sealed.count) sealed shards, \(overall.rows) flows, to \(output) (manifest.json lists them)"
        if overall.activeShardsLeftOut > 0 {
            summary += "; \(overall.activeShardsLeftOut) active shards overlap the range and were not copied (use --format sqlite for their flows)"
        }
        FileHandle.standardError.write(Data((summary + "\n").utf8))
    }
}

/// `manifest.json` of `export --format shards`.
struct ExportManifest: Codable {
    var fromMs: Int64?
    var toMs: Int64?
    var shards: [ShardManifest]
    var rows: Int64
    var activeShardsLeftOut: Int

    enum CodingKeys: String, CodingKey {
        case shards, rows
        case fromMs = "from_ms", toMs = "to_ms", activeShardsLeftOut = "active_shards_left_out"
    }
}
