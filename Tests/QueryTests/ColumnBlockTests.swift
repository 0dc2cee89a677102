import FlowModel
import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing

/// Needle questions over merged shards are answered from their column blocks
/// (`ColumnBlockScan`) when the blocks hold every column the statement uses, and give
/// exactly what a direct computation over the input gives; anything else, or a time
/// range cutting through a merged shard's granules, reads the rows as before.
@Suite struct ColumnBlockTests {
    typealias Fixture = SkipIndexPlanningTests.Fixture

    /// The fixture with its first half hour (two sealed shards) merged into one shard.
    static func merged() throws -> Fixture {
        let fixture = try Fixture()
        var policy = MergePolicy(windowMs: 1_800_000, maxRows: 10_000_000, level: 3)
        policy.sourceGraceMs = 0
        #expect(try fixture.store.mergeSealedShards(policy).map(\.sources.count) == [2])
        return fixture
    }

    /// Every result row of `sql`, values as text, and the plan's counts.
    static func rows(_ store: ShardStore, _ sql: String, fromMs: Int64? = nil, toMs: Int64? = nil,
                     readsColumnBlocks: Bool = true) throws -> ([String], ScanStatistics.Counts) {
        let connection = try FlowsAcrossShards(store: store, fromMs: fromMs, toMs: toMs, readsColumnBlocks: readsColumnBlocks)
        var rows: [String] = []
        try connection.query(sql) { row in
            rows.append((0..<row.columnCount).map { row.isNull($0) ? "NULL" : row.text($0) ?? "" }.joined(separator: "|"))
            return true
        }
        return (rows, connection.statistics.current)
    }

    /// The least frequent value of `name` among the merged shard's flows (its first half
    /// hour) that occurs there at least `atLeast` times.
    static func rareMergedValue(_ fixture: Fixture, of name: String, atLeast: Int) throws -> IndexValue {
        let merged = try #require(fixture.store.shards().first { $0.id.windowEndMs - $0.id.windowStartMs == 1_800_000 })
        let field = FlowSchema.id(of: name)
        var counts: [IndexValue: Int] = [:]
        for flow in fixture.flows where (flow.integer(FlowSchema.requiredField) ?? 0) < merged.id.windowEndMs {
            if field.kind == .integer, let v = flow.integer(field) { counts[.integer(v), default: 0] += 1 }
            if field.kind != .integer, let t = flow.string(field) { counts[.text(t), default: 0] += 1 }
        }
        return try #require(counts.filter { $0.value >= atLeast }.min { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }?.key)
    }

