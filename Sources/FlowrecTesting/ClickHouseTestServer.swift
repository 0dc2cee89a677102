public import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The ClickHouse server that `scripts/clickhouse-test-server` started, as given by
/// FLOWREC_CLICKHOUSE_URL (`http://user:password@127.0.0.1:18123`).
public struct ClickHouseTestServer: Sendable {
    public let endpoint: URL
    public let user: String
    public let password: String

    /// The server from the environment; `nil` when none was started (the test skips,
    /// unless `TestEnvironment.requireServers`).
    public static func fromEnvironment() -> ClickHouseTestServer? {
        guard let raw = ProcessInfo.processInfo.environment["FLOWREC_CLICKHOUSE_URL"],
              var parts = URLComponents(string: raw) else { return nil }
        let user = parts.user ?? "default"
        let password = parts.password ?? ""
        parts.user = nil
        parts.password = nil
        guard let url = parts.url else { return nil }
        return ClickHouseTestServer(endpoint: url, user: user, password: password)
    }

    public struct QueryFailed: Error, CustomStringConvertible {
        public let status: Int
        public let message: String
        public var description: String { "ClickHouse answered HTTP \(status): \(message)" }
    }

    /// Runs one statement over HTTP and returns the body; non-200 answers throw with
    /// the server's message.
    public func query(_ sql: String, body: Data? = nil, user: String? = nil, password: String? = nil) async throws -> String {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)
        var request: URLRequest
        if let body {
            components?.queryItems = [URLQueryItem(name: "query", value: sql)]
            request = URLRequest(url: components?.url ?? endpoint)
            request.httpBody = body
        } else {
            request = URLRequest(url: endpoint)
            request.httpBody = Data(sql.utf8)
        }
        request.httpMethod = "POST"
        let credentials = Data("\(user ?? self.user):\(password ?? self.password)".utf8).base64EncodedString()
        request.setValue("Basic \(credentials)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let text = String(decoding: data, as: UTF8.self)
        guard status == 200 else { throw QueryFailed(status: status, message: text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return text
    }
}
