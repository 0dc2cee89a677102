package import Logging
import Foundation
import Synchronization

/// Logging in test processes: warnings and errors only, on standard error (the stores
/// that tests open by the dozen would otherwise fill the output with their routine
/// notices), set up the first time a test makes a `TemporaryDirectory`. A test that
/// checks what was logged makes its own `Logger` with `CapturedLog.logger`.
package enum TestLogging {
    package static let bootstrapped: Void = {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
    }()
}

/// Messages logged through `logger`, for tests that check a warning was given.
package final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])

    package init() {}

    /// A logger that records every message (with its metadata) here.
    package func logger(_ label: String = "flowrec.test") -> Logger {
        Logger(label: label) { _ in Handler(log: self) }
    }

    package var messages: [String] { lines.withLock { $0 } }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = metadata.merging(event.metadata ?? [:]) { _, new in new }
            let rendered = fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            log.append("\(event.level): \(event.message)\(rendered)")
        }
    }
}
