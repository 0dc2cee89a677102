package import Foundation

/// Runs a Python script with chdb (modern ClickHouse in process, installed by
/// scripts/setup-deps), for checking DDL and payloads against a current server.
package enum Chdb {
    package struct Result: Sendable {
        package let status: Int32
        package let output: String
        package let errors: String
        /// chdb is not installed (the caller skips, unless servers are required).
        package var isMissing: Bool { !Chdb.isInstalled }
    }

    /// Whether Python can import chdb, asked once per process (by exit status).
    package static let isInstalled: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import chdb"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    /// `script` gets `input` on stdin; its stdout and stderr are returned.
    package static func run(_ script: String, input: Data = Data()) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        try p.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, output: String(decoding: out, as: UTF8.self),
                      errors: String(decoding: err, as: UTF8.self))
    }
}

/// One chdb session in a Python process that stays up, asked one statement at a time.
/// A benchmark times chdb and flowrec alternately with it (a paired measurement), so a
/// minute of noise on this shared machine lands on both sides of a ratio instead of on
/// one of them.
///
/// The process reads one JSON request per line and answers with one JSON line: the
/// statement's output as TSV and the best of its timed repeats. Not thread-safe: one
/// caller at a time, as a benchmark's `run()` is.
package final class ChdbSession {
    package struct Answer {
        package let tsv: String
        /// The best of the repeats, in seconds, timed inside the Python process.
        package let seconds: Double
    }

    private static let script = """
        import sys, json, time, chdb.session as cs
        s = cs.Session()
        for line in sys.stdin:
            request = json.loads(line)
            try:
                times, out = [], ""
                for _ in range(request["repeats"]):
                    t = time.perf_counter()
                    out = str(s.query(request["sql"], "TSV")).strip()
                    times.append(time.perf_counter() - t)
                reply = {"tsv": out, "seconds": min(times)}
            except Exception as e:
                reply = {"error": str(e)}
            print(json.dumps(reply), flush=True)
        """

    private let process = Process()
    private let requests = Pipe(), replies = Pipe()
    private let errorLog: URL
    private var pending: [UInt8] = []

    package init() throws {
        errorLog = FileManager.default.temporaryDirectory.appendingPathComponent("chdb-session-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: errorLog.path, contents: nil) else {
            throw ChdbSessionError(kind: .notStarted, detail: "could not create \(errorLog.path) for its error output")
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script]
        process.standardInput = requests
        process.standardOutput = replies
        // A file, not a pipe: nobody reads stderr while a statement runs, and a full pipe
        // would stall the Python process.
        do {
            process.standardError = try FileHandle(forWritingTo: errorLog)
            try process.run()
        } catch {
            throw ChdbSessionError(kind: .notStarted, detail: "python3 -c <session script>: \(error)")
        }
    }

    deinit { close() }

    /// Runs `sql` `repeats` times and returns its last output and its best time.
    @discardableResult
    package func query(_ sql: String, repeats: Int = 1) throws -> Answer {
        let request = try JSONSerialization.data(withJSONObject: ["sql": sql, "repeats": max(1, repeats)])
        try requests.fileHandleForWriting.write(contentsOf: request + Data("\n".utf8))
        let line = try readLine()
        guard let reply = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw ChdbSessionError(kind: .unreadableReply, detail: String(decoding: line.prefix(300), as: UTF8.self))
        }
        if let error = reply["error"] as? String { throw ChdbSessionError(kind: .refused, detail: "`\(sql.prefix(200))`: \(error)") }
        guard let tsv = reply["tsv"] as? String, let seconds = reply["seconds"] as? Double else {
            throw ChdbSessionError(kind: .unreadableReply, detail: String(decoding: line.prefix(300), as: UTF8.self))
        }
        return Answer(tsv: tsv, seconds: seconds)
    }

    /// Ends the Python process (closing its stdin ends its loop).
    package func close() {
        guard process.isRunning else { return }
        try? requests.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: errorLog)
    }

    private func readLine() throws -> [UInt8] {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                return line
            }
            let chunk = replies.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                let errors = (try? String(contentsOf: errorLog, encoding: .utf8)) ?? ""
                throw ChdbSessionError(kind: .processEnded, detail: String(errors.suffix(600)))
            }
            pending.append(contentsOf: chunk)
        }
    }
}

/// chdb's session process could not start, ended, refused a statement, or answered something unreadable;
/// `detail` carries chdb's own words (or the start of what it printed).
package struct ChdbSessionError: Error, CustomStringConvertible {
    package enum Kind: Sendable { case notStarted, processEnded, refused, unreadableReply }
    package let kind: Kind
    package let detail: String

    package var description: String {
        switch kind {
        case .notStarted: "chdb's Python process could not be started: \(detail)"
        case .processEnded: "chdb's Python process ended (is chdb installed? scripts/setup-deps installs it): \(detail)"
        case .refused: "chdb refused a statement: \(detail)"
        case .unreadableReply: "chdb answered something unreadable: \(detail)"
        }
    }
}
