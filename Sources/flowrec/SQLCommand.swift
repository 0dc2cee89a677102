import ArgumentParser
import Logging
import Foundation
import Query
import ShardStore

struct SQLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run one read-only SQL statement over a flows table that spans every shard of a time range.",
        discussion: """
        `flows` has NetObserv's field names as columns and covers every shard, active and sealed (read in place), however many: 30 days of hourly shards is 720. Constraints on TimeFlowEndMs in the statement, and --from/--to/--since, decide which shards are opened at all; only shards whose time range overlaps are read. `column = value` terms on the indexed fields (namespaces, owners, names, nodes, addresses, ports, protocol, flow layer, record type) rule out sealed shards whose skip summaries lack the value, and inside a sealed shard read only the granules whose zone maps can hold it; --explain shows what was read. Any SQLite SELECT works: joins, GROUP BY, window functions, WITH. Nothing can change stored data: INSERT, UPDATE, DELETE, ATTACH, CREATE and PRAGMA are refused.

        Examples:
          flowrec sql --since 1h "SELECT SrcK8S_Namespace, DstK8S_Namespace, sum(Bytes) AS bytes FROM flows GROUP BY 1, 2 ORDER BY bytes DESC LIMIT 10"
          flowrec sql "SELECT count(*) FROM flows WHERE TimeFlowEndMs >= 1767225600000 AND DstPort = 53" --format csv
        """)

    @Argument(help: "One SELECT statement over the flows table.")
    var statement: String

    @OptionGroup var data: DataOptions

    @OptionGroup var range: TimeRangeOptions

    @Option(help: "table, json, jsonl or csv.")
    var format: QueryCommand.Format = .table

    @OptionGroup var limits: QueryLimitOptions

    @Flag(help: "After the rows, print to standard error what the statement read: shards in the range, ruled out by their skip summaries, opened; granules read.")
    var explain = false

    @OptionGroup var display: DisplayOptions

    func run() throws {
        let store = try data.openForReading()
        var output: QueryOutput?
        let unreadable = UnreadableShards()
        let statistics = ScanStatistics()
        defer { unreadable.warn(Logger(label: "flowrec.sql")) }
        do {
            try SQLQuery(store: store, fromMs: range.fromMs, toMs: range.toMs).run(statement, limits: limits.limits, unreadable: unreadable,
                                                                                    statistics: statistics, columns: { names in
                output = QueryOutput(format: format, columns: names, display: display)
            }) { values in
                output?.write(values)
                return true
            }
        } catch let error as QueryError {
            throw CommandFailure(error.description + FieldHints.text(for: error, in: statement), exit: ExitClass.of(error))
        }
        output?.finish(empty: "(no rows)" + (range.fromMs != nil || range.toMs != nil ? " " + StoreSpan.noFlows(store, fromMs: range.fromMs, toMs: range.toMs) : ""))
        if explain { Explain.print(statistics) }
    }
}

/// `--explain`: what a query read, on standard error so the rows stay clean.
enum Explain {
    static func print(_ statistics: ScanStatistics) {
        FileHandle.standardError.write(Data("plan: \(statistics)\n".utf8))
    }
}
