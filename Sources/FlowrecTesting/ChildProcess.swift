package import Foundation
import FlowModel
package import ShardStore

/// Runs the project's own binaries and stock tools from tests.
package enum ChildProcess {
    /// The built `flowrec` (FLOWREC_BIN, or next to the test bundle); a clear error when
    /// it has not been built.
    package static func flowrec() throws -> URL {
        let url = TestEnvironment.executable("flowrec", env: "FLOWREC_BIN")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw TestServerUnavailable("\(url.path) is missing: run `swift build` first (scripts/test does)")
        }
        return url
    }

    /// Starts `executable` with its output discarded, or its standard error written to
    /// the file `errorLog`; `environment` entries are added to (or, when nil, removed
    /// from) the test's own environment.
    package static func start(_ executable: URL, _ arguments: [String],
                             environment: [String: String?] = [:], errorLog: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if let errorLog {
            guard FileManager.default.createFile(atPath: errorLog, contents: nil),
                  let file = FileHandle(forWritingAtPath: errorLog) else { throw TestServerUnavailable("cannot create \(errorLog)") }
            process.standardError = file
        }
        try process.run()
        return process
    }

    /// Runs to completion; returns the exit status.
    package static func run(_ executable: URL, _ arguments: [String], environment: [String: String?] = [:]) throws -> Int32 {
        let process = try start(executable, arguments, environment: environment)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// What a run printed, apart, and how it ended.
    package struct Captured: Sendable {
        package let status: Int32
        package let stdout: String
        package let stderr: String
    }

    /// Runs to completion, capturing standard output and error (through files, so that
    /// neither can fill a pipe and stall the other).
    package static func capture(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> Captured {
        let base = NSTemporaryDirectory() + "flowrec-capture-" + UUID().uuidString
        defer { for suffix in [".out", ".err"] { try? FileManager.default.removeItem(atPath: base + suffix) } }
        for suffix in [".out", ".err"] { _ = FileManager.default.createFile(atPath: base + suffix, contents: nil) }
        guard let out = FileHandle(forWritingAtPath: base + ".out"), let err = FileHandle(forWritingAtPath: base + ".err") else {
            throw TestServerUnavailable("cannot create capture files under \(NSTemporaryDirectory())")
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try? out.close()
        try? err.close()
        return Captured(status: process.terminationStatus,
                        stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                        stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
    }

    /// Runs a tool (`/usr/bin/sqlite3`, ...) and returns what it printed, stdout then stderr.
    @discardableResult
    package static func output(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: stdout, as: UTF8.self) + String(decoding: stderr, as: UTF8.self)
    }
}

/// Every flow of a store, re-encoded as NetObserv JSON, shard by shard.
package func storedFlows(_ store: ShardStore) throws -> [String] {
    var out: [String] = []
    let encoder = FlowEncoder()
    for shard in try store.shards() {
        try store.forEachFlow(in: shard.id) { out.append(encoder.encode($0)) }
    }
    return out
}
