import ArgumentParser
import CBuildInfo
import Foundation
import KafkaSource
import Logging
import ShardStore
import StorageKit

@main
struct Flowrec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowrec",
        abstract: "Record NetObserv flows from Kafka into compressed, queryable SQLite shards.",
        discussion: """
        flowrec consumes the JSON flow records that NetObserv's Kafka exporter writes, stores every field of every flow in time-partitioned SQLite shards, and answers queries over them.

        Start with `flowrec generate --help` to make realistic test traffic.

        Logging (every command, on standard error): --log-format human|json (default: human on a terminal, json otherwise; FLOWREC_LOG_FORMAT) and --log-level trace|debug|info|notice|warning|error|critical (default info; FLOWREC_LOG_LEVEL).

        `flowrec --version` prints the version, the commit, the schema versions and the C libraries'.

        Exit codes:
        \(ExitClass.table)
        """,
        subcommands: [RecordCommand.self, QueryCommand.self, SQLCommand.self, TailCommand.self, TopCommand.self, SeriesCommand.self, ExportCommand.self, DeadLettersCommand.self, GenerateCommand.self, IngestCommand.self, ShardsCommand.self, SealCommand.self, CompactCommand.self, MergeCommand.self, PruneCommand.self, SyncCommand.self, FsckCommand.self, SchemaCommand.self, ConfigCommand.self])

    /// Sets up logging once, from `--log-format`/`--log-level` wherever they appear, then
    /// runs the command. A mistyped command gets suggestions; a failure of the command
    /// (not of its command line) prints its cause without the usage text and exits with
    /// its class's code (`ExitClass`).
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        LogOutput.bootstrap(consuming: &arguments, environment: ProcessInfo.processInfo.environment)
        if arguments == ["--version"] || arguments == ["version"] {
            print(VersionInfo.text)
            return
        }
        if let first = arguments.first, !first.hasPrefix("-"), first != "help",
           !configuration.subcommands.contains(where: { $0.configuration.commandName == first }) {
            let names = configuration.subcommands.compactMap { $0.configuration.commandName }
            let close = Suggestions.closest(to: first, among: names)
            let hint = close.isEmpty ? "" : " Did you mean \(close.map { "'\($0)'" }.joined(separator: " or "))?"
            FileHandle.standardError.write(Data("Error: '\(first)' is not a flowrec command.\(hint)\nCommands: \(names.joined(separator: ", ")). See 'flowrec --help'.\n".utf8))
            Foundation.exit(ExitClass.usage.rawValue)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard isRuntimeFailure(error) else { exit(withError: error) }
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(ExitClass.of(error).rawValue)
        }
    }

    /// Failures of the work itself, not of the command line: ArgumentParser's own errors
    /// (and ValidationError from `validate()`) keep its handling, with the usage text.
    static func isRuntimeFailure(_ error: any Error) -> Bool {
        !(error is ValidationError) && !(error is CleanExit) && !(error is ExitCode)
            && String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") == false
    }
}

/// `flowrec --version`: what a bug report needs.
enum VersionInfo {
    static let version = "0.9.0"

    static var text: String {
        """
        flowrec \(version) (commit \(String(cString: flowrec_build_commit())))
        schemas: shard \(ShardSchema.version) (+ skip index), catalog \(CatalogSchema.migrations.count) migrations
        librdkafka \(KafkaProperties.libraryVersion), SQLite \(SQLiteDatabase.libraryVersion), zstd \(SeekableZstd.libraryVersion)
        """
    }
}
