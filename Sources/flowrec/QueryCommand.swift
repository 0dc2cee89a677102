import ArgumentParser
import Logging
import FlowModel
import Foundation
import Query
import ShardStore

struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Print stored flows for a time range, filtered in SQL syntax.",
        discussion: """
        Fields and the filter use NetObserv's own field names. Only shards overlapping the time range are opened, sealed ones in place; `field = value` terms on the indexed fields also rule out sealed shards and granules that cannot hold the value (--explain shows what was read). Rows stream, oldest first, and the query stops at --limit.

        Examples:
          flowrec query --since 1h --where "SrcK8S_Namespace = 'shop' AND DstPort = 443" --limit 20
          flowrec query --from 2026-01-01T00:00:00Z --to 2026-01-01T01:00:00Z --fields SrcAddr,DstAddr,Bytes --format csv
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, jsonl, csv }

    @OptionGroup var data: DataOptions

    @OptionGroup var range: TimeRangeOptions

    @OptionGroup var limits: QueryLimitOptions

    @Option(name: .customLong("where"), help: "Filter in SQL syntax over the fields, e.g. \"DstPort = 443\".")
    var filter: String?

    @Option(help: "Comma-separated fields to print (default: a useful summary set; 'all' for every field).")
    var fields: String?

    @Option(help: "Most rows to print.")
    var limit: Int = 100

    @Option(help: "table, json, jsonl or csv.")
    var format: Format = .table

    @Flag(help: "After the rows, print to standard error what the query read: shards in the range, ruled out by their skip summaries, opened; granules read.")
    var explain = false

    @OptionGroup var display: DisplayOptions

    static let summaryFields = ["TimeFlowEndMs", "SrcK8S_Namespace", "SrcK8S_Name", "SrcAddr", "SrcPort",
                                "DstK8S_Namespace", "DstK8S_Name", "DstAddr", "DstPort", "Proto", "Bytes", "Packets"]

    func validate() throws {
        if limit < 0 { throw ValidationError("--limit must be 0 or more") }
    }

    func run() throws {
        let store = try data.openForReading()
        var query = FlowQuery()
        query.fromMs = range.fromMs
        query.toMs = range.toMs
        query.whereSQL = filter
        query.limit = limit
        switch fields {
        case nil: query.fields = Self.summaryFields
        case "all": query.fields = []
        case let list?: query.fields = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let runner = FlowQueryRunner(store: store, limits: limits.limits)
        let columns = runner.columns(for: query)
        let output = QueryOutput(format: format, columns: columns, display: display)
        defer { runner.unreadable.warn(Logger(label: "flowrec.query")) }
        do {
            try runner.run(query) { values in
                output.write(values)
                return true
            }
        } catch let error as QueryError {
            throw CommandFailure(error.description + FieldHints.text(for: error, in: filter ?? ""), exit: ExitClass.of(error))
        }
        output.finish(empty: StoreSpan.noFlows(store, fromMs: range.fromMs, toMs: range.toMs))
        if limit > 0, output.rows == limit {
            FileHandle.standardError.write(Data("(the first \(limit) flows; --limit N shows more)\n".utf8))
        }
        if explain { Explain.print(runner.statistics) }
    }
}

/// Writes result rows in the chosen format. The table format buffers rows to align them.
final class QueryOutput {
    let format: QueryCommand.Format
    let columns: [String]
    private let cells: CellText
    private let timeFormat: DisplayOptions.TimeFormat
    private var tableRows: [[String]] = []
    private var first = true
    /// Rows written so far.
    private(set) var rows = 0
    /// Columns printed right-aligned in a table (numbers, totals).
    private var numeric: [Bool]

    init(format: QueryCommand.Format, columns: [String], display: DisplayOptions = DisplayOptions(), humaniseTotals: Bool = false) {
        self.format = format
        self.columns = columns
        timeFormat = display.timeFormat(for: format)
        cells = CellText(time: timeFormat, friendly: format == .table && !display.raw, humaniseTotals: humaniseTotals)
        numeric = Array(repeating: false, count: columns.count)
        switch format {
        case .csv: print(columns.map(CSV.field).joined(separator: ","))
        case .json: print("[", terminator: "")
        case .table, .jsonl: break
        }
    }

    func write(_ values: [QueryValue]) {
        rows += 1
        switch format {
        case .table:
            for (i, value) in values.enumerated() where i < numeric.count {
                if case .integer = value, cells.text(value, column: columns[i]).first?.isNumber ?? false { numeric[i] = true }
            }
            tableRows.append(zip(values, columns).map { cells.text($0, column: $1) })
        case .csv:
            print(zip(values, columns).map { value, column in
                if case .null = value { return "" }
                return CSV.field(cells.text(value, column: column))
            }.joined(separator: ","))
        case .jsonl, .json:
            let members = zip(columns, values).map { name, value -> String in
                switch value {
                case .null: return "\(jsonString(name)):null"
                case .integer(let v):
                    if CellText.timeColumns[name] != nil, timeFormat != .epochMs { return "\(jsonString(name)):\(jsonString(cells.text(value, column: name)))" }
                    return "\(jsonString(name)):\(v)"
                case .unsigned(let v): return "\(jsonString(name)):\(v)"
                case .real(let v): return "\(jsonString(name)):\(v.isFinite ? String(v) : "null")"
                case .text(let t):
                    // Array and object fields are stored as their JSON text: emit them as JSON.
                    let raw = (t.hasPrefix("[") || t.hasPrefix("{")) && isArrayOrObjectField(name)
                    return "\(jsonString(name)):\(raw ? t : jsonString(t))"
                }
            }
            let object = "{" + members.joined(separator: ",") + "}"
            if format == .jsonl { print(object) } else { print((first ? "\n  " : ",\n  ") + object, terminator: "") }
            first = false
        }
    }

    /// Ends the output; `empty` is what a table says when no row came (standard error,
    /// so that a pipeline never reads it as data).
    func finish(empty: String = "(no flows)") {
        switch format {
        case .json: print(first ? "]" : "\n]")
        case .table:
            var widths = columns.map(\.count)
            for row in tableRows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
            // Every cell is padded to its column (numbers on the right); only the line's
            // end is trimmed, so a cell never shifts its neighbours.
            func line(_ cells: [String]) -> String {
                var text = cells.enumerated().map { i, c in
                    numeric[i] ? String(repeating: " ", count: max(0, widths[i] - c.count)) + c
                        : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
                while text.last == " " { text.removeLast() }
                return text
            }
            print(line(columns))
            for row in tableRows { print(line(row)) }
            if tableRows.isEmpty { FileHandle.standardError.write(Data("\(empty)\n".utf8)) }
        case .csv, .jsonl: break
        }
    }

    private func jsonString(_ s: String) -> String {
        var out: [UInt8] = []
        JSONEscaping.appendQuoted(s.utf8, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func isArrayOrObjectField(_ name: String) -> Bool {
        FlowSchema.id(named: name).map { $0.kind.isJSONText } ?? false
    }
}


