import FlowrecTestTraits
import FlowGenerator
import FlowModel
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import Query
import ShardStore
import StorageKit
import Synchronization
import Testing
import Logging
import Yams

/// NetObserv's own console plugin backend (built from `../shared/clients`), configured as
/// the operator configures it, with `loki.url` pointed at a recorder that holds the
/// shared corpus's real flows and generated ones. Every page the console shows (the flow
/// table with each kind of filter, export, topology and overview panels, resource
/// lists) is asked through the plugin's own endpoints, and each answer must equal the
/// same question asked of flowrec directly with `flowrec sql` (`FlowsAcrossShards`).
@Suite(.serialized, .ownThread) struct ConsolePluginTests {
    @Test func everyConsoleAnswerEqualsFlowrecSQL() throws {
        guard let plugin = try NetObservClients.binary(.consolePlugin) else { return }
        guard let corpus = try TestEnvironment.sharedCorpusLines() else {
            if TestEnvironment.requireServers { throw TestServerUnavailable("../shared/corpus is missing") }
            return
        }
        let console = try ConsoleFixture(plugin: plugin, corpus: corpus)
        defer { console.stop() }

        let ready = try console.plugin("/api/loki/ready")
        #expect(ready.status == 200 && ready.text.contains("ready"), "\(ready.text)")
        try checkFlowTable(console)
        try checkExport(console)
        try checkMetrics(console)
        try checkResources(console)
    }

    // MARK: Flow table

    /// One question of the flow table: the page's filter string, and the same filter as
    /// SQL over `flows` (one condition per OR group).
    struct TableCase: CustomStringConvertible {
        let filters: String
        let sql: [String]
        var packetLoss = "all"
        var description: String { "filters=\(filters) packetLoss=\(packetLoss)" }
    }

    func tableCases(_ c: ConsoleFixture) -> [TableCase] {
        let ns = c.namespaces[0], ns2 = c.namespaces[1]
        let name = c.somePodName
        let fragment = String(name.prefix(4))
        return [
            TableCase(filters: "", sql: ["1"]),
            // Labels: exact, contains, not, any of.
            TableCase(filters: "SrcK8S_Namespace=\(ns)", sql: ["SrcK8S_Namespace = '\(ns)'"]),
            TableCase(filters: "SrcK8S_Namespace~\(String(ns.suffix(5)))",
                      sql: ["SrcK8S_Namespace LIKE '%\(String(ns.suffix(5)))%'"]),
            TableCase(filters: "DstK8S_Namespace!=\(ns)", sql: ["coalesce(DstK8S_Namespace, '') <> '\(ns)'"]),
            TableCase(filters: "SrcK8S_Namespace=\"\(ns)\",\"\(ns2)\"", sql: ["SrcK8S_Namespace IN ('\(ns)', '\(ns2)')"]),
            TableCase(filters: "K8S_FlowLayer=infra&FlowDirection=1", sql: ["K8S_FlowLayer = 'infra' AND FlowDirection = 1"]),
            // Text in the line: exact, contains, not, empty; keys match by their end.
            TableCase(filters: "SrcK8S_Name=\(name)", sql: [c.anyFieldEnding("SrcK8S_Name", "= '\(name)'")]),
            TableCase(filters: "SrcK8S_Name~\(fragment)", sql: [c.anyFieldEnding("SrcK8S_Name", "LIKE '%\(fragment)%'")]),
            TableCase(filters: "DstK8S_Name!=\(name)",
                      sql: ["(DstK8S_Name IS NOT NULL OR NOT \(c.notNull("DstK8S_Name"))) AND NOT \(c.anyFieldEnding("DstK8S_Name", "= '\(name)'"))"]),
            TableCase(filters: "SrcK8S_Name=\"\"", sql: ["coalesce(SrcK8S_Name, '') = ''"]),
            // Numbers: exact and at least.
            TableCase(filters: "DstPort=443", sql: [c.anyFieldEnding("DstPort", "= 443", number: true)]),
            TableCase(filters: "Proto=17&SrcK8S_Namespace=\(ns)", sql: ["\(c.anyFieldEnding("Proto", "= 17", number: true)) AND SrcK8S_Namespace = '\(ns)'"]),
            TableCase(filters: "Bytes>=1000", sql: [c.anyFieldEnding("Bytes", ">= 1000", number: true)]),
            // Addresses: exact and CIDR.
            TableCase(filters: "DstAddr=\(c.someAddress)", sql: ["DstAddr = '\(c.someAddress)'"]),
            TableCase(filters: "SrcAddr=10.135.0.0/16", sql: ["SrcAddr LIKE '10.135.%'"]),
            // Arrays.
            TableCase(filters: "Interfaces~genev", sql: ["Interfaces LIKE '%genev%'"]),
            // OR groups: two queries, merged by the plugin.
            TableCase(filters: "Proto=17|SrcK8S_Namespace=\(ns2)",
                      sql: [c.anyFieldEnding("Proto", "= 17", number: true), "SrcK8S_Namespace = '\(ns2)'"]),
            // Packet loss: drops only, some drops, none.
            TableCase(filters: "", sql: ["Packets IS NULL AND \(c.notNull("Packets")) AND PktDropPackets >= 1"], packetLoss: "dropped"),
            TableCase(filters: "", sql: ["PktDropPackets >= 1 AND \(c.unquoted("PktDropPackets"))"], packetLoss: "hasDrops"),
            TableCase(filters: "", sql: ["PktDropPackets IS NULL AND \(c.notNull("PktDropPackets"))"], packetLoss: "sent"),
        ]
    }

