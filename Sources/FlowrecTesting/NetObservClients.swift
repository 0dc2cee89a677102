package import Foundation
import Synchronization

/// NetObserv's own programs, built from `../shared/clients` (`build-go-client`): the
/// console plugin backend and flowlogs-pipeline. `scripts/test` builds them once and
/// passes their paths in FLOWREC_CONSOLE_PLUGIN and FLOWREC_FLP; a test run without
/// them (a developer's `swift test`) builds them here, and skips only when `../shared`
/// or Go cannot be had outside CI.
package enum NetObservClients {
    package enum Program: String, Sendable {
        case consolePlugin = "console-plugin"
        case flowlogsPipeline = "flowlogs-pipeline"

        var environmentVariable: String { self == .consolePlugin ? "FLOWREC_CONSOLE_PLUGIN" : "FLOWREC_FLP" }
    }

    /// The program's binary, or nil when it cannot be had and the run may skip. In CI
    /// (FLOWREC_REQUIRE_SERVERS=1) a missing program is an error.
    package static func binary(_ program: Program) throws -> URL? {
        if let path = ProcessInfo.processInfo.environment[program.environmentVariable], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw TestServerUnavailable("\(program.environmentVariable)=\(path) is not an executable")
            }
            return URL(fileURLWithPath: path)
        }
        guard let shared = TestEnvironment.sharedDirectory else {
            if TestEnvironment.requireServers { throw TestServerUnavailable("../shared is missing: NetObserv's \(program.rawValue) cannot be built") }
            return nil
        }
        let lock = built.withLock { $0[program] }
        if let lock { return lock }
        let script = shared.appendingPathComponent("clients/build-go-client")
        let process = Process()
        process.executableURL = script
        process.arguments = [program.rawValue]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let path = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard process.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) else {
            if TestEnvironment.requireServers {
                throw TestServerUnavailable("build-go-client \(program.rawValue) failed (exit \(process.terminationStatus)); see its output above")
            }
            return nil
        }
        let url = URL(fileURLWithPath: path)
        built.withLock { $0[program] = url }
        return url
    }

    /// Binaries already built in this test process.
    private static let built = Mutex<[Program: URL]>([:])
}
