import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
@testable import Query
@testable import ShardStore
import Testing

/// LogQL over a real store: the SQL plan gives exactly what evaluating every decoded
/// flow gives (the reference semantics), and both give what a direct computation over
/// the flows gives.
@Suite struct LokiQueryEngineTests {
    /// 9,000 flows at 30/s with every feature: five one-minute windows, four sealed.
    static func makeStore(_ dir: TemporaryDirectory) throws -> (ShardStore, [Flow]) {
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        let lines = generatedLines(9_000, seed: 17, rate: 30, features: Set(GeneratorOptions.Feature.allCases))
        try store.append(batch(lines[...], firstLine: 1))
        let last = try #require(try store.shards().map(\.id.windowStartMs).max())
        try store.sealWindowsClosed(byWallClockMs: last)  // every window but the newest
        var flows: [Flow] = []
        for shard in try store.shards() { try store.forEachFlow(in: shard.id) { flows.append($0) } }
        return (store, flows)
    }

    static func engines(_ store: ShardStore) throws -> (sql: LokiQueryEngine, reference: LokiQueryEngine) {
        let model = try LokiStreamModel()
        let sql = LokiQueryEngine(store: store, model: model, limits: .commandLine)
        var reference = sql
        reference.translatesToSQL = false
        return (sql, reference)
    }

    static func span(_ flows: [Flow]) -> (Int64, Int64) {
        let times = flows.compactMap { $0.integer(FlowSchema.requiredField) }
        return (times.min()!, times.max()!)
    }

    /// Log queries of every filter shape the console builds.
    static let logQueries = [
        #"{app="netobserv-flowcollector"}"#,
        #"{app="netobserv-flowcollector",SrcK8S_Namespace=~"^(.*shop.*)$"}"#,
        #"{app="netobserv-flowcollector",FlowDirection="1",DstK8S_Type=~"^$|^Service$"}"#,
        #"{app="netobserv-flowcollector",SrcK8S_Namespace!=""}|~`Proto":6[,}]`"#,
        #"{app="netobserv-flowcollector"}|~`SrcK8S_Name":"(?i)[^"]*a.*"`"#,
        #"{app="netobserv-flowcollector"}|~`"DnsLatencyMs"`!~`DnsLatencyMs":0[,}]`"#,
        #"{app="netobserv-flowcollector"}|~`Port":(44[3-9]|4[5-9][0-9]|[5-9][0-9]{2,}|[1-9][0-9]{3,})[,}]`"#,
        #"{app="netobserv-flowcollector"}|~`Interfaces":\[(?i)[^]]*eth[^]]*]`"#,
        #"{app="netobserv-flowcollector"}|~`"PktDropPackets":[1-9][0-9]*[,}]`"#,
        #"{app="netobserv-flowcollector"}!~`"PktDropPackets"`"#,
        #"{app="netobserv-flowcollector"}|json|SrcAddr=ip("10.128.0.0/14")"#,
        #"{app="netobserv-flowcollector"}|json|DstAddr!=ip("10.0.0.0/8")|SrcK8S_Name="" or SrcK8S_Type="Pod""#,
        #"{app="netobserv-flowcollector"}|json|Bytes>=1000"#,
        #"{app="netobserv-flowcollector"}|~`K8S_FlowLayer`"#,
        #"{app="netobserv-flowcollector"}|= "TCP""#,
        #"{app="other"}"#,
    ]

