import StorageKit
import FlowModel
import Foundation

/// Turns a closed window's active shard into its sealed, compressed form.
///
/// Steps, each leaving either the old or the new shard complete:
/// 1. compact copy: a fresh SQLite file with 64 KiB pages and no journal, strings in id
///    order, rows ordered by endpoint pair then time (similar rows side by side
///    compress better) and copied record by record (`OrderedRecordCopy`), or through
///    SQLite when that copy does not handle the shard, and the summary in `meta`;
/// 2. compress it in the seekable zstd format to `<id>.sqlite.zst.tmp`, fsynced;
/// 3. verify: open it in place through `SeekableZstdVFS`, `PRAGMA quick_check`, row
///    count and content checksum equal to the active shard's;
/// 4. rename to `<id>.sqlite.zst`, fsync the directory, delete the active shard.
/// A crash before 4 leaves temporary files that the next start removes; a crash after
/// the rename leaves both files, and the next start keeps the verified sealed one.
struct ShardSealer {
    let level: Int32
    let frameSize: Int
    /// Where per-minute rollups of each sealed shard go; nil writes none.
    var rollupsPath: String?

    struct Result: Sendable {
        let rows: Int64
        let checksum: UInt64
        let sealedBytes: Int64
        let compactBytes: Int64
        let steps: SealStepTimes
        /// The sealed shard's skip summaries, for the catalog.
        let summaries: [SkipSummary]
        /// Why the rows were copied through SQLite rather than record by record
        /// (`OrderedRecordCopy`); nil when they were copied by records.
        let copiedThroughSQLiteBecause: String?
    }

    func seal(activePath: String, sealedPath: String, id: ShardID) throws -> Result {
        do {
            do {
                return try sealSteps(activePath: activePath, sealedPath: sealedPath, id: id, trustRecordedChecksum: true)
            } catch is RecordedChecksumDisagrees {
                // The checksum kept while writing is not the rows' (a flowrec bug, not a
                // damaged file): seal again, hashing the active rows themselves.
                try? FileManager.default.removeItem(atPath: sealedPath + ".tmp")
                return try sealSteps(activePath: activePath, sealedPath: sealedPath, id: id, trustRecordedChecksum: false)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: sealedPath + ".tmp")
            if error.isDiskFull {
                throw ShardStoreError(.other, "sealing \(id): the disk is full. The active shard is kept and stays readable; free space or lower the retention limits, and sealing resumes (at the next window close or start-up)",
                                      shard: id, cause: error)
            }
            throw error
        }
    }

    private struct RecordedChecksumDisagrees: Error {}

