import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
@testable import ShardStore
import StorageKit
import Testing

/// A sealed or merged shard's traffic series holds, per group and per second, exactly the
/// flows, Bytes and Packets of its rows: checked against a GROUP BY over the rows
/// themselves, group by group; and a shard whose sums could not be exact has none.
@Suite struct TrafficSeriesTests {
    static let windowMs: Int64 = 60_000
    static let start: Int64 = 1_767_225_600_000

    typealias Totals = [String: [Int64]]

    /// The group's columns as one key (its stored values, NULL as "-"), per second.
    static let keyColumns = TrafficSeries.fields.map { "\"\($0.name)\"" } + TrafficSeries.bookkeeping.map { "\"\($0)\"" }

    /// Per group and second: flows, Bytes, Packets, computed by SQLite from the rows.
    static func fromRows(_ reader: ShardReader) throws -> Totals {
        let key = (keyColumns + TrafficSeries.values.map { "(\"\($0.name)\" IS NOT NULL)" })
            .map { "coalesce(CAST(\($0) AS TEXT), '-')" }.joined(separator: " || '|' || ")
        var totals: Totals = [:]
        try reader.query("""
            SELECT \(key) || '@' || (("TimeFlowEndMs" + 999) / 1000), count(*), coalesce(sum("Bytes"), 0), coalesce(sum("Packets"), 0)
            FROM flow_rows GROUP BY 1
            """) { row in
            totals[row.text(0) ?? ""] = [row.integer(1), row.integer(2), row.integer(3)]
        }
        return totals
    }

    /// The same from the series tables, decoded.
    static func fromSeries(_ reader: ShardReader) throws -> Totals {
        let key = (keyColumns + TrafficSeries.values.map { "\"\(TrafficSeries.presenceColumn($0))\"" })
            .map { "coalesce(CAST(g.\($0) AS TEXT), '-')" }.joined(separator: " || '|' || ")
        var totals: Totals = [:]
        try reader.query("""
            SELECT \(key), d.seconds, d.counts, d."Bytes", d."Packets"
            FROM series_groups AS g JOIN series_data AS d ON d.group_id = g.group_id
            """) { row in
            let group = row.text(0) ?? ""
            var bytes: [Int64: UInt64] = [:], packets: [Int64: UInt64] = [:]
            for (column, into) in [(Int32(3), 0), (4, 1)] {
                let ok = row.withBlob(1) { seconds in
                    row.withBlob(2) { counts in
                        row.withBlob(column) { value in
                            TrafficSeries.forEachSecond(seconds: seconds, counts: counts, value: value.isEmpty ? nil : value) { second, _, sum in
                                if into == 0 { bytes[second, default: 0] += sum } else { packets[second, default: 0] += sum }
                            }
                        }
                    }
                }
                #expect(ok)
            }
            _ = row.withBlob(1) { seconds in
                row.withBlob(2) { counts in
                    TrafficSeries.forEachSecond(seconds: seconds, counts: counts, value: nil) { second, flows, _ in
                        totals["\(group)@\(second)", default: [0, 0, 0]][0] += flows
                    }
                }
            }
            for (second, sum) in bytes { totals["\(group)@\(second)", default: [0, 0, 0]][1] += Int64(sum) }
            for (second, sum) in packets { totals["\(group)@\(second)", default: [0, 0, 0]][2] += Int64(sum) }
        }
        return totals
    }

    @Test func sealedAndMergedShardsHoldEachGroupsFlowsPerSecond() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: Self.windowMs, graceMs: 0))
        var lines = generatedLines(6_000, seed: 5, rate: 30, features: Set(GeneratorOptions.Feature.allCases))
        // A flow without Bytes (its group says so), a quoted and a null value, an unknown field.
        let t = Self.start + 1_500
        lines.append(Array(#"{"Packets":1,"FlowDirection":"1","DnsLatencyMs":null,"Novel":7,"TimeFlowEndMs":\#(t),"TimeFlowStartMs":\#(t - 5)}"#.utf8))
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealWindowsClosed(byWallClockMs: Self.start + 10 * Self.windowMs)
        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(sealed.count >= 3)
        for shard in sealed {
            let reader = try store.reader(for: shard.id)
            #expect(try reader.meta(TrafficSeries.metaKey) == TrafficSeries.version)
            let expected = try Self.fromRows(reader)
            #expect(!expected.isEmpty)
            #expect(try Self.fromSeries(reader) == expected, "\(shard.id)")
        }

        var policy = MergePolicy(windowMs: 4 * Self.windowMs, maxRows: 1_000_000, level: 3)
        policy.sourceGraceMs = 0
        let done = try store.mergeSealedShards(policy, nowMs: Self.start + 10 * Self.windowMs)
        let merged = try #require(done.first?.merged)
        let reader = try store.reader(for: merged)
        #expect(try reader.meta(TrafficSeries.metaKey) == TrafficSeries.version)
        #expect(try Self.fromSeries(reader) == (try Self.fromRows(reader)))
    }

    @Test func aShardWhoseSumsCouldNotBeExactHasNone() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: Self.windowMs, graceMs: 0))
        var lines = generatedLines(300, seed: 9, rate: 30)
        // A counter above 2^63 (stored as a negative integer): no signed sum holds it.
        let t = Self.start + 2_000
        lines.append(Array(#"{"Bytes":18446744073709551615,"Packets":1,"TimeFlowEndMs":\#(t),"TimeFlowStartMs":\#(t - 5)}"#.utf8))
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealWindowsClosed(byWallClockMs: Self.start + 10 * Self.windowMs)
        let shard = try #require(try store.shards().first { $0.state == .sealed && $0.id.windowStartMs == Self.start })
        let reader = try store.reader(for: shard.id)
        #expect(try reader.meta(TrafficSeries.metaKey) == nil)
        var tables = 0
        try reader.query("SELECT count(*) FROM sqlite_master WHERE name LIKE 'series_%'") { tables = Int($0.integer(0)) }
        #expect(tables == 0)
    }

    /// Sparse traffic (a group per few flows) gets no series; the same number of flows in
    /// few groups does. Rows go straight to the builder: no shard is needed to count.
    @Test func sparseShardsGetNoSeries() throws {
        func tables(groups: Int64, rows: Int64) throws -> Int {
            let builder = TrafficSeriesBuilder()
            for i in 0..<rows {
                // The group changes with the first field (a new run of the seal order).
                builder.add(end: Self.start + i, stored: { $0 == 0 ? i % groups : nil }, text: { _ in nil }, value: { _ in 10 })
            }
            let db = try SQLiteDatabase(path: ":memory:")
            try db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")
            try builder.write(into: db)
            return Int(try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name LIKE 'series_%' AND type = 'table'") ?? -1)
        }
        let rows: Int64 = 100_000  // at most max(10,000, 12,500) groups
        #expect(try tables(groups: 12_000, rows: rows) == 2)
        #expect(try tables(groups: 13_000, rows: rows) == 0)
    }
}
