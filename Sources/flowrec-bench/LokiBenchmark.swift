import ArgumentParser
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import LokiPush
import Query
import ShardStore
import StorageKit
import Synchronization

/// NetObserv's console on flowrec: the Loki queries its pages send (the flow table, the
/// topology split into its two queries, by namespace and by resource) over hours of a
/// medium cluster sealed hourly, each beside `flowrec sql` answering the same question
/// over the same shards in the same run; and Loki pushes shaped as FLP sends them,
/// beside the JSON-lines ingest of the same flows.
///
/// The query figures include what the API does per request: opening the store
/// read-only, planning, reading the shards, and encoding Loki's JSON answer.
struct LokiBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loki", abstract: "The console's Loki queries and FLP-shaped pushes, beside flowrec sql and file ingest.")

    @Option(help: "Hours of event time, sealed hourly.")
    var hours = 6

    @Option(help: "Flows per second of event time (1,000: a medium cluster).")
    var rate = 1000

    @Option(help: "Flows pushed in the push benchmark.")
    var pushFlows = 500_000

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-loki"

    @Flag(help: "Measure the push path only (a quick loop while working on it).")
    var pushOnly = false

    @Option(help: "Concurrent clients pushing to a running flowrec record (FLP runs one per node).")
    var pushClients = 4

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let push = try pushIngest(workspace)
        if pushOnly {
            print("push: \(Int(Double(push.flows) / push.pushSeconds)) flows/s (\(push.microsecondsPerFlow(push.pushCPUSeconds)) µs CPU per flow), over HTTP with \(pushClients) clients: \(Int(Double(push.flows) / push.http.seconds)) flows/s (best of 2; other \(Int(Double(push.flows) / push.otherHTTPSeconds))) (\(push.microsecondsPerFlow(push.http.cpuSeconds)) µs), JSON lines: \(Int(Double(push.flows) / push.linesSeconds)) flows/s (\(push.microsecondsPerFlow(push.linesCPUSeconds)) µs)")
            return
        }

        let t0 = monotonicSeconds()
        let store = try ScanBenchmark.generatedStore(at: scratch + "/store", seconds: hours * 3600, rate: rate, seed: 21)
        let built = monotonicSeconds() - t0
        let shards = try store.shards()
        let rows = shards.reduce(Int64(0)) { $0 + $1.rowCount }
        // The console sends whole Unix seconds (`end` = now): the second after the newest flow.
        let endMs = try shards.compactMap(\.maxTimeMs).max().map { ($0 / 1000 + 1) * 1000 } ?? { throw ValidationError("the store is empty") }()
        let directory = scratch + "/store"

        // The flow table: the last 15 minutes, one namespace (the busiest source
        // namespace there, as a user would pick), one numeric line filter.
        let tableFrom = endMs - 15 * 60_000
        let namespace = try busiestNamespace(store, fromMs: tableFrom, toMs: endMs)
        let table = try timedLoki(directory, [
            "query": #"{app="netobserv-flowcollector",SrcK8S_Namespace="\#(namespace)"}|~`Proto":6[,}]`"#,
            "start": seconds(tableFrom), "end": seconds(endMs), "limit": "100", "direction": "backward"])
        let tableSQL = try timedSQL(store, """
            SELECT * FROM flows WHERE TimeFlowEndMs >= \(tableFrom) AND TimeFlowEndMs < \(endMs)
            AND SrcK8S_Namespace = '\(namespace)' AND Proto = 6 ORDER BY TimeFlowEndMs DESC LIMIT 100
            """)
        guard table.entries == 100, tableSQL.rows == 100 else {
            throw ValidationError("the flow table answered \(table.entries) entries and flowrec sql \(tableSQL.rows) rows, not 100")
        }

        // The topology: the console splits Bytes into ingress + inner and egress to
        // external, and asks both; the UI's step is rateInterval/2, rateInterval range/10.
        func topology(_ labels: String, hours: Int, k: Int) throws -> (Loki, SQLTiming, rowsOnly: Loki) {
            let fromMs = endMs - Int64(hours) * 3_600_000
            let rateInterval = max(30, hours * 3600 / 10)
            let step = rateInterval / 2
            var total = Loki(), rowsOnly = Loki()
            for selector in [#"FlowDirection=~"^0$|^2$""#, #"FlowDirection="1",DstK8S_Type=~"^$|^Service$""#] {
                let parameters = [
                    "query": #"topk(\#(k),sum by(\#(labels))(rate({app="netobserv-flowcollector",\#(selector)}|json|unwrap Bytes|__error__=""[\#(rateInterval)s])))"#,
                    "start": seconds(fromMs), "end": seconds(endMs), "step": "\(step)s", "limit": "\(k)"]
                total.add(try timedLoki(directory, parameters))
                // The same engine reading every shard's rows: the figure before the series.
                rowsOnly.add(try timedLoki(directory, parameters, readsTrafficSeries: false))
            }
            // flowrec sql: the same sums per group and step bucket, both directions.
            let columns = labels.split(separator: ",").joined(separator: ", ")
            let sql = try timedSQL(store, """
                SELECT \(columns), (TimeFlowEndMs - \(fromMs)) / \(step * 1000) AS bucket, sum(Bytes) FROM flows
                WHERE TimeFlowEndMs >= \(fromMs) AND TimeFlowEndMs < \(endMs)
                AND (FlowDirection IN (0, 2) OR (FlowDirection = 1 AND (DstK8S_Type IS NULL OR DstK8S_Type = 'Service')))
                GROUP BY \(columns), bucket
                """)
            return (total, sql, rowsOnly)
        }
        let resourceLabels = "SrcK8S_Name,SrcK8S_Type,SrcK8S_OwnerName,SrcK8S_OwnerType,SrcK8S_Namespace,SrcAddr,SrcK8S_HostName,DstK8S_Name,DstK8S_Type,DstK8S_OwnerName,DstK8S_OwnerType,DstK8S_Namespace,DstAddr,DstK8S_HostName"
        let byNamespace1h = try topology("SrcK8S_Namespace,DstK8S_Namespace", hours: 1, k: 50)
        let byNamespace6h = try topology("SrcK8S_Namespace,DstK8S_Namespace", hours: hours, k: 50)
        let byResource1h = try topology(resourceLabels, hours: 1, k: 100)

        print("## NetObserv's console: Loki queries and pushes\n")
        print("\(rows) generated medium-cluster flows over \(hours) hours (\(rate) flows/s of event time) in \(shards.count) hourly shards, sealed (built in \(Int(built)) s). Each query as the console plugin sends it, answered as `GET /loki/api/v1/query_range` answers it (store opened, plan, shards read, Loki's JSON encoded), best of 3; beside it the same engine told not to read the sealed shards' traffic series (every shard's rows, as before 2026-12-05), and `flowrec sql` answering the same question over the same shards, in the same run.\n")
        print("| console question | Loki API | target | same engine, rows only (no traffic series) | flowrec sql, same question | path |")
        print("|---|---:|---:|---:|---:|---|")
        print("| flow table: last 15 min, `SrcK8S_Namespace=\"\(namespace)\"`, ``|~`Proto\":6[,}]` ``, limit 100 | **\(ms(table.seconds))** | ≤ 50 ms | - | \(ms(tableSQL.seconds)) | \(table.decoded) flows decoded |")
        func path(_ t: (Loki, SQLTiming, rowsOnly: Loki)) -> String {
            "\(t.0.series) series, \(t.0.decoded) flows decoded, \(t.0.fromSeries) of \(t.0.shardsRead) shard reads from traffic series"
        }
        print("| topology by namespace, `rate` of Bytes, last hour, step 3 min (both split queries) | **\(ms(byNamespace1h.0.seconds))** | ≤ 200 ms | \(ms(byNamespace1h.rowsOnly.seconds)) | \(ms(byNamespace1h.1.seconds)) (GROUP BY pair, bucket) | \(path(byNamespace1h)) |")
        print("| same over the \(hours) hours, step \(max(30, hours * 360) / 2 / 60) min | **\(ms(byNamespace6h.0.seconds))** | ≤ 1 s | \(ms(byNamespace6h.rowsOnly.seconds)) | \(ms(byNamespace6h.1.seconds)) | \(path(byNamespace6h)) |")
        print("| topology by resource (14 labels), last hour, step 3 min (both) | **\(ms(byResource1h.0.seconds))** | ≤ 1 s | \(ms(byResource1h.rowsOnly.seconds)) | \(ms(byResource1h.1.seconds)) | \(path(byResource1h)) |")
        print()
        print("Push (`POST /loki/api/v1/push`: snappy + protobuf decoded, labels merged back, content keys, decoded, stored; over HTTP the recorder's CPU, every thread, until it has stored them): \(push.flows) flows in FLP-shaped batches (entries grouped by label set, about \(push.batchKiB) KiB of lines per request, FLP's default batchSize 100 KiB).\n")
        print("| path | flows/s | CPU µs per flow | target |")
        print("|---|---:|---:|---:|")
        print("| Loki push over HTTP: `flowrec record`, \(pushClients) clients on kept-alive connections posting the bodies at once, on the same 2 cores (\(push.http.refusals) answered 429 and sent again); best of 2 runs, the other \(Int(Double(push.flows) / push.otherHTTPSeconds)) | **\(Int(Double(push.flows) / push.http.seconds))** | \(push.microsecondsPerFlow(push.http.cpuSeconds)) | ≥ 100,000 |")
        print("| Loki push in process, one request at a time (decode, then store; no HTTP) | \(Int(Double(push.flows) / push.pushSeconds)) | \(push.microsecondsPerFlow(push.pushCPUSeconds)) | |")
        print("| same flows as JSON lines (`flowrec ingest`'s decode + append, one thread), baseline | \(Int(Double(push.flows) / push.linesSeconds)) | \(push.microsecondsPerFlow(push.linesCPUSeconds)) | |")
        print()
    }

    // MARK: Queries

    struct Loki {
        var seconds: Double = 0
        var entries = 0
        var series = 0
        var decoded = 0
        var shardsRead = 0
        var fromSeries = 0

        /// Adds another query's figures (the two split queries of one topology view).
        mutating func add(_ other: Loki) {
            seconds += other.seconds
            entries += other.entries
            series += other.series
            decoded += other.decoded
            shardsRead += other.shardsRead
            fromSeries += other.fromSeries
        }
    }

    struct SQLTiming {
        var seconds: Double
        var rows: Int
    }

    /// Best of 3 of a query_range request, as the API answers it.
    func timedLoki(_ directory: String, _ parameters: [String: String], readsTrafficSeries: Bool = true) throws -> Loki {
        var best = Loki(seconds: .infinity)
        let model = try LokiStreamModel()
        for _ in 0..<3 {
            let t = monotonicSeconds()
            let request = try LokiRangeRequest(parameters, nowNs: Int64(Date().timeIntervalSince1970 * 1e9),
                                               maxEntries: 5000, maxLengthNs: 30 * 86_400 * 1_000_000_000)
            var engine = LokiQueryEngine(store: try ShardStore.openForReading(directory: directory), model: model,
                                         limits: QueryLimits(deadlineSeconds: 300))
            engine.readsTrafficSeries = readsTrafficSeries
            let statistics = LokiQueryEngine.Statistics()
            let answer = try engine.run(request, statistics: statistics)
            let body = LokiResponse.body(answer, statistics: statistics)
            let seconds = monotonicSeconds() - t
            guard !body.isEmpty else { throw ValidationError("an empty answer") }
            if seconds < best.seconds {
                switch answer {
                case .streams(let streams):
                    best = Loki(seconds: seconds, entries: streams.reduce(0) { $0 + $1.entries.count }, decoded: statistics.flowsDecoded,
                                shardsRead: statistics.shardsRead, fromSeries: statistics.fromSeries)
                case .matrix(_, let series):
                    best = Loki(seconds: seconds, series: series.count, decoded: statistics.flowsDecoded,
                                shardsRead: statistics.shardsRead, fromSeries: statistics.fromSeries)
                }
            }
        }
        return best
    }

    /// Best of 3 of a `flowrec sql` statement, and the rows it gave.
    func timedSQL(_ store: ShardStore, _ sql: String) throws -> SQLTiming {
        var best = SQLTiming(seconds: .infinity, rows: 0)
        for _ in 0..<3 {
            var rows = 0
            let t = monotonicSeconds()
            _ = try SQLQuery(store: store).run(sql, columns: { _ in }) { _ in rows += 1; return true }
            best = SQLTiming(seconds: min(best.seconds, monotonicSeconds() - t), rows: rows)
        }
        return best
    }

    func busiestNamespace(_ store: ShardStore, fromMs: Int64, toMs: Int64) throws -> String {
        var name: String?
        _ = try SQLQuery(store: store).run("""
            SELECT SrcK8S_Namespace, count(*) FROM flows WHERE TimeFlowEndMs >= \(fromMs) AND TimeFlowEndMs < \(toMs)
            AND SrcK8S_Namespace IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1
            """, columns: { _ in }) { values in
            if case .text(let text) = values[0] { name = text }
            return false
        }
        guard let name else { throw ValidationError("no namespace in the last 15 minutes") }
        return name
    }

    /// A time as the console sends it: whole Unix seconds (every time here is one).
    func seconds(_ ms: Int64) -> String { String(ms / 1000) }
    func ms(_ seconds: Double) -> String { seconds < 1 ? String(format: "%.0f ms", seconds * 1000) : String(format: "%.2f s", seconds) }

    // MARK: Push

    struct PushResult {
        var flows: Int
        var batchKiB: Int
        var pushSeconds: Double
        var linesSeconds: Double
        /// CPU of the process (every thread) while each ran.
        var pushCPUSeconds: Double
        var linesCPUSeconds: Double
        var http: HTTPPush
        /// The slower of the two HTTP runs.
        var otherHTTPSeconds: Double

        func microsecondsPerFlow(_ cpu: Double) -> String { String(format: "%.1f", cpu * 1e6 / Double(flows)) }
    }

    /// FLP-shaped request bodies built first (not timed), then stored; the same flows as
    /// JSON lines through the decoder and the store, in the same run.
    func pushIngest(_ workspace: BenchScratch) throws -> PushResult {
        let lines = generatedLines(pushFlows, seed: 31, rate: 5000)
        var bodies: [[UInt8]] = []
        var pending: [PushedStream] = []
        var pendingBytes = 0
        var lineBytes = 0
        func flush() {
            // One stream per label set, its entries in order, as FLP's client batches.
            var byLabels: [String: Int] = [:]
            var streams: [PushedStream] = []
            for stream in pending {
                let key = stream.labels.map { $0.name + "=" + $0.value }.joined(separator: "\u{0}")
                if let index = byLabels[key] {
                    streams[index].entries += stream.entries
                } else {
                    byLabels[key] = streams.count
                    streams.append(stream)
                }
            }
            bodies.append(PushBody.protobufBody(streams))
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
        }
        for line in lines {
            let stream = try FLPLokiSplit.split(line)
            pendingBytes += stream.entries[0].line.utf8.count
            lineBytes += line.count
            pending.append(stream)
            if pendingBytes >= 100 * 1024 { flush() }
        }
        if !pending.isEmpty { flush() }

        let intake = PushIntake(staticLabels: ["app": "netobserv-flowcollector"], decoder: FlowDecoder(), maxPayloadBytes: 1 << 20)
        let pushStore = try ShardStore(directory: workspace.path + "/push", options: .init())
        let t = monotonicSeconds(), tCPU = cpuSeconds()
        var stored = 0
        for body in bodies {
            let streams = try PushBody.decode(body, contentType: "application/x-protobuf", contentEncoding: nil, maxDecompressedBytes: 64 << 20)
            let summary = try pushStore.append(intake.batch(streams))
            stored += summary.stored
        }
        let pushSeconds = monotonicSeconds() - t, pushCPU = cpuSeconds() - tCPU
        guard stored == lines.count else { throw ValidationError("pushed \(lines.count) flows, stored \(stored)") }

        let decoder = FlowDecoder()
        let linesStore = try ShardStore(directory: workspace.path + "/lines", options: .init())
        let u = monotonicSeconds(), uCPU = cpuSeconds()
        var position = 0
        for start in stride(from: 0, to: lines.count, by: 20_000) {
            var batch = IngestBatch()
            let source = batch.sourceIndex("file:bench")
            for line in lines[start..<min(start + 20_000, lines.count)] {
                position += 1
                try batch.appendFlow(at: SourcePosition(source: source, partition: 0, position: Int64(position))) { (flow: inout Flow) throws(FlowDecodingError) in
                    try decoder.decode(line, into: &flow)
                }
            }
            _ = try linesStore.append(batch)
        }
        let linesSeconds = monotonicSeconds() - u, linesCPU = cpuSeconds() - uCPU
        // Best of two runs, each into a new store: the machine is shared, and one run moved
        // by a fifth between otherwise equal runs (both are printed).
        let runs = try (1...2).map { try pushOverHTTP(bodies, flows: lines.count, directory: workspace.path + "/http\($0)") }
        let http = runs.min { $0.seconds < $1.seconds }!
        return PushResult(flows: lines.count, batchKiB: 100, pushSeconds: pushSeconds, linesSeconds: linesSeconds,
                          pushCPUSeconds: pushCPU, linesCPUSeconds: linesCPU, http: http,
                          otherHTTPSeconds: runs.map(\.seconds).max()!)
    }

    struct HTTPPush {
        var seconds: Double
        var cpuSeconds: Double
        var refusals: Int
    }

    /// The same bodies POSTed to a running `flowrec record` by `pushClients` clients at
    /// once, each on one kept-alive connection, as FLP's pods (one per node) push: the listener decodes each request on its
    /// own threads while the recorder's loop stores what waits in one transaction. Timed
    /// from the first request to the last 204; CPU is the recorder's, every thread, from
    /// its start until every flow is stored (the clients run on the same two cores).
    func pushOverHTTP(_ bodies: [[UInt8]], flows: Int, directory: String) throws -> HTTPPush {
        let flowrec = TestEnvironment.executable("flowrec", env: "FLOWREC_BIN")
        let port = 19475
        let recorder = try ChildProcess.start(flowrec, ["record", "--data", directory, "--http-listen", "127.0.0.1:\(port)",
                                                        "--window", "1h", "--compact-level", "0"])
        defer { if recorder.isRunning { recorder.terminate() } }
        guard LoopbackHTTP.waitUntilReady(port: port, path: "/ready", process: recorder) else {
            throw ValidationError("flowrec record did not become ready on port \(port)")
        }
        let failures = Mutex<[String]>([])
        let refusals = Atomic<Int>(0)
        let t = monotonicSeconds()
        DispatchQueue.concurrentPerform(iterations: pushClients) { client in
            let connection: LoopbackHTTP.Connection
            do {
                connection = try LoopbackHTTP.Connection(port: port)
            } catch {
                failures.withLock { $0.append("\(error)") }
                return
            }
            for index in stride(from: client, to: bodies.count, by: pushClients) {
                while true {
                    do {
                        let answer = try connection.post(path: "/loki/api/v1/push", headers: ["Content-Type": "application/x-protobuf"],
                                                         body: bodies[index])
                        if answer.status == 204 { break }
                        guard answer.status == 429 else { throw ValidationError("push answered \(answer.status): \(answer.text)") }
                        refusals.add(1, ordering: .relaxed)
                        usleep(10_000)
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                        return
                    }
                }
            }
        }
        let seconds = monotonicSeconds() - t
        if let failure = failures.withLock({ $0.first }) { throw ValidationError("a push failed: \(failure)") }
        let stored = KafkaBenchmark.storedFlows(port: port) ?? 0
        let busy = cpuSeconds(ofRunning: recorder.processIdentifier)
        recorder.terminate()
        recorder.waitUntilExit()
        guard stored == flows else { throw ValidationError("pushed \(flows) flows over HTTP, flowrec stored \(stored)") }
        return HTTPPush(seconds: seconds, cpuSeconds: busy, refusals: refusals.load(ordering: .relaxed))
    }
}