    func checkFlowTable(_ c: ConsoleFixture) throws {
        for limit in [50, 100, 500, 1000] {
            for question in tableCases(c) where limit == 100 || question.filters.isEmpty || question.filters.hasPrefix("SrcK8S_Namespace=") {
                let answer = try c.pluginJSON("/api/loki/flow/records", [
                    "filters": question.filters, "limit": String(limit), "startTime": String(c.startS), "endTime": String(c.endS),
                    "recordType": "flowLog", "packetLoss": question.packetLoss,
                ])
                let entries = try Self.entries(answer)
                // The same question in SQL: each group's newest `limit`, merged as the plugin merges.
                var expected: [Identity: Int] = [:]
                for condition in question.sql {
                    for row in try c.sql("""
                        SELECT \(Identity.columns) FROM flows WHERE TimeFlowEndMs >= \(c.startS * 1000) AND TimeFlowEndMs < \((c.endS + 1) * 1000)
                        AND (\(condition)) ORDER BY TimeFlowEndMs DESC LIMIT \(limit)
                        """) {
                        expected[Identity(row), default: 0] = 1
                    }
                }
                let got = entries.map(\.identity)
                #expect(got.count == expected.count, "\(question) limit \(limit): \(got.count) flows, SQL \(expected.count)")
                // Ties at the oldest time kept may differ in which flows were kept: compare the
                // times everywhere and the flows above that time.
                let oldest = got.map(\.endMs).min() ?? 0
                #expect(got.map(\.endMs).sorted() == expected.keys.map(\.endMs).sorted(), "\(question) limit \(limit): times differ")
                #expect(Set(got.filter { $0.endMs > oldest }) == Set(expected.keys.filter { $0.endMs > oldest }), "\(question) limit \(limit)")
                // Each row is one stored flow, whole: labels and line together.
                for entry in entries.prefix(200) {
                    #expect(c.storedFlows.contains(entry.canonicalFlow), "\(question): a flow that is not stored: \(entry.canonicalFlow.prefix(300))")
                }
            }
        }
    }

    /// The stored flows' identity: enough columns to tell flows apart, as SQL returns them.
    struct Identity: Hashable {
        static let fields = ["TimeFlowEndMs", "TimeFlowStartMs", "SrcAddr", "DstAddr", "SrcPort", "DstPort", "Proto", "Bytes", "Packets", "FlowDirection", "Interfaces"]
        static var columns: String { fields.joined(separator: ", ") }
        let values: [String]
        var endMs: Int64 { Int64(values[0]) ?? 0 }

