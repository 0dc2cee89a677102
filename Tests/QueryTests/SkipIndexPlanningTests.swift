import FlowModel
import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing

/// Queries planned with the skip index (shards ruled out by their summaries, granules
/// by their zone maps) answer exactly what a direct computation over the input gives:
/// filters that hit one granule, many, nothing, or everything, through `flowrec sql`
/// and `flowrec query`; and `--explain`'s counts show the pruning happened.
@Suite struct SkipIndexPlanningTests {
    /// 72,000 flows at 20/s of event time: an hour in 15-minute windows of about 18,000
    /// flows (three granules each), all sealed but the last.
    struct Fixture {
        let dir = TemporaryDirectory()
        let store: ShardStore
        let flows: [Flow]

        init() throws {
            let lines = generatedLines(72_000, seed: 23, rate: 20)
            store = try ShardStore(directory: dir.path, options: .init(windowMs: 900_000, graceMs: 0))
            try store.append(batch(lines[...], firstLine: 1))
            try store.sealClosedWindows()
            let decoder = FlowDecoder()
            flows = try lines.map { line in
                var flow = Flow()
                try decoder.decode(line, into: &flow)
                return flow
            }
        }

        /// count and sum(Bytes) of the flows where every (field, value) holds and the end time is in [from, to).
        func direct(_ terms: [(String, IndexValue)], fromMs: Int64? = nil, toMs: Int64? = nil) -> (Int64, Int64) {
            var count: Int64 = 0, bytes: Int64 = 0
            for flow in flows {
                let end = flow.integer(FlowSchema.requiredField) ?? 0
                if let fromMs, end < fromMs { continue }
                if let toMs, end >= toMs { continue }
                let matches = terms.allSatisfy { name, value in
                    let field = FlowSchema.id(of: name)
                    switch value {
                    case .integer(let v): return flow.integer(field) == v
                    case .text(let t): return flow.string(field) == t
                    }
                }
                if matches {
                    count += 1
                    bytes &+= flow.integer(FlowSchema.id(of: "Bytes")) ?? 0
                }
            }
            return (count, bytes)
        }

        /// The least frequent value of `name` that occurs at least `atLeast` times.
        func rareValue(of name: String, atLeast: Int = 1) -> IndexValue {
            let field = FlowSchema.id(of: name)
            var counts: [IndexValue: Int] = [:]
            for flow in flows {
                if field.kind == .integer, let v = flow.integer(field) { counts[.integer(v), default: 0] += 1 }
                if field.kind != .integer, let t = flow.string(field) { counts[.text(t), default: 0] += 1 }
            }
            return counts.filter { $0.value >= atLeast }.min { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }!.key
        }

        func mostCommonPair() -> (String, String) {
            var counts: [String: Int] = [:]
            for flow in flows {
                guard let a = flow.string(FlowSchema.id(of: "SrcK8S_Namespace")), let b = flow.string(FlowSchema.id(of: "DstK8S_Namespace")) else { continue }
                counts[a + "\u{0}" + b, default: 0] += 1
            }
            let key = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!.key.split(separator: "\u{0}")
            return (String(key[0]), String(key[1]))
        }
    }

    static func sqlLiteral(_ value: IndexValue) -> String {
        switch value {
        case .integer(let v): String(v)
        case .text(let t): "'" + t.replacingOccurrences(of: "'", with: "''") + "'"
        }
    }

    /// count(*), sum(Bytes) through `flowrec sql`, and the plan's counts.
    static func throughSQL(_ store: ShardStore, _ terms: [(String, IndexValue)], fromMs: Int64? = nil, toMs: Int64? = nil)
        throws -> ((Int64, Int64), ScanStatistics.Counts) {
        let connection = try FlowsAcrossShards(store: store, fromMs: fromMs, toMs: toMs)
        let condition = terms.map { "\($0.0) = \(sqlLiteral($0.1))" }.joined(separator: " AND ")
        var answer: (Int64, Int64) = (-1, -1)
        try connection.query("SELECT count(*), coalesce(sum(Bytes), 0) FROM flows" + (terms.isEmpty ? "" : " WHERE " + condition)) { row in
            answer = (row.integer(0), row.integer(1))
            return false
        }
        return (answer, connection.statistics.current)
    }

