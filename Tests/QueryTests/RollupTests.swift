import FlowGenerator
import FlowrecTestTraits
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
        policy.rollupMaxAge = RollupAges().capped(at: 10 * 60_000)
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

/// Each rollup tier has its own age, the size limit counts rollups (minute days older
/// than every shard go first), and answers stay exact where the tiers left can give
/// them: the part of a range they cannot is left to raw shards, never filled wrongly.
@Suite(.ownThread) struct TieredRollupRetentionTests {
    static let t0 = FlowQueryTests.t0
    static let day: Int64 = 86_400_000, hour: Int64 = 3_600_000

    /// Four days of flows, one every 30 s, in daily shards, all sealed (rollups written).
    static func fixture(_ dir: TemporaryDirectory) throws -> (ShardStore, [Flow]) {
        var options = GeneratorOptions()
        options.disorderMs = 0
        options.seed = 4
        var generator = FlowGenerator(options: options)
        let end = FlowSchema.requiredField
        var batch = IngestBatch()
        let src = batch.sourceIndex("file:tiers")
        var flows: [Flow] = []
        for i in 0..<Int(4 * day / 30_000) {
            var flow = generator.nextFlow()
            flow.set(end, integer: t0 + Int64(i) * 30_000)
            flows.append(flow)
            batch.append(flow, at: SourcePosition(source: src, partition: 0, position: Int64(i + 1)))
        }
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: day, graceMs: 0))
        try store.append(batch)
        try store.sealClosedWindows(watermarkMs: .max)
        return (store, flows)
    }

    /// Flows per source namespace over [from, to), from the input.
    static func expected(_ flows: [Flow], _ from: Int64, _ to: Int64) -> [String: Int64] {
        let ns = FlowSchema.id(of: "SrcK8S_Namespace"), end = FlowSchema.requiredField
        var out: [String: Int64] = [:]
        for f in flows where (from..<to).contains(f.integer(end) ?? 0) { out[f.string(ns) ?? "", default: 0] += 1 }
        return out
    }

    static func answered(_ store: ShardStore, _ from: Int64, _ to: Int64) throws -> ([String: Int64], (fromMs: Int64, toMs: Int64)?) {
        let answer = try TopTalkers(store: store).answer(by: ["SrcK8S_Namespace"], metric: .flows, fromMs: from, toMs: to, limit: 1000)
        return (Dictionary(uniqueKeysWithValues: answer.rows.map { ($0.group[0], $0.flows) }), answer.fromRollups)
    }

    @Test func eachTierKeepsItsOwnAgeAndAnswersStayExact() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        let now = Self.t0 + 4 * Self.day
        var policy = RetentionPolicy(maxAgeMs: Self.day)
        policy.rollupMaxAge = RollupAges(minuteMs: Self.day * 3 / 2, hourMs: Self.day * 5 / 2)
        let report = try store.prune(policy, nowMs: now, volume: nil)
        #expect(report.deleted.count == 3, "raw shards of the first three days go")
        #expect(report.rollupShardsDropped == 0, "the day tier is kept, so every shard's flows still count")
        let db = try SQLiteDatabase(path: dir.path + "/rollups.sqlite", mode: .readOnly)
        #expect(try db.scalarInteger("SELECT min(minute_ms) FROM minute_rollups") == now - Self.day * 3 / 2)
        #expect(try db.scalarInteger("SELECT min(hour_ms) FROM hour_rollups") == now - Self.day * 5 / 2)
        #expect(try db.scalarInteger("SELECT min(day_ms) FROM day_rollups") == Self.t0)

        // Whole days: the day tier answers all four, exactly.
        let (all, allSpan) = try Self.answered(store, Self.t0, now)
        #expect(all == Self.expected(flows, Self.t0, now))
        #expect(allSpan?.fromMs == Self.t0 && allSpan?.toMs == now)

        // Starting mid-day before the hour tier's horizon: only from the next whole day
        // is exact; the head has no raw shards left, so it is not in the answer.
        let (late, lateSpan) = try Self.answered(store, Self.t0 + 30 * 60_000, now)
        #expect(lateSpan?.fromMs == Self.t0 + Self.day)
        #expect(late == Self.expected(flows, Self.t0 + Self.day, now))

        // Starting mid-hour after the hour horizon but before the minute one: whole hours.
        let from = Self.t0 + 2 * Self.day + 30 * 60_000
        let (hours, hoursSpan) = try Self.answered(store, from, now)
        #expect(hoursSpan?.fromMs == Self.t0 + 2 * Self.day + Self.hour)
        #expect(hours == Self.expected(flows, Self.t0 + 2 * Self.day + Self.hour, now))

        // A 5-minute series reads minutes: buckets before the minute horizon are not
        // made up from it; hourly steps read the hour tier and are exact from its horizon.
        let series = FlowSeries(store: store)
        let fiveMinutes = try series.run(group: [], stepMs: 300_000, fromMs: Self.t0 + 2 * Self.day, toMs: Self.t0 + 3 * Self.day)
        let minuteHorizon = now - Self.day * 3 / 2
        let end = FlowSchema.requiredField
        for point in fiveMinutes where point.bucketMs >= minuteHorizon {
            let want = flows.filter { (point.bucketMs..<(point.bucketMs + 300_000)).contains($0.integer(end) ?? 0) }.count
            #expect(point.flows == Int64(want), "5-minute bucket \(point.bucketMs)")
        }
        #expect(fiveMinutes.filter { $0.bucketMs < minuteHorizon }.allSatisfy { $0.flows == 0 },
                "before the minute horizon the raw shards are gone and minutes are not invented from hours")
        let hourly = try series.run(group: [], stepMs: Self.hour, fromMs: Self.t0 + 2 * Self.day, toMs: Self.t0 + 3 * Self.day)
        #expect(hourly.count == 24)
        for point in hourly {
            let want = flows.filter { (point.bucketMs..<(point.bucketMs + Self.hour)).contains($0.integer(end) ?? 0) }.count
            #expect(point.flows == Int64(want), "hour bucket \(point.bucketMs)")
        }
    }

    /// The size limit counts rollups: with it just exceeded, the oldest day of minute
    /// rollups goes (older than every shard), not a shard; its flows still answer.
    @Test func theSizeLimitTakesTheOldestMinuteRowsFirst() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        let now = Self.t0 + 4 * Self.day
        try store.prune(RetentionPolicy(maxAgeMs: Self.day), nowMs: now, volume: nil)
        let shards = try store.shards()
        #expect(shards.count == 1)
        let rollups = try RollupStore(path: store.rollupsPath)
        let total = shards.reduce(Int64(0)) { $0 + $1.bytesOnDisk } + (try rollups.liveBytes())
        let policy = RetentionPolicy(maxTotalBytes: total - 1, lowWatermark: 1.0)
        let planned = try store.rollupRetentionPlan(policy, volume: nil)
        #expect(planned.first?.dayStartMs == Self.t0 && planned.first?.reason == .totalSize, "\(planned)")
        let report = try store.prune(policy, nowMs: now, volume: nil)
        #expect(report.deleted.isEmpty, "no shard goes while older minute rollups can")
        #expect(report.rollupMinuteDays.map(\.dayStartMs) == [Self.t0])
        #expect((report.rollupMinuteDays.first?.bytes ?? 0) > 0)
        #expect(try rollups.liveBytes() < total - shards[0].bytesOnDisk)
        let db = try SQLiteDatabase(path: dir.path + "/rollups.sqlite", mode: .readOnly)
        #expect(try db.scalarInteger("SELECT min(minute_ms) FROM minute_rollups") == Self.t0 + Self.day)
        #expect(try Self.answered(store, Self.t0, Self.t0 + Self.day).0 == Self.expected(flows, Self.t0, Self.t0 + Self.day),
                "the first day is still answered by the day tier")
    }

    @Test func tierAgesMustGrowWithTheBucket() {
        var policy = RetentionPolicy()
        policy.rollupMaxAge = RollupAges(minuteMs: 10 * Self.day, hourMs: Self.day)
        #expect(throws: ShardStoreError.self) { try policy.validate() }
        policy.rollupMaxAge = RollupAges(hourMs: Self.day)
        #expect(throws: ShardStoreError.self, "minutes kept forever while hours go") { try policy.validate() }
        policy.rollupMaxAge = RollupAges(minuteMs: Self.day, hourMs: 2 * Self.day)
        #expect(throws: Never.self) { try policy.validate() }
    }
}
