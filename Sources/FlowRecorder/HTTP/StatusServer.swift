import Foundation
import StorageKit
import Hummingbird
package import Logging
package import FlowrecConfig
import HummingbirdCore
import HTTPTypes
import HummingbirdTLS
import NIOSSL
import ServiceLifecycle
import NIOCore
import Synchronization


/// The recorder's HTTP listener (Hummingbird), run on Swift's concurrency threads
/// beside the synchronous recorder loop.
package final class StatusServer: Sendable {
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    /// Runs the application; asked to shut down gracefully (finish open requests, log
    /// nothing alarming) when the recorder stops.
    private let group: ServiceGroup
    private let executor = DedicatedThreadExecutor(name: "flowrec-http")
    /// The port actually bound (differs from the configured one when that is 0).
    package let port: Int
    private let api: FlowAPI?

    /// Starts listening; returns once the socket is bound, or throws why it could not be.
    private let loki: LokiAPI?
    /// Where pushed batches wait for the recorder's loop (nil without the Loki API).
    var pushInbox: PushInbox? { loki?.loki.pushEnabled == true ? loki?.inbox : nil }

    package init(configuration: HTTPListenerConfiguration, metrics: RecorderMetrics, status: RecorderStatus,
                api: FlowAPI? = nil, loki: LokiAPI? = nil, logger: Logger = Logger(label: "flowrec.http")) throws {
        self.api = api
        self.loki = loki
        try configuration.validate()
        let router = Router()
        let token = configuration.bearerToken
        router.get("healthz") { _, _ -> Response in
            if let problem = status.livenessProblem() { return Self.text(.serviceUnavailable, problem + "\n") }
            return Self.text(.ok, "ok\n")
        }
        router.get("readyz") { _, _ -> Response in
            if let problem = status.readinessProblem() { return Self.text(.serviceUnavailable, problem + "\n") }
            // Failing jobs that do not stop ingest (forwarding, retention, compaction) are
            // listed under "ready", so a look at the probe says what is wrong.
            return Self.text(.ok, (["ready"] + status.warnings().map { "warning: " + $0 }).joined(separator: "\n") + "\n")
        }
        router.get("metrics") { request, _ -> Response in
            if !Self.authorized(request, token) { return Self.unauthorized() }
            var response = Self.text(.ok, metrics.registry.emitToString())
            response.headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        }

        if let api {
            for path in FlowAPI.paths {
                router.get(RouterPath(stringLiteral: String(path.dropFirst()))) { request, _ -> Response in
                    if !Self.authorized(request, token) { return Self.unauthorized() }
                    var query: [String: String] = [:]
                    for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
                    let answer = await api.answer(path: path, query: query)
                    var response = Response(status: .init(code: answer.status), body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
                    response.headers[.contentType] = "application/json"
                    return response
                }
            }
        }

        if let loki { Self.addLokiRoutes(loki, to: router, token: token, status: status, metrics: metrics) }

        var server = HTTPServerBuilder.http1()
        if let cert = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
                let tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                server = try .tls(.http1(), tlsConfiguration: tls)
            } catch {
                throw RecorderError(.listenerFailed, "cannot load the HTTP TLS certificate \(cert) or key \(key): \(error)", cause: error)
            }
        }
        // flowrec announces the listener itself; Hummingbird's own log keeps to problems.
        var serverLogger = Logger(label: "flowrec.http")
        serverLogger.logLevel = .warning
        let bound = BoundPort()
        let app = Application(
            router: router, server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "flowrec"),
            onServerRunning: { channel in bound.set(.success(channel.localAddress?.port ?? configuration.port)) },
            logger: serverLogger)
        let group = ServiceGroup(services: [app], logger: serverLogger)
        self.group = group
        let task = Task.detached(executorPreference: executor) {
            do {
                try await group.run()
            } catch {
                bound.set(.failure(error))
                throw error
            }
        }
        switch bound.wait(seconds: 30) {
        case .success(let port)?:
            self.port = port
        case .failure(let error)?:
            executor.shutdown()
            throw RecorderError(.listenerFailed, "cannot listen on \(configuration.host):\(configuration.port): \(error)", cause: error)
        case nil:
            task.cancel()
            executor.shutdown()
            throw RecorderError(.listenerFailed, "the HTTP listener on \(configuration.host):\(configuration.port) did not start within 30 s")
        }
        self.task.withLock { $0 = task }
        logger.info("HTTP listener up", metadata: [
            "url": "\(configuration.tlsCertificatePath == nil ? "http" : "https")://\(configuration.host):\(port)",
            "paths": "/metrics, /healthz, /readyz\(api == nil ? "" : ", /api/v1")\(loki == nil ? "" : ", /loki/api/v1")",
        ])
    }

    /// The Loki API's routes: reads on the query threads, pushes through the inbox.
    private static func addLokiRoutes(_ loki: LokiAPI, to router: Router<BasicRequestContext>, token: String?,
                                      status: RecorderStatus, metrics: RecorderMetrics) {
        let orgID = HTTPField.Name("X-Scope-OrgID")!
        let read: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let path = request.uri.path
            // `/ready` is a probe: the console asks it with the same headers, but it tells nothing.
            if path != "/ready", !Self.authorized(request, token) { return Self.unauthorized() }
            let problem = status.readinessProblem()
            let answer = await loki.read(path: path, rawQuery: Substring(request.uri.query ?? ""), orgID: request.headers[orgID],
                                         ready: problem == nil, readyProblem: problem)
            return Self.response(answer)
        }
        for path in ["loki/api/v1/query_range", "loki/api/v1/labels", "loki/api/v1/label", "loki/api/v1/label/:name/values",
                     "loki/api/v1/status/buildinfo", "config", "ready"] {
            router.get(RouterPath(stringLiteral: path), use: read)
        }
        let maxBody = loki.loki.maxPushBytes
        router.post("loki/api/v1/push") { request, _ -> Response in
            if !Self.authorized(request, token) { return Self.unauthorized() }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: maxBody)
            } catch {
                metrics.countPushRejected("too_large")
                return Self.response(.error(413, "the push body is larger than \(maxBody) bytes (loki.maxPushBytes); send smaller batches"))
            }
            let answer = await loki.push(body: Array(buffer: body), contentType: request.headers[.contentType],
                                         contentEncoding: request.headers[.contentEncoding], orgID: request.headers[orgID])
            if answer.status >= 400 { metrics.countPushRejected(answer.status == 400 ? "malformed" : String(answer.status)) }
            return Self.response(answer)
        }
    }

    private static func response(_ answer: LokiAPI.Answer) -> Response {
        var response = Response(status: .init(code: answer.status), body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        response.headers[.contentType] = answer.contentType
        for (name, value) in answer.headers { if let field = HTTPField.Name(name) { response.headers[field] = value } }
        return response
    }

    /// `Authorization: Bearer <token>` (the scheme in any case, as RFC 9110 allows), when
    /// a token is set.
    static func authorized(_ request: Request, _ token: String?) -> Bool {
        guard let token else { return true }
        let header = request.headers[.authorization] ?? ""
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        return constantTimeEquals(String(header.dropFirst(7)), token)
    }

    static func unauthorized() -> Response {
        var response = text(.unauthorized, "send the token as `Authorization: Bearer <token>`\n")
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }

    /// Stops listening (open connections are finished first).
    package func stop() {
        let running = task.withLock { task -> Task<Void, any Error>? in
            defer { task = nil }
            return task
        }
        guard let running else { return }
        let done = DispatchSemaphore(value: 0)
        let group = self.group
        Task.detached(executorPreference: executor) {
            await group.triggerGracefulShutdown()
            _ = await running.result
            done.signal()
        }
        if done.wait(timeout: .now() + 10) == .timedOut { running.cancel() }
        executor.shutdown()
        api?.shutdown()
        loki?.shutdown()
    }

    deinit { stop() }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Compares without an early exit, so response time does not reveal the token.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}

/// Hands the bound port (or the start-up error) from the server task to the starting thread.
private final class BoundPort: Sendable {
    private let value = Mutex<Result<Int, any Error>?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func set(_ result: Result<Int, any Error>) {
        let first = value.withLock { current -> Bool in
            guard current == nil else { return false }
            current = result
            return true
        }
        if first { ready.signal() }
    }

    func wait(seconds: Double) -> Result<Int, any Error>? {
        _ = ready.wait(timeout: .now() + seconds)
        return value.withLock { $0 }
    }
}
