import Foundation
import Logging

/// How flowrec writes its log, set up once per process before any command runs.
///
/// - `human` (the default on a terminal): `2026-12-01T21:30:00.120Z record info: progress stored=120000 ...`
/// - `json` (the default elsewhere, and in the container image): one JSON object per line,
///   `{"ts":...,"level":"info","logger":"flowrec.record","msg":"progress","stored":"120000"}`,
///   for Kubernetes log pipelines (Loki, Elasticsearch, Cloud Logging) to index.
///
/// Chosen by `--log-format human|json` anywhere on the command line, or
/// `FLOWREC_LOG_FORMAT`; the level by `--log-level` or `FLOWREC_LOG_LEVEL` (default info).
/// Everything goes to standard error; standard output is the commands' own output.
enum LogOutput {
    enum Format: String, CaseIterable { case human, json }

    /// Takes `--log-format X` / `--log-level X` (or `=X`) out of `arguments` and bootstraps
    /// swift-log with them. A bad value is reported and exits 64, as a usage error.
    static func bootstrap(consuming arguments: inout [String], environment: [String: String]) {
        var formatText = environment["FLOWREC_LOG_FORMAT"]
        var levelText = environment["FLOWREC_LOG_LEVEL"]
        var kept: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            let name = String(word.prefix { $0 != "=" })
            guard name == "--log-format" || name == "--log-level" else {
                kept.append(word)
                i += 1
                continue
            }
            var value: String?
            if name.count < word.count {
                value = String(word.dropFirst(name.count + 1))
            } else if i + 1 < arguments.count {
                i += 1
                value = arguments[i]
            }
            if name == "--log-format" { formatText = value } else { levelText = value }
            i += 1
        }
        arguments = kept
        let format: Format
        if let formatText {
            guard let chosen = Format(rawValue: formatText) else { usageError("--log-format takes human or json (got \(formatText))") }
            format = chosen
        } else {
            format = isatty(STDERR_FILENO) == 1 ? .human : .json
        }
        var level = Logger.Level.info
        if let levelText {
            guard let chosen = Logger.Level(rawValue: levelText.lowercased()) else {
                usageError("--log-level takes " + Logger.Level.allCases.map(\.rawValue).joined(separator: ", ") + " (got \(levelText))")
            }
            level = chosen
        }
        let chosenLevel = level
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, format: format)
            handler.logLevel = chosenLevel
            return handler
        }
    }

    private static func usageError(_ message: String) -> Never {
        FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
        exit(64)
    }
}

/// Writes each message as one line on standard error, human-readable or JSON.
struct LineLogHandler: LogHandler {
    let label: String
    let format: LogOutput.Format
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        let line: String
        switch format {
        case .human: line = humanLine(event, fields)
        case .json: line = jsonLine(event, fields)
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private func humanLine(_ event: LogEvent, _ fields: Logger.Metadata) -> String {
        let name = label.hasPrefix("flowrec.") ? String(label.dropFirst("flowrec.".count)) : label
        var line = "\(Self.timestamp()) \(name) \(event.level): \(event.message)"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            let text = "\(value)"
            line += " \(key)=" + (text.contains(" ") || text.isEmpty ? "\"\(text)\"" : text)
        }
        return line
    }

    private func jsonLine(_ event: LogEvent, _ fields: Logger.Metadata) -> String {
        var object: [String: String] = ["ts": Self.timestamp(), "level": "\(event.level)", "logger": label, "msg": "\(event.message)"]
        for (key, value) in fields where object[key] == nil { object[key] = "\(value)" }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
