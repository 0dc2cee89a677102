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

    @Option(help: "Also split by this field: one series per value, the --limit busiest (by bytes over the range).")
    var by: String?

    @Option(help: "With --by, how many values get a series.")
    var limit: Int = 5

    @Option(help: "Bucket width, whole minutes (1m, 5m, 1h, 1d).")
    var step: DurationArgument = DurationArgument(argument: "5m")!

    @OptionGroup var range: TimeRangeOptions

    @Option(help: "table, json, jsonl or csv.")
    var format: QueryCommand.Format = .table

    @OptionGroup var display: DisplayOptions

    func validate() throws {
        for g in groups where !g.contains("=") { throw ValidationError("--group takes FIELD=VALUE, got \(g)") }
        if range.fromMs == nil { throw ValidationError("give the range start: --since D or --from TIME") }
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
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
        let stepMs = Int64(step.seconds * 1000)
        // The series to draw: one, or one per value of --by (its busiest values).
        var splits: [(label: QueryValue, group: [(field: String, value: String)])] = [(.null, group)]
        do {
            if let by {
                let whereSQL = group.isEmpty ? nil : group.map { "\($0.field) = '\($0.value.replacingOccurrences(of: "'", with: "''"))'" }.joined(separator: " AND ")
                let top = try TopTalkers(store: store).answer(by: [by], metric: .bytes, fromMs: from, toMs: to, whereSQL: whereSQL, limit: limit + 1)
                // Flows without the field (an absent namespace) have no value to select by.
                splits = Array(top.rows.compactMap { row in
                    guard let value = row.group.first, !value.isEmpty else { return nil }
                    return (.text(value), group + [(by, value)])
                }.prefix(limit))
            }
            let output = QueryOutput(format: format, columns: ["TIME"] + (by.map { [$0] } ?? []) + ["FLOWS", "BYTES", "PACKETS"],
                                     display: display, humaniseTotals: true)
            for split in splits {
                let points = try FlowSeries(store: store).run(group: split.group, stepMs: stepMs, fromMs: from, toMs: to)
                var byBucket: [Int64: FlowSeries.Point] = [:]
                for point in points { byBucket[point.bucketMs] = point }
                // Every bucket of the range, empty ones as zeros: a gap is a fact, not a hole.
                var bucket = from
                while bucket < to {
                    let p = byBucket[bucket] ?? FlowSeries.Point(bucketMs: bucket, flows: 0, bytes: 0, packets: 0)
                    output.write([.integer(bucket)] + (by == nil ? [] : [split.label]) + [.integer(p.flows), .integer(p.bytes), .integer(p.packets)])
                    bucket += stepMs
                }
            }
            output.finish(empty: StoreSpan.noFlows(store, fromMs: from, toMs: to))
        } catch let error as QueryError {
            throw CommandFailure(error.description, exit: ExitClass.of(error))
        }
    }
}
