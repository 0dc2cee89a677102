import ArgumentParser
import Foundation
import Logging

@main
struct Flowrec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowrec",
        abstract: "Record NetObserv flows from Kafka into compressed, queryable SQLite shards.",
        discussion: """
        flowrec consumes the JSON flow records that NetObserv's Kafka exporter writes, stores every field of every flow in time-partitioned SQLite shards, and answers queries over them.

        Start with `flowrec generate --help` to make realistic test traffic.

        Logging (every command, on standard error): --log-format human|json (default: human on a terminal, json otherwise; FLOWREC_LOG_FORMAT) and --log-level trace|debug|info|notice|warning|error|critical (default info; FLOWREC_LOG_LEVEL).
        """,
        subcommands: [RecordCommand.self, QueryCommand.self, SQLCommand.self, TailCommand.self, TopCommand.self, SeriesCommand.self, ExportCommand.self, DeadLettersCommand.self, GenerateCommand.self, IngestCommand.self, ShardsCommand.self, SealCommand.self, CompactCommand.self, MergeCommand.self, PruneCommand.self, SyncCommand.self, FsckCommand.self, SchemaCommand.self, ConfigCommand.self])

    /// Sets up logging once, from `--log-format`/`--log-level` wherever they appear, then
    /// runs the command.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        LogOutput.bootstrap(consuming: &arguments, environment: ProcessInfo.processInfo.environment)
        await main(arguments)
    }
}
