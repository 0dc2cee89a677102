import FlowModel
import StorageKit
import Foundation

/// `catalog.sqlite`: the shard list with states, windows, counts and positions, so
/// startup and queries need not open every shard. Rebuildable from the shards.
final class Catalog {
    let db: SQLiteDatabase
    /// Prepared on first use and kept: the writer records its shard after every batch.
    private var upsertActive: SQLiteStatement?
    private var upsertPositions: SQLiteStatement?

    /// Opens the catalog, creating or upgrading it; `readOnly` (a store opened for
    /// reading) on a volume this process cannot write opens it as it is, and throws
    /// `.needsUpgrade` if it needs an upgrade only a writer can make.
    init(path: String, readOnly: Bool = false) throws {
        if readOnly && SQLiteDatabase.isInUnwritableDirectory(path) {
            db = try SQLiteDatabase(path: path, mode: .readOnly)
            let pending = try SQLiteMigrator(CatalogSchema.migrations).pending(in: db)
            guard pending.isEmpty else {
                throw ShardStoreError(.needsUpgrade, "the catalog \(path) is on a volume this process cannot write and was written by an older flowrec (it lacks \(pending.joined(separator: ", "))): run any writing command (flowrec fsck) on it once where it can be written, or read a copy")
            }
            return
        }
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        try SQLiteMigrator(CatalogSchema.migrations).migrate(db)
    }


    /// The statement kept in `slot`, prepared from `sql` on first use.
    private func kept(_ slot: inout SQLiteStatement?, _ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let statement = slot { return statement }
        let statement = try db.prepare(sql)
        slot = statement
        return statement
    }

    /// Records a shard's current state (insert or update).
    func record(_ shard: ActiveShard, relativePath: String) throws(SQLiteError) {
        let upsert = try kept(&upsertActive, """
            INSERT INTO shards (id, window_start_ms, window_end_ms, part, state, path, row_count, min_time_ms,
                                max_time_ms, bytes_on_disk, created_ms)
            VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?7, ?8, ?9, ?10)
            ON CONFLICT (id) DO UPDATE SET row_count = excluded.row_count, min_time_ms = excluded.min_time_ms,
                max_time_ms = excluded.max_time_ms, bytes_on_disk = excluded.bytes_on_disk
            """)
        defer { upsert.reset() }
        try db.transaction { () throws(SQLiteError) in
            upsert.bind(1, shard.id.description)
            upsert.bind(2, shard.id.windowStartMs)
            upsert.bind(3, shard.id.windowEndMs)
            upsert.bind(4, Int64(shard.id.part))
            upsert.bind(5, relativePath)
            upsert.bind(6, shard.rowCount)
            if let t = shard.minTimeMs { upsert.bind(7, t) } else { upsert.bindNull(7) }
            if let t = shard.maxTimeMs { upsert.bind(8, t) } else { upsert.bindNull(8) }
            upsert.bind(9, shard.bytesOnDisk)
            upsert.bind(10, Int64(Date().timeIntervalSince1970 * 1000))
            try upsert.step()
            try writePositions(shard.positions, of: shard.id)
        }
    }

