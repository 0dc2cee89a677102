import ArgumentParser
import Foundation
import Query
import ShardStore

struct SeriesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "series",
        abstract: "A time series of flows, bytes and packets for one group, as a table or CSV.",
        discussion: """
        Whole minutes that rollups cover (sealed shards; see `flowrec top`) are read from rollups.sqlite, which stays small and outlives the raw shards; the edges of the range and windows not sealed yet are computed from raw shards. Buckets start at --from (or now minus --since), rounded down to the minute.

        Group fields: SrcK8S_Namespace, SrcK8S_OwnerName, SrcK8S_OwnerType, SrcK8S_Type and the Dst equivalents, Proto, DstPortClass (well-known, registered, dynamic, none), K8S_FlowLayer, FlowDirection use rollups; any other NetObserv field works from raw shards.

        Examples:
          flowrec series --group SrcK8S_Namespace=checkout --group DstK8S_Namespace=payments --since 7d --step 1h
          flowrec series --since 1h --step 1m --format csv > last-hour.csv
        """)

    @OptionGroup var data: DataOptions

    @Option(name: .customLong("group"), help: "FIELD=VALUE the flows must match (repeatable); none: all flows.")
    var groups: [String] = []

    @Option(help: "Bucket width, whole minutes (1m, 5m, 1h, 1d).")
    var step: DurationArgument = DurationArgument(argument: "5m")!

    @OptionGroup var range: TimeRangeOptions

    @Option(help: "table or csv.")
    var format: Format = .table

    enum Format: String, ExpressibleByArgument { case table, csv }

    func validate() throws {
        for g in groups where !g.contains("=") { throw ValidationError("--group takes FIELD=VALUE, got \(g)") }
        if range.fromMs == nil { throw ValidationError("give the range start: --since D or --from TIME") }
    }

    func run() throws {
        let store = try data.openForReading()
        let group = groups.map { g -> (field: String, value: String) in
            let eq = g.firstIndex(of: "=") ?? g.endIndex
            return (String(g[..<eq]), String(g[g.index(after: eq)...]))
        }
        // Whole minutes, so rollups can answer (their buckets are minutes).
        let from = ((range.fromMs ?? 0) / 60_000) * 60_000
        let to = range.toMs ?? Int64(Date().timeIntervalSince1970 * 1000)
        let points: [FlowSeries.Point]
        do {
            points = try FlowSeries(store: store).run(group: group, stepMs: Int64(step.seconds * 1000), fromMs: from, toMs: to)
        } catch let error as QueryError {
            throw CommandFailure(error.description)
        }
        let formatter = ISO8601DateFormatter()
        let rows = points.map { [formatter.string(from: Date(timeIntervalSince1970: Double($0.bucketMs) / 1000)),
                                 String($0.flows), String($0.bytes), String($0.packets)] }
        let header = ["TIME", "FLOWS", "BYTES", "PACKETS"]
        if format == .csv {
            print(header.map { $0.lowercased() }.joined(separator: ","))
            for row in rows { print(row.joined(separator: ",")) }
            return
        }
        var widths = header.map(\.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }
}