    @Test func needleQuestionsReadColumnBlocksAndAnswerTheSame() throws {
        let fixture = try Self.merged()
        let address = try Self.rareMergedValue(fixture, of: "DstAddr", atLeast: 3)
        let port = try Self.rareMergedValue(fixture, of: "DstPort", atLeast: 2)
        let source = try Self.rareMergedValue(fixture, of: "SrcAddr", atLeast: 20)
        guard case .text(let sourceText) = source,
              let sourcePort = fixture.flows.first(where: { $0.string(FlowSchema.id(of: "SrcAddr")) == sourceText })?.integer(FlowSchema.id(of: "DstPort")),
              let proto = fixture.flows.compactMap({ $0.integer(FlowSchema.id(of: "Proto")) }).first else {
            Issue.record("the fixture has a source address with a port, and a protocol")
            return
        }
        let cases: [(String, [(String, IndexValue)])] = [
            ("one address", [("DstAddr", address)]),
            ("one port", [("DstPort", port)]),
            ("a source address and a port", [("SrcAddr", source), ("DstPort", .integer(sourcePort))]),
            ("a protocol", [("Proto", .integer(proto))]),
            ("an address no flow has", [("DstAddr", .text("203.0.113.250"))]),
        ]
        for (name, terms) in cases {
            let expected = fixture.direct(terms)
            let (answer, plan) = try SkipIndexPlanningTests.throughSQL(fixture.store, terms)
            #expect(answer == expected, "\(name): \(plan)")
            let sql = "SELECT count(*), sum(Bytes), total(Packets), min(SrcPort), max(DstAddr) FROM flows WHERE "
                + terms.map { "\($0.0) = \(SkipIndexPlanningTests.sqlLiteral($0.1))" }.joined(separator: " AND ")
            let (rowsOnly, rowsOnlyPlan) = try Self.rows(fixture.store, sql, readsColumnBlocks: false)
            #expect(try Self.rows(fixture.store, sql).0 == rowsOnly, "\(name): the blocks and the rows agree")
            #expect(rowsOnlyPlan.granulesFromColumnBlocks == 0)
            if name != "an address no flow has" {
                #expect(expected.0 > 0, "\(name) matches some flows")
                #expect(plan.granulesFromColumnBlocks > 0, "\(name) reads the merged shard's column blocks: \(plan)")
            }
        }

        // A text column that is not filtered on is looked up in the shard's strings; Packets
        // summed; a NULL port is NULL (SQLite applies IS NULL on what the blocks return).
        guard case .integer(let portNumber) = port else { Issue.record("a port is an integer"); return }
        var byAddress: [String: (Int64, Int64)] = [:]
        var withoutPort: Int64 = 0
        let dstPort = FlowSchema.id(of: "DstPort"), dstAddr = FlowSchema.id(of: "DstAddr"), packets = FlowSchema.id(of: "Packets")
        for flow in fixture.flows {
            if flow.integer(dstPort) == nil { withoutPort += 1 }
            guard flow.integer(dstPort) == portNumber else { continue }
            let key = flow.string(dstAddr) ?? "NULL"
            byAddress[key, default: (0, 0)].0 += 1
            byAddress[key, default: (0, 0)].1 += flow.integer(packets) ?? 0
        }
        let (grouped, groupedPlan) = try Self.rows(fixture.store, "SELECT DstAddr, count(*), total(Packets) FROM flows WHERE DstPort = \(portNumber) GROUP BY 1 ORDER BY 1")
        #expect(grouped == byAddress.sorted { $0.key < $1.key }.map { "\($0.key)|\($0.value.0)|\(Double($0.value.1))" })
        #expect(try Self.rows(fixture.store, "SELECT DstAddr, count(*), total(Packets) FROM flows WHERE DstPort = \(portNumber) GROUP BY 1 ORDER BY 1",
                              readsColumnBlocks: false).0 == grouped)
        #expect(groupedPlan.granulesFromColumnBlocks > 0, "\(groupedPlan)")
        let (nulls, nullsPlan) = try Self.rows(fixture.store, "SELECT count(*) FROM flows WHERE DstPort IS NULL")
        #expect(nulls == ["\(withoutPort)"])
        #expect(nullsPlan.granulesFromColumnBlocks > 0, "\(nullsPlan)")

        // A column the blocks do not hold: the rows are read.
        let (_, rowsPlan) = try Self.rows(fixture.store, "SELECT count(*) FROM flows WHERE DstAddr = \(SkipIndexPlanningTests.sqlLiteral(address)) AND Dscp = 0")
        #expect(rowsPlan.granulesFromColumnBlocks == 0 && rowsPlan.granulesRead > 0, "\(rowsPlan)")
    }

    /// The blocks hold no time: a range that cuts through the merged shard's granules reads
    /// its rows; one that covers the whole shard reads its blocks. Both answer exactly.
    @Test func aRangeCuttingMergedGranulesReadsRows() throws {
        let fixture = try Self.merged()
        let merged = try #require(fixture.store.shards().first { $0.state == .sealed && $0.id.windowEndMs - $0.id.windowStartMs == 1_800_000 })
        let port = fixture.rareValue(of: "DstPort", atLeast: 2)
        let terms = [("DstPort", port)]
        let start = try #require(merged.minTimeMs), end = try #require(merged.maxTimeMs)
        let cut = try SkipIndexPlanningTests.throughSQL(fixture.store, terms, fromMs: start + 7 * 60_000, toMs: end)
        #expect(cut.0 == fixture.direct(terms, fromMs: start + 7 * 60_000, toMs: end))
        #expect(cut.1.granulesFromColumnBlocks == 0, "\(cut.1)")
        let whole = try SkipIndexPlanningTests.throughSQL(fixture.store, terms, fromMs: start, toMs: end + 1)
        #expect(whole.0 == fixture.direct(terms, fromMs: start, toMs: end + 1))
        #expect(whole.1.granulesFromColumnBlocks > 0, "\(whole.1)")
    }
}
