import StorageKit
import FlowModel
import Foundation

/// The key of a source partition: a Kafka topic partition, or an ingested file.
package struct SourcePartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    package let source: String
    package let partition: Int32

    package init(source: String, partition: Int32) {
        self.source = source
        self.partition = partition
    }

    package static func < (a: Self, b: Self) -> Bool { (a.source, a.partition) < (b.source, b.partition) }
    package var description: String { "\(source)[\(partition)]" }
}

/// What a shard holds of one source partition.
package struct PositionRange: Sendable, Equatable {
    package var first: Int64?
    package var last: Int64?
    package var highWater: Int64?
}

/// A shard being written: one SQLite database in WAL mode for one window and part.
///
/// Writes never pay for compression; the sealer compacts and compresses the shard
/// once its window has closed.
final class ActiveShard {
    let id: ShardID
    let path: String
    private let db: SQLiteDatabase
    private let insertFlow: SQLiteStatement
    private let upsertPosition: SQLiteStatement
    private let insertString: SQLiteStatement
    /// Keeps row count and time range in `meta`, in each batch's transaction.
    private let updateSummary: SQLiteStatement
    private let codec = FlowRowCodec()
    /// The shard's strings, mirrored in memory so rows can be written as ids.
    private var dictionary = StringDictionary()
    private(set) var positions: [SourcePartition: PositionRange] = [:]
    private(set) var rowCount: Int64 = 0
    private(set) var minTimeMs: Int64?
    private(set) var maxTimeMs: Int64?
    /// Wrapping sum of the stored rows' hashes (`ShardChecksum`), kept in `meta` as
    /// `rows_checksum` in each batch's transaction, so sealing need not hash the active
    /// rows. nil for a shard begun by a flowrec that did not keep it: the sealer then
    /// hashes the rows as it copies them.
    private(set) var rowsChecksum: UInt64?
    private let updateRowsChecksum: SQLiteStatement

    /// Opens the shard at `path`, creating it with the current schema if it does not exist.
    init(id: ShardID, path: String) throws(SQLiteError) {
        self.id = id
        self.path = path
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let db = try SQLiteDatabase(path: path)
        self.db = db
        // WAL with synchronous=NORMAL: a commit costs no fsync; a crashed process loses
        // nothing committed. secure_delete is compiled in on Debian and only costs here.
        // Rows are appended, so the writer touches the table's right edge only: a 4 MiB
        // cache per open window ingests as fast as 16 MiB did (259k against 265k flows/s,
        // 2M flows) and keeps 36 MiB less when the recorder has three windows open.
        try db.execute("""
            PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=OFF;
            PRAGMA cache_size=-4096; PRAGMA wal_autocheckpoint=8192; PRAGMA temp_store=MEMORY;
            """)
        let hasSchema = try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = 'meta'") == 1
        if !hasSchema {
            // One transaction: a crash leaves either no tables or all of them.
            try db.transaction { () throws(SQLiteError) in
                try db.execute(ShardSchema.createSQL)
                let meta = try db.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
                for (key, value) in [("schema_version", Int64(ShardSchema.version)), ("window_start_ms", id.windowStartMs),
                                     ("window_end_ms", id.windowEndMs), ("part", Int64(id.part)),
                                     ("created_ms", Int64(Date().timeIntervalSince1970 * 1000)),
                                     (Self.rowsChecksumKey, 0)] {
                    meta.bind(1, key)
                    meta.bind(2, value)
                    try meta.step()
                    meta.reset()
                }
            }
        }
        insertFlow = try db.prepare(ShardSchema.insertFlowSQL)
        insertString = try db.prepare(ShardSchema.insertStringSQL)
        updateSummary = try db.prepare("""
            INSERT OR REPLACE INTO meta (key, value) VALUES ('row_count', ?1), ('min_time_ms', ?2), ('max_time_ms', ?3)
            """)
        updateRowsChecksum = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('\(Self.rowsChecksumKey)', ?1)")
        upsertPosition = try db.prepare("""
            INSERT INTO positions (source, partition, first_position, last_position, high_water)
            VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT (source, partition) DO UPDATE SET
              first_position = coalesce(min(first_position, excluded.first_position), first_position, excluded.first_position),
              last_position = coalesce(max(last_position, excluded.last_position), last_position, excluded.last_position),
              high_water = coalesce(max(high_water, excluded.high_water), high_water, excluded.high_water)
            """)
        try loadState()
    }

