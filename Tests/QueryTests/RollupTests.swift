import StorageKit
import FlowModel
import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing

/// Rollups written at seal time: over 24 sealed windows their sums equal the raw sums
/// exactly, and `top` and `series` give the same answers from rollups as from raw shards.
@Suite struct RollupTests {
    let t0 = FlowQueryTests.t0

    @Test func rollupSumsEqualRawSums() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try FlowQueryTests.fixture(dir)
        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(sealed.count >= 24)
        let db = try SQLiteDatabase(path: dir.path + "/rollups.sqlite", mode: .readOnly)
        #expect(try db.scalarInteger("SELECT count(*) FROM rollup_shards") == Int64(sealed.count))
        // Sealed windows are the first 24 minutes: compare with the input directly.
        let end = FlowSchema.requiredField, bytes = FlowSchema.id(of: "Bytes"), packets = FlowSchema.id(of: "Packets")
        let sealedEnd = try #require(sealed.map(\.id.windowEndMs).max())
        let inSealed = flows.filter { ($0.integer(end) ?? .max) < sealedEnd }
        let expected = (Int64(inSealed.count), inSealed.reduce(Int64(0)) { $0 + ($1.integer(bytes) ?? 0) },
                        inSealed.reduce(Int64(0)) { $0 + ($1.integer(packets) ?? 0) })
        for tier in ["minute_rollups", "hour_rollups", "day_rollups"] {
            let q = try db.prepare("SELECT sum(flows), sum(bytes), sum(packets) FROM \(tier)")
            _ = try q.step()
            #expect((q.integer(0), q.integer(1), q.integer(2)) == expected, "\(tier)")
        }
    }

    @Test func topFromRollupsEqualsTopFromRawShards() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try FlowQueryTests.fixture(dir)
        let top = TopTalkers(store: store)
        let by = ["SrcK8S_Namespace", "DstK8S_OwnerName", "Proto"]
        // A range that starts mid-minute and runs past the sealed windows into active ones.
        let from = t0 + 90_000 + 1234, to = t0 + 40 * 60_000 + 555
        let fromRollups = try top.answer(by: by, metric: .bytes, fromMs: from, toMs: to, limit: 1000)
        let span = try #require(fromRollups.fromRollups, "rollups cover the sealed minutes")
        #expect(span.fromMs == t0 + 120_000 && span.toMs <= t0 + 24 * 60_000)
        let raw = try top.answer(by: by, metric: .bytes, fromMs: from, toMs: to, whereSQL: "1 = 1", limit: 1000)
        #expect(raw.fromRollups == nil)
        #expect(fromRollups.rows == raw.rows)
        #expect(fromRollups.rows.count > 10)
    }

    /// Rollups were written under the ids of the shards as they sealed; once those are
    /// merged into one, `top` still answers from rollups, equal to the raw shards.
    @Test func rollupsStillAnswerAfterShardsMerge() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try mergeableStore(at: dir.path, hours: 7)
        var policy = MergePolicy(windowMs: 6 * 3_600_000, maxRows: 10_000_000, level: 3)
        policy.sourceGraceMs = 0
        #expect(try store.mergeSealedShards(policy).count == 2)
        let top = TopTalkers(store: store)
        let by = ["SrcK8S_Namespace", "DstK8S_Namespace"]
        let fromRollups = try top.answer(by: by, metric: .bytes, fromMs: nil, toMs: nil, limit: 1000)
        let span = try #require(fromRollups.fromRollups, "rollups cover the merged shards")
        #expect(span.toMs - span.fromMs >= 6 * 3_600_000)
        let raw = try top.answer(by: by, metric: .bytes, fromMs: nil, toMs: nil, whereSQL: "1 = 1", limit: 1000)
        #expect(fromRollups.rows == raw.rows)
    }

    @Test func seriesFromRollupsEqualsSeriesFromRawShards() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try FlowQueryTests.fixture(dir)
        let series = FlowSeries(store: store)
        let namespace = try #require(try TopTalkers(store: store).run(by: ["SrcK8S_Namespace"], metric: .flows, fromMs: nil, toMs: nil, limit: 5)
            .first { !$0.group[0].isEmpty }).group[0]
        // Minute-aligned ranges use rollups for sealed minutes; others run on raw shards.
        for from in [t0 + 60_000, t0 + 30_000] {
            let to = from + 36 * 60_000 - 7
            let mixed = try series.run(group: [("SrcK8S_Namespace", namespace)], stepMs: 300_000, fromMs: from, toMs: to)
            let raw = try series.run(group: [("SrcK8S_Namespace", namespace)], stepMs: 300_000, fromMs: from, toMs: to, allowRollups: false)
            #expect(mixed.count == 8 && mixed.first?.bucketMs == from)
            #expect(mixed == raw)
            #expect(mixed.reduce(0) { $0 + $1.flows } > 0)
        }
    }

    @Test func rollupsHaveTheirOwnRetention() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try FlowQueryTests.fixture(dir)
        var policy = RetentionPolicy(maxAgeMs: 60_000)
        policy.rollupMaxAgeMs = 10 * 60_000
        // Now is 20 minutes after the data starts: raw shards of the first 19 minutes go;
        // rollups of the first 10 minutes go.
        let report = try store.prune(policy, nowMs: t0 + 20 * 60_000, volume: nil)
        #expect(report.rollupShardsDropped == 10)
        #expect(!report.deleted.isEmpty)
        let rollups = try #require(try RollupReader(store: store))
        #expect(try rollups.oldestMinuteMs() == t0 + 10 * 60_000)
        // The deleted raw minutes 10..18 are still answered from rollups.
        let span = try rollups.span(of: store, fromMs: t0 + 10 * 60_000, toMs: t0 + 19 * 60_000)
        #expect(span?.fromMs == t0 + 10 * 60_000 && span?.toMs == t0 + 19 * 60_000)
        #expect(try rollups.totals(by: ["SrcK8S_Namespace"], fromMs: t0 + 10 * 60_000, toMs: t0 + 19 * 60_000).reduce(0) { $0 + $1.flows } == 9 * 600)
    }
}
