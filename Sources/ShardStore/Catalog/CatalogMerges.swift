import Foundation
import StorageKit

/// The catalog's part of merging: what a merged shard replaced, which ids are taken,
/// and the store's own window width.
extension Catalog {
    /// A shard merged away and where its flows went.
    struct MergedSource: Sendable, Equatable {
        let id: ShardID
        let mergedInto: ShardID
        let path: String
        let mergedMs: Int64
    }

    /// What the catalog records when a merged shard replaces its sources.
    struct MergedShard {
        let id: ShardID
        let relativePath: String
        let rows: Int64
        let minTimeMs: Int64?
        let maxTimeMs: Int64?
        let bytes: Int64
        let checksum: UInt64
        let level: Int32
        let positions: [SourcePartition: PositionRange]
        let summaries: [SkipSummary]
        let sources: [ShardRecord]
    }

    /// The part a new shard of window [start, end) takes: one past every part that shard
    /// or a merged-away shard of the same window ever had, so an id is never reused (a
    /// forwarder's delivery record names shards by id).
    func nextPart(windowStartMs: Int64, windowEndMs: Int64) throws(SQLiteError) -> Int {
        let query = try db.prepare("""
            SELECT max(part) FROM (
              SELECT part FROM shards WHERE window_start_ms = ?1 AND window_end_ms = ?2
              UNION ALL SELECT part FROM merged_sources WHERE window_start_ms = ?1 AND window_end_ms = ?2)
            """)
        query.bind(1, windowStartMs)
        query.bind(2, windowEndMs)
        guard try query.step(), !query.isNull(0) else { return 0 }
        return Int(query.integer(0)) + 1
    }

    /// In one transaction: the merged shard sealed with its positions and summaries,
    /// every forwarder's complete delivery of all the sources carried over to it, the
    /// sources recorded as merged away (their files are removed later) and forgotten as
    /// shards. Records nothing and returns false when a source is no longer in the
    /// catalog (retention deleted it meanwhile: the merge must not bring its flows back).
    func recordMerge(_ merged: MergedShard, nowMs: Int64) throws(SQLiteError) -> Bool {
        try db.transaction { () throws(SQLiteError) -> Bool in
            let ids = merged.sources.map(\.id.description)
            let present = try db.prepare("SELECT count(*) FROM shards WHERE id = ?1 AND state = 'sealed'")
            for id in ids {
                present.reset()
                present.bind(1, id)
                _ = try present.step()
                guard present.integer(0) == 1 else { return false }
            }
            let insert = try db.prepare("""
                INSERT INTO shards (id, window_start_ms, window_end_ms, part, state, path, row_count, min_time_ms, max_time_ms,
                                    bytes_on_disk, checksum, created_ms, sealed_ms, zstd_level)
                VALUES (?1, ?2, ?3, ?4, 'sealed', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)
                """)
            insert.bind(1, merged.id.description)
            insert.bind(2, merged.id.windowStartMs)
            insert.bind(3, merged.id.windowEndMs)
            insert.bind(4, Int64(merged.id.part))
            insert.bind(5, merged.relativePath)
            insert.bind(6, merged.rows)
            if let t = merged.minTimeMs { insert.bind(7, t) } else { insert.bindNull(7) }
            if let t = merged.maxTimeMs { insert.bind(8, t) } else { insert.bindNull(8) }
            insert.bind(9, merged.bytes)
            insert.bind(10, String(merged.checksum, radix: 16))
            insert.bind(11, nowMs)
            insert.bind(12, Int64(merged.level))
            try insert.step()
            try writePositions(merged.positions, of: merged.id)
            try replaceSummaries(merged.summaries, of: merged.id)
            // Deliveries: a forwarder that delivered every source has delivered the merge.
            let complete = try deliveries().filter(\.complete)
            let byForwarder = Dictionary(grouping: complete, by: \.forwarder)
            for (forwarder, rows) in byForwarder where Set(ids).isSubset(of: Set(rows.map(\.shardID))) {
                try recordDelivery(DeliveryRow(forwarder: forwarder, shardID: merged.id.description, chunksDelivered: 0,
                                               chunkRows: 0, complete: true, updatedMs: nowMs))
            }
            let source = try db.prepare("""
                INSERT OR REPLACE INTO merged_sources (source_id, merged_into, window_start_ms, window_end_ms, part, path, merged_ms, file_removed)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
                """)
            for shard in merged.sources {
                source.reset()
                source.bind(1, shard.id.description)
                source.bind(2, merged.id.description)
                source.bind(3, shard.id.windowStartMs)
                source.bind(4, shard.id.windowEndMs)
                source.bind(5, Int64(shard.id.part))
                source.bind(6, shard.path)
                source.bind(7, nowMs)
                try source.step()
                try deleteShard(shard.id)
            }
            return true
        }
    }

