import ArgumentParser
import Forwarders
import Foundation

/// The ClickHouse target, as `sync clickhouse` and `record --forward clickhouse` take it.
struct ClickHouseTargetOptions: ParsableArguments {
    @Option(help: "ClickHouse HTTP interface: http://HOST:8123 or https://HOST:8443.")
    var clickhouseURL = "http://127.0.0.1:8123"

    @Option(help: "ClickHouse user.")
    var clickhouseUser = "default"

    @Option(help: "File holding the ClickHouse password. FLOWREC_CLICKHOUSE_PASSWORD works too; the password is never printed.")
    var clickhousePasswordFile: String?

    @Option(help: "Target database.")
    var clickhouseDatabase = "netobserv"

    @Option(help: "Target table.")
    var clickhouseTable = "flows"

    @Option(help: "Insert format: native (columnar, fastest) or rowbinary.")
    var clickhouseFormat: FormatArgument = .native

    @Option(help: "Request body compression: gzip or none.")
    var clickhouseCompression: CompressionArgument = .gzip

    @Option(help: "Rows per INSERT; progress is saved after each one.")
    var clickhouseChunkRows: Int64 = 100_000

    @Option(help: "Table flavour: auto (by server version), modern (LowCardinality, codecs, TTL) or compatible (old servers).")
    var clickhouseDialect: DialectArgument = .auto

    @Option(help: "PEM file of the CA that signed the server's certificate (https only).")
    var clickhouseCAFile: String?

    @Option(help: "PEM client certificate for mutual TLS; needs --clickhouse-key-file.")
    var clickhouseCertFile: String?

    @Option(help: "PEM private key of --clickhouse-cert-file.")
    var clickhouseKeyFile: String?

    @Option(help: "Attempts per request before giving up (network errors and HTTP 5xx are retried with backoff; 4xx are not).")
    var clickhouseAttempts = 10

    @Flag(help: "Create the database and table when missing (DDL from migrations/clickhouse/).")
    var createTable = false

    @Option(help: "TTL in days of a table made by --create-table (modern servers).")
    var clickhouseTTLDays: Int?

    enum FormatArgument: String, ExpressibleByArgument, CaseIterable { case native, rowbinary }
    enum CompressionArgument: String, ExpressibleByArgument, CaseIterable { case gzip, none }
    enum DialectArgument: String, ExpressibleByArgument, CaseIterable { case auto, modern, compatible }

    func validate() throws {
        if clickhouseChunkRows < 1 { throw ValidationError("--clickhouse-chunk-rows must be at least 1") }
        if clickhouseAttempts < 1 { throw ValidationError("--clickhouse-attempts must be at least 1") }
        if (clickhouseCertFile == nil) != (clickhouseKeyFile == nil) {
            throw ValidationError("mutual TLS needs both --clickhouse-cert-file and --clickhouse-key-file")
        }
    }

    func forwarderOptions(name: String, log: @escaping @Sendable (String) -> Void) throws -> ClickHouseForwarderOptions {
        guard let url = URL(string: clickhouseURL), url.host != nil else {
            throw ValidationError("--clickhouse-url must look like http://HOST:8123 (got \(clickhouseURL))")
        }
        var password = ProcessInfo.processInfo.environment["FLOWREC_CLICKHOUSE_PASSWORD"] ?? ""
        if let file = clickhousePasswordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read --clickhouse-password-file \(file)")
            }
            password = text.trimmingCharacters(in: .newlines)
        }
        var options = ClickHouseForwarderOptions(endpoint: ClickHouseEndpoint(
            url: url, user: clickhouseUser, password: password, caFile: clickhouseCAFile,
            certificateFile: clickhouseCertFile, keyFile: clickhouseKeyFile))
        options.name = name
        options.database = clickhouseDatabase
        options.table = clickhouseTable
        options.format = clickhouseFormat == .native ? .native : .rowBinary
        options.gzip = clickhouseCompression == .gzip
        options.chunkRows = clickhouseChunkRows
        options.dialect = clickhouseDialect == .auto ? nil : (clickhouseDialect == .modern ? .modern : .compatible)
        options.createTable = createTable
        options.ttlDays = clickhouseTTLDays
        options.retry.maxAttempts = clickhouseAttempts
        options.log = log
        return options
    }
}

/// The directory target.
struct DirectoryTargetOptions: ParsableArguments {
    @Option(help: "Directory (an NFS or object-store mount) that receives the sealed shards and their manifests.")
    var directoryPath: String?
}

/// The exec target.
struct ExecTargetOptions: ParsableArguments {
    @Option(help: "Command run by /bin/sh once per sealed shard, with FLOWREC_SHARD_PATH, FLOWREC_SHARD_ID, FLOWREC_WINDOW_START_MS, FLOWREC_WINDOW_END_MS, FLOWREC_PART, FLOWREC_ROWS, FLOWREC_MIN_TIME_MS and FLOWREC_MAX_TIME_MS set; exit status 0 means delivered.")
    var execCommand: String?

    @Option(help: "Seconds one run may take before it is killed.")
    var execTimeout: DurationArgument = DurationArgument(argument: "10m")!

    @Option(help: "Attempts per shard before the command's failure is reported.")
    var execAttempts = 3
}

/// Kinds of forwarder, as named on the command line.
enum ForwarderKind: String, ExpressibleByArgument, CaseIterable, Sendable {
    case clickhouse, directory, exec
}

/// Builds forwarders from the option groups; the one place a new kind is wired in.
struct ForwarderFactory {
    var clickhouse: ClickHouseTargetOptions
    var directory: DirectoryTargetOptions
    var exec: ExecTargetOptions

    func make(_ kind: ForwarderKind, name: String? = nil, log: @escaping @Sendable (String) -> Void) throws -> any Forwarder {
        let name = name ?? kind.rawValue
        switch kind {
        case .clickhouse:
            return try ClickHouseForwarder(options: clickhouse.forwarderOptions(name: name, log: log))
        case .directory:
            guard let path = directory.directoryPath else { throw ValidationError("the directory forwarder needs --directory-path") }
            var options = DirectoryForwarderOptions(path: path)
            options.name = name
            return DirectoryForwarder(options: options)
        case .exec:
            guard let command = exec.execCommand else { throw ValidationError("the exec forwarder needs --exec-command") }
            var options = ExecForwarderOptions(command: command)
            options.name = name
            options.timeoutSeconds = exec.execTimeout.seconds
            options.retry.maxAttempts = max(1, exec.execAttempts)
            options.log = log
            return ExecForwarder(options: options)
        }
    }
}