        init(_ row: [String]) { values = row }
        init(flow: [String: Any]) {
            values = Self.fields.map { name in
                guard let value = flow[name] else { return "" }
                if let array = value as? [Any], let data = try? JSONSerialization.data(withJSONObject: array) {
                    return String(decoding: data, as: UTF8.self)
                }
                return "\(value)"
            }
        }
    }

    struct Entry {
        let identity: Identity
        let canonicalFlow: String
    }

    /// The plugin's streams answer, each entry's line merged with its stream labels (the
    /// page reads fields from the line, then from the labels).
    static func entries(_ answer: [String: Any]) throws -> [Entry] {
        let result = try #require(answer["result"] as? [[String: Any]], "no result in \(answer)")
        var entries: [Entry] = []
        for stream in result {
            let labels = stream["stream"] as? [String: String] ?? [:]
            for value in stream["values"] as? [[Any]] ?? [] {
                let line = try #require(value[1] as? String)
                var flow = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                for (name, text) in labels where name != "app" {
                    if let field = FlowSchema.id(named: name), field.kind == .integer, let number = Int64(text) {
                        flow[name] = number
                    } else {
                        flow[name] = text
                    }
                }
                entries.append(Entry(identity: Identity(flow: flow), canonicalFlow: try ConsoleFixture.canonical(flow)))
            }
        }
        return entries
    }

    // MARK: Export

    func checkExport(_ c: ConsoleFixture) throws {
        let ns = c.namespaces[0]
        let columns = ["TimeFlowEndMs", "SrcAddr", "DstAddr", "Bytes", "SrcK8S_Namespace"]
        let answer = try c.plugin("/api/loki/export", [
            "filters": "SrcK8S_Namespace=\(ns)", "limit": "1000", "startTime": String(c.startS), "endTime": String(c.endS),
            "format": "csv", "columns": columns.joined(separator: ","),
        ])
        #expect(answer.status == 200, "\(answer.text.prefix(500))")
        let rows = answer.text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = try #require(rows.first)
        let index = columns.map { name in header.firstIndex { $0.contains(name) } }
        #expect(!index.contains(nil), "CSV header \(header)")
        // The plugin writes numbers as Go formats a float64 (`1.796169691621e+12`): compare values.
        func cell(_ text: String) -> String {
            guard let number = Double(text), number == number.rounded(), abs(number) < 9e15 else { return text }
            return String(Int64(number))
        }
        let got = rows.dropFirst().map { row in index.map { cell($0.flatMap { $0 < row.count ? row[$0] : nil } ?? "") } }
            .sorted { $0.lexicographicallyPrecedes($1) }
        let expected = try c.sql("""
            SELECT \(columns.joined(separator: ", ")) FROM flows WHERE TimeFlowEndMs >= \(c.startS * 1000)
            AND TimeFlowEndMs < \((c.endS + 1) * 1000) AND SrcK8S_Namespace = '\(ns)' ORDER BY TimeFlowEndMs DESC LIMIT 1000
            """).map { $0.map(cell) }.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(got.count == expected.count)
        #expect(got == expected)
    }

    // MARK: Topology and overview

    struct MetricCase: CustomStringConvertible {
        var type = "Bytes"
        var function = "rate"
        var aggregateBy = "namespace"
        var filters = ""
        var limit = 50
        var description: String { "type=\(type) function=\(function) aggregateBy=\(aggregateBy) filters=\(filters) limit=\(limit)" }
    }

