import FlowModel
import Foundation

/// Turns a closed window's active shard into its sealed, compressed form.
///
/// Steps, each leaving either the old or the new shard complete:
/// 1. compact copy: a fresh SQLite file with 64 KiB pages and no journal, strings in id
///    order, rows ordered by endpoint pair then time (similar rows side by side
///    compress better), and the summary in `meta`;
/// 2. compress it in the seekable zstd format to `<id>.sqlite.zst.tmp`, fsynced;
/// 3. verify: open it in place through `SealedShardVFS`, `PRAGMA quick_check`, row
///    count and content checksum equal to the active shard's;
/// 4. rename to `<id>.sqlite.zst`, fsync the directory, delete the active shard.
/// A crash before 4 leaves temporary files that the next start removes; a crash after
/// the rename leaves both files, and the next start keeps the verified sealed one.
struct ShardSealer {
    let level: Int32
    let frameSize: Int

    struct Result: Sendable {
        let rows: Int64
        let checksum: UInt64
        let sealedBytes: Int64
        let compactBytes: Int64
    }

    func seal(activePath: String, sealedPath: String, id: ShardID) throws -> Result {
        do {
            return try sealSteps(activePath: activePath, sealedPath: sealedPath, id: id)
        } catch {
            try? FileManager.default.removeItem(atPath: sealedPath + ".tmp")
            if isNoSpace(error) {
                throw ShardStoreError("sealing \(id): the disk is full. The active shard is kept and stays readable; free space or lower the retention limits, and sealing resumes (at the next window close or start-up)")
            }
            throw error
        }
    }

    private func sealSteps(activePath: String, sealedPath: String, id: ShardID) throws -> Result {
        let compactPath = activePath + ".compact.tmp"
        let compressedPath = sealedPath + ".tmp"
        defer { try? FileManager.default.removeItem(atPath: compactPath) }
        try? FileManager.default.removeItem(atPath: compactPath)

        // The source's own content checksum: what the sealed copy must reproduce.
        let source = try SQLiteDatabase(path: activePath)
        try source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let (sourceRows, sourceChecksum) = try ShardChecksum.compute(source)

        try writeCompactCopy(from: activePath, to: compactPath, id: id, checksum: sourceChecksum)
        CrashPoint.reached("seal.compacted")
        let compactBytes = fileSize(compactPath)
        try SeekableZstd.compress(source: compactPath, destination: compressedPath, level: level, frameSize: frameSize)
        CrashPoint.reached("seal.compressed")

        // Verify what will be renamed, opened in place as readers will open it.
        let check = try ShardReader(path: compressedPath)
        if let problem = try check.quickCheck() {
            throw ShardStoreError("sealing \(id): the compressed copy fails SQLite's quick_check (\(problem)); the active shard is kept")
        }
        let (rows, checksum) = try check.contentChecksum()
        guard rows == sourceRows, checksum == sourceChecksum else {
            throw ShardStoreError("sealing \(id): the compressed copy holds \(rows) rows (checksum \(checksum)), the active shard \(sourceRows) (\(sourceChecksum)); the active shard is kept")
        }

        CrashPoint.reached("seal.verified")
        try FileManager.default.moveItem(atPath: compressedPath, toPath: sealedPath)
        fsyncDirectory((sealedPath as NSString).deletingLastPathComponent)
        CrashPoint.reached("seal.renamed")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: activePath + suffix) }
        return Result(rows: rows, checksum: checksum, sealedBytes: fileSize(sealedPath), compactBytes: compactBytes)
    }

    private func writeCompactCopy(from activePath: String, to compactPath: String, id: ShardID, checksum: UInt64) throws {
        let db = try SQLiteDatabase(path: compactPath)
        try db.execute("PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA secure_delete=OFF;")
        try db.execute(ShardSchema.createSQL)
        let attach = try db.prepare("ATTACH DATABASE ?1 AS src")
        attach.bind(1, activePath)
        try attach.step()
        let columns = ShardSchema.allColumns.joined(separator: ", ")
        try db.execute("""
            BEGIN;
            INSERT INTO strings (id, value) SELECT id, value FROM src.strings ORDER BY id;
            INSERT INTO flow_rows (\(columns)) SELECT \(columns) FROM src.flow_rows
              ORDER BY "SrcAddr", "DstAddr", "TimeFlowEndMs";
            INSERT INTO positions SELECT * FROM src.positions;
            INSERT INTO meta SELECT * FROM src.meta;
            INSERT OR REPLACE INTO meta (key, value) SELECT 'row_count', count(*) FROM flow_rows;
            INSERT OR REPLACE INTO meta (key, value) SELECT 'min_time_ms', min("TimeFlowEndMs") FROM flow_rows;
            INSERT OR REPLACE INTO meta (key, value) SELECT 'max_time_ms', max("TimeFlowEndMs") FROM flow_rows;
            INSERT OR REPLACE INTO meta (key, value) SELECT 'bytes_total', total("Bytes") FROM flow_rows;
            INSERT OR REPLACE INTO meta (key, value) SELECT 'packets_total', total("Packets") FROM flow_rows;
            COMMIT;
            """)
        let meta = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        meta.bind(1, "content_checksum")
        meta.bind(2, String(checksum, radix: 16))
        try meta.step()
        meta.reset()
        meta.bind(1, "sealed_ms")
        meta.bind(2, Int64(Date().timeIntervalSince1970 * 1000))
        try meta.step()
        try db.execute("DETACH DATABASE src")
    }
}