    private func sealSteps(activePath: String, sealedPath: String, id: ShardID, trustRecordedChecksum: Bool) throws -> Result {
        let compactPath = activePath + ".compact.tmp"
        let compressedPath = sealedPath + ".tmp"
        defer { try? FileManager.default.removeItem(atPath: compactPath) }
        try? FileManager.default.removeItem(atPath: compactPath)

        var steps = SealStepTimes()
        var clock = monotonicSeconds()
        func lap(_ step: WritableKeyPath<SealStepTimes, Double>) {
            let now = monotonicSeconds()
            steps[keyPath: step] += now - clock
            clock = now
        }

        // Checkpoint so the active shard is one self-contained file while it is copied.
        let checkpointed = try Self.checkpoint(activePath)
        var source: SourceSummary
        do {
            let reason = !checkpointed ? "a reader kept the active shard's write-ahead log from being checkpointed"
                : !trustRecordedChecksum ? "the active shard's recorded checksum was wrong: its rows are hashed as they are copied" : nil
            source = try writeCompactCopy(from: activePath, to: compactPath, id: id, trustRecordedChecksum: trustRecordedChecksum,
                                          throughSQLiteBecause: reason)
        } catch let unsupported as OrderedRecordCopy.Unsupported {
            try? FileManager.default.removeItem(atPath: compactPath)
            source = try writeCompactCopy(from: activePath, to: compactPath, id: id, trustRecordedChecksum: trustRecordedChecksum,
                                          throughSQLiteBecause: unsupported.reason)
        }
        CrashPoint.reached("seal.compacted")
        lap(\.compactCopy)
        let compactBytes = fileSize(compactPath)
        try SeekableZstd.compress(source: compactPath, destination: compressedPath, level: level, frameSize: frameSize,
                                  boundaries: source.frameBoundaries)
        CrashPoint.reached("seal.compressed")
        lap(\.compress)

        // Verify what will be renamed, opened in place as readers will open it. The pass
        // that hashes the sealed rows also aggregates them for the rollups.
        let check = try ShardReader(path: compressedPath)
        if let problem = try check.quickCheck() {
            throw ShardStoreError(.verificationFailed, "sealing \(id): the compressed copy fails SQLite's quick_check (\(problem)); the active shard is kept")
        }
        lap(\.quickCheck)
        let (rows, checksum) = try check.contentChecksum(aggregatingInto: source.rollups)
        guard rows == source.rows, checksum == source.checksum else {
            if source.checksumWasRecorded { throw RecordedChecksumDisagrees() }
            throw ShardStoreError(.verificationFailed, "sealing \(id): the compressed copy holds \(rows) rows (checksum \(checksum)), the active shard \(source.rows) (\(source.checksum)); the active shard is kept")
        }
        lap(\.verifyChecksum)

        // Rollups before the rename: a crash in between re-seals the shard, and the
        // rollups, which record the shard as added, are not added twice.
        if let rollupsPath, let rollups = source.rollups {
            // Held here: a statement only keeps an unowned reference to its database.
            let compact = try SQLiteDatabase(path: compactPath, mode: .readOnly)
            let strings = try compact.prepare("SELECT value FROM strings WHERE id = ?1")
            try RollupStore(path: rollupsPath).add(shard: id, minutes: rollups.minutes) { id in
                strings.reset()
                strings.bind(1, id)
                return try strings.step() ? strings.text(0) : nil
            }
        }
        lap(\.rollups)
        CrashPoint.reached("seal.verified")
        try FileManager.default.moveItem(atPath: compressedPath, toPath: sealedPath)
        fsyncDirectory((sealedPath as NSString).deletingLastPathComponent)
        CrashPoint.reached("seal.renamed")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: activePath + suffix) }
        lap(\.rename)
        return Result(rows: rows, checksum: checksum, sealedBytes: fileSize(sealedPath), compactBytes: compactBytes, steps: steps,
                      summaries: source.summaries, copiedThroughSQLiteBecause: source.copiedThroughSQLiteBecause)
    }

    /// Checkpoints the active shard's write-ahead log into it and empties the log; true
    /// when every frame reached the file (no reader held the log back), so that the file
    /// alone holds every row.
    private static func checkpoint(_ activePath: String) throws -> Bool {
        let db = try SQLiteDatabase(path: activePath)
        let checkpoint = try db.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
        // (busy, frames in the log, frames checkpointed); -1 frames outside WAL mode.
        return try checkpoint.step() && checkpoint.integer(0) == 0 && checkpoint.integer(1) == checkpoint.integer(2)
    }

    /// What the sealed file must reproduce: the active shard's row count and content
    /// checksum, and an empty rollup aggregate for the verification pass to fill.
    private struct SourceSummary {
        let rows: Int64
        let checksum: UInt64
        /// From the active shard's `rows_checksum` (kept as it was written) rather than
        /// hashed during the copy.
        let checksumWasRecorded: Bool
        let rollups: RollupAccumulator?
        /// Built during the copy and written into it (`granules`, `skip_summaries`).
        let summaries: [SkipSummary]
        /// Where the compressed shard's frames begin (`FrameLayout`).
        let frameBoundaries: [Int64]
        let copiedThroughSQLiteBecause: String?
    }

    /// The source's page cache during the ordered copy, in KiB: two pages per sorted run
    /// of the active shard (the page the copy reads in each run and the next), up to
    /// 32 MiB, when the runs average 1,000 rows or more; otherwise SQLite's default
    /// (2,000 KiB). By hand, 1.8M flows in one hourly window (copy seconds):
    ///
    /// | written as | default cache | two pages per run (up to 32 MiB) |
    /// |---|---:|---:|
    /// | 90 runs of 20,000 | 9.7 | (the default is larger) |
    /// | 900 runs of 2,000 | 12.3 | 10.3 |
    /// | 3,600 runs of 500 | 12.1 | 11.8 |
    /// | 18,000 runs of 100 | | 14.6 |
    /// | arrival order | 12.7-13.5 | 13.0-13.8 (8-32 MiB) |
    ///
    /// Hence the 1,000-row threshold: the larger cache pays at 2,000 rows per run, barely
    /// at 500, and not at 100.
    ///
    /// Short runs, like rows in arrival order, put a conversation's rows one or two per
    /// run: the copy reads every page of the shard for every few groups whatever the
    /// cache short of the whole shard, so a larger cache only costs memory there. The
    /// memory is given back when the seal ends.
    static func sourceCacheKiB(runs: Int, rows: Int, pageSize: Int64) -> Int {
        guard runs > 0, rows / runs >= 1_000 else { return 2_000 }
        return min(32 * 1024, max(2_000, runs * 2 * Int(pageSize) / 1024))
    }

    /// Writes the compact copy and returns the source's row count and content checksum.
    /// The rows are copied record by record (`OrderedRecordCopy`) unless
    /// `throughSQLiteBecause` gives a reason to copy them through SQLite; the copy by
    /// records throws `OrderedRecordCopy.Unsupported` for a shard it does not handle.
    private func writeCompactCopy(from activePath: String, to compactPath: String, id: ShardID,
                                  trustRecordedChecksum: Bool, throughSQLiteBecause: String?) throws -> SourceSummary {
        let db = try SQLiteDatabase(path: compactPath)
        try db.execute("PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA secure_delete=OFF; PRAGMA temp_store=MEMORY;")
        let attach = try db.prepare("ATTACH DATABASE ?1 AS src")
        attach.bind(1, activePath)
        try attach.step()
        // The ordered copy visits source rows out of file order, so it reads many source
        // pages more than once. They come from the kernel's page cache through SQLite's
        // reads, not from a memory map of the source: mapped, every page touched counted in
        // the recorder's resident memory until the seal ended (53 MiB of a 1-minute window
        // at 5,000 flows/s), and the copy was no faster (6.84 s against 7.04 s for 1M flows,
        // within the noise). On hourly shards it was (21.4 s against 25.7 s for 3.6M
        // flows); the writer's sorted runs (`SealRun`) won that back and more (19.0 s):
        // the copy now reads each run front to back.
        let encoding = try timeEncoding(forSourceIn: db)
        try db.execute(ShardSchema.createSQL(timeEncoding: encoding))
        // The active shard's writer kept the sum of its rows' hashes; without it (a shard
        // begun by an older flowrec) the copy hashes each row it reads, in its WHERE term.
        let recorded = trustRecordedChecksum
            ? try db.scalarInteger("SELECT value FROM src.meta WHERE key = '\(ActiveShard.rowsChecksumKey)'") : nil
        let throughSQLiteBecause = throughSQLiteBecause
            ?? (recorded == nil ? "the active shard has no recorded checksum (an older flowrec's): its rows are hashed as they are copied" : nil)
        let sourceRowChecksum = ShardChecksum.RowAccumulator(registeredOn: db)
        var rollups: RollupAccumulator?
        if rollupsPath != nil {
            let lookup = try db.prepare("SELECT id FROM src.strings WHERE value = ?1")
            func id(_ value: String) throws -> Int64? {
                lookup.reset()
                lookup.bind(1, value)
                return try lookup.step() ? lookup.integer(0) : nil
            }
            rollups = RollupAccumulator(rcodeIDs: (try id("NoError"), try id("NXDomain"), try id("ServFail")))
        }
        let columns = ShardSchema.allColumns.joined(separator: ", ")
        let sourceColumns = ShardSchema.allColumns.map { "src.flow_rows.\($0)" }.joined(separator: ", ")
        let encodedColumns = (FlowSchema.fields.map {
            ShardSchema.storedExpression($0, table: "src.flow_rows.", encoding: encoding, encode: true)
        } + ShardSchema.bookkeepingColumns.map { "src.flow_rows.\"\($0.name)\"" }).joined(separator: ", ")
        // Sorting only the row ids, then copying rows in that order, decodes and encodes
        // each wide row once (`INSERT ... SELECT ... ORDER BY` sorted whole rows: 15%
        // slower). Hashing in the copy read every column a second time: with the checksum
        // kept by the writer, the seal is 30% faster.
        let ranks = try StringRanks(table: "src.strings", in: db)
        let order = try SealOrder(of: "src.flow_rows", in: db, ranks: ranks)
        // The skip index is built from the rows as they are copied, in the seal order.
        let index = ShardIndexBuilder(ranks: ranks, registeredOn: db)
        let everythingButRows = """
            INSERT INTO strings (id, value) SELECT id, value FROM src.strings ORDER BY id;
            INSERT INTO positions SELECT * FROM src.positions;
            INSERT INTO meta SELECT * FROM src.meta WHERE key <> '\(ActiveShard.rowsChecksumKey)';
            """
        if throughSQLiteBecause == nil {
            try db.execute("BEGIN; \(everythingButRows) COMMIT;")
            // SQLite is between transactions while the writer adds pages to the file.
            let root = Int(try db.scalarInteger("SELECT rootpage FROM main.sqlite_schema WHERE name = 'flow_rows'") ?? 0)
            let sourceRoot = Int(try db.scalarInteger("SELECT rootpage FROM src.sqlite_schema WHERE name = 'flow_rows'") ?? 0)
            let totals = try OrderedRecordCopy.copy(from: activePath, sourceRoot: sourceRoot, order: order,
                                                    into: try TableTreeWriter(path: compactPath, rootPage: root), encoding: encoding, index: index)
            let insert = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            try db.transaction { () throws(SQLiteError) in
                for (key, value) in [("row_count", totals.rows), ("min_time_ms", totals.minTime), ("max_time_ms", totals.maxTime),
                                     ("bytes_total", totals.bytes), ("packets_total", totals.packets)] {
                    insert.reset()
                    insert.bind(1, key)
                    if let value { insert.bind(2, value) } else { insert.bindNull(2) }
                    try insert.step()
                }
            }
        } else {
            try order.createTable(on: db)
            try db.execute("PRAGMA src.cache_size=-\(Self.sourceCacheKiB(runs: order.runs, rows: order.rows, pageSize: try db.scalarInteger("PRAGMA src.page_size") ?? 4096))")
            var copyTerms = ["\(ShardIndexBuilder.functionName)(\(ShardIndexBuilder.arguments(table: "src.flow_rows.")))"]
            if recorded == nil { copyTerms.append("\(ShardChecksum.RowAccumulator.functionName)(\(sourceColumns))") }
            try db.execute("""
                BEGIN;
                \(everythingButRows)
                INSERT INTO flow_rows (\(columns)) SELECT \(encodedColumns)
                  FROM temp.seal_order CROSS JOIN src.flow_rows ON src.flow_rows.rowid = seal_order.source_rowid
                  WHERE \(copyTerms.joined(separator: " AND "))
                  ORDER BY seal_order.rowid;
                INSERT OR REPLACE INTO meta (key, value)
                  SELECT name, CASE k WHEN 0 THEN n WHEN 1 THEN lo WHEN 2 THEN hi WHEN 3 THEN b ELSE p END
                  FROM (SELECT count(*) AS n, min("TimeFlowEndMs") AS lo, max("TimeFlowEndMs") AS hi,
                               sum("Bytes") AS b, sum("Packets") AS p FROM flow_rows)
                  CROSS JOIN (SELECT column1 AS name, column2 AS k FROM (VALUES ('row_count', 0), ('min_time_ms', 1),
                              ('max_time_ms', 2), ('bytes_total', 3), ('packets_total', 4)));
                COMMIT;
                """)
            try order.drop()
        }
        let summaries = try index.write(into: db)
        let sourceRows = try db.scalarInteger("SELECT count(*) FROM src.flow_rows") ?? 0
        guard recorded != nil || sourceRowChecksum.rows == sourceRows else {
            throw ShardStoreError(.verificationFailed, "sealing \(id): the copy read \(sourceRowChecksum.rows) of the active shard's \(sourceRows) rows; the active shard is kept")
        }
        let rowsSum = recorded.map { UInt64(bitPattern: $0) } ?? sourceRowChecksum.sum
        let checksum = try ShardChecksum.stringsChecksum(db, table: "src.strings") &+ rowsSum
        let meta = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        meta.bind(1, "content_checksum")
        meta.bind(2, String(checksum, radix: 16))
        try meta.step()
        meta.reset()
        meta.bind(1, "sealed_ms")
        meta.bind(2, Int64(Date().timeIntervalSince1970 * 1000))
        try meta.step()
        meta.reset()
        meta.bind(1, SkipIndex.sealOrderMetaKey)
        meta.bind(2, SkipIndex.sealOrder)
        try meta.step()
        if encoding != .plain {
            meta.reset()
            meta.bind(1, ShardSchema.TimeEncoding.metaKey)
            meta.bind(2, encoding.rawValue)
            try meta.step()
        }
        try db.execute("DETACH DATABASE src")
        return SourceSummary(rows: sourceRows, checksum: checksum, checksumWasRecorded: recorded != nil, rollups: rollups,
                             summaries: summaries, frameBoundaries: try FrameLayout.boundaries(of: db),
                             copiedThroughSQLiteBecause: throughSQLiteBecause)
    }
}