    @Test(arguments: logQueries) func logQueriesAreTheSameThroughSQLAndThroughTheEvaluator(_ query: String) throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.makeStore(dir)
        let (sql, reference) = try Self.engines(store)
        let (first, last) = Self.span(flows)
        for (limit, direction) in [(50, "backward"), (1000, "backward"), (100, "forward")] {
            let q = ["query": query, "start": String(first * 1_000_000), "end": String((last + 1) * 1_000_000),
                     "limit": String(limit), "direction": direction]
            let request = try LokiRangeRequest(q, nowNs: 0, maxEntries: 5000, maxLengthNs: .max)
            let a = try sql.run(request), b = try reference.run(request)
            guard case .streams(let x) = a, case .streams(let y) = b else { Issue.record("not streams"); return }
            #expect(x == y, "\(query) limit \(limit) \(direction)")
            #expect(x.reduce(0) { $0 + $1.entries.count } <= limit)
        }
    }

    /// Sealed shards record which fields their rows sent quoted or null, and the SQL
    /// leaves those checks out where no row needs them: with such rows in sealed and
    /// active shards, every line filter that depends on them still answers as Loki.
    /// (FlowDirection, the one integer a flow may send as a string, is in the line when
    /// it is not a label, as with a FlowCollector that excludes it.)
    @Test func quotedAndNullValuesStillDecideLineFilters() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        var lines = generatedLines(6_000, seed: 9, rate: 30, features: Set(GeneratorOptions.Feature.allCases))
        func unusual(_ offsetMs: Int64, _ extra: String) -> [UInt8] {
            let t: Int64 = 1_767_225_600_000 + offsetMs  // the generator's first second
            return Array(#"{"Bytes":10,"Packets":1,"SrcK8S_Namespace":"odd",\#(extra),"TimeFlowEndMs":\#(t),"TimeFlowStartMs":\#(t - 5)}"#.utf8)
        }
        lines += [unusual(1_000, #""DnsLatencyMs":null,"FlowDirection":"1""#), unusual(2_000, #""FlowDirection":1"#),
                  unusual(185_000, #""DnsLatencyMs":null,"FlowDirection":"1""#)]
        let summary = try store.append(batch(lines[...], firstLine: 1))
        #expect(summary.deadLetters == 0)
        let newest = try #require(try store.shards().map(\.id.windowStartMs).max())
        try store.sealWindowsClosed(byWallClockMs: newest)
        let model = try LokiStreamModel(labels: LokiStreamModel.operatorLabels.filter { $0 != "FlowDirection" })
        let sql = LokiQueryEngine(store: store, model: model, limits: .commandLine)
        var reference = sql
        reference.translatesToSQL = false
        let queries = [
            #"{app="netobserv-flowcollector"}|~`FlowDirection":1[,}]`"#,
            #"{app="netobserv-flowcollector",SrcK8S_Namespace="odd"}|~`FlowDirection":1[,}]`"#,
            #"{app="netobserv-flowcollector"}|~`"DnsLatencyMs"`"#,
            #"{app="netobserv-flowcollector"}!~`"DnsLatencyMs"`"#,
            #"{app="netobserv-flowcollector"}|~`Direction":[1-9][0-9]*[,}]`"#,
        ]
        var oddEgress = 0
        for query in queries {
            for direction in ["backward", "forward"] {
                let q = ["query": query, "start": "1767225500000000000", "end": "1767225900000000000",
                         "limit": "5000", "direction": direction]
                let request = try LokiRangeRequest(q, nowNs: 0, maxEntries: 5000, maxLengthNs: .max)
                let a = try sql.run(request), b = try reference.run(request)
                guard case .streams(let x) = a, case .streams(let y) = b else { Issue.record("not streams"); return }
                #expect(x == y, "\(query) \(direction)")
                if query.contains("odd"), direction == "forward" { oddEgress = x.reduce(0) { $0 + $1.entries.count } }
            }
        }
        #expect(oddEgress == 1, "of the three odd flows only the one that sent FlowDirection as a number matches `FlowDirection\":1`")
        let sealed = try store.shards().filter { $0.state == .sealed }
        let quoted = try sealed.compactMap { try store.reader(for: $0.id).bookkeepingFields() }.filter { !$0.quoted.isEmpty }
        #expect(quoted.count == 1, "the first window's shard lists FlowDirection as quoted; the others need no check")
    }

    @Test func theNewestFlowsOfAFilterAsSQLFindsThem() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.makeStore(dir)
        let (sql, _) = try Self.engines(store)
        let (first, last) = Self.span(flows)
        let proto = FlowSchema.id(of: "Proto"), direction = FlowSchema.id(of: "FlowDirection")
        // Direct: TCP flows of direction 1, newest first.
        let expected = flows.filter { $0.integer(proto) == 6 && $0.integer(direction) == 1 && !$0.numericStrings.contains(proto) }
            .compactMap { $0.integer(FlowSchema.requiredField) }.sorted(by: >).prefix(100)
        let q = ["query": #"{app="netobserv-flowcollector",FlowDirection="1"}|~`Proto":6[,}]`"#,
                 "start": String(first * 1_000_000), "end": String((last + 1) * 1_000_000), "limit": "100"]
        let statistics = LokiQueryEngine.Statistics()
        guard case .streams(let streams) = try sql.run(try LokiRangeRequest(q, nowNs: 0, maxEntries: 5000, maxLengthNs: .max),
                                                       statistics: statistics) else { Issue.record("not streams"); return }
        let got = streams.flatMap(\.entries).map { $0.nanos / 1_000_000 }.sorted(by: >)
        #expect(got == Array(expected))
        #expect(streams.allSatisfy { $0.labels["FlowDirection"] == "1" && $0.labels["app"] == "netobserv-flowcollector" })
        // Each line is the flow without its labels.
        let line = try #require(streams.first?.entries.first?.line)
        #expect(line.contains(#""Proto":6"#) && !line.contains("FlowDirection") && !line.contains("SrcK8S_Namespace"))
        // The plan is exact: at most `limit` flows decoded per shard.
        #expect(statistics.flowsDecoded <= 100 * statistics.shardsRead)
    }

    /// Metric queries of every function and grouping the console's panels use.
    static let metricQueries = [
        #"topk(50,sum by(SrcK8S_Namespace,DstK8S_Namespace)(rate({app="netobserv-flowcollector"}|json|unwrap Bytes|__error__=""[1m])))"#,
        #"topk(100,sum by(SrcK8S_Name,SrcK8S_Type,SrcK8S_OwnerName,SrcK8S_Namespace,SrcAddr,DstK8S_Name,DstK8S_Namespace,DstAddr)(rate({app="netobserv-flowcollector",FlowDirection=~"^0$|^2$"}|json|unwrap Bytes|__error__=""[1m])))"#,
        #"topk(100,sum by(SrcK8S_Namespace)(count_over_time({app="netobserv-flowcollector"}|json[30s])))"#,
        #"topk(5,sum by(app) (rate({app="netobserv-flowcollector",FlowDirection="1"}|json|unwrap Packets|__error__=""[90s])))"#,
        #"topk(5,(quantile_over_time(0.9,{app="netobserv-flowcollector"}|~`"DnsLatencyMs`!~`"DnsLatencyMs":0[,}]`|json|unwrap DnsLatencyMs|__error__=""[30s]) by(SrcK8S_Namespace,DstK8S_Namespace)))"#,
        #"topk(5,(avg_over_time({app="netobserv-flowcollector"}|~`"TimeFlowRttNs"`|json|unwrap TimeFlowRttNs|__error__=""[30s]) by(app))/1000000)"#,
        #"bottomk(5,(min_over_time({app="netobserv-flowcollector"}|json|unwrap TimeFlowRttNs|__error__=""[30s]) by(SrcK8S_Namespace)))"#,
        #"topk(5,(max_over_time({app="netobserv-flowcollector"}|json|unwrap Bytes|__error__=""[30s]) by(DstK8S_OwnerName)))"#,
        #"topk(5,sum by(PktDropLatestDropCause)(rate({app="netobserv-flowcollector"}|~`"PktDropLatestDropCause"`|json|unwrap PktDropPackets|__error__=""[30s])))"#,
        #"topk(5,sum by(DnsFlagsResponseCode)(count_over_time({app="netobserv-flowcollector"}|~`"DnsFlagsResponseCode"`|json[30s])))"#,
        #"sum by(K8S_FlowLayer)(sum_over_time({app="netobserv-flowcollector"}|json|unwrap Packets|__error__=""[1m]))"#,
        #"avg by(SrcK8S_Namespace)(rate({app="netobserv-flowcollector"}|json|unwrap Bytes|__error__=""[1m]))"#,
        #"count_over_time({app="netobserv-flowcollector",SrcK8S_Namespace="nonexistent"}[1m])"#,
    ]

    /// The metric queries the traffic series can answer (rate, count and sum over
    /// time of Bytes, Packets or flows, grouped and filtered by fields the groups keep).
    /// (Not `avg by` of a rate: its inner rate keeps every label. Not the nonexistent
    /// namespace: its shards are ruled out unopened.)
    static let seriesQueries: Set<String> = [metricQueries[0], metricQueries[1], metricQueries[2], metricQueries[3], metricQueries[10]]

    @Test(arguments: metricQueries) func metricQueriesAreTheSameThroughSQLAndThroughTheEvaluator(_ query: String) throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.makeStore(dir)
        let (sql, reference) = try Self.engines(store)
        // The same engines with every shard cut into one-granule parts, which both cores
        // aggregate at once and which are merged at the end: the answer may not change.
        var slicedSQL = sql, slicedReference = reference
        slicedSQL.rowsPerPart = SkipIndex.granuleRows
        slicedReference.rowsPerPart = SkipIndex.granuleRows
        // Sealed shards' traffic series answer what they can; without them every shard's
        // rows do, whole and in parts.
        var rowsOnly = sql, slicedRowsOnly = slicedSQL, sparseSeries = sql
        rowsOnly.readsTrafficSeries = false
        slicedRowsOnly.readsTrafficSeries = false
        sparseSeries.seriesDenseSlots = 1  // every series output but the first summed sparsely
        let (first, last) = Self.span(flows)
        // An odd start (not on a step or a minute) and two step sizes.
        for step in ["15s", "17s"] {
            let q = ["query": query, "start": String(first / 1000 + 7), "end": String(last / 1000 + 1), "step": step]
            let request = try LokiRangeRequest(q, nowNs: 0, maxEntries: 5000, maxLengthNs: .max)
            let statistics = LokiQueryEngine.Statistics()
            let a = try sql.run(request, statistics: statistics), b = try reference.run(request)
            guard case .matrix(let gridA, let x) = a, case .matrix(let gridB, let y) = b else { Issue.record("not matrices"); return }
            #expect(gridA == gridB)
            #expect(x == y, "\(query) step \(step)")
            for engine in [slicedSQL, slicedReference, rowsOnly, slicedRowsOnly, sparseSeries] {
                let used = LokiQueryEngine.Statistics()
                guard case .matrix(_, let z) = try engine.run(request, statistics: used) else { Issue.record("not a matrix"); return }
                #expect(z == y, "\(query) step \(step), in one-granule parts: \(engine.rowsPerPart == SkipIndex.granuleRows) (SQL: \(engine.translatesToSQL), series: \(engine.readsTrafficSeries))")
                if !engine.readsTrafficSeries { #expect(used.fromSeries == 0) }
            }
            if query.contains("sum by(SrcK8S_Namespace,DstK8S_Namespace)") { #expect(statistics.aggregatedInSQL > 0) }
            // The console's topology and count panels read the four sealed shards' series.
            if Self.seriesQueries.contains(query) { #expect(statistics.fromSeries == 4, "\(query)") }
            else { #expect(statistics.fromSeries == 0, "\(query)") }
        }
    }

    @Test func flowCountsPerNamespaceMatchADirectCount() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.makeStore(dir)
        let (sql, _) = try Self.engines(store)
        let (first, last) = Self.span(flows)
        let startS = first / 1000 + 11, stepS: Int64 = 20, rangeS: Int64 = 60
        let q = ["query": #"sum by(SrcK8S_Namespace)(count_over_time({app="netobserv-flowcollector"}[1m]))"#,
                 "start": String(startS), "end": String(last / 1000), "step": "\(stepS)s"]
        guard case .matrix(let grid, let series) = try sql.run(try LokiRangeRequest(q, nowNs: 0, maxEntries: 5000, maxLengthNs: .max))
        else { Issue.record("not a matrix"); return }
        let namespace = FlowSchema.id(of: "SrcK8S_Namespace")
        for k in 0..<grid.count {
            let t = (startS + Int64(k) * stepS) * 1000
            var counts: [String: Double] = [:]
            for flow in flows {
                let ms = flow.integer(FlowSchema.requiredField)!
                guard ms > t - rangeS * 1000, ms <= t else { continue }
                counts[flow.string(namespace) ?? "", default: 0] += 1
            }
            for (name, count) in counts {
                let found = series.first { ($0.labels["SrcK8S_Namespace"] ?? "") == name }
                #expect(found?.values[k] == count, "step \(k) namespace \(name)")
            }
            #expect(series.filter { $0.values[k] != nil }.count == counts.count)
        }
    }

    @Test func labelValuesAndNames() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.makeStore(dir)
        let (sql, _) = try Self.engines(store)
        let (first, last) = Self.span(flows)
        let namespace = FlowSchema.id(of: "SrcK8S_Namespace")
        let expected = Set(flows.compactMap { $0.string(namespace) }.filter { !$0.isEmpty }).sorted()
        #expect(try sql.labelValues("SrcK8S_Namespace", startNs: first * 1_000_000, endNs: (last + 1) * 1_000_000) == expected)
        #expect(try sql.labelValues("app", startNs: first * 1_000_000, endNs: (last + 1) * 1_000_000) == ["netobserv-flowcollector"])
        #expect(try sql.labelValues("SrcK8S_Name", startNs: first * 1_000_000, endNs: (last + 1) * 1_000_000) == [])
        let names = try sql.labelNames(startNs: first * 1_000_000, endNs: (last + 1) * 1_000_000)
        #expect(names.contains("app") && names.contains("SrcK8S_Namespace") && names.contains("FlowDirection"))
    }
}