    /// Sources merged away whose file is still on disk (or all of them, with
    /// `includingRemoved`), merged before `beforeMs`.
    func sourceFilesToRemove(mergedBeforeMs beforeMs: Int64, includingRemoved: Bool = false) throws(SQLiteError) -> [MergedSource] {
        let rows = try db.prepare("""
            SELECT source_id, merged_into, path, merged_ms FROM merged_sources WHERE (file_removed = 0 OR ?2) AND merged_ms < ?1
            """)
        rows.bind(2, includingRemoved ? 1 : 0)
        rows.bind(1, beforeMs)
        var result: [MergedSource] = []
        while try rows.step() {
            guard let id = ShardID(rows.text(0) ?? ""), let into = ShardID(rows.text(1) ?? "") else { continue }
            result.append(MergedSource(id: id, mergedInto: into, path: rows.text(2) ?? "", mergedMs: rows.integer(3)))
        }
        return result
    }

    func markSourceFileRemoved(_ id: ShardID) throws(SQLiteError) {
        let update = try db.prepare("UPDATE merged_sources SET file_removed = 1 WHERE source_id = ?1")
        update.bind(1, id.description)
        try update.step()
    }

    /// Records a source found merged by `flowrec fsck` (from a merged shard's meta).
    func recordMergedSource(_ id: ShardID, into merged: ShardID, path: String, mergedMs: Int64, fileRemoved: Bool) throws(SQLiteError) {
        let insert = try db.prepare("""
            INSERT OR REPLACE INTO merged_sources (source_id, merged_into, window_start_ms, window_end_ms, part, path, merged_ms, file_removed)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            """)
        insert.bind(1, id.description)
        insert.bind(2, merged.description)
        insert.bind(3, id.windowStartMs)
        insert.bind(4, id.windowEndMs)
        insert.bind(5, Int64(id.part))
        insert.bind(6, path)
        insert.bind(7, mergedMs)
        insert.bind(8, fileRemoved ? 1 : 0)
        try insert.step()
    }

    /// The shards `merged` replaced (none for a shard that is not a merge).
    func sources(of merged: ShardID) throws(SQLiteError) -> [ShardID] {
        let rows = try db.prepare("SELECT source_id FROM merged_sources WHERE merged_into = ?1")
        rows.bind(1, merged.description)
        var result: [ShardID] = []
        while try rows.step() { if let id = ShardID(rows.text(0) ?? "") { result.append(id) } }
        return result
    }

    func forgetMergedSource(_ id: ShardID) throws(SQLiteError) {
        let delete = try db.prepare("DELETE FROM merged_sources WHERE source_id = ?1")
        delete.bind(1, id.description)
        try delete.step()
    }

    /// Whether `id` was merged away (its flows are in another shard).
    func isMergedAway(_ id: ShardID) throws(SQLiteError) -> Bool {
        let query = try db.prepare("SELECT 1 FROM merged_sources WHERE source_id = ?1")
        query.bind(1, id.description)
        return try query.step()
    }

    /// The store's shard window width, as recorded by a writer (nil for a store written
    /// before it was recorded).
    func windowMs() throws(SQLiteError) -> Int64? {
        let query = try db.prepare("SELECT value FROM store_facts WHERE key = 'window_ms'")
        return try query.step() && !query.isNull(0) ? query.integer(0) : nil
    }

    func recordWindowMs(_ windowMs: Int64) throws(SQLiteError) {
        let upsert = try db.prepare("INSERT OR REPLACE INTO store_facts (key, value) VALUES ('window_ms', ?1)")
        upsert.bind(1, windowMs)
        try upsert.step()
    }
}