    func checkMetrics(_ c: ConsoleFixture) throws {
        let cases = [
            MetricCase(),
            MetricCase(type: "Packets", aggregateBy: "owner"),
            MetricCase(aggregateBy: "resource", limit: 100),
            MetricCase(aggregateBy: "host"),
            MetricCase(aggregateBy: "app"),
            MetricCase(aggregateBy: "zone"),
            MetricCase(filters: "SrcK8S_Namespace=\(c.namespaces[0])"),
            MetricCase(type: "Flows", function: "count", aggregateBy: "namespace"),
            MetricCase(type: "Bytes", function: "sum", aggregateBy: "namespace"),
            MetricCase(type: "DnsLatencyMs", function: "avg"),
            MetricCase(type: "DnsLatencyMs", function: "max"),
            MetricCase(type: "DnsLatencyMs", function: "p90"),
            MetricCase(type: "DnsLatencyMs", function: "p99"),
            MetricCase(type: "TimeFlowRttNs", function: "avg", aggregateBy: "app"),
            MetricCase(type: "TimeFlowRttNs", function: "min", aggregateBy: "host"),
            MetricCase(type: "PktDropPackets", function: "rate", aggregateBy: "droppedCause"),
            MetricCase(type: "PktDropBytes", function: "rate", aggregateBy: "namespace"),
        ]
        let rateInterval: Int64 = 120, step: Int64 = 60
        for question in cases {
            let answer = try c.pluginJSON("/api/flow/metrics", [
                "filters": question.filters, "limit": String(question.limit), "recordType": "flowLog", "dataSource": "loki",
                "packetLoss": "all", "startTime": String(c.startS), "endTime": String(c.endS), "rateInterval": "\(rateInterval)s",
                "step": "\(step)s", "type": question.type, "aggregateBy": question.aggregateBy, "function": question.function,
            ])
            let got = try Self.matrix(answer)
            let expected = try c.expectedMatrix(question, rateIntervalS: rateInterval, stepS: step)
            #expect(Set(got.keys) == Set(expected.keys), "\(question): series \(got.keys.count) vs SQL \(expected.keys.count)")
            for (labels, points) in expected {
                guard let mine = got[labels] else { continue }
                #expect(Set(mine.keys) == Set(points.keys), "\(question) \(labels): steps differ")
                for (t, v) in points {
                    guard let w = mine[t] else { continue }
                    #expect(abs(v - w) <= 1e-9 * max(1, abs(v)), "\(question) \(labels) at \(t): plugin \(w), SQL \(v)")
                }
            }
            #expect(!expected.isEmpty || question.type.hasPrefix("PktDrop"), "\(question): SQL found nothing to compare")
        }
    }

    static func matrix(_ answer: [String: Any]) throws -> [[String: String]: [Int64: Double]] {
        let result = try #require(answer["result"] as? [[String: Any]], "no result in \(answer)")
        var out: [[String: String]: [Int64: Double]] = [:]
        for series in result {
            let metric = series["metric"] as? [String: String] ?? [:]
            var points: [Int64: Double] = [:]
            for pair in series["values"] as? [[Any]] ?? [] {
                let t = (pair[0] as? NSNumber)?.int64Value ?? 0
                points[t] = Double(pair[1] as? String ?? "") ?? .nan
            }
            out[metric, default: [:]].merge(points) { a, b in a + b }
        }
        return out
    }

    // MARK: Resources

    func checkResources(_ c: ConsoleFixture) throws {
        let namespaces = try c.pluginJSONArray("/api/resources/namespaces", [:])
        let expected = try c.sql("""
            SELECT DISTINCT SrcK8S_Namespace FROM flows WHERE SrcK8S_Namespace <> '' AND TimeFlowEndMs >= \(c.nowMs - 6 * 3_600_000)
            UNION SELECT DISTINCT DstK8S_Namespace FROM flows WHERE DstK8S_Namespace <> '' AND TimeFlowEndMs >= \(c.nowMs - 6 * 3_600_000)
            """).map { $0[0] }
        #expect(Set(namespaces) == Set(expected))

        // Autocomplete: the newest 100 flows of the last hour (Loki's defaults) that match.
        let ns = c.namespaces[0]
        let names = try c.pluginJSONArray("/api/resources/names", ["kind": "Pod", "namespace": ns])
        var wanted = Set<String>()
        for side in ["Src", "Dst"] {
            for row in try c.sql("""
                SELECT \(side)K8S_Name FROM flows WHERE \(side)K8S_Namespace = '\(ns)' AND \(side)K8S_Type = 'Pod'
                AND TimeFlowEndMs >= \(c.nowMs - 3_600_000) ORDER BY TimeFlowEndMs DESC LIMIT 100
                """) where !row[0].isEmpty {
                wanted.insert(row[0])
            }
        }
        #expect(Set(names) == wanted)
    }
}

