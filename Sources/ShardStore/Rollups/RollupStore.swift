import CSQLite
import FlowModel
import Foundation
package import StorageKit
import Synchronization

/// `rollups.sqlite`: opened by the sealer to add each shard's aggregates, by retention
/// to prune old buckets, and by the Query layer (`RollupReader`) to answer from them.
package final class RollupStore {
    let db: SQLiteDatabase

    package init(path: String) throws(SQLiteError) {
        db = try SQLiteDatabase(path: path)
        // Incremental auto-vacuum lets retention give pruned pages back to the volume.
        try db.useIncrementalAutoVacuum()
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        try db.execute(RollupSchema.createSQL)
        try db.execute(RollupSchema.horizonsSQL)
    }

    /// Whether pruning gives space back to the volume (incremental auto-vacuum).
    package var shrinksWhenPruned: Bool { db.shrinksWhenRowsAreDeleted }

    /// Bytes the rows take (what the size limit counts).
    package func liveBytes() throws -> Int64 { try db.liveBytes() }

    /// Group ids by dimension values, shared by every seal in the process: after the
    /// first shards, almost every group is already known and costs no query.
    private static let knownGroups = Mutex<[String: [[String?]: Int64]]>([:])

    /// Adds one shard's aggregates to every tier, unless the shard is already in.
    /// `text(id)` gives the shard's string for a dimension id.
    func add(shard: ShardID, minutes: [RollupKey: RollupMeasures], text: (Int64) throws -> String?) throws {
        let present = try db.prepare("SELECT 1 FROM rollup_shards WHERE shard_id = ?1")
        present.bind(1, shard.description)
        if try present.step() { return }

        // One seal at a time adds rollups (the lock also guards the shared group ids).
        try Self.knownGroups.withLock { (known: inout [String: [[String?]: Int64]]) throws in
            var groups = known[db.path] ?? [:]
            do {
                try db.transaction { () throws(SQLiteError) in
                    do {
                        try addLocked(shard: shard, minutes: minutes, known: &groups, text: text)
                    } catch let error as SQLiteError {
                        throw error
                    } catch {
                        throw SQLiteError(code: SQLITE_ERROR, message: "\(error)", sql: nil, path: db.path)
                    }
                }
                known[db.path] = groups
            } catch {
                known[db.path] = nil  // it may hold ids of rolled-back rows
                throw error
            }
        }
    }

    private func addLocked(shard: ShardID, minutes: [RollupKey: RollupMeasures], known: inout [[String?]: Int64],
                           text: (Int64) throws -> String?) throws {
        let dims = RollupSchema.dimensions
        if known.isEmpty {
            let all = try db.prepare("SELECT id, \(dims.map(\.column).joined(separator: ", ")) FROM rollup_groups")
            while try all.step() {
                known[(0..<dims.count).map { all.isNull(Int32($0 + 1)) ? nil : all.text(Int32($0 + 1)) }] = all.integer(0)
            }
        }
        let insertGroup = try db.prepare("""
            INSERT INTO rollup_groups (\(dims.map(\.column).joined(separator: ", "))) VALUES (\((1...dims.count).map { "?\($0)" }.joined(separator: ", ")))
            """)
        var textCache: [Int64: String?] = [:]
        var groupIDs: [RollupKey: Int64] = [:]
        func groupID(_ key: RollupKey) throws -> Int64 {
            if let id = groupIDs[key] { return id }
            var values: [String?] = []
            for (i, d) in dims.enumerated() {
                let raw = key[i]
                if d.field == "DstPortClass" {
                    values.append(RollupAccumulator.portClasses[Int(raw)])
                } else if raw == .min {
                    values.append(nil)
                } else if d.isText {
                    if textCache[raw] == nil { textCache[raw] = .some(try text(raw)) }
                    values.append(textCache[raw] ?? nil)
                } else {
                    values.append(String(raw))
                }
            }
            let id: Int64
            if let existing = known[values] {
                id = existing
            } else {
                for (i, value) in values.enumerated() {
                    if let value { insertGroup.bind(Int32(i + 1), value) } else { insertGroup.bindNull(Int32(i + 1)) }
                }
                try insertGroup.step()
                insertGroup.reset()
                id = db.lastInsertRowID
                known[values] = id
            }
            groupIDs[key] = id
            return id
        }

        // Every tier aggregated here, then upserted in key order (appends to each tier's
        // B-tree): through a temporary table and SQL's GROUP BY, which sorts, the same
        // writes took three times as long.
        var tiers = RollupSchema.tiers.map { _ in [TierKey: RollupMeasures]() }
        var flows: Int64 = 0
        for (key, m) in minutes {
            let group = try groupID(key.group)
            for (t, tier) in RollupSchema.tiers.enumerated() {
                tiers[t][TierKey(bucketMs: (key.minute / tier.bucketMs) * tier.bucketMs, groupID: group), default: RollupMeasures()].add(m)
            }
            flows += m[.flows] ?? 0
        }
        let measures = RollupSchema.measureColumns
        let updates = RollupMeasure.allCases.map { m -> String in
            let c = m.column
            return switch m.merge {
            case .min: "\(c) = coalesce(min(\(c), excluded.\(c)), \(c), excluded.\(c))"
            case .max: "\(c) = coalesce(max(\(c), excluded.\(c)), \(c), excluded.\(c))"
            case .sum: "\(c) = \(c) + excluded.\(c)"
            }
        }.joined(separator: ", ")
        for (t, tier) in RollupSchema.tiers.enumerated() {
            let upsert = try db.prepare("""
                INSERT INTO \(tier.table) (\(tier.timeColumn), group_id, \(measures.joined(separator: ", ")))
                VALUES (\((1...(measures.count + 2)).map { "?\($0)" }.joined(separator: ", ")))
                ON CONFLICT (\(tier.timeColumn), group_id) DO UPDATE SET \(updates)
                """)
            for (key, m) in tiers[t].sorted(by: { $0.key < $1.key }) {
                upsert.bind(1, key.bucketMs)
                upsert.bind(2, key.groupID)
                for measure in RollupMeasure.allCases {
                    let index = Int32(measure.rawValue + 3)
                    if let v = m[measure] { upsert.bind(index, v) } else { upsert.bindNull(index) }
                }
                try upsert.step()
                upsert.reset()
            }
        }
        let record = try db.prepare("""
            INSERT INTO rollup_shards (shard_id, window_start_ms, window_end_ms, flows, rolled_up_ms) VALUES (?1, ?2, ?3, ?4, ?5)
            """)
        record.bind(1, shard.description)
        record.bind(2, shard.windowStartMs)
        record.bind(3, shard.windowEndMs)
        record.bind(4, flows)
        record.bind(5, Int64(Date().timeIntervalSince1970 * 1000))
        try record.step()
    }

    /// Deletes, per tier (`RollupSchema.tiers` order), the buckets that ended at or before
    /// its cutoff (nil: the tier is kept), records how far each tier now reaches back
    /// (`rollup_horizons`), and forgets the shards whose flows no tier holds any more
    /// (those of the day tier's cutoff). Returns the shards forgotten.
    @discardableResult
    package func prune(cutoffs: [Int64?]) throws -> Int {
        var dropped = 0
        try db.transaction { () throws(SQLiteError) in
            for (tier, cutoff) in zip(RollupSchema.tiers, cutoffs) {
                guard let cutoff else { continue }
                // A bucket that straddles the cutoff is kept whole.
                let delete = try db.prepare("DELETE FROM \(tier.table) WHERE \(tier.timeColumn) + \(tier.bucketMs) <= ?1")
                delete.bind(1, cutoff)
                try delete.step()
                try recordHorizon(tier.name, (cutoff / tier.bucketMs) * tier.bucketMs)
            }
            if cutoffs.count == RollupSchema.tiers.count, let last = cutoffs.last, let cutoff = last {
                let delete = try db.prepare("DELETE FROM rollup_shards WHERE window_end_ms <= ?1")
                delete.bind(1, cutoff)
                try delete.step()
                dropped = db.changes
            }
        }
        try db.giveBackFreePages()
        return dropped
    }

    /// Deletes the minute buckets before `beforeMs` (a size or free-space limit needs
    /// the room; hours and days still answer for them).
    package func pruneMinutes(before beforeMs: Int64) throws {
        try db.transaction { () throws(SQLiteError) in
            let delete = try db.prepare("DELETE FROM minute_rollups WHERE minute_ms < ?1")
            delete.bind(1, beforeMs)
            try delete.step()
            try recordHorizon("minute", beforeMs)
        }
        try db.giveBackFreePages()
    }

    /// The oldest minute bucket, and the number of minute rows in the day (UTC) it is in.
    package func oldestMinuteDay() throws -> (dayStartMs: Int64, rows: Int64)? {
        guard let oldest = try db.scalarInteger("SELECT min(minute_ms) FROM minute_rollups") else { return nil }
        let day = (oldest / 86_400_000) * 86_400_000
        let count = try db.prepare("SELECT count(*) FROM minute_rollups WHERE minute_ms >= ?1 AND minute_ms < ?2")
        count.bind(1, day)
        count.bind(2, day + 86_400_000)
        _ = try count.step()
        return (day, count.integer(0))
    }

    /// The newest minute bucket.
    package func newestMinuteMs() throws -> Int64? { try db.scalarInteger("SELECT max(minute_ms) FROM minute_rollups") }

    private func recordHorizon(_ tier: String, _ beforeMs: Int64) throws(SQLiteError) {
        let upsert = try db.prepare("""
            INSERT INTO rollup_horizons (tier, pruned_before_ms) VALUES (?1, ?2)
            ON CONFLICT (tier) DO UPDATE SET pruned_before_ms = max(pruned_before_ms, excluded.pruned_before_ms)
            """)
        upsert.bind(1, tier)
        upsert.bind(2, beforeMs)
        try upsert.step()
    }

    /// Rows per tier and bytes on disk, for reports.
    package func size() throws -> (minuteRows: Int64, hourRows: Int64, dayRows: Int64, groups: Int64, bytes: Int64) {
        (try db.scalarInteger("SELECT count(*) FROM minute_rollups") ?? 0, try db.scalarInteger("SELECT count(*) FROM hour_rollups") ?? 0,
         try db.scalarInteger("SELECT count(*) FROM day_rollups") ?? 0, try db.scalarInteger("SELECT count(*) FROM rollup_groups") ?? 0,
         fileSize(db.path) + fileSize(db.path + "-wal"))
    }
}
