import Foundation
package import FlowrecConfig
import FlowModel
import LokiPush
import Query
import ShardStore

/// The part of Loki's HTTP API that NetObserv's console plugin reads and FLP writes
/// (`docs/netobserv-console.md`; the contract is in the repository's references):
///
/// - `GET /loki/api/v1/query_range`: log queries (the flow table) and metric queries
///   (topology, overview), answered by `LokiQueryEngine` on the API's query threads;
/// - `GET /loki/api/v1/label/<name>/values`, `GET /loki/api/v1/labels`;
/// - `GET /ready`, `GET /loki/api/v1/status/buildinfo`, `GET /config` (the limits);
/// - `POST /loki/api/v1/push`: entries decoded on a thread of their own into a batch
///   (`PushIntake`), stored by the recorder's loop (`PushInbox`), answered 204 once
///   committed.
///
/// The query string is parsed as the plugin writes it (`LokiQueryString`: unescaped
/// LogQL, `+` for spaces).
package struct LokiAPI: Sendable {
    package var dataDirectory: String
    package var loki: LokiConfiguration
    package var queryTimeoutSeconds = 30.0
    let queries: QueryPool
    let pushDecoding: QueryPool
    package let inbox: PushInbox

    init(dataDirectory: String, loki: LokiConfiguration, queries: QueryPool, inbox: PushInbox) {
        self.dataDirectory = dataDirectory
        self.loki = loki
        self.queries = queries
        self.inbox = inbox
        pushDecoding = QueryPool(threads: 1, maxQueued: 4, name: "flowrec-push")
    }

    package func shutdown() { pushDecoding.shutdown() }

    /// The paths served (all GET but the push).
    package static let readPaths = ["/loki/api/v1/query_range", "/loki/api/v1/labels", "/loki/api/v1/label",
                                    "/loki/api/v1/status/buildinfo", "/config", "/ready"]
    package static let pushPath = "/loki/api/v1/push"
    /// Every path as docs/openapi.yaml names it, with the query parameters it reads (the
    /// OpenAPI file must declare exactly these; a test checks).
    package static let parameters: [String: [String]] = [
        "/loki/api/v1/query_range": ["query", "start", "end", "since", "limit", "step", "direction"],
        "/loki/api/v1/labels": ["start", "end", "since"],
        "/loki/api/v1/label/{name}/values": ["start", "end", "since"],
        "/loki/api/v1/status/buildinfo": [],
        "/config": [],
        "/ready": [],
        "/loki/api/v1/push": [],
    ]

    /// An answer: status, content type, body, and extra headers.
    package struct Answer: Sendable {
        package let status: Int
        package let contentType: String
        package let body: [UInt8]
        package var headers: [String: String] = [:]

        static func error(_ status: Int, _ message: String) -> Answer {
            let (type, body) = LokiResponse.error(status: status, message)
            return Answer(status: status, contentType: type, body: body)
        }
    }

    /// The tenant check: a configured tenant must be the request's `X-Scope-OrgID`.
    func tenantProblem(_ orgID: String?) -> Answer? {
        guard let required = loki.tenant else { return nil }
        guard let orgID, !orgID.isEmpty else { return .error(401, "no org id: send X-Scope-OrgID: \(required) (loki.tenant)") }
        guard orgID == required else { return .error(403, "unknown tenant \(orgID): this flowrec serves tenant \(required)") }
        return nil
    }

    // MARK: Reads

    /// Answers a GET on `path` (`rawQuery` is the query string as sent) on the query threads.
    package func read(path: String, rawQuery: Substring, orgID: String?, ready: Bool, readyProblem: String?) async -> Answer {
        if let problem = tenantProblem(orgID), path != "/ready" { return problem }
        switch path {
        case "/ready":
            // Loki answers its probe in plain text; the console looks for "ready" in it.
            return ready ? Answer(status: 200, contentType: "text/plain; charset=utf-8", body: Array("ready\n".utf8))
                : Answer(status: 503, contentType: "text/plain; charset=utf-8",
                         body: Array("Ingester not ready: \(readyProblem ?? "the store is not open yet")\n".utf8))
        case "/loki/api/v1/status/buildinfo":
            return Answer(status: 200, contentType: "application/json", body: Array(Self.buildInfo.utf8))
        case "/config":
            return Answer(status: 200, contentType: "text/yaml; charset=utf-8", body: Array(configYAML.utf8))
        default:
            break
        }
        let query = LokiQueryString.parse(rawQuery)
        let cancellation = QueryCancellation()
        return await withTaskCancellationHandler {
            do {
                return try await queries.run { self.answerNow(path: path, query: query, cancellation: cancellation) }
            } catch {
                return .error(503, "too many outstanding requests: \(queries.threads) queries run at once and \(queries.maxQueued) may wait; retry shortly")
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    func answerNow(path: String, query: [String: String], cancellation: QueryCancellation?,
                   nowNs: Int64 = Int64(Date().timeIntervalSince1970 * 1e9)) -> Answer {
        var limits = QueryLimits(deadlineSeconds: queryTimeoutSeconds)
        limits.cancellation = cancellation
        do {
            let model = try LokiStreamModel(labels: loki.labels, staticLabels: loki.staticLabels)
            guard FileManager.default.fileExists(atPath: dataDirectory + "/catalog.sqlite") else {
                return .error(503, "the store is not open yet")
            }
            let engine = LokiQueryEngine(store: try ShardStore.openForReading(directory: dataDirectory), model: model, limits: limits)
            switch path {
            case "/loki/api/v1/query_range":
                let request = try LokiRangeRequest(query, nowNs: nowNs, maxEntries: loki.maxEntries, maxLengthNs: loki.maxQueryLengthMs * 1_000_000)
                let statistics = LokiQueryEngine.Statistics()
                let answer = try engine.run(request, statistics: statistics)
                return Answer(status: 200, contentType: "application/json", body: LokiResponse.body(answer, statistics: statistics))
            case "/loki/api/v1/labels", "/loki/api/v1/label":
                let (start, end) = try Self.labelRange(query, nowNs: nowNs)
                return Answer(status: 200, contentType: "application/json", body: LokiResponse.strings(try engine.labelNames(startNs: start, endNs: end)))
            default:
                // /loki/api/v1/label/<name>/values
                let parts = path.split(separator: "/")
                guard parts.count == 6, parts[3] == "label", parts[5] == "values" else {
                    return .error(404, "no such Loki endpoint; flowrec serves " + (Self.readPaths + ["/loki/api/v1/label/<name>/values", Self.pushPath]).joined(separator: ", "))
                }
                let (start, end) = try Self.labelRange(query, nowNs: nowNs)
                let values = try engine.labelValues(String(parts[4]), startNs: start, endNs: end)
                return Answer(status: 200, contentType: "application/json", body: LokiResponse.strings(values))
            }
        } catch let error as LokiRequestError {
            return .error(error.status, error.message)
        } catch let error as QueryError {
            return .error(FlowAPI.status(of: error), error.description)
        } catch let error as ShardStoreError {
            return .error(error.kind == .notADataDirectory ? 503 : 500, error.description)
        } catch {
            return .error(500, "\(error)")
        }
    }

    /// `start`/`end` of the label endpoints: Loki's default is the last six hours.
    static func labelRange(_ q: [String: String], nowNs: Int64) throws(LokiRequestError) -> (Int64, Int64) {
        let (start, end) = try LokiRangeRequest.range(q, nowNs: nowNs, defaultSinceNs: 6 * 3_600 * 1_000_000_000)
        guard end >= start else { throw LokiRequestError(400, "end timestamp must not be before or equal to start time") }
        return (start, end)
    }

    static let buildInfo = #"{"version":"\#(FlowrecBuild.version)","revision":"","branch":"","buildUser":"flowrec","buildDate":"","goVersion":"","flowrec":true}"# + "\n"

    /// `/config`: what the console reads (`limits_config`, `ingester.max_chunk_age`), in
    /// Loki's own keys, with flowrec's values.
    var configYAML: String {
        """
        # flowrec answers Loki's query API; these are its limits (loki.* settings).
        auth_enabled: \(loki.tenant != nil)
        limits_config:
          max_entries_limit_per_query: \(loki.maxEntries)
          max_query_series: \(loki.maxSeries)
          max_query_length: \(loki.maxQueryLengthMs / 3_600_000)h
          query_timeout: \(Int(queryTimeoutSeconds))s
        ingester:
          # A flow is queryable as soon as its batch is committed.
          max_chunk_age: 1s

        """
    }

    // MARK: Push

    /// Decodes a push on the push thread and hands it to the recorder's loop.
    package func push(body: [UInt8], contentType: String?, contentEncoding: String?, orgID: String?) async -> Answer {
        if let problem = tenantProblem(orgID) { return problem }
        guard loki.pushEnabled else { return .error(404, "the push API is off (loki.push: false)") }
        let intake = PushIntake(staticLabels: loki.staticLabels,
                                decoder: FlowDecoder(limits: .init(maxMessageBytes: loki.maxEntryBytes)),
                                maxPayloadBytes: loki.maxEntryBytes)
        let maxBytes = loki.maxPushBytes
        let eventTimes = loki.eventTimes
        let decoded: Result<IngestBatch, PushError>
        do {
            decoded = try await pushDecoding.run { () -> Result<IngestBatch, PushError> in
                do throws(PushError) {
                    var intake = intake
                    intake.decoder.limits.acceptedEndMs = eventTimes.acceptedEndMs(nowMs: Int64(Date().timeIntervalSince1970 * 1000))
                    let streams = try PushBody.decode(body, contentType: contentType, contentEncoding: contentEncoding,
                                                      maxDecompressedBytes: maxBytes)
                    return .success(intake.batch(streams))
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            return Self.retryLater(429, "too many outstanding requests: pushes are being decoded; retry shortly", after: 1)
        }
        switch decoded {
        case .success(let batch):
            return Self.answer(await inbox.submit(batch, payloadBytes: body.count))
        case .failure(let error):
            // Refused, but kept: the body itself becomes a dead letter with the reason.
            let letter = PushIntake.unreadableBody(body, reason: error.message, maxPayloadBytes: loki.maxEntryBytes)
            if case .refused(let status, let message, let after) = await inbox.submit(letter, payloadBytes: body.count) {
                return Self.retryLater(status, "\(error.message); and it could not be kept as a dead letter: \(message)", after: after)
            }
            return .error(error.status, error.message)
        }
    }

    static func answer(_ outcome: PushInbox.Outcome) -> Answer {
        switch outcome {
        case .stored:
            return Answer(status: 204, contentType: "text/plain", body: [])
        case .refused(let status, let message, let after):
            return retryLater(status, message, after: after)
        }
    }

    static func retryLater(_ status: Int, _ message: String, after seconds: Int) -> Answer {
        var answer = Answer.error(status, message)
        answer.headers["Retry-After"] = String(seconds)
        return answer
    }
}

/// This build's version, for `/loki/api/v1/status/buildinfo` and `flowrec --version`.
package enum FlowrecBuild {
    package static let version = "0.9.0"
}
