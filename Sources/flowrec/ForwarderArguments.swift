import ArgumentParser
import FlowRecorder
import Forwarders
import Foundation

/// Kinds of forwarder, as named on the command line and in `forward:`.
enum ForwarderKind: String, ExpressibleByArgument, CaseIterable, Sendable {
    case clickhouse, directory, exec
}

/// Builds forwarders from the settings (`clickhouse.*`, `directory.*`, `exec.*`): the one
/// place a new kind of target is wired in, besides its settings section.
struct ForwarderFactory {
    let settings: ResolvedSettings

    func make(_ kind: ForwarderKind, name: String? = nil, log: @escaping @Sendable (String) -> Void) throws -> any Forwarder {
        let s = settings
        let name = name ?? kind.rawValue
        switch kind {
        case .clickhouse:
            let raw = s.string("clickhouse.url") ?? "http://127.0.0.1:8123"
            guard let url = URL(string: raw), url.host != nil else {
                throw SettingsError("clickhouse.url must look like http://HOST:8123 (got \(raw))")
            }
            var password = s.string("clickhouse.password") ?? ""
            if let file = s.string("clickhouse.passwordFile") { password = try readSecretFile(file) }
            var options = ClickHouseForwarderOptions(endpoint: ClickHouseEndpoint(
                url: url, user: s.string("clickhouse.user") ?? "default", password: password, caFile: s.string("clickhouse.caFile"),
                certificateFile: s.string("clickhouse.certFile"), keyFile: s.string("clickhouse.keyFile")))
            if (options.endpoint.certificateFile == nil) != (options.endpoint.keyFile == nil) {
                throw SettingsError("mutual TLS to ClickHouse needs both clickhouse.certFile and clickhouse.keyFile")
            }
            options.name = name
            options.database = s.string("clickhouse.database") ?? "netobserv"
            options.table = s.string("clickhouse.table") ?? "flows"
            options.format = s.string("clickhouse.format") == "rowbinary" ? .rowBinary : .native
            options.gzip = s.string("clickhouse.compression") != "none"
            options.chunkRows = s.integer("clickhouse.chunkRows") ?? 100_000
            switch s.string("clickhouse.dialect") {
            case "modern": options.dialect = .modern
            case "compatible": options.dialect = .compatible
            default: options.dialect = nil
            }
            options.createTable = s.bool("clickhouse.createTable")
            options.ttlDays = s.integer("clickhouse.ttlDays").map(Int.init)
            options.retry.maxAttempts = max(1, Int(s.integer("clickhouse.attempts") ?? 10))
            options.log = log
            do { return try ClickHouseForwarder(options: options) } catch { throw SettingsError(error.message) }
        case .directory:
            guard let path = s.string("directory.path") else {
                throw SettingsError("the directory target needs directory.path (--directory-path)")
            }
            var options = DirectoryForwarderOptions(path: path)
            options.name = name
            return DirectoryForwarder(options: options)
        case .exec:
            guard let command = s.string("exec.command") else { throw SettingsError("the exec target needs exec.command (--exec-command)") }
            var options = ExecForwarderOptions(command: command)
            options.name = name
            options.timeoutSeconds = s.seconds("exec.timeout") ?? 600
            options.retry.maxAttempts = max(1, Int(s.integer("exec.attempts") ?? 3))
            options.log = log
            return ExecForwarder(options: options)
        }
    }
}
