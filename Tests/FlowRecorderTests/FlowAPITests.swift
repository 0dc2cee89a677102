import FlowrecTestTraits
import FlowModel
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing
import Yams

/// `/api/v1/flows`, `/top` and `/shards` on the listener, against the store and the
/// CLI's own answers; limits, errors, the token; and docs/openapi.yaml matching the code.
@Suite(.ownThread) struct FlowAPITests {
    func get(_ port: Int, _ path: String, token: String? = "secret") throws -> (status: Int, json: [String: Any]) {
        let response = try LoopbackHTTP.get(port: port, path: path, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
        let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    static func encoded(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s
    }

    @Test func endpointsAnswerLikeTheCommandsAndEnforceTheirLimits() throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 30_000)
        var http = HTTPListenerConfiguration()
        http.port = 0
        http.bearerToken = "secret"
        var api = FlowAPI(dataDirectory: dir.path)
        api.maxRows = 500
        let server = try StatusServer(configuration: http, metrics: RecorderMetrics(), status: RecorderStatus(), api: api)
        defer { server.stop() }
        let port = server.port

        #expect(try get(port, "/api/v1/shards", token: nil).status == 401)
        let shards = try get(port, "/api/v1/shards")
        #expect(shards.status == 200)
        #expect((shards.json["shards"] as? [[String: Any]])?.count == (try store.shards().count))

        let all = try store.shards()
        let from = try #require(all.compactMap(\.minTimeMs).min()), to = try #require(all.compactMap(\.maxTimeMs).max()) + 1
        let filter = "DstPort = 443"
        var expected = 0
        var query = FlowQuery()
        query.fromMs = from
        query.toMs = to
        query.whereSQL = filter
        query.fields = ["Bytes"]
        try FlowQueryRunner(store: store).run(query) { _ in
            expected += 1
            return true
        }
        #expect(expected > 10)
        let page = try get(port, "/api/v1/flows?from=\(from)&to=\(to)&where=\(Self.encoded(filter))&limit=10&fields=DstPort,Bytes,Interfaces")
        #expect(page.status == 200)
        #expect(page.json["count"] as? Int == 10 && page.json["truncated"] as? Bool == true)
        let flows = try #require(page.json["flows"] as? [[String: Any]])
        #expect(flows.allSatisfy { ($0["DstPort"] as? NSNumber)?.intValue == 443 }, "\(flows.prefix(2))")
        #expect(flows.contains { $0["Interfaces"] is [Any] }, "arrays come back as JSON arrays: \(flows.prefix(2))")
        let whole = try get(port, "/api/v1/flows?from=\(from)&to=\(to)&where=\(Self.encoded(filter))&limit=500&fields=Bytes")
        #expect(whole.json["count"] as? Int == min(expected, 500))

        let top = try get(port, "/api/v1/top?from=\(from)&to=\(to)&by=SrcK8S_Namespace&metric=bytes&limit=3")
        let rows = try #require(top.json["top"] as? [[String: Any]])
        let direct = try TopTalkers(store: store).run(by: ["SrcK8S_Namespace"], metric: .bytes, fromMs: from, toMs: to, limit: 3)
        #expect(rows.compactMap { ($0["bytes"] as? NSNumber)?.int64Value } == direct.map(\.bytes))

        // Limits and mistakes: 400 with a message that says what to change.
        let tooLong = try get(port, "/api/v1/flows?from=0&to=\(40 * 86_400_000)")
        #expect(tooLong.status == 400 && (tooLong.json["error"] as? String)?.contains("at most 31") == true)
        #expect(try get(port, "/api/v1/flows?since=1h&limit=501").status == 400)
        #expect(try get(port, "/api/v1/top?since=1h&by=SrcK8S_Namespace&metric=volume").status == 400)
        #expect(try get(port, "/api/v1/top?since=1h").status == 400)
        let badSQL = try get(port, "/api/v1/flows?from=\(from)&to=\(to)&where=\(Self.encoded("DstPort = "))")
        #expect(badSQL.status == 400 && (badSQL.json["error"] as? String)?.contains("not valid SQL") == true)
        // The API opened the store for reading only: the store still takes batches.
        #expect(try store.append(batch(generatedLines(10, seed: 99)[...], source: "file:after", firstLine: 1)).stored == 10)
    }