/// A content checksum of a shard that does not depend on row order: the wrapping sum
/// of a 64-bit hash of each row's columns, plus the same over the `strings` table.
enum ShardChecksum {
    static func compute(_ db: SQLiteDatabase) throws -> (rows: Int64, checksum: UInt64) {
        var total: UInt64 = 0
        var rows: Int64 = 0
        let strings = try db.prepare("SELECT id, value FROM strings")
        while try strings.step() {
            var h = mix(0x5157_5249_4E47_5300, UInt64(bitPattern: strings.integer(0)))
            h = strings.withText(1) { bytes in hashBytes(h, bytes) } ?? h
            total &+= h
        }
        let select = try db.prepare("SELECT \(ShardSchema.allColumns.joined(separator: ", ")) FROM flow_rows")
        let columnCount = select.columnCount
        let integerColumns = Int32(FlowSchema.count)  // then _nulls, _quoted, _extras (text)
        while try select.step() {
            rows += 1
            var h: UInt64 = 0x464C_4F57_0000_0000
            for c in 0..<columnCount {
                if select.isNull(c) {
                    h = mix(h, 0xDEAD_BEEF_0000_0000 &+ UInt64(c))
                } else if c < integerColumns {
                    h = mix(h, UInt64(bitPattern: select.integer(c)) &+ UInt64(c) << 56)
                } else {
                    h = select.withText(c) { hashBytes(mix(h, UInt64(c)), $0) } ?? h
                }
            }
            total &+= h
        }
        return (rows, total)
    }

    @inline(__always) static func mix(_ h: UInt64, _ v: UInt64) -> UInt64 {
        var x = (h ^ v) &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 31
        return x &* 0x94D0_49BB_1331_11EB
    }

    static func hashBytes(_ seed: UInt64, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = seed ^ UInt64(bytes.count)
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return mix(h, 0)
    }
}

/// Whether an error means "no space left on device", whichever layer reported it.
func isNoSpace(_ error: any Error) -> Bool {
    if let sqlite = error as? SQLiteError { return sqlite.isDiskFull }
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain && ns.code == Int(ENOSPC) { return true }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError { return isNoSpace(underlying) }
    return "\(error)".contains("No space left on device")
}

func fileSize(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
}

/// Makes a rename durable: fsync the directory that holds the entry.
func fsyncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY)
    if fd >= 0 {
        fsync(fd)
        close(fd)
    }
}