extension ShardSealer {
    /// End-relative when every time of the attached `src` shard is a plain epoch value
    /// (so no encoded or decoded value can overflow), plain otherwise.
    func timeEncoding(forSourceIn db: SQLiteDatabase) throws(SQLiteError) -> ShardSchema.TimeEncoding {
        let limit = ShardSchema.relativeTimeLimit
        let outOfRange = try db.scalarInteger("""
            SELECT count(*) FROM src.flow_rows WHERE "TimeFlowEndMs" IS NOT NULL AND NOT (
              "TimeFlowEndMs" BETWEEN 0 AND \(limit) AND coalesce("TimeFlowStartMs", 0) BETWEEN 0 AND \(limit)
              AND coalesce("TimeReceived", 0) BETWEEN 0 AND \(limit))
            """) ?? 0
        return outOfRange == 0 ? .endRelative : .plain
    }
}

/// Seconds spent in each step of a seal, so a benchmark (or a slow seal) shows where the
/// time goes.
package struct SealStepTimes: Sendable {
    /// WAL checkpoint, then the ordered copy (which hashes every source row only for a
    /// shard without a recorded `rows_checksum`).
    package var compactCopy = 0.0
    package var compress = 0.0
    /// `PRAGMA quick_check` through the VFS.
    package var quickCheck = 0.0
    /// Row count and content checksum of the compressed copy, through the VFS; the same
    /// pass aggregates the rows for the rollups.
    package var verifyChecksum = 0.0
    /// Writing the rollups to `rollups.sqlite` (minute, hour and day tiers).
    package var rollups = 0.0
    /// Rename, directory fsync and removal of the active shard.
    package var rename = 0.0

    package init() {}

    package static func + (a: SealStepTimes, b: SealStepTimes) -> SealStepTimes {
        var sum = a
        sum.compactCopy += b.compactCopy
        sum.compress += b.compress
        sum.quickCheck += b.quickCheck
        sum.verifyChecksum += b.verifyChecksum
        sum.rollups += b.rollups
        sum.rename += b.rename
        return sum
    }
}