/// The data, a recorder serving it, and the plugin backend in front.
final class ConsoleFixture {
    let directory: TemporaryDirectory
    let dataDirectory: String
    let nowMs: Int64
    /// The question window (Unix seconds), as the page sends it.
    let startS: Int64
    let endS: Int64
    let namespaces: [String]
    let somePodName: String
    let someAddress: String
    /// Every stored flow, canonical (sorted keys), to check that answers are whole flows.
    let storedFlows: Set<String>
    private let pluginPort: Int
    private let pluginProcess: Process
    private let recorderThread: Thread
    private let stopRecorder = StopFlag()
    private let recorderDone = DispatchSemaphore(value: 0)
    /// The plugin config's scopes: aggregateBy → labels (the same list the plugin reads).
    let scopes: [String: [String]]

    init(plugin: URL, corpus: [[UInt8]]) throws {
        directory = TemporaryDirectory()
        dataDirectory = directory.path + "/data"
        nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        let store = try ShardStore(directory: dataDirectory, options: .init(windowMs: 300_000, graceMs: 0))
        // The corpus's real flows, moved to 20 minutes ago (their spacing kept).
        let decoder = FlowDecoder()
        var flows: [Flow] = try corpus.map { line in
            var flow = Flow()
            try decoder.decode(line, into: &flow)
            return flow
        }
        let end = FlowSchema.requiredField, start = FlowSchema.id(of: "TimeFlowStartMs"), received = FlowSchema.id(of: "TimeReceived")
        let newest = flows.compactMap { $0.integer(end) }.max() ?? 0
        let shift = nowMs - 20 * 60_000 - newest
        for i in flows.indices {
            if let t = flows[i].integer(end) { flows[i].set(end, integer: t + shift) }
            if let t = flows[i].integer(start) { flows[i].set(start, integer: t + shift) }
            if let t = flows[i].integer(received) { flows[i].set(received, integer: t + shift / 1000) }
        }
        var batch = IngestBatch()
        let source = batch.sourceIndex("file:corpus")
        for (i, flow) in flows.enumerated() { batch.append(flow, at: SourcePosition(source: source, partition: 0, position: Int64(i + 1))) }
        try store.append(batch)
        // Generated traffic over the 40 minutes before, every feature on.
        var options = GeneratorOptions()
        options.seed = 77
        options.flowsPerSecond = 10
        options.startMs = nowMs - 45 * 60_000
        options.features = Set(GeneratorOptions.Feature.allCases)
        var generator = FlowGenerator(options: options)
        var lines: [[UInt8]] = []
        for _ in 0..<24_000 {
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            lines.append(line)
        }
        try store.append(FlowrecTesting.batch(lines[...], source: "file:generated", firstLine: 1))
        try store.sealWindowsClosed(byWallClockMs: nowMs)
        var stored = Set<String>()
        for line in try FlowrecTesting.storedFlows(store) { stored.insert(try Self.canonical(line)) }
        storedFlows = stored
        try store.close()

        startS = (nowMs - 50 * 60_000) / 1000
        endS = nowMs / 1000
        // Questions about the commonest namespaces, pods and addresses.
        let reader = try FlowsAcrossShards(store: try ShardStore.openForReading(directory: dataDirectory), fromMs: nil, toMs: nil)
        func column(_ sql: String) throws -> [String] {
            var out: [String] = []
            try reader.query(sql) { row in
                out.append(row.text(0) ?? "")
                return true
            }
            return out
        }
        namespaces = try column("SELECT SrcK8S_Namespace FROM flows WHERE SrcK8S_Namespace <> '' GROUP BY 1 ORDER BY count(*) DESC LIMIT 2")
        somePodName = try column("SELECT SrcK8S_Name FROM flows WHERE SrcK8S_Type = 'Pod' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").first ?? "none"
        someAddress = try column("SELECT DstAddr FROM flows GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").first ?? "0.0.0.0"

        // The recorder: push-only (no brokers), its listener on a free port.
        var configuration = RecorderConfiguration(bootstrapServers: "")
        configuration.dataDirectory = dataDirectory
        configuration.store = ShardStore.Options(windowMs: 300_000, graceMs: 0, sealInBackground: true)
        var listener = HTTPListenerConfiguration()
        listener.port = 0
        configuration.http = listener
        configuration.loki.tenant = "netobserv"
        configuration.deepCompaction = nil
        let recorder = Recorder(configuration: configuration, logger: Logger(label: "flowrec.console"))
        let stopFlag = stopRecorder, done = recorderDone
        // The recorder runs on this thread only; the test thread reads its port (a Mutex).
        nonisolated(unsafe) let running = recorder
        recorderThread = Thread {
            try? running.run(shouldStop: { stopFlag.isSet })
            done.signal()
        }
        recorderThread.start()
        var recorderPort: Int?
        for _ in 0..<300 where recorderPort == nil {
            recorderPort = recorder.httpPort
            if recorderPort == nil { usleep(20_000) }
        }
        guard let recorderPort else { throw TestServerUnavailable("the recorder's listener did not start") }

        // The plugin, configured from its own sample (labels, field types, scopes).
        let sample = plugin.deletingLastPathComponent().appendingPathComponent("config/sample-config.yaml")
        var config = try #require(try Yams.load(yaml: String(contentsOf: sample, encoding: .utf8)) as? [String: Any])
        pluginPort = try FlowlogsPipelineTests.freePort()
        var server = config["server"] as? [String: Any] ?? [:]
        server["port"] = pluginPort
        server["metricsPort"] = try FlowlogsPipelineTests.freePort()
        server["authCheck"] = "none"
        config["server"] = server
        var loki = config["loki"] as? [String: Any] ?? [:]
        loki["url"] = "http://127.0.0.1:\(recorderPort)"
        loki["tenantID"] = "netobserv"
        config["loki"] = loki
        config["prometheus"] = ["url": ""]
        var scopes: [String: [String]] = [:]
        if let frontend = config["frontend"] as? [String: Any], let list = frontend["scopes"] as? [[String: Any]] {
            for scope in list { if let id = scope["id"] as? String { scopes[id] = scope["labels"] as? [String] ?? [] } }
        }
        self.scopes = scopes
        let path = directory.path + "/plugin.yaml"
        try Yams.dump(object: config).write(toFile: path, atomically: true, encoding: .utf8)
        pluginProcess = try ChildProcess.start(plugin, ["-config", path], errorLog: directory.path + "/plugin.log")
        if LoopbackHTTP.waitUntilReady(port: pluginPort, path: "/api/loki/ready", process: pluginProcess) { return }
        stop()
        throw TestServerUnavailable("the console plugin did not answer /api/loki/ready: \((try? String(contentsOfFile: directory.path + "/plugin.log", encoding: .utf8))?.suffix(2000) ?? "")")
    }

