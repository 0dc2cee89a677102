import ArgumentParser
import Foundation
import Query
import ShardStore

struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print the newest stored flows; with -f, keep printing flows as they are stored.",
        discussion: """
        Reads the active shards (where `flowrec record` writes), so it runs beside the recorder; the same --where filter and --fields as `flowrec query`. When the active shards hold fewer than -n matching flows (just after a seal, or a store no longer recording), the rest come from the newest sealed shards, by end time. The recorder stores flows a batch at a time (each batch sorted by namespaces and owners), so the newest flows are newest to within one batch, and each batch is printed by end time. Output is one flow per line (jsonl or csv) so it can be piped while following. If a shard is sealed before tail has read its last batch, tail says how many flows it did not show and which query shows them.

        Examples:
          flowrec tail -f --where "DstK8S_Namespace = 'shop' AND DstPort = 443"
          flowrec tail -n 50 --fields TimeFlowEndMs,SrcAddr,DstAddr,Bytes --format csv
        """)

    @Option(name: .short, help: "How many of the newest flows to print first.")
    var n = 10

    @Flag(name: .short, help: "Follow: keep printing flows as they are stored, until interrupted.")
    var follow = false

    @OptionGroup var data: DataOptions

    @Option(name: .customLong("where"), help: "Filter in SQL syntax over the fields, e.g. \"DstPort = 443\".")
    var filter: String?

    @Option(help: "Comma-separated fields to print (default: the summary set of `query`; 'all' for every field).")
    var fields: String?

    @Option(help: "jsonl or csv (one line per flow).")
    var format: QueryCommand.Format = .jsonl

    @Option(help: "How often to look for new flows while following.")
    var interval: DurationArgument = DurationArgument(argument: "1s")!

    @OptionGroup var display: DisplayOptions

    func validate() throws {
        if n < 0 { throw ValidationError("-n must be 0 or more") }
        if format == .table || format == .json { throw ValidationError("tail prints one flow per line: use --format jsonl or csv") }
    }

    func run() throws {
        let store = try data.openForReading()
        let columns: [String]
        switch fields {
        case nil: columns = QueryCommand.summaryFields
        case "all": columns = ShardSchemaColumns.fieldNames
        case let list?: columns = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let tail = try FlowTail(store: store, fields: columns, whereSQL: filter)
        let output = QueryOutput(format: format, columns: columns, display: display)
        do {
            try tail.last(n) { output.write($0) }
            fflush(nil)  // flows reach a pipe at once, not when a buffer fills
            while follow {
                usleep(UInt32(interval.seconds * 1_000_000))
                for notice in try tail.poll(row: { output.write($0) }) {
                    FileHandle.standardError.write(Data("flowrec tail: \(notice)\n".utf8))
                }
                fflush(nil)
            }
        } catch let error as QueryError {
            throw CommandFailure(error.description, exit: ExitClass.of(error))
        }
        output.finish()
    }
}
