import ArgumentParser
import Foundation
import Query
import ShardStore

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export flows of a time range as JSON lines, CSV or one plain SQLite file.",
        discussion: """
        jsonl gives back the records exactly as NetObserv wrote them (unknown fields included). sqlite writes one file with a flat flows table (NetObserv's column names, explicit INTEGER/TEXT types) that sqlite3, DuckDB, pandas and ClickHouse's sqlite() open. csv has a header row and every field.

        Examples:
          flowrec export --since 1h --format jsonl --output - | gzip > last-hour.jsonl.gz
          flowrec export --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --format sqlite --output day.sqlite
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case jsonl, csv, sqlite }

    @Option(help: "Data directory.")
    var data: String = "./flowrec-data"

    @Option(help: "jsonl, csv or sqlite.")
    var format: Format = .jsonl

    @Option(name: .shortAndLong, help: "Output file; '-' for stdout (jsonl and csv).")
    var output: String

    @OptionGroup var range: TimeRangeOptions

    @Option(name: .customLong("where"), help: "Filter in SQL syntax (csv and sqlite).")
    var filter: String?

    func validate() throws {
        if format == .sqlite && output == "-" { throw ValidationError("--format sqlite needs a file for --output") }
        if format == .jsonl && filter != nil { throw ValidationError("--where works with csv and sqlite; jsonl exports whole records by time range") }
    }

    func run() throws {
        let store = try openExistingStore(data)
        let fromMs = range.fromMs, toMs = range.toMs
        let progress = Progress(enabled: isatty(STDERR_FILENO) == 1 && output != "-")
        let started = Date()
        let count: Int
        do {
            switch format {
            case .sqlite:
                count = try FlowExporter(store: store).exportSQLite(to: output, fromMs: fromMs, toMs: toMs, whereSQL: filter) {
                    progress.update(lines: Int64($0), stored: $0, since: started)
                }
            case .jsonl:
                let sink = try LineSink(path: output)
                count = try FlowExporter(store: store).exportJSONLines(fromMs: fromMs, toMs: toMs, progress: {
                    progress.update(lines: Int64($0), stored: $0, since: started)
                }, write: { try sink.write($0) })
                try sink.finish()
            case .csv:
                var query = FlowQuery()
                query.fromMs = fromMs
                query.toMs = toMs
                query.whereSQL = filter
                query.fields = []
                let runner = FlowQueryRunner(store: store)
                let out = try CSVFile(path: output, columns: runner.columns(for: query))
                var n = 0
                try runner.run(query) { values in
                    try out.write(values)
                    n += 1
                    return true
                }
                try out.finish()
                count = n
            }
        } catch let error as QueryError {
            throw ValidationError(error.description)
        }
        progress.finish()
        if output != "-" { FileHandle.standardError.write(Data("exported \(count) flows to \(output)\n".utf8)) }
    }
}
