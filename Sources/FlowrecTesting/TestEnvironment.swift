package import Foundation

/// Where the tests find the project, the shared sample data and the test servers.
package enum TestEnvironment {
    /// True in CI (`CI=true`, set by `scripts/test` as FLOWREC_REQUIRE_SERVERS=1):
    /// an integration test whose server is missing must fail, not skip.
    package static var requireServers: Bool {
        ProcessInfo.processInfo.environment["FLOWREC_REQUIRE_SERVERS"] == "1"
    }

    /// The package's root directory (the one holding Package.swift).
    package static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` beside the checkout: NetObserv samples and the field reference. Present
    /// in CI and on developer machines; tests that read it skip when it is absent.
    package static var sharedDirectory: URL? {
        let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// The lines of `shared/corpus/netobserv-flows.jsonl`, or nil when shared/ is absent.
    package static func sharedCorpusLines() throws -> [[UInt8]]? {
        guard let shared = sharedDirectory else { return nil }
        let data = try Data(contentsOf: shared.appendingPathComponent("corpus/netobserv-flows.jsonl"))
        return data.split(separator: UInt8(ascii: "\n")).map { Array($0) }
    }

    /// A built executable of this package: from `env` if set, else next to the test bundle.
    package static func executable(_ name: String, env: String) -> URL {
        if let path = ProcessInfo.processInfo.environment[env] { return URL(fileURLWithPath: path) }
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            packageRoot.appendingPathComponent(".build/debug"),
        ]
        for dir in candidates {
            let url = dir.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return packageRoot.appendingPathComponent(".build/debug").appendingPathComponent(name)
    }
}

/// A test server could not be reached; the message says how to start it.
package struct TestServerUnavailable: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// A fresh directory per test, removed when the value goes away.
package final class TemporaryDirectory {
    package let path: String

    package init() {
        TestLogging.bootstrapped
        path = NSTemporaryDirectory() + "flowrec-test-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