    func stop() {
        if pluginProcess.isRunning {
            pluginProcess.terminate()
            pluginProcess.waitUntilExit()
        }
        stopRecorder.set()
        _ = recorderDone.wait(timeout: .now() + 30)
    }

    // MARK: Asking the plugin

    func plugin(_ path: String, _ parameters: [String: String] = [:]) throws -> LoopbackHTTP.Response {
        // Everything but unreserved characters escaped, as the page's `encodeURIComponent`:
        // `&`, `=`, `|` and `"` inside a filter reach the plugin as themselves.
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let query = parameters.sorted { $0.key < $1.key }.map { key, value in
            "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }.joined(separator: "&")
        return try LoopbackHTTP.get(port: pluginPort, path: path + (query.isEmpty ? "" : "?" + query))
    }

    func pluginJSON(_ path: String, _ parameters: [String: String]) throws -> [String: Any] {
        let answer = try plugin(path, parameters)
        guard answer.status == 200, let object = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any] else {
            throw TestServerUnavailable("\(path) \(parameters): HTTP \(answer.status): \(answer.text.prefix(1000))")
        }
        return object
    }

    func pluginJSONArray(_ path: String, _ parameters: [String: String]) throws -> [String] {
        let answer = try plugin(path, parameters)
        guard answer.status == 200, let array = try JSONSerialization.jsonObject(with: answer.body) as? [String] else {
            throw TestServerUnavailable("\(path): HTTP \(answer.status): \(answer.text.prefix(1000))")
        }
        return array
    }