    private func loadState() throws(SQLiteError) {
        let rows = try db.prepare("SELECT source, partition, first_position, last_position, high_water FROM positions")
        while try rows.step() {
            let key = SourcePartition(source: rows.text(0) ?? "", partition: Int32(rows.integer(1)))
            positions[key] = PositionRange(first: rows.isNull(2) ? nil : rows.integer(2),
                                           last: rows.isNull(3) ? nil : rows.integer(3),
                                           highWater: rows.isNull(4) ? nil : rows.integer(4))
        }
        try ShardReader.loadDictionary(db, into: &dictionary)
        let checksum = try db.prepare("SELECT value FROM meta WHERE key = '\(Self.rowsChecksumKey)'")
        if try checksum.step(), !checksum.isNull(0) { rowsChecksum = UInt64(bitPattern: checksum.integer(0)) }
        // Each batch keeps the summary in meta, so a restart need not scan the rows (an
        // hour of a large cluster is tens of millions); shards without it are scanned.
        let summary = try db.prepare("""
            SELECT (SELECT value FROM meta WHERE key = 'row_count'), (SELECT value FROM meta WHERE key = 'min_time_ms'),
                   (SELECT value FROM meta WHERE key = 'max_time_ms')
            """)
        if try summary.step(), !summary.isNull(0) {
            rowCount = summary.integer(0)
            minTimeMs = summary.isNull(1) ? nil : summary.integer(1)
            maxTimeMs = summary.isNull(2) ? nil : summary.integer(2)
            return
        }
        let stats = try db.prepare("SELECT count(*), min(TimeFlowEndMs), max(TimeFlowEndMs) FROM flow_rows")
        if try stats.step() {
            rowCount = stats.integer(0)
            minTimeMs = stats.isNull(1) ? nil : stats.integer(1)
            maxTimeMs = stats.isNull(2) ? nil : stats.integer(2)
        }
    }

    /// Content keys of the flows this shard holds from content-keyed sources (Loki
    /// pushes), created on the first such batch. Only the active shard keeps them: the
    /// sealer copies flows, strings, positions and meta, not this table.
    private var insertContentKey: SQLiteStatement?
    /// Whether the keys lead with the flow's time (`content_keys_by_time`): a push's
    /// entries arrive roughly in time order, so their keys land at the table's right
    /// edge and a commit rewrites a page or two of them. Keyed by the digest alone
    /// (`content_keys`, written by flowrec before 2026-12-05 and still used in a shard
    /// that has it), every commit of ~100 entries touched ~100 random pages, written to
    /// the WAL each time (a push went from 50k to 69k flows/s without them).
    private var contentKeysByTime = true

