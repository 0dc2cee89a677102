package import Foundation
import FlowrecConfig
import Query
import ShardStore

/// The JSON API on the recorder's listener: `/api/v1/flows`, `/api/v1/top` and
/// `/api/v1/shards`, described in `docs/openapi.yaml`.
///
/// Each request opens the store for reading (the recorder keeps writing) and runs on
/// the API's own threads (`QueryPool`), not the listener's: a long query never delays
/// `/healthz`, and at most `maxConcurrentQueries` run at once. Ranges, result sizes and
/// each query's time and memory are bounded (`QueryLimits`), so one request cannot scan
/// a year, return gigabytes or keep a core busy after its client left.
package struct FlowAPI: Sendable {
    package var dataDirectory: String
    /// The longest time range one request may cover.
    package var maxRangeMs: Int64 = 31 * 86_400_000
    /// The most flows (or groups) one response may hold.
    package var maxRows = 10_000
    /// How long one query may run (the console plugin gives up after 30 s).
    package var queryTimeoutSeconds = 30.0
    private let pool: QueryPool

    package init(dataDirectory: String, maxConcurrentQueries: Int = 2) {
        self.init(dataDirectory: dataDirectory, pool: QueryPool(threads: maxConcurrentQueries, maxQueued: 4 * maxConcurrentQueries))
    }

    /// Sharing `pool` with the Loki API: together they run at most its threads' queries.
    init(dataDirectory: String, pool: QueryPool) {
        self.dataDirectory = dataDirectory
        self.pool = pool
    }

    /// Lets the API's threads end (the listener stopped).
    package func shutdown() { pool.shutdown() }

    /// The bounds of one request's queries; `cancellation` stops them when the client leaves.
    func limits(_ cancellation: QueryCancellation) -> QueryLimits {
        var limits = QueryLimits(deadlineSeconds: queryTimeoutSeconds)
        limits.cancellation = cancellation
        return limits
    }

    /// The paths served, for the router and the OpenAPI check.
    package static let paths = ["/api/v1/flows", "/api/v1/top", "/api/v1/shards"]
    /// Query parameters each path reads (the OpenAPI file must declare exactly these).
    package static let parameters: [String: [String]] = [
        "/api/v1/flows": ["from", "to", "since", "where", "fields", "limit"],
        "/api/v1/top": ["from", "to", "since", "where", "by", "metric", "limit"],
        "/api/v1/shards": [],
    ]

    /// An answer: HTTP status and a JSON body.
    package struct Answer: Sendable {
        package let status: Int
        package let body: Data
    }

    /// Answers `path` with `query` parameters on the API's threads; a client that goes
    /// away cancels its query.
    package func answer(path: String, query: [String: String]) async -> Answer {
        let cancellation = QueryCancellation()
        return await withTaskCancellationHandler {
            do {
                return try await pool.run { self.answerNow(path: path, query: query, limits: self.limits(cancellation)) }
            } catch {
                return Self.error(503, "too many outstanding requests: \(pool.threads) queries run at once and \(pool.maxQueued) may wait; retry shortly")
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    func answerNow(path: String, query: [String: String], limits: QueryLimits = QueryLimits(deadlineSeconds: 30)) -> Answer {
        do {
            switch path {
            case "/api/v1/flows": return try flows(query, limits)
            case "/api/v1/top": return try top(query, limits)
            case "/api/v1/shards": return try shards()
            default: return Self.error(404, "no such endpoint; endpoints are " + Self.paths.joined(separator: ", "))
            }
        } catch let error as APIError {
            return Self.error(error.status, error.message)
        } catch let error as QueryError {
            return Self.error(Self.status(of: error), error.description)
        } catch let error as ShardStoreError {
            return Self.error(error.kind == .notADataDirectory ? 503 : 500, error.description)
        } catch {
            return Self.error(500, "\(error)")
        }
    }

    struct APIError: Error {
        let status: Int
        let message: String
    }

    // MARK: Endpoints

    /// The HTTP status of a query failure: the request's fault (400), a bound that
    /// stopped it (503, retry narrower), or the server's (500: a shard that cannot be read).
    static func status(of error: QueryError) -> Int {
        switch error.kind {
        case .invalidStatement, .unknownField, .invalidArgument, .notAllowed: 400
        case .cancelled: 503
        case .unreadableShard, .outputFailed, .store: 500
        }
    }

    private func flows(_ q: [String: String], _ limits: QueryLimits) throws -> Answer {
        let (from, to) = try range(q)
        var query = FlowQuery()
        query.fromMs = from
        query.toMs = to
        query.whereSQL = q["where"]
        query.fields = q["fields"].map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
        let limit = try limitParameter(q, default: 100)
        query.limit = limit + 1  // one more tells whether the answer was cut
        let store = try openStore()
        let runner = FlowQueryRunner(store: store, limits: limits)
        let columns = runner.columns(for: query)
        var rows: [[String: Any]] = []
        try runner.run(query) { values in
            var object: [String: Any] = [:]
            for (name, value) in zip(columns, values) {
                switch value {
                case .null: continue
                case .integer(let v): object[name] = v
                case .unsigned(let v): object[name] = v
                case .real(let v): object[name] = v
                case .text(let t):
                    // Arrays and objects are stored as their JSON text: give them back as JSON.
                    if t.hasPrefix("[") || t.hasPrefix("{"), let parsed = try? JSONSerialization.jsonObject(with: Data(t.utf8)) {
                        object[name] = parsed
                    } else {
                        object[name] = t
                    }
                }
            }
            rows.append(object)
            return true
        }
        let truncated = rows.count > limit
        var answer: [String: Any] = ["from_ms": from, "to_ms": to, "count": min(rows.count, limit), "truncated": truncated,
                                     "flows": Array(rows.prefix(limit))]
        // Damaged shards were skipped: the answer says which, and lacks their flows.
        let skipped = runner.unreadable.all
        if !skipped.isEmpty { answer["warnings"] = skipped.map(\.description) }
        return try Self.json(answer)
    }

    private func top(_ q: [String: String], _ limits: QueryLimits) throws -> Answer {
        let (from, to) = try range(q)
        guard let by = q["by"], !by.isEmpty else { throw APIError(status: 400, message: "by is required: fields to group by, e.g. by=SrcK8S_Namespace,DstK8S_Namespace") }
        let metricName = q["metric"] ?? "bytes"
        guard let metric = TopTalkers.Metric(rawValue: metricName) else {
            throw APIError(status: 400, message: "metric must be bytes, packets or flows (got \(metricName))")
        }
        let limit = try limitParameter(q, default: 10)
        let fields = by.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let answer = try TopTalkers(store: openStore(), limits: limits).answer(by: fields, metric: metric, fromMs: from, toMs: to,
                                                               whereSQL: q["where"], limit: limit)
        let rows: [[String: Any]] = answer.rows.map { row in
            var object: [String: Any] = ["bytes": row.bytes, "packets": row.packets, "flows": row.flows]
            for (name, value) in zip(fields, row.group) { object[name] = value }
            return object
        }
        var body: [String: Any] = ["from_ms": from, "to_ms": to, "metric": metric.rawValue, "by": fields, "top": rows]
        if let span = answer.fromRollups { body["from_rollups"] = ["from_ms": span.fromMs, "to_ms": span.toMs] }
        return try Self.json(body)
    }

    private func shards() throws -> Answer {
        let store = try openStore()
        let forwarders = try store.forwarderNames()
        var deliveries: [String: [ShardID: DeliveryState]] = [:]
        for name in forwarders { deliveries[name] = try store.deliveries(forwarder: name) }
        let rows: [[String: Any]] = try store.shards().map { shard in
            var object: [String: Any] = ["id": shard.id.description, "state": shard.state.rawValue, "rows": shard.rowCount,
                                         "bytes": shard.bytesOnDisk, "window_start_ms": shard.id.windowStartMs,
                                         "window_end_ms": shard.id.windowEndMs, "part": shard.id.part]
            if let t = shard.minTimeMs { object["min_time_ms"] = t }
            if let t = shard.maxTimeMs { object["max_time_ms"] = t }
            var delivered: [String: Any] = [:]
            for name in forwarders {
                if let state = deliveries[name]?[shard.id] {
                    delivered[name] = ["complete": state.complete, "chunks_delivered": state.chunksDelivered]
                }
            }
            object["delivered"] = delivered
            return object
        }
        return try Self.json(["shards": rows])
    }

    // MARK: Parameters

    /// [from, to): `from`/`to` (RFC 3339 or epoch ms) or `since` (a duration); the last
    /// hour when none is given; at most `maxRangeMs` long.
    func range(_ q: [String: String]) throws -> (Int64, Int64) {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func time(_ name: String) throws -> Int64? {
            guard let text = q[name] else { return nil }
            guard let time = TimeExpression(text) else {
                throw APIError(status: 400, message: "\(name) must be a time between 1970 and 9999: \(TimeExpression.accepted) (got \(text))")
            }
            return time.epochMilliseconds
        }
        if q["since"] != nil && q["from"] != nil { throw APIError(status: 400, message: "use since or from, not both") }
        var from = try time("from")
        if let since = q["since"] {
            guard let seconds = SettingParsers.seconds(since) else {
                throw APIError(status: 400, message: "since must be a duration such as 15m, 1h or 7d, at most 100 years (got \(since))")
            }
            from = now - Int64(seconds * 1000)
        }
        let to = try time("to") ?? now + 1
        let start = from ?? to - 3_600_000
        guard start < to else { throw APIError(status: 400, message: "the range is empty: from must be before to") }
        guard to - start <= maxRangeMs else {
            throw APIError(status: 400, message: "the range covers \((to - start) / 86_400_000) days; one request may cover at most \(maxRangeMs / 86_400_000) (use flowrec sql or export for more)")
        }
        return (start, to)
    }

    func limitParameter(_ q: [String: String], default fallback: Int) throws -> Int {
        guard let text = q["limit"] else { return min(fallback, maxRows) }
        guard let limit = Int(text), limit >= 1 else { throw APIError(status: 400, message: "limit must be a positive integer (got \(text))") }
        guard limit <= maxRows else { throw APIError(status: 400, message: "limit may be at most \(maxRows)") }
        return limit
    }

    private func openStore() throws -> ShardStore {
        guard FileManager.default.fileExists(atPath: dataDirectory + "/catalog.sqlite") else {
            throw APIError(status: 503, message: "the store is not open yet")
        }
        return try ShardStore.openForReading(directory: dataDirectory)
    }

    static func json(_ object: [String: Any]) throws -> Answer {
        Answer(status: 200, body: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) + Data("\n".utf8))
    }

    static func error(_ status: Int, _ message: String) -> Answer {
        let body = (try? JSONSerialization.data(withJSONObject: ["error": message], options: [.sortedKeys])) ?? Data()
        return Answer(status: status, body: body + Data("\n".utf8))
    }
}
