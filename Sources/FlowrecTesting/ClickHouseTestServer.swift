package import Foundation

/// The ClickHouse server that `scripts/clickhouse-test-server` started, as given by
/// FLOWREC_CLICKHOUSE_URL (`http://user:password@127.0.0.1:18123`).
package struct ClickHouseTestServer: Sendable {
    package let endpoint: URL
    package let user: String
    package let password: String

    package init(endpoint: URL, user: String, password: String) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
    }

    /// The server from the environment; `nil` when none was started (the test skips,
    /// unless `TestEnvironment.requireServers`).
    package static func fromEnvironment() -> ClickHouseTestServer? {
        guard let raw = ProcessInfo.processInfo.environment["FLOWREC_CLICKHOUSE_URL"],
              var parts = URLComponents(string: raw) else { return nil }
        let user = parts.user ?? "default"
        let password = parts.password ?? ""
        parts.user = nil
        parts.password = nil
        guard let url = parts.url else { return nil }
        return ClickHouseTestServer(endpoint: url, user: user, password: password)
    }

    package struct QueryFailed: Error, CustomStringConvertible {
        package let status: Int
        package let message: String
        package var description: String { "ClickHouse answered HTTP \(status): \(message)" }
    }

    /// Runs one statement over HTTP and returns the body; non-200 answers throw with
    /// the server's message. With `body`, the statement goes in the URL and the body
    /// carries the data (`INSERT ... FORMAT JSONEachRow`).
    package func query(_ sql: String, body: Data? = nil, user: String? = nil, password: String? = nil) throws -> String {
        String(decoding: try request(sql, body: body, user: user, password: password), as: UTF8.self)
    }

    /// `query`'s answer as bytes; `parameters` go in the URL beside the statement
    /// (`decompress=1`, settings).
    package func request(_ sql: String, parameters: [String: String] = [:], body: Data? = nil,
                         user: String? = nil, password: String? = nil) throws -> Data {
        var components = URLComponents()
        components.path = "/"
        var payload = Data(sql.utf8)
        var items = parameters.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        if let body {
            items.append(URLQueryItem(name: "query", value: sql))
            payload = body
        }
        components.queryItems = items.isEmpty ? nil : items
        let credentials = Data("\(user ?? self.user):\(password ?? self.password)".utf8).base64EncodedString()
        let response = try LoopbackHTTP.post(
            host: endpoint.host ?? "127.0.0.1", port: endpoint.port ?? 8123,
            path: components.percentEncodedQuery.map { "/?\($0)" } ?? "/",
            headers: ["Authorization": "Basic \(credentials)"], body: payload)
        guard response.status == 200 else {
            let text = String(decoding: response.body, as: UTF8.self)
            throw QueryFailed(status: response.status, message: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return response.body
    }
}
