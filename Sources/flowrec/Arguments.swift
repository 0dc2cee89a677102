import ArgumentParser
import FlowrecConfig
import Foundation
import Query
import ShardStore

/// A duration such as `90s`, `30m`, `2h`, `7d` or plain seconds.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let seconds: Double
    /// As the user (or the default) wrote it, so `--help` shows "1h", not a struct dump.
    let text: String

    init?(argument: String) {
        guard let seconds = SettingParsers.seconds(argument) else { return nil }
        self.seconds = seconds
        text = argument
    }

    /// A default written from seconds, as settings write theirs (`5m`).
    init(seconds: Double) {
        self.seconds = seconds
        text = .duration(seconds: seconds)
    }

    var defaultValueDescription: String { text }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A point in time as typed (`TimeExpression`: RFC 3339 with or without seconds and
/// zone, a date, epoch seconds or milliseconds). Read in `validate()`, so that a time
/// that cannot be read gets a message with examples rather than "invalid value".
struct TimeArgument: ExpressibleByArgument, Sendable {
    let text: String

    init?(argument: String) { text = argument }

    func parsed(_ option: String) throws -> TimeExpression {
        guard let time = TimeExpression(text) else {
            throw ValidationError("\(option): cannot read '\(text)' as a time between 1970 and 9999; give \(TimeExpression.accepted)")
        }
        return time
    }
}

/// `--timeout`: how long one query may run (and, with it, how much memory it may take).
struct QueryLimitOptions: ParsableArguments {
    @Option(help: "Stop a query that runs longer than this (e.g. 30s, 10m).")
    var timeout: DurationArgument = DurationArgument(seconds: QueryLimits.commandLine.deadlineSeconds ?? 300)

    var limits: QueryLimits {
        var limits = QueryLimits.commandLine
        limits.deadlineSeconds = timeout.seconds
        return limits
    }
}

/// `--from`, `--to` and `--since`: the time range of `query`, `top` and `export`, on `TimeFlowEndMs`.
struct TimeRangeOptions: ParsableArguments {
    @Option(help: "Start of the range on TimeFlowEndMs: 2026-01-01T00:05:00Z, 2026-01-01T00:05 (UTC), 2026-01-01, or epoch seconds or milliseconds.")
    var from: TimeArgument?

    @Option(help: "End of the range, exclusive (the same forms as --from).")
    var to: TimeArgument?

    @Option(help: "Only the last D before now (e.g. 15m, 1h, 7d); instead of --from.")
    var since: DurationArgument?

    func validate() throws {
        if since != nil && from != nil { throw ValidationError("use --since or --from, not both") }
        let start = try from?.parsed("--from"), end = try to?.parsed("--to")
        for note in [start?.note, end?.note].compactMap({ $0 }) { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        if let start, let end, end.epochMilliseconds <= start.epochMilliseconds {
            throw ValidationError("--to (\(TimeExpression.rfc3339(end.epochMilliseconds))) is not after --from (\(TimeExpression.rfc3339(start.epochMilliseconds))): the range is empty")
        }
        if let since, let end, end.epochMilliseconds <= Int64(Date().timeIntervalSince1970 * 1000) - Int64(since.seconds * 1000) {
            throw ValidationError("--to is before the start of --since: the range is empty")
        }
    }

    var fromMs: Int64? {
        (try? from?.parsed("--from"))?.epochMilliseconds ?? since.map { Int64(Date().timeIntervalSince1970 * 1000) - Int64($0.seconds * 1000) }
    }

    var toMs: Int64? { (try? to?.parsed("--to"))?.epochMilliseconds }
}

/// `--data`: the data directory every command reads or writes; one option, one default
/// (`FlowrecSettings.defaultDataDirectory`, as `flowrec record`'s `data` setting).
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Data directory: shards, catalog, dead letters, rollups.")
    var path: String = FlowrecSettings.defaultDataDirectory

    var directory: DataDirectory { DataDirectory(path: path) }
    func openExisting() throws -> ShardStore { try directory.openExisting() }
    func openForReading() throws -> ShardStore { try directory.openForReading() }
}

/// A data directory named by `--data` or by a command's settings (`data:` in the file).
struct DataDirectory {
    let path: String

    /// Opens the store with the window it was written with, or says how to point at one.
    func openExisting() throws -> ShardStore {
        try requireStore()
        return try ShardStore.openExisting(directory: path)
    }

    /// Opens the store for queries: nothing is opened for writing, so it is safe beside
    /// a running recorder.
    /// An archive of sealed shards (`sync directory`, `export --format shards`) is read
    /// in place too: its catalog is built in a scratch directory (`ShardArchive`).
    func openForReading() throws -> ShardStore {
        try requireDirectory()
        if ShardArchive.isArchive(path) {
            let archive = try ShardArchive(directory: path)
            var note = "reading \(path) as an archive of \(archive.shards) sealed shards (read-only; no rollups there, so top and series read the shards)"
            if !archive.skipped.isEmpty {
                note += "; left out \(archive.skipped.count) files: " + archive.skipped.prefix(3).map { "\($0.path) (\($0.reason))" }.joined(separator: ", ")
            }
            FileHandle.standardError.write(Data((note + "\n").utf8))
            return archive.store
        }
        try requireStore()
        return try ShardStore.openForReading(directory: path)
    }

    func requireDirectory() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CommandFailure("the data directory \(path) does not exist; pass --data with the directory `flowrec record` writes", exit: .noInput)
        }
        guard isDirectory.boolValue else {
            throw CommandFailure("\(path) is a file, not a data directory; pass --data with the directory `flowrec record` writes", exit: .noInput)
        }
    }

    func requireStore() throws {
        try requireDirectory()
        guard FileManager.default.fileExists(atPath: path + "/catalog.sqlite") else {
            throw CommandFailure("\(path) is not a flowrec data directory (it has no catalog.sqlite, nor sealed shards as an archive has); pass --data with the directory `flowrec record` writes", exit: .noInput)
        }
    }
}