    // MARK: Asking flowrec sql

    /// Rows of a statement over `flows`, every value as text ("" for NULL).
    func sql(_ statement: String) throws -> [[String]] {
        let connection = try FlowsAcrossShards(store: try ShardStore.openForReading(directory: dataDirectory), fromMs: nil, toMs: nil)
        var rows: [[String]] = []
        try connection.query(statement) { row in
            rows.append((0..<row.columnCount).map { i in
                switch row.columnType(i) {
                case .null: ""
                case .integer: String(row.integer(i))
                case .real: String(row.double(i))
                default: row.text(i) ?? ""
                }
            })
            return true
        }
        return rows
    }

    /// `field condition` for every field whose name ends with `suffix`, ORed: the
    /// plugin's line filters name a key without its opening quote, so they match every
    /// key that ends so (`DstPort` also matches `XlatDstPort`). Label fields are not in
    /// the line. Numbers must be written bare (not quoted) to match `K":N[,}]`.
    func anyFieldEnding(_ suffix: String, _ condition: String, number: Bool = false) -> String {
        let labels = Set(LokiConfiguration().labels)
        let names = FlowSchema.fields.map(\.name).filter { $0.hasSuffix(suffix) && !labels.contains($0) }
        // coalesce: a missing field is a condition that does not hold, not an unknown.
        return "(" + names.map { "coalesce(\($0) \(condition)\(number ? " AND \(unquoted($0))" : ""), 0)" }.joined(separator: " OR ") + ")"
    }

    /// The field did not arrive as a numeric string (`"Proto":"6"`).
    func unquoted(_ field: String) -> String { "instr(',' || coalesce(_quoted, '') || ',', ',\(field),') = 0" }
    /// The field is not a JSON null (absent and null are both NULL in SQL).
    func notNull(_ field: String) -> String { "instr(',' || coalesce(_nulls, '') || ',', ',\(field),') = 0" }