    /// Moves the write-ahead log into the database and truncates it, giving its space
    /// back (retention, short of free space, measures the volume after this). Best effort.
    func checkpoint() {
        try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Records a shard as sealed; `summaries`, when given, replace its skip summaries
    /// (a recompressed shard keeps the ones it has).
    func markSealed(_ id: ShardID, relativePath: String, bytes: Int64, checksum: UInt64, level: Int32? = nil,
                    summaries: [SkipSummary]? = nil) throws(SQLiteError) {
        try db.transaction { () throws(SQLiteError) in
            try updateSealed(id, relativePath: relativePath, bytes: bytes, checksum: checksum, level: level)
            if let summaries { try replaceSummaries(summaries, of: id) }
        }
    }

    /// Replaces a shard's skip summaries (inside the caller's transaction).
    func replaceSummaries(_ summaries: [SkipSummary], of id: ShardID) throws(SQLiteError) {
        let delete = try db.prepare("DELETE FROM shard_summaries WHERE shard_id = ?1")
        delete.bind(1, id.description)
        try delete.step()
        try ShardIndexBuilder.insert(summaries, into: db, table: "shard_summaries", shard: id.description)
    }

    /// The skip summaries of every sealed shard that has them, by shard id; only those of
    /// `fields` when given (a query needs the fields it filters on, and parsing every
    /// field's value list of every shard would cost more than the pruning saves).
    func summaries(fields: [FieldID]? = nil, shards: [ShardID]? = nil) throws(SQLiteError) -> [ShardID: [SkipSummary]] {
        var conditions: [String] = []
        if let fields { conditions.append("field IN (" + fields.map { "'\($0.name)'" }.joined(separator: ", ") + ")") }
        if let shards { conditions.append("shard_id IN (" + shards.map { _ in "?" }.joined(separator: ", ") + ")") }
        let rows = try db.prepare("SELECT shard_id, \(SkipSummary.columns) FROM shard_summaries"
                                  + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")))
        for (i, id) in (shards ?? []).enumerated() { rows.bind(Int32(i + 1), id.description) }
        var result: [ShardID: [SkipSummary]] = [:]
        while try rows.step() {
            guard let id = ShardID(rows.text(0) ?? ""), let summary = SkipSummary.read(rows, from: 1) else { continue }
            result[id, default: []].append(summary)
        }
        return result
    }

    private func updateSealed(_ id: ShardID, relativePath: String, bytes: Int64, checksum: UInt64, level: Int32?) throws(SQLiteError) {
        let update = try db.prepare("""
            UPDATE shards SET state = 'sealed', path = ?2, bytes_on_disk = ?3, checksum = ?4, sealed_ms = ?5,
                zstd_level = coalesce(?6, zstd_level) WHERE id = ?1
            """)
        if let level { update.bind(6, Int64(level)) } else { update.bindNull(6) }
        update.bind(1, id.description)
        update.bind(2, relativePath)
        update.bind(3, bytes)
        update.bind(4, String(checksum, radix: 16))
        update.bind(5, Int64(Date().timeIntervalSince1970 * 1000))
        try update.step()
    }

    /// Sealed shards compressed below `level`, with their recorded content checksum.
    func sealedBelow(level: Int32) throws(SQLiteError) -> [(id: ShardID, path: String, checksum: String?)] {
        let rows = try db.prepare("""
            SELECT id, path, checksum FROM shards WHERE state = 'sealed' AND coalesce(zstd_level, 0) < ?1
            ORDER BY window_start_ms, part
            """)
        rows.bind(1, Int64(level))
        var result: [(ShardID, String, String?)] = []
        while try rows.step() {
            if let id = ShardID(rows.text(0) ?? "") { result.append((id, rows.text(1) ?? "", rows.text(2))) }
        }
        return result
    }

    /// Copies a shard's positions table into `shard_positions` (inside the caller's transaction).
    func writePositions(_ positions: [SourcePartition: PositionRange], of id: ShardID) throws(SQLiteError) {
        let upsert = try kept(&upsertPositions, """
            INSERT OR REPLACE INTO shard_positions (shard_id, source, partition, first_position, last_position, high_water)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            """)
        defer { upsert.reset() }
        for (key, range) in positions {
            upsert.bind(1, id.description)
            upsert.bind(2, key.source)
            upsert.bind(3, Int64(key.partition))
            if let v = range.first { upsert.bind(4, v) } else { upsert.bindNull(4) }
            if let v = range.last { upsert.bind(5, v) } else { upsert.bindNull(5) }
            upsert.bind(6, range.highWater ?? Int64.min)
            try upsert.step()
            upsert.reset()
        }
    }

    /// Records a shard found on disk by `flowrec fsck` (any state), with its positions.
    func recordScanned(id: ShardID, state: ShardState, relativePath: String, rows: Int64, minTimeMs: Int64?, maxTimeMs: Int64?,
                       bytes: Int64, checksum: String?, positions: [SourcePartition: PositionRange]) throws(SQLiteError) {
        try db.transaction { () throws(SQLiteError) in
            let insert = try db.prepare("""
                INSERT OR REPLACE INTO shards (id, window_start_ms, window_end_ms, part, state, path, row_count, min_time_ms,
                                               max_time_ms, bytes_on_disk, checksum, created_ms)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                """)
            insert.bind(1, id.description)
            insert.bind(2, id.windowStartMs)
            insert.bind(3, id.windowEndMs)
            insert.bind(4, Int64(id.part))
            insert.bind(5, state.rawValue)
            insert.bind(6, relativePath)
            insert.bind(7, rows)
            if let t = minTimeMs { insert.bind(8, t) } else { insert.bindNull(8) }
            if let t = maxTimeMs { insert.bind(9, t) } else { insert.bindNull(9) }
            insert.bind(10, bytes)
            if let checksum { insert.bind(11, checksum) } else { insert.bindNull(11) }
            insert.bind(12, Int64(Date().timeIntervalSince1970 * 1000))
            try insert.step()
            try writePositions(positions, of: id)
        }
    }

    func shards() throws(SQLiteError) -> [ShardRecord] {
        var result: [ShardRecord] = []
        let rows = try db.prepare("""
            SELECT id, state, path, row_count, min_time_ms, max_time_ms, bytes_on_disk
            FROM shards ORDER BY window_start_ms, part
            """)
        while try rows.step() {
            guard let id = ShardID(rows.text(0) ?? ""), let state = ShardState(rawValue: rows.text(1) ?? "") else { continue }
            result.append(ShardRecord(id: id, state: state, path: rows.text(2) ?? "", rowCount: rows.integer(3),
                                      minTimeMs: rows.isNull(4) ? nil : rows.integer(4),
                                      maxTimeMs: rows.isNull(5) ? nil : rows.integer(5), bytesOnDisk: rows.integer(6)))
        }
        return result
    }

    /// The highest position absorbed per source partition over every part of a window,
    /// and over every merged shard that covers it (a merged shard's positions are the
    /// union of its sources': using them for each window it spans can only skip
    /// positions the store already processed).
    func lastPositions(windowStartMs: Int64) throws(SQLiteError) -> [SourcePartition: Int64] {
        let rows = try db.prepare("""
            SELECT p.source, p.partition, max(p.last_position) FROM shard_positions p
            JOIN shards s ON s.id = p.shard_id WHERE s.window_start_ms <= ?1 AND s.window_end_ms > ?1 AND p.last_position IS NOT NULL
            GROUP BY p.source, p.partition
            """)
        rows.bind(1, windowStartMs)
        var result: [SourcePartition: Int64] = [:]
        while try rows.step() {
            result[SourcePartition(source: rows.text(0) ?? "", partition: Int32(rows.integer(1)))] = rows.integer(2)
        }
        return result
    }

    /// Forgets a shard (its positions go with it).
    func deleteShard(_ id: ShardID) throws(SQLiteError) {
        let delete = try db.prepare("DELETE FROM shards WHERE id = ?1")
        delete.bind(1, id.description)
        try delete.step()
    }

    func contains(_ id: ShardID) throws(SQLiteError) -> Bool {
        let query = try db.prepare("SELECT 1 FROM shards WHERE id = ?1")
        query.bind(1, id.description)
        return try query.step()
    }

    /// One shard's high-water marks (what it proves was processed).
    func highWater(of id: ShardID) throws(SQLiteError) -> [SourcePartition: Int64] {
        let rows = try db.prepare("""
            SELECT source, partition, high_water FROM shard_positions WHERE shard_id = ?1 AND high_water > -9223372036854775808
            """)
        rows.bind(1, id.description)
        var result: [SourcePartition: Int64] = [:]
        while try rows.step() {
            result[SourcePartition(source: rows.text(0) ?? "", partition: Int32(rows.integer(1)))] = rows.integer(2)
        }
        return result
    }

    /// Shards that every one of `forwarders` has delivered completely.
    func deliveredToAll(_ forwarders: [String]) throws(SQLiteError) -> Set<String> {
        guard !forwarders.isEmpty else { return [] }
        let rows = try db.prepare("SELECT shard_id, forwarder FROM deliveries WHERE complete = 1")
        var byShard: [String: Set<String>] = [:]
        while try rows.step() { byShard[rows.text(0) ?? "", default: []].insert(rows.text(1) ?? "") }
        let required = Set(forwarders)
        return Set(byShard.filter { required.isSubset(of: $0.value) }.keys)
    }

    struct DeliveryRow: Sendable {
        let forwarder: String
        let shardID: String
        let chunksDelivered: Int64
        let chunkRows: Int64
        let complete: Bool
        let updatedMs: Int64
    }

    func deliveries() throws(SQLiteError) -> [DeliveryRow] {
        let rows = try db.prepare("SELECT forwarder, shard_id, chunks_delivered, complete, updated_ms, chunk_rows FROM deliveries")
        var result: [DeliveryRow] = []
        while try rows.step() {
            result.append(DeliveryRow(forwarder: rows.text(0) ?? "", shardID: rows.text(1) ?? "", chunksDelivered: rows.integer(2),
                                      chunkRows: rows.integer(5), complete: rows.integer(3) != 0, updatedMs: rows.integer(4)))
        }
        return result
    }

    func recordDelivery(_ row: DeliveryRow) throws(SQLiteError) {
        let upsert = try db.prepare("""
            INSERT OR REPLACE INTO deliveries (forwarder, shard_id, chunks_delivered, complete, updated_ms, chunk_rows)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            """)
        upsert.bind(1, row.forwarder)
        upsert.bind(2, row.shardID)
        upsert.bind(3, row.chunksDelivered)
        upsert.bind(4, row.complete ? 1 : 0)
        upsert.bind(5, row.updatedMs)
        upsert.bind(6, row.chunkRows)
        try upsert.step()
    }

    /// The largest high-water mark per source partition over all shards.
    func highWater() throws(SQLiteError) -> [SourcePartition: Int64] {
        let rows = try db.prepare("""
            SELECT source, partition, max(high_water) FROM shard_positions WHERE high_water > -9223372036854775808
            GROUP BY source, partition
            """)
        var result: [SourcePartition: Int64] = [:]
        while try rows.step() {
            result[SourcePartition(source: rows.text(0) ?? "", partition: Int32(rows.integer(1)))] = rows.integer(2)
        }
        return result
    }

    /// Sealed shards of one window (`windowMs` long: not merged yet) holding a position
    /// past `highWater`'s mark of its partition, or of a partition it has no mark for:
    /// rows of a batch whose last window has not committed (see `mergePlan`).
    func sealedShardsPast(_ highWater: [SourcePartition: Int64], windowMs: Int64) throws(SQLiteError) -> Set<String> {
        let rows = try db.prepare("""
            SELECT p.shard_id, p.source, p.partition, p.last_position FROM shard_positions p JOIN shards s ON s.id = p.shard_id
            WHERE s.state = 'sealed' AND s.window_end_ms - s.window_start_ms = ?1 AND p.last_position IS NOT NULL
            """)
        rows.bind(1, windowMs)
        var result: Set<String> = []
        while try rows.step() {
            let key = SourcePartition(source: rows.text(1) ?? "", partition: Int32(rows.integer(2)))
            if rows.integer(3) > highWater[key] ?? .min { result.insert(rows.text(0) ?? "") }
        }
        return result
    }
}
