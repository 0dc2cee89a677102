package import ShardStore
import StorageKit
import Foundation

/// Answers from `rollups.sqlite`: top talkers and series over weeks read thousands of
/// rollup rows instead of billions of flows. Opened read-only; the sealer writes the
/// file (`RollupStore`) and a reader never creates it.
package final class RollupReader {
    let db: SQLiteDatabase

    /// The store's rollups, or nil when nothing has been rolled up yet.
    package init?(store: ShardStore) throws {
        guard FileManager.default.fileExists(atPath: store.rollupsPath) else { return nil }
        db = try SQLiteDatabase(path: store.rollupsPath, mode: .readOnly)
    }

    /// The part of [fromMs, toMs) (nil: unbounded) that rollups answer exactly for
    /// `store`: whole minutes before the window of any shard not rolled up yet (active
    /// shards, late parts, shards sealed before rollups existed).
    package func span(of store: ShardStore, fromMs: Int64?, toMs: Int64?) throws -> (fromMs: Int64, toMs: Int64)? {
        let shards = try store.shards().filter { $0.state != .quarantined }
        let oldestRollup = try RollupSchema.tiers.compactMap { try db.scalarInteger("SELECT min(\($0.timeColumn)) FROM \($0.table)") }.min()
        let newestRollupEnd = try newestMinuteMs().map { $0 + 60_000 }
        guard let from = fromMs ?? [shards.compactMap(\.minTimeMs).min(), oldestRollup].compactMap({ $0 }).min(),
              let to = toMs ?? [shards.compactMap(\.maxTimeMs).max().map { $0 + 1 }, newestRollupEnd].compactMap({ $0 }).max(),
              from < to else { return nil }
        var unrolled: [Int64] = []
        for shard in shards where (shard.maxTimeMs ?? .min) >= from && shard.id.windowStartMs < to {
            if try isRolledUp(shard.id) { continue }
            // A merged shard's flows were rolled up under its sources' ids when they sealed.
            let sources = try store.mergedSources(of: shard.id)
            if try sources.isEmpty || !sources.allSatisfy({ try isRolledUp($0) }) { unrolled.append(shard.id.windowStartMs) }
        }
        guard let exact = Self.exact(fromMs: from, toMs: to, horizons: try horizons()) else { return nil }
        return Self.span(fromMs: exact.fromMs, toMs: exact.toMs, unrolledWindowStarts: unrolled)
    }

    /// Where retention has pruned each tier (`rollup_horizons`), in `RollupSchema.tiers`
    /// order: a tier holds no bucket that starts before its horizon (`.min`: never pruned).
    func horizons() throws -> [Int64] {
        var horizons = [Int64](repeating: .min, count: RollupSchema.tiers.count)
        // A file no flowrec with tiered retention has opened yet has no such table.
        guard try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = 'rollup_horizons'") == 1 else { return horizons }
        let rows = try db.prepare("SELECT tier, pruned_before_ms FROM rollup_horizons")
        while try rows.step() {
            if let i = RollupSchema.tiers.firstIndex(where: { $0.name == rows.text(0) }) { horizons[i] = rows.integer(1) }
        }
        return horizons
    }

    /// The part of [fromMs, toMs) that the tiers retention left answer exactly. Before
    /// the minute tier's horizon only whole hours can be answered, before the hour tier's
    /// only whole days, before the day tier's nothing; the range shrinks to what is exact,
    /// and the rest goes to raw shards (or, when they are gone too, is reported as not
    /// covered by the caller's answer).
    static func exact(fromMs: Int64, toMs: Int64, horizons: [Int64]) -> (fromMs: Int64, toMs: Int64)? {
        var from = fromMs, to = toMs
        let coarser: [Int64] = [3_600_000, 86_400_000]
        for (tier, bucket) in coarser.enumerated() {
            let horizon = horizons[tier]
            // The head piece [from, next boundary) and the tail piece [last boundary, to)
            // come from this tier: each must lie after its horizon, or be dropped.
            if from < horizon { from = ((from + bucket - 1) / bucket) * bucket }
            if max((to / bucket) * bucket, from) < horizon { to = (to / bucket) * bucket }
        }
        from = max(from, horizons[2])
        return to > from ? (from, to) : nil
    }

    /// The first bucket start at or after `startMs`, on the grid of `stepMs` from
    /// `gridMs`, whose tier (the one `series` reads for it) has not been pruned there.
    func seriesStart(stepMs: Int64, startMs: Int64, gridMs: Int64) throws -> Int64 {
        let horizons = try horizons()
        var start = startMs
        while true {
            let tier = Self.seriesTier(stepMs: stepMs, fromMs: start)
            let horizon = horizons[tier]
            guard start < horizon else { return start }
            start = gridMs + ((horizon - gridMs + stepMs - 1) / stepMs) * stepMs
        }
    }

    /// The tier `series` reads: the coarsest whose buckets the steps are made of.
    static func seriesTier(stepMs: Int64, fromMs: Int64) -> Int {
        RollupSchema.tiers.lastIndex { stepMs % $0.bucketMs == 0 && fromMs % $0.bucketMs == 0 } ?? 0
    }

    /// The part of [fromMs, toMs) the rollups answer exactly: minute-aligned, and before
    /// the window of any shard in `unrolled` (active shards, or sealed ones without
    /// rollups), whose flows the tiers do not hold. nil when there is no such span.
    package static func span(fromMs: Int64, toMs: Int64, unrolledWindowStarts: [Int64]) -> (fromMs: Int64, toMs: Int64)? {
        let start = ((fromMs + 59_999) / 60_000) * 60_000
        var end = (toMs / 60_000) * 60_000
        if let firstUnrolled = unrolledWindowStarts.filter({ $0 < end }).min() { end = max(start, min(end, firstUnrolled)) }
        return end > start ? (start, end) : nil
    }

    /// Which tier rows cover [fromMs, toMs) exactly: whole days from the day tier, whole
    /// hours from the hour tier, the rest from minutes. As SQL over `tier_rows`.
    static func coveringRowsSQL(fromMs: Int64, toMs: Int64) -> String {
        var parts: [String] = []
        let day: Int64 = 86_400_000, hour: Int64 = 3_600_000
        let dayStart = ((fromMs + day - 1) / day) * day, dayEnd = (toMs / day) * day
        let hourStart = ((fromMs + hour - 1) / hour) * hour, hourEnd = (toMs / hour) * hour
        func select(_ table: String, _ column: String, _ from: Int64, _ to: Int64) {
            if to > from { parts.append("SELECT * FROM \(table) WHERE \(column) >= \(from) AND \(column) < \(to)") }
        }
        if dayEnd > dayStart {
            select("day_rollups", "day_ms", dayStart, dayEnd)
            select("hour_rollups", "hour_ms", hourStart, dayStart)
            select("hour_rollups", "hour_ms", dayEnd, hourEnd)
        } else if hourEnd > hourStart {
            select("hour_rollups", "hour_ms", hourStart, hourEnd)
        }
        if hourEnd > hourStart {
            select("minute_rollups", "minute_ms", fromMs, hourStart)
            select("minute_rollups", "minute_ms", hourEnd, toMs)
        } else {
            select("minute_rollups", "minute_ms", fromMs, toMs)
        }
        return parts.map { $0.replacingOccurrences(of: "SELECT *", with: "SELECT group_id, flows, bytes, packets") }
            .joined(separator: " UNION ALL ")
    }

    /// Sums of flows, bytes and packets per group of `fields` (flow field names that are
    /// rollup dimensions) over [fromMs, toMs), which must be minute-aligned.
    package func totals(by fields: [String], fromMs: Int64, toMs: Int64) throws -> [(group: [String], flows: Int64, bytes: Int64, packets: Int64)] {
        let columns = try fields.map { try Self.column(for: $0) }
        let keys = columns.map { "coalesce(CAST(g.\($0) AS TEXT), '')" }
        let rows = try db.prepare("""
            SELECT \(keys.joined(separator: ", ")), sum(t.flows), sum(t.bytes), sum(t.packets)
            FROM (SELECT group_id, sum(flows) AS flows, sum(bytes) AS bytes, sum(packets) AS packets
                  FROM (\(Self.coveringRowsSQL(fromMs: fromMs, toMs: toMs))) GROUP BY group_id) AS t
            JOIN rollup_groups AS g ON g.id = t.group_id
            GROUP BY \((1...columns.count).map(String.init).joined(separator: ", "))
            """)
        var result: [(group: [String], flows: Int64, bytes: Int64, packets: Int64)] = []
        let n = Int32(columns.count)
        while try rows.step() {
            result.append(((0..<n).map { rows.text($0) ?? "" }, rows.integer(n), rows.integer(n + 1), rows.integer(n + 2)))
        }
        return result
    }

    /// Per-bucket sums over [fromMs, toMs) (minute-aligned; `stepMs` a multiple of a
    /// minute) for groups matching `filter` (field = value).
    package func series(stepMs: Int64, fromMs: Int64, toMs: Int64, filter: [(field: String, value: String)]) throws -> [(bucketMs: Int64, flows: Int64, bytes: Int64, packets: Int64)] {
        let tier = RollupSchema.tiers[Self.seriesTier(stepMs: stepMs, fromMs: fromMs)]
        let conditions = try filter.enumerated().map { i, f in "CAST(g.\(try Self.column(for: f.field)) AS TEXT) = ?\(i + 4)" }
        let rows = try db.prepare("""
            SELECT ((t.\(tier.timeColumn) - ?2) / ?1) * ?1 + ?2 AS bucket, sum(t.flows), sum(t.bytes), sum(t.packets)
            FROM \(tier.table) AS t JOIN rollup_groups AS g ON g.id = t.group_id
            WHERE t.\(tier.timeColumn) >= ?2 AND t.\(tier.timeColumn) < ?3\(conditions.isEmpty ? "" : " AND " + conditions.joined(separator: " AND "))
            GROUP BY bucket ORDER BY bucket
            """)
        rows.bind(1, stepMs)
        rows.bind(2, fromMs)
        rows.bind(3, toMs)
        for (i, f) in filter.enumerated() { rows.bind(Int32(i + 4), f.value) }
        var result: [(bucketMs: Int64, flows: Int64, bytes: Int64, packets: Int64)] = []
        while try rows.step() { result.append((rows.integer(0), rows.integer(1), rows.integer(2), rows.integer(3))) }
        return result
    }

    package func isRolledUp(_ shard: ShardID) throws -> Bool {
        let query = try db.prepare("SELECT 1 FROM rollup_shards WHERE shard_id = ?1")
        query.bind(1, shard.description)
        return try query.step()
    }

    /// The oldest and newest minute bucket the rollups hold, if any.
    package func oldestMinuteMs() throws -> Int64? { try db.scalarInteger("SELECT min(minute_ms) FROM minute_rollups") }
    package func newestMinuteMs() throws -> Int64? { try db.scalarInteger("SELECT max(minute_ms) FROM minute_rollups") }

    /// Whether every field is a rollup dimension (so rollups can answer a grouping).
    package static func covers(_ fields: [String]) -> Bool {
        fields.allSatisfy { f in RollupSchema.dimensions.contains { $0.field == f } }
    }

    static func column(for field: String) throws(QueryError) -> String {
        guard let d = RollupSchema.dimensions.first(where: { $0.field == field }) else {
            throw QueryError(.unknownField, "\(field) is not a rollup dimension; rollups group by \(RollupSchema.dimensions.map(\.field).joined(separator: ", "))")
        }
        return d.column
    }
}
