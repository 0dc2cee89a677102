import AsyncHTTPClient
package import Foundation
import NIOCore
import NIOSSL

/// Where and how to reach a ClickHouse server's HTTP interface.
package struct ClickHouseEndpoint: Sendable {
    /// `http://host:8123` or `https://host:8443`.
    package var url: URL
    package var user: String
    package var password: String
    /// PEM file of the CA that signed the server's certificate (default: the system's).
    package var caFile: String?
    /// PEM certificate and key for mutual TLS.
    package var certificateFile: String?
    package var keyFile: String?
    /// Longest wait for one request, the insert of a whole chunk included.
    package var timeoutSeconds: Double

    /// A server on this host with the stock user: what a first try points at.
    package static let defaultURL = "http://127.0.0.1:8123"
    package static let defaultUser = "default"

    package init(url: URL, user: String = defaultUser, password: String = "", caFile: String? = nil,
                certificateFile: String? = nil, keyFile: String? = nil, timeoutSeconds: Double = 300) {
        self.url = url
        self.user = user
        self.password = password
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.timeoutSeconds = timeoutSeconds
    }

    /// The endpoint without its password, for messages.
    package var displayURL: String {
        var parts = URLComponents(url: url, resolvingAgainstBaseURL: false)
        parts?.user = nil
        parts?.password = nil
        return parts?.string ?? url.absoluteString
    }
}

/// An answer from ClickHouse other than 200: the status and the server's own message.
struct ClickHouseStatusError: Error, CustomStringConvertible {
    let status: Int
    let message: String

    /// 5xx answers are retried; 4xx ones (authentication, syntax, unknown table) are
    /// not: the same request would fail the same way.
    var isRetryable: Bool { status >= 500 }
    var description: String { "ClickHouse answered HTTP \(status): \(message)" }
}

/// Statements and inserts over ClickHouse's HTTP interface, through AsyncHTTPClient.
/// The forwarder's transport; public for tools that talk to the same server (the
/// benchmark's baselines). Call `shutdown()` before dropping it.
package final class ClickHouseHTTP: Sendable {
    package let endpoint: ClickHouseEndpoint
    private let client: HTTPClient
    private let authorization: String

    package init(endpoint: ClickHouseEndpoint) throws(ForwarderError) {
        self.endpoint = endpoint
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(Int64(endpoint.timeoutSeconds)))
        if endpoint.url.scheme == "https" {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                if let ca = endpoint.caFile { tls.trustRoots = .file(ca) }
                if let certificate = endpoint.certificateFile {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                }
                if let key = endpoint.keyFile { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) }
            } catch {
                throw ForwarderError(.configuration, "cannot load the ClickHouse TLS files: \(error)")
            }
            if (endpoint.certificateFile == nil) != (endpoint.keyFile == nil) {
                throw ForwarderError(.configuration, "mutual TLS needs both a client certificate and its key")
            }
            configuration.tlsConfiguration = tls
        } else if endpoint.url.scheme != "http" {
            throw ForwarderError(.configuration, "the ClickHouse URL must start with http:// or https:// (got \(endpoint.displayURL))")
        }
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        authorization = "Basic " + Data("\(endpoint.user):\(endpoint.password)".utf8).base64EncodedString()
    }

    /// Runs one statement; returns the body (TabSeparated unless the SQL says otherwise).
    package func query(_ sql: String) async throws -> String {
        let body = try await post(parameters: [:], body: Array(sql.utf8), compression: .none)
        return String(decoding: body, as: UTF8.self)
    }

    /// `INSERT` with the data in the body, compressed as `compression` says; `settings`
    /// go in the URL.
    package func insert(_ statement: String, body: [UInt8], compression: ClickHouseBodyCompression,
                        settings: [String: String] = [:]) async throws {
        var parameters = settings
        parameters["query"] = statement
        _ = try await post(parameters: parameters, body: body, compression: compression)
    }

    private func post(parameters: [String: String], body: [UInt8], compression: ClickHouseBodyCompression) async throws -> [UInt8] {
        var parameters = parameters
        // The server undoes its own framing when the URL asks, gzip when the header says so.
        if compression == .zstd { parameters["decompress"] = "1" }
        var components = URLComponents(url: endpoint.url, resolvingAgainstBaseURL: false)
        components?.user = nil
        components?.password = nil
        if components?.path.isEmpty ?? true { components?.path = "/" }
        components?.queryItems = parameters.isEmpty ? nil
            : parameters.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        guard let url = components?.url?.absoluteString else {
            throw ForwarderError(.configuration, "bad ClickHouse URL \(endpoint.displayURL)")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: authorization)
        if compression == .gzip { request.headers.add(name: "Content-Encoding", value: "gzip") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(Int64(endpoint.timeoutSeconds)))
        let answer = try await response.body.collect(upTo: 64 << 20)
        let bytes = Array(answer.readableBytesView)
        guard response.status.code == 200 else {
            let text = String(decoding: bytes.prefix(2000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ClickHouseStatusError(status: Int(response.status.code), message: text)
        }
        return bytes
    }

    package func shutdown() async throws {
        try await client.shutdown()
    }
}
