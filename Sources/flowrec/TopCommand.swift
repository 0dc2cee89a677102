import ArgumentParser
import Foundation
package import Query
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

    func validate() throws {
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let store = try data.openForReading()
        let fields = by.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let rows: [TopTalkers.Row]
        do {
            let answer = try TopTalkers(store: store, limits: limits.limits)
                .answer(by: fields, metric: metric, fromMs: range.fromMs, toMs: range.toMs, whereSQL: filter, limit: limit)
            rows = answer.rows
            if let span = answer.fromRollups {
                let f = ISO8601DateFormatter()
                FileHandle.standardError.write(Data("(from rollups for \(f.string(from: Date(timeIntervalSince1970: Double(span.fromMs) / 1000))) to \(f.string(from: Date(timeIntervalSince1970: Double(span.toMs) / 1000))); raw shards for the rest)\n".utf8))
            }
        } catch let error as QueryError {
            throw CommandFailure(error.description)
        }
        let header = fields + ["BYTES", "PACKETS", "FLOWS"]
        let table = rows.map { $0.group.map { $0.isEmpty ? "-" : $0 } + [String($0.bytes), String($0.packets), String($0.flows)] }
        var widths = header.map(\.count)
        for row in table { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i >= fields.count ? String(repeating: " ", count: widths[i] - c.count) + c
                : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        print(line(header))
        for row in table { print(line(row)) }
    }
}

extension TopTalkers.Metric: ExpressibleByArgument {}
