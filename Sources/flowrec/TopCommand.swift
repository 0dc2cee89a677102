import ArgumentParser
import Foundation
package import Query
import FlowrecConfig
import ShardStore

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Top talkers: the groups with the most bytes, packets or flows over a time range.",
        discussion: """
        Without --where, and grouped only by rollup dimensions (SrcK8S_/DstK8S_ Namespace, OwnerName, OwnerType, Type; Proto; DstPortClass; K8S_FlowLayer; FlowDirection), the whole minutes covered by sealed shards are read from rollups.sqlite (daily, hourly and per-minute sums), so a month answers in well under a second; the rest comes from raw shards. Rollups outlive raw shards deleted by retention.

        Examples:
          flowrec top --by SrcK8S_Namespace,DstK8S_Namespace --since 1h
          flowrec top --by DstK8S_OwnerName --metric flows --where "DstPort = 53" --limit 5
        """)

    @OptionGroup var data: DataOptions

    @Option(help: "Comma-separated fields to group by.")
    var by: String = "SrcK8S_Namespace,DstK8S_Namespace"

    @Option(help: "bytes, packets or flows.")
    var metric: TopTalkers.Metric = .bytes

    @OptionGroup var range: TimeRangeOptions

    @OptionGroup var limits: QueryLimitOptions

    @Option(name: .customLong("where"), help: "Filter in SQL syntax over the fields.")
    var filter: String?

    @Option(help: "How many groups.")
    var limit: Int = 10

    @Option(help: "table, json, jsonl or csv.")
    var format: QueryCommand.Format = .table

    @OptionGroup var display: DisplayOptions

    func validate() throws {
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let store = try data.openForReading()
        let fields = by.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let rows: [TopTalkers.Row]
        do {
            let answer = try TopTalkers(store: store, limits: limits.limits)
                .answer(by: fields, metric: metric, fromMs: range.fromMs, toMs: range.toMs, whereSQL: filter, limit: limit + 1)
            rows = answer.rows
            if let span = answer.fromRollups {
                FileHandle.standardError.write(Data("(from rollups for \(TimeExpression.rfc3339(span.fromMs)) to \(TimeExpression.rfc3339(span.toMs)); raw shards for the rest)\n".utf8))
            }
        } catch let error as QueryError {
            throw CommandFailure(error.description + FieldHints.text(for: error, in: filter ?? ""), exit: ExitClass.of(error))
        }
        // An absent value (no namespace: the node, an external address) is null in JSON,
        // empty in CSV and `-` in a table, as in every command.
        let output = QueryOutput(format: format, columns: fields + ["BYTES", "PACKETS", "FLOWS"], display: display, humaniseTotals: true)
        for row in rows.prefix(limit) {
            output.write(row.group.map { $0.isEmpty ? QueryValue.null : .text($0) } + [.integer(row.bytes), .integer(row.packets), .integer(row.flows)])
        }
        output.finish(empty: StoreSpan.noFlows(store, fromMs: range.fromMs, toMs: range.toMs))
        if rows.count > limit {
            FileHandle.standardError.write(Data("(the top \(limit) groups; --limit N shows more)\n".utf8))
        }
    }
}

extension TopTalkers.Metric: ExpressibleByArgument {}
