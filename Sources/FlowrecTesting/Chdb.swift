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
