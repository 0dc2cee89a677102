package import Forwarders
import Foundation
package import Logging

/// Kinds of forwarder, as named on the command line and in `forward:`.
package enum ForwarderKind: String, CaseIterable, Sendable {
    case clickhouse, directory, exec
}

/// Builds forwarders from the settings (`clickhouse.*`, `directory.*`, `exec.*`): the one
/// place a new kind of target is wired in, besides its settings section.
package struct ForwarderFactory {
    package let settings: ResolvedSettings

    package init(settings: ResolvedSettings) { self.settings = settings }

    package func make(_ kind: ForwarderKind, name: String? = nil, logger: Logger) throws(SettingsError) -> any Forwarder {
        let s = settings
        let name = name ?? kind.rawValue
        switch kind {
        case .clickhouse:
            let raw = s.text("clickhouse.url")
            guard let url = URL(string: raw), url.host != nil else {
                throw SettingsError(.invalidValue, key: "clickhouse.url", "clickhouse.url must look like http://HOST:8123 (got \(raw))")
            }
            var password = s.string("clickhouse.password") ?? ""
            if let file = s.string("clickhouse.passwordFile") { password = try Secrets.read(file) }
            var options = ClickHouseForwarderOptions(endpoint: ClickHouseEndpoint(
                url: url, user: s.text("clickhouse.user"), password: password, caFile: s.string("clickhouse.caFile"),
                certificateFile: s.string("clickhouse.certFile"), keyFile: s.string("clickhouse.keyFile")))
            if (options.endpoint.certificateFile == nil) != (options.endpoint.keyFile == nil) {
                throw SettingsError(.conflict, key: "clickhouse.certFile",
                                    "mutual TLS to ClickHouse needs both clickhouse.certFile and clickhouse.keyFile")
            }
            options.name = name
            options.database = s.text("clickhouse.database")
            options.table = s.text("clickhouse.table")
            options.format = s.text("clickhouse.format") == "rowbinary" ? .rowBinary : .native
            options.compression = ClickHouseBodyCompression(rawValue: s.text("clickhouse.compression")) ?? ClickHouseForwarderOptions.defaults.compression
            options.chunkRows = s.count("clickhouse.chunkRows")
            switch s.text("clickhouse.dialect") {
            case "modern": options.dialect = .modern
            case "compatible": options.dialect = .compatible
            default: options.dialect = nil
            }
            options.createTable = s.bool("clickhouse.createTable")
            options.ttlDays = s.integer("clickhouse.ttlDays").map(Int.init)
            options.retry.maxAttempts = max(1, Int(s.count("clickhouse.attempts")))
            options.logger = logger
            do { return try ClickHouseForwarder(options: options) } catch {
                throw SettingsError(.invalidValue, key: "clickhouse", error.message, cause: error)
            }
        case .directory:
            guard let path = s.string("directory.path") else {
                throw SettingsError(.missingValue, key: "directory.path", "the directory target needs directory.path (--directory-path)")
            }
            var options = DirectoryForwarderOptions(path: path)
            options.name = name
            return DirectoryForwarder(options: options)
        case .exec:
            guard let command = s.string("exec.command") else {
                throw SettingsError(.missingValue, key: "exec.command", "the exec target needs exec.command (--exec-command)")
            }
            var options = ExecForwarderOptions(command: command)
            options.name = name
            options.timeoutSeconds = s.durationSeconds("exec.timeout")
            options.retry.maxAttempts = max(1, Int(s.count("exec.attempts")))
            options.logger = logger
            return ExecForwarder(options: options)
        }
    }
}
