package import Foundation
import StorageKit

/// `scripts/chdb-http-server` as a child process: a modern ClickHouse engine (chdb, in
/// process) behind the part of ClickHouse's HTTP interface the forwarder uses. Debian
/// ships only 18.16; this is how the forwarder's modern path (the modern DDL, its
/// deduplication tokens, `low_cardinality_allow_in_native_format`) is exercised over
/// HTTP, by tests and by `flowrec-bench forward`.
///
/// Each instance listens on a port the kernel picks, so tests may start their own.
/// Stopped by `stop()` or when released.
package final class ChdbHTTPServer {
    /// `http://127.0.0.1:PORT`; any user and password are accepted.
    package let url: URL
    private let process: Process
    private let log: String

    /// The front's process: its CPU (Python and chdb's threads) is the server's share.
    package var pid: Int32 { process.processIdentifier }

    /// Starts the front and waits (up to two minutes: chdb's library is large) until it
    /// listens. What it says on standard error goes to `log` (a temporary file when nil),
    /// quoted in the error when it does not come up.
    package init(log: String? = nil) throws {
        let log = log ?? NSTemporaryDirectory() + "flowrec-chdb-http-\(UUID().uuidString).log"
        let ready = log + ".port"
        try? FileManager.default.removeItem(atPath: ready)
        let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/chdb-http-server").path
        let process: Process
        do {
            process = try ChildProcess.start(URL(fileURLWithPath: "/usr/bin/env"),
                                             ["python3", script, "--port", "0", "--ready-file", ready], errorLog: log)
        } catch {
            throw TestServerUnavailable("cannot start \(script): \(error)")
        }
        let deadline = monotonicSeconds() + 120
        func readPort() -> Int? {
            (try? String(contentsOfFile: ready, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        var port = readPort()
        while port == nil {
            guard process.isRunning, monotonicSeconds() < deadline else {
                if process.isRunning { process.terminate() }
                let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw TestServerUnavailable("chdb-http-server did not come up (is chdb installed? scripts/setup-deps installs it): \(said.suffix(800))")
            }
            usleep(50_000)
            port = readPort()
        }
        // Built from a port number: it parses.
        url = URL(string: "http://127.0.0.1:\(port ?? 0)")!
        try? FileManager.default.removeItem(atPath: ready)
        self.process = process
        self.log = log
    }

    /// As a `ClickHouseTestServer`, for the helpers that query one.
    package var testServer: ClickHouseTestServer { ClickHouseTestServer(endpoint: url, user: "default", password: "") }

    /// Ends the front (SIGTERM: it removes its spool file) and its log.
    package func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: log)
    }

    deinit { stop() }
}