    /// count(*) and sum(Bytes) through `flowrec query` (shard by shard, with the pushed filter).
    static func throughQuery(_ store: ShardStore, _ terms: [(String, IndexValue)], fromMs: Int64? = nil, toMs: Int64? = nil)
        throws -> ((Int64, Int64), ScanStatistics.Counts) {
        var query = FlowQuery()
        query.fromMs = fromMs
        query.toMs = toMs
        query.whereSQL = terms.isEmpty ? nil : terms.map { "\($0.0) = \(sqlLiteral($0.1))" }.joined(separator: " AND ")
        query.fields = ["Bytes"]
        let runner = FlowQueryRunner(store: store)
        var count: Int64 = 0, bytes: Int64 = 0
        try runner.run(query) { values in
            count += 1
            if case .integer(let b) = values[0] { bytes &+= b }
            return true
        }
        return ((count, bytes), runner.statistics.current)
    }

    @Test func answersEqualADirectComputationAndThePlanReadsLess() throws {
        let fixture = try Fixture()
        let shards = try fixture.store.shards()
        let sealed = shards.filter { $0.state == .sealed }.count
        #expect(sealed >= 3 && shards.contains { $0.state == .active }, "\(shards.map { "\($0.id) \($0.state) \($0.rowCount)" })")
        let (src, dst) = fixture.mostCommonPair()
        let cases: [(name: String, terms: [(String, IndexValue)])] = [
            ("everything", []),
            ("a namespace pair", [("SrcK8S_Namespace", .text(src)), ("DstK8S_Namespace", .text(dst))]),
            ("one address", [("DstAddr", fixture.rareValue(of: "DstAddr", atLeast: 3))]),
            ("one port", [("DstPort", fixture.rareValue(of: "DstPort", atLeast: 2))]),
            ("one pod", [("SrcK8S_Name", fixture.rareValue(of: "SrcK8S_Name", atLeast: 5))]),
            ("a value no flow has", [("SrcK8S_Namespace", .text("no-such-namespace"))]),
            ("an unindexed field", [("Dscp", .integer(0))]),
        ]
        for (name, terms) in cases {
            let expected = fixture.direct(terms)
            let (sql, sqlPlan) = try Self.throughSQL(fixture.store, terms)
            #expect(sql == expected, "\(name) through sql")
            let (query, queryPlan) = try Self.throughQuery(fixture.store, terms)
            #expect(query == expected, "\(name) through query")
            #expect(sqlPlan.shardsInRange == shards.count && queryPlan.shardsInRange == shards.count, "\(name)")
            switch name {
            case "everything", "an unindexed field":
                #expect(sqlPlan.shardsRuledOut == 0 && sqlPlan.granulesRead == sqlPlan.granules, "\(name): \(sqlPlan)")
            case "a value no flow has":
                #expect(expected.0 == 0)
                #expect(sqlPlan.shardsRuledOut == sealed && sqlPlan.shardsOpened == shards.count - sealed, "only active shards are opened: \(sqlPlan)")
                #expect(queryPlan.shardsRuledOut == sealed && queryPlan.shardsOpened == shards.count - sealed, "\(queryPlan)")
            default:
                #expect(expected.0 > 0, "\(name) matches some flows")
                #expect(sqlPlan.granulesRead < sqlPlan.granules || sqlPlan.shardsRuledOut > 0, "\(name) reads less: \(sqlPlan)")
                #expect(queryPlan.granulesRead == sqlPlan.granulesRead, "\(name): query and sql read the same granules")
            }
        }
    }