    /// Parameters that trapped the recorder (one authenticated GET stopped ingest) get a 400.
    @Test func hostileParametersAreRefusedWithoutACrash() throws {
        let dir = TemporaryDirectory()
        _ = try sealedGeneratedStore(at: dir.path, count: 2_000)
        var http = HTTPListenerConfiguration()
        http.port = 0
        let server = try StatusServer(configuration: http, metrics: RecorderMetrics(), status: RecorderStatus(),
                                      api: FlowAPI(dataDirectory: dir.path))
        defer { server.stop() }
        let hostile = [
            "since=inf", "since=-inf", "since=nan", "since=1e300d", "since=1e300", "since=99999999999999w",
            "from=-9223372036854775808", "from=9223372036854775807", "to=-9223372036854775808", "to=9223372036854775807",
            "from=0&to=9223372036854775807", "from=-1", "from=1e400", "limit=99999999999999999999", "limit=-1",
            "from=10000-01-01T00:00:00Z", "since=1h&from=0",
        ]
        for path in ["/api/v1/flows", "/api/v1/top"] {
            for parameters in hostile {
                let query = path.hasSuffix("top") ? parameters + "&by=SrcK8S_Namespace" : parameters
                let answer = try get(server.port, path + "?" + query, token: nil)
                #expect(answer.status == 400, "\(path)?\(query): \(answer.status) \(answer.json)")
                #expect(answer.json["error"] is String, "\(path)?\(query)")
            }
        }
        #expect(try get(server.port, "/api/v1/flows?since=2h", token: nil).status == 200, "the listener still answers")
    }

    /// Queries that run past their deadline are stopped (503 saying so) on the API's own
    /// threads while the probes keep answering; a pasted statement in `where` is a 400.
    @Test func runawayQueriesAreCancelledWhileTheProbesAnswer() async throws {
        let dir = TemporaryDirectory()
        _ = try sealedGeneratedStore(at: dir.path, count: 60_000)
        var http = HTTPListenerConfiguration()
        http.port = 0
        var api = FlowAPI(dataDirectory: dir.path, maxConcurrentQueries: 2)
        api.queryTimeoutSeconds = 0.05
        api.maxRangeMs = .max
        let server = try StatusServer(configuration: http, metrics: RecorderMetrics(), status: RecorderStatus(), api: api)
        defer { server.stop() }
        let port = server.port
        // Four megabytes built for every row: far past the 50 ms deadline on any machine
        // (a plain scan of these 60,000 rows can finish within it on a fast one).
        let slow = "/api/v1/flows?from=0&to=9999999999999&limit=1&where="
            + Self.encoded("length(printf('%.*c', 4000000, coalesce(SrcK8S_Name, 'x'))) < 0")
        async let first = Task.detached { try LoopbackHTTP.get(port: port, path: slow) }.value
        async let second = Task.detached { try LoopbackHTTP.get(port: port, path: slow) }.value
        for _ in 0..<5 {
            let started = Date()
            #expect(try LoopbackHTTP.get(port: port, path: "/healthz").status == 200)
            #expect(Date().timeIntervalSince(started) < 2, "the probe answers while the queries run")
        }
        for answer in try await [first, second] {
            let text = String(decoding: answer.body, as: UTF8.self)
            #expect(answer.status == 503 && text.contains("deadline"), "\(answer.status) \(text)")
        }
        let injected = try get(port, "/api/v1/flows?since=1h&where=" + Self.encoded("1=0) UNION ALL SELECT name, sql FROM sqlite_master --"), token: nil)
        #expect(injected.status == 400 && (injected.json["error"] as? String)?.contains("one SQL expression") == true, "\(injected.json)")
    }

    /// docs/openapi.yaml declares exactly the endpoints and parameters the code serves.
    @Test func openAPIDescribesTheCode() throws {
        let text = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let spec = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(spec["paths"] as? [String: Any])
        #expect(Set(paths.keys) == Set(FlowAPI.paths).union(LokiAPI.parameters.keys))
        let shared = (spec["components"] as? [String: Any])?["parameters"] as? [String: [String: Any]] ?? [:]
        for (path, expected) in FlowAPI.parameters.merging(LokiAPI.parameters, uniquingKeysWith: { a, _ in a }) {
            let method = path == LokiAPI.pushPath ? "post" : "get"
            let get = (paths[path] as? [String: Any])?[method] as? [String: Any]
            #expect(get != nil, "\(path) has no \(method)")
            let declared = (get?["parameters"] as? [[String: Any]] ?? []).compactMap { parameter -> String? in
                if let ref = parameter["$ref"] as? String { return shared[String(ref.split(separator: "/").last ?? "")]?["name"] as? String }
                return parameter["in"] as? String == "path" ? nil : parameter["name"] as? String
            }
            #expect(Set(declared) == Set(expected), "\(path)")
        }
    }
}