    /// The statement that records a content key, or finds it there (`changes == 0`):
    /// ?1 and ?2 are the key's high and low words, ?3 the flow's `TimeFlowEndMs`. A
    /// retried entry has the same time and digest, so it finds its key either way.
    private func prepareContentKeys() throws(SQLiteError) -> SQLiteStatement {
        if try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = 'content_keys'") == 1 {
            contentKeysByTime = false
            return try db.prepare("INSERT OR IGNORE INTO content_keys (high, low) VALUES (?1, ?2)")
        }
        try db.execute("""
            CREATE TABLE IF NOT EXISTS content_keys_by_time (
                ms INTEGER NOT NULL, high INTEGER NOT NULL, low INTEGER NOT NULL, PRIMARY KEY (ms, high, low)
            ) WITHOUT ROWID
            """)
        return try db.prepare("INSERT OR IGNORE INTO content_keys_by_time (ms, high, low) VALUES (?3, ?1, ?2)")
    }

    /// Stores `flows` (already deduplicated by position) and the positions they came from
    /// in one transaction, in the seal order unless `sortedRun` is false (`SealRun`; by
    /// the batch's `sealRanks` when its producer ranked it);
    /// `highWater` is set only on the batch's final commit. In a
    /// content-keyed batch a flow whose key (its position) the shard already holds is
    /// skipped, in the same transaction that stores the others. Returns how many were,
    /// and the position ranges the shard absorbed (none for content keys).
    @discardableResult
    func write(flows: [Int], of batch: IngestBatch, highWater: [SourcePartition: Int64]?,
               durable: Bool, sortedRun: Bool) throws(SQLiteError)
        -> (skipped: Int, absorbed: [SourcePartition: (first: Int64, last: Int64)]) {
        if batch.isContentKeyed && insertContentKey == nil {
            insertContentKey = try prepareContentKeys()
        }
        var skipped = 0
        let contentKeys = batch.isContentKeyed ? insertContentKey : nil
        if durable { try db.execute("PRAGMA synchronous=FULL") }
        defer { if durable { try? db.execute("PRAGMA synchronous=NORMAL") } }
        var absorbedRanges = BatchPositionRanges()
        var minTime = minTimeMs, maxTime = maxTimeMs
        let stringsBefore = dictionary.count
        var absorbed: [SourcePartition: (first: Int64, last: Int64)] = [:]
        var checksum = rowsChecksum ?? 0
        do {
          try db.transaction { () throws(SQLiteError) in
            // Borrow flows in place: copying a `Flow` out of the array retains its buffers.
            try batch.flows.withUnsafeBufferPointer { (batchFlows) throws(SQLiteError) in
            let order = !sortedRun ? flows
                : batch.sealRanks.isEmpty ? SealRun.order(flows, of: batchFlows, endTimesMs: batch.endTimesMs) : SealRun.order(flows, ranks: batch.sealRanks)
            for i in order {
                if let contentKeys {
                    contentKeys.bind(1, batch.positions[i].position)
                    contentKeys.bind(2, batch.contentKeyLows[i])
                    if contentKeysByTime { contentKeys.bind(3, batch.endTimesMs[i] ?? 0) }
                    try contentKeys.step()
                    contentKeys.reset()
                    if db.changes == 0 {
                        skipped += 1
                        continue
                    }
                }
                checksum &+= try codec.insert(batchFlows.baseAddress! + i, with: insertFlow, dictionary: &dictionary, insertString: insertString)
                // A content key is not a position to record.
                if contentKeys == nil { absorbedRanges.add(batch.positions[i]) }
                if let t = batch.endTimesMs[i] {
                    minTime = min(minTime ?? t, t)
                    maxTime = max(maxTime ?? t, t)
                }
            }
            }
            updateSummary.bind(1, rowCount + Int64(flows.count - skipped))
            if let minTime { updateSummary.bind(2, minTime) } else { updateSummary.bindNull(2) }
            if let maxTime { updateSummary.bind(3, maxTime) } else { updateSummary.bindNull(3) }
            try updateSummary.step()
            updateSummary.reset()
            if rowsChecksum != nil {
                updateRowsChecksum.bind(1, Int64(bitPattern: checksum))
                try updateRowsChecksum.step()
                updateRowsChecksum.reset()
            }
            absorbed = absorbedRanges.named(sources: batch.sources)
            var keys = Set(absorbed.keys)
            if let highWater { keys.formUnion(highWater.keys) }
            for key in keys {
                upsertPosition.bind(1, key.source)
                upsertPosition.bind(2, Int64(key.partition))
                if let range = absorbed[key] {
                    upsertPosition.bind(3, range.first)
                    upsertPosition.bind(4, range.last)
                } else {
                    upsertPosition.bindNull(3)
                    upsertPosition.bindNull(4)
                }
                if let hw = highWater?[key] { upsertPosition.bind(5, hw) } else { upsertPosition.bindNull(5) }
                try upsertPosition.step()
                upsertPosition.reset()
                upsertPosition.clearBindings()
            }
          }
        } catch {
            // The strings added in memory were rolled back on disk: forget them too.
            dictionary.truncate(toCount: stringsBefore)
            throw error
        }
        // Committed: bring the in-memory view in line.
        rowCount += Int64(flows.count - skipped)
        if rowsChecksum != nil { rowsChecksum = checksum }
        minTimeMs = minTime
        maxTimeMs = maxTime
        for (key, range) in absorbed {
            var p = positions[key] ?? PositionRange()
            p.first = min(p.first ?? range.first, range.first)
            p.last = max(p.last ?? range.last, range.last)
            positions[key] = p
        }
        for (key, hw) in highWater ?? [:] {
            var p = positions[key] ?? PositionRange()
            p.highWater = max(p.highWater ?? hw, hw)
            positions[key] = p
        }
        return (skipped, absorbed)
    }

    /// Every stored flow, in insertion order, for read-back and export.
    func forEachFlow(_ body: (Flow) throws -> Void) throws {
        try ShardReader.forEachFlow(db, dictionary: dictionary, codec: codec, timeEncoding: .plain, body)
    }

    /// The `meta` key of `rowsChecksum` (a 64-bit integer; the sum wraps).
    static let rowsChecksumKey = "rows_checksum"

    /// The database and its write-ahead log.
    var bytesOnDisk: Int64 { fileSize(path) + fileSize(path + "-wal") }
}