    /// What a topology or overview panel shows, computed from `flows`: per Loki step
    /// (start, start + step, ... ≤ end + 1, windows (t - range, t]), per group of the
    /// scope's labels, the panel's function of its field; the top `limit` of each split
    /// query (ingress and inner, egress to outside the cluster), summed as the plugin sums them.
    func expectedMatrix(_ q: ConsolePluginTests.MetricCase, rateIntervalS: Int64, stepS: Int64) throws -> [[String: String]: [Int64: Double]] {
        // The plugin's keys: its own few, then the config's scopes (GetAggregateKeyLabels).
        var keyLabels = ["app": ["app"], "droppedState": ["PktDropLatestState"], "droppedCause": ["PktDropLatestDropCause"],
                         "dnsRCode": ["DnsFlagsResponseCode"]]
        keyLabels.merge(scopes) { _, scope in scope }
        let labels = keyLabels[q.aggregateBy] ?? [q.aggregateBy]
        let lokiLabels = Set(LokiConfiguration().labels)
        var conditions: [String] = []
        if !q.filters.isEmpty {
            for part in q.filters.split(separator: "&") {
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                conditions.append("\(kv[0]) = '\(kv[1])'")
            }
        }
        // A grouping field that is not a label must be in the line.
        for label in labels where keyLabels[q.aggregateBy] == nil && !lokiLabels.contains(label) {
            conditions.append("\(label) IS NOT NULL")
        }
        let field: String? = q.type == "Flows" ? nil : q.type
        if q.type == "DnsLatencyMs" { conditions.append("DnsLatencyMs IS NOT NULL AND NOT (DnsLatencyMs = 0 AND \(unquoted("DnsLatencyMs")))") }
        if q.type == "TimeFlowRttNs" { conditions.append("TimeFlowRttNs IS NOT NULL") }
        if let field { conditions.append("\(field) IS NOT NULL") }
        let splits = ["Bytes", "Packets"].contains(q.type)
            ? ["FlowDirection IN (0, 2)", "FlowDirection = 1 AND coalesce(DstK8S_Type, '') IN ('', 'Service')"] : ["1"]
        let rangeS = q.function == "rate" ? rateIntervalS : stepS
        let endS = self.endS + 1
        var total: [[String: String]: [Int64: Double]] = [:]
        let selected = labels.map { $0 == "app" ? "'netobserv-flowcollector'" : "coalesce(CAST(\($0) AS TEXT), '')" }
        for split in splits {
            var t = startS
            while t <= endS {
                var groups: [[String: String]: [Double]] = [:]
                for row in try sql("""
                    SELECT \(selected.joined(separator: ", ")), \(field ?? "1") FROM flows
                    WHERE TimeFlowEndMs > \((t - rangeS) * 1000) AND TimeFlowEndMs <= \(t * 1000) AND (\(split))
                    \(conditions.map { " AND (\($0))" }.joined())
                    """) {
                    var key: [String: String] = [:]
                    for (i, name) in labels.enumerated() where !row[i].isEmpty { key[name] = row[i] }
                    groups[key, default: []].append(Double(row[labels.count]) ?? .nan)
                }
                var values: [([String: String], Double)] = groups.map { key, samples in
                    var sorted = samples.sorted()
                    let value: Double
                    switch q.function {
                    case "rate": value = samples.reduce(0, +) / Double(rangeS)
                    case "count": value = Double(samples.count)
                    case "sum": value = samples.reduce(0, +)
                    case "avg": value = samples.reduce(0, +) / Double(samples.count)
                    case "min": value = sorted.first!
                    case "max": value = sorted.last!
                    default:
                        let quantile = q.function == "p90" ? 0.9 : 0.99
                        let rank = quantile * Double(sorted.count - 1)
                        let lower = Int(rank.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
                        value = sorted[lower] * (1 - (rank - Double(lower))) + sorted[upper] * (rank - Double(lower))
                        sorted.removeAll()
                    }
                    return (key, q.type == "TimeFlowRttNs" ? value / 1_000_000 : value)
                }
                // topk (bottomk for min) per step, ties by labels as flowrec breaks them.
                let bottom = q.function == "min"
                values.sort { a, b in a.1 != b.1 ? (bottom ? a.1 < b.1 : a.1 > b.1) : Self.labelsBefore(a.0, b.0) }
                for (key, value) in values.prefix(q.limit) { total[key, default: [:]][t, default: 0] += value }
                t += stepS
            }
        }
        return total
    }

    /// Label sets in flowrec's order (`LokiLabels`): pair by pair, name then value.
    static func labelsBefore(_ a: [String: String], _ b: [String: String]) -> Bool {
        let x = a.sorted { $0.key < $1.key }, y = b.sorted { $0.key < $1.key }
        for (p, q) in zip(x, y) where p != q { return p.key != q.key ? p.key < q.key : p.value < q.value }
        return x.count < y.count
    }

    /// A flow as sorted-key JSON: two encodings of the same flow compare equal.
    static func canonical(_ flow: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: flow, options: [.sortedKeys]), as: UTF8.self)
    }

    static func canonical(_ line: String) throws -> String {
        try canonical(try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]))
    }
}

/// Raised by the test thread, read by the recorder's loop.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