    /// The same questions once the sealed shards are merged into one (string ids found by
    /// binary search, granules read through a join with their row id ranges), and a
    /// filtered text column selected (returned as the filter's text, not looked up per row).
    @Test func mergedShardsAnswerTheSameAndReturnFilteredColumns() throws {
        let fixture = try Fixture()
        // Half-hour merge windows: the first half hour's two sealed shards merge; the
        // second waits for its active shard.
        var policy = MergePolicy(windowMs: 1_800_000, maxRows: 10_000_000, level: 3)
        policy.sourceGraceMs = 0
        #expect(try fixture.store.mergeSealedShards(policy).map(\.sources.count) == [2])
        let (src, dst) = fixture.mostCommonPair()
        let pod = fixture.rareValue(of: "SrcK8S_Name", atLeast: 5)
        let cases: [[(String, IndexValue)]] = [
            [("SrcK8S_Namespace", .text(src)), ("DstK8S_Namespace", .text(dst))],
            [("DstAddr", fixture.rareValue(of: "DstAddr", atLeast: 3))],
            [("DstPort", fixture.rareValue(of: "DstPort", atLeast: 2))],
            [("SrcK8S_Name", pod)],
            [("SrcK8S_Namespace", .text(src)), ("DstK8S_Name", .text("no-such-pod"))],
        ]
        for terms in cases {
            let expected = fixture.direct(terms)
            let (sql, plan) = try Self.throughSQL(fixture.store, terms)
            #expect(sql == expected, "\(terms) through sql: \(plan)")
            #expect(try Self.throughQuery(fixture.store, terms).0 == expected, "\(terms) through query")
        }
        let connection = try FlowsAcrossShards(store: fixture.store, fromMs: nil, toMs: nil)
        var rows: [String] = []
        try connection.query("""
            SELECT SrcK8S_Name, SrcK8S_Namespace IS NULL, count(*) FROM flows WHERE SrcK8S_Name = \(Self.sqlLiteral(pod)) GROUP BY 1, 2
            """) { row in
            rows.append("\(row.text(0) ?? "NULL") \(row.integer(1)) \(row.integer(2))")
            return true
        }
        guard case .text(let name) = pod else { Issue.record("a pod name is text"); return }
        #expect(rows == ["\(name) 0 \(fixture.direct([("SrcK8S_Name", pod)]).0)"])
    }

    /// A limited query consults the skip summaries of the shards it reaches, not of every
    /// shard in the range: stopping at a match in the first shard, it rules none out,
    /// where reading everything rules out the later shards without the value.
    @Test func aLimitedQueryConsultsOnlyTheShardsItReaches() throws {
        // Four sealed windows of 15 minutes; namespace x in the first and third, y in the
        // second and fourth.
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 900_000, graceMs: 0))
        let start: Int64 = 1_767_225_600_000
        let lines = (0..<400).map { i -> [UInt8] in
            let window = i / 100
            let namespace = window % 2 == 0 ? "x" : "y"
            return Array(#"{"TimeFlowEndMs":\#(start + Int64(window) * 900_000 + Int64(i % 100) * 1000),"SrcK8S_Namespace":"\#(namespace)","Bytes":\#(i)}"#.utf8)
        }
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        #expect(try store.shards().filter { $0.state == .sealed }.count == 4)
        var query = FlowQuery()
        query.whereSQL = "SrcK8S_Namespace = 'x'"
        query.fields = ["Bytes"]
        query.limit = 1
        let limited = FlowQueryRunner(store: store)
        var rows = 0
        try limited.run(query) { _ in rows += 1; return true }
        #expect(rows == 1)
        #expect(limited.statistics.current.shardsOpened == 1 && limited.statistics.current.shardsRuledOut == 0, "\(limited.statistics.current)")
        query.limit = nil
        let whole = FlowQueryRunner(store: store)
        rows = 0
        try whole.run(query) { _ in rows += 1; return true }
        #expect(rows == 200)
        #expect(whole.statistics.current.shardsRuledOut == 2 && whole.statistics.current.shardsOpened == 2, "\(whole.statistics.current)")
    }

    @Test func timeRangesPruneShardsAndGranules() throws {
        let fixture = try Fixture()
        let (src, dst) = fixture.mostCommonPair()
        let start = try #require(fixture.store.shards().compactMap(\.minTimeMs).min())
        // From the middle of the first window to the middle of the second.
        let from = start + 7 * 60_000, to = start + 22 * 60_000
        for terms in [[], [("SrcK8S_Namespace", IndexValue.text(src)), ("DstK8S_Namespace", .text(dst))]] {
            let expected = fixture.direct(terms, fromMs: from, toMs: to)
            let (sql, plan) = try Self.throughSQL(fixture.store, terms, fromMs: from, toMs: to)
            #expect(sql == expected)
            #expect(plan.shardsInRange == 2, "\(plan)")
            let (query, _) = try Self.throughQuery(fixture.store, terms, fromMs: from, toMs: to)
            #expect(query == expected)
        }
    }
}
