import ArgumentParser

@main
struct Flowrec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowrec",
        abstract: "Record NetObserv flows from Kafka into compressed, queryable SQLite shards.",
        discussion: """
        flowrec consumes the JSON flow records that NetObserv's Kafka exporter writes, stores every field of every flow in time-partitioned SQLite shards, and answers queries over them.

        Start with `flowrec generate --help` to make realistic test traffic.
        """,
        subcommands: [RecordCommand.self, QueryCommand.self, SQLCommand.self, TailCommand.self, TopCommand.self, SeriesCommand.self, ExportCommand.self, DeadLettersCommand.self, GenerateCommand.self, IngestCommand.self, ShardsCommand.self, CompactCommand.self, PruneCommand.self, SyncCommand.self, FsckCommand.self, SchemaCommand.self, ConfigCommand.self])
}
