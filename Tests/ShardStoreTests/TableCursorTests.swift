import CSQLite
import FlowModel
import FlowrecTesting
import Foundation
@testable import ShardStore
import StorageKit
import Testing

/// `TableCursor` reads a table's records from the file's pages without SQLite: every
/// kind of value, every integer width, records spilling onto overflow chains, deep trees,
/// reserved bytes per page and sealed files must read exactly as SQLite reads them, and a
/// damaged file must fail with an error, never crash.
@Suite struct TableCursorTests {
    /// Values of every serial type: NULL, the integer widths' edges (1, 2, 3, 4, 6 and 8
    /// bytes, and the constants 0 and 1), reals, texts and blobs of all sizes up to ones
    /// that need several overflow pages.
    static let values: [String] = {
        var literals = ["NULL", "0", "1", "-1", "127", "-128", "128", "-129", "32767", "-32768", "32768",
                        "8388607", "-8388608", "8388608", "2147483647", "-2147483648", "2147483648",
                        "140737488355327", "-140737488355328", "140737488355328",
                        "9223372036854775807", "-9223372036854775808", "1.5", "-2.75e10", "''", "'a'",
                        "'häßlich ✓'", "X''", "X'00FF10'", "zeroblob(3)"]
        for size in [50, 400, 900, 1100, 3000, 20_000] {
            literals.append("'\(String(repeating: "x", count: size - 1))y'")
            literals.append("randomblob(\(size))")
        }
        return literals
    }()

    /// A plain database with table `t`: rows with gaps and negative row ids, five columns
    /// cycling through `values`, and a sixth column added after half the rows (their
    /// records stop at five columns).
    static func makeDatabase(_ path: String, pageSize: Int, reservedBytes: Int32 = 0, rows: Int = 3000) throws {
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA page_size = \(pageSize)")
        if reservedBytes > 0 {
            var reserve = reservedBytes
            sqlite3_file_control(db.handle, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
        }
        try db.execute("CREATE TABLE t (a, b, c, d, e)")
        var sql = "BEGIN;"
        for i in 0..<rows {
            if i == rows / 2 { sql += "ALTER TABLE t ADD COLUMN f;" }
            let rowID = i % 17 == 0 ? -Int64(i) - 1 : Int64(i) * 3 + (i % 5 == 0 ? 1_000_000 : 0)
            let columns = (0..<(i < rows / 2 ? 5 : 6)).map { c in values[(i * 7 + c * 13) % values.count] }
            sql += "INSERT INTO t (rowid, \(["a", "b", "c", "d", "e", "f"].prefix(columns.count).joined(separator: ", "))) VALUES (\(rowID), \(columns.joined(separator: ", ")));"
        }
        try db.execute(sql + "COMMIT;")
        if reservedBytes > 0 { try db.execute("VACUUM") }
    }

    /// Reads every row both ways, in row id order from `from`, and compares each column.
    static func compareWithSQLite(path: String, pagesPath: String? = nil, from: Int64 = .min) throws -> Int {
        let db = try SQLiteDatabase(path: SeekableZstdVFS.handles(path) ? SeekableZstdVFS.uri(for: path) : path, mode: .readOnly,
                                    vfs: SeekableZstdVFS.handles(path) ? SeekableZstdVFS.name : nil)
        let root = try #require(try db.scalarInteger("SELECT rootpage FROM sqlite_schema WHERE name = 't'"))
        let cursor = TableCursor(pages: try DatabasePages(path: pagesPath ?? path), rootPage: Int(root))
        try cursor.seek(toRowID: from)
        // The same rows decoded whole (`decodeRecord`), into every other slot of a buffer
        // one column wider than the table: a column a record lacks must read as absent.
        let whole = TableCursor(pages: try DatabasePages(path: pagesPath ?? path), rootPage: Int(root))
        whole.decodesHeaders = false
        try whole.seek(toRowID: from)
        let width = 7, stride = 2
        var values = [Int64](repeating: -7, count: width * stride), present = [Bool](repeating: true, count: width * stride)
        let select = try db.prepare("SELECT rowid, a, b, c, d, e, f FROM t WHERE rowid >= ?1 ORDER BY rowid")
        select.bind(1, from)
        var rows = 0
        while try select.step() {
            #expect(try cursor.next(), "the cursor ended before row \(select.integer(0))")
            #expect(cursor.rowID == select.integer(0))
            for c in 0..<6 {
                let column = Int32(c + 1)
                switch select.columnType(column) {
                case .null:
                    #expect(cursor.isNull(c), "row \(cursor.rowID) column \(c)")
                case .integer, .real:
                    #expect(cursor.integerOrNull(c) == select.integer(column), "row \(cursor.rowID) column \(c)")
                case .text, .blob:
                    let expected = select.blob(column)
                    #expect(cursor.bytes(c).map(Array.init) == expected, "row \(cursor.rowID) column \(c)")
                }
            }
            #expect(try whole.next() && whole.rowID == cursor.rowID)
            _ = try values.withUnsafeMutableBufferPointer { v throws(SQLiteError) in
                try present.withUnsafeMutableBufferPointer { p throws(SQLiteError) in
                    try whole.decodeRecord(into: v.baseAddress!, present: p.baseAddress!, stride: stride, columns: width)
                }
            }
            #expect(whole.columnCount == cursor.columnCount)
            for c in 0..<width {
                let expected = cursor.integerOrNull(c)
                #expect(present[c * stride] == (expected != nil) && values[c * stride] == (expected ?? 0), "row \(cursor.rowID) column \(c), whole")
                #expect(whole.bytes(c).map(Array.init) == cursor.bytes(c).map(Array.init), "row \(cursor.rowID) column \(c), whole")
            }
            #expect(values[1] == -7 && present[1], "nothing is written between the stride's slots")
            rows += 1
        }
        #expect(try !cursor.next(), "the cursor has rows SQLite does not")
        #expect(try !whole.next(), "the whole-record cursor has rows SQLite does not")
        return rows
    }

    @Test(arguments: [(512, Int32(0)), (1024, 0), (4096, 0), (1024, 32), (65536, 0)])
    func everyRowReadsAsSQLiteReadsIt(pageSize: Int, reservedBytes: Int32) throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/t.db"
        try Self.makeDatabase(path, pageSize: pageSize, reservedBytes: reservedBytes)
        let header = try #require(FileHandle(forReadingAtPath: path)?.readData(ofLength: 100))
        #expect(Int(header[20]) == Int(reservedBytes), "the test database has the reserved bytes asked for")
        #expect(try Self.compareWithSQLite(path: path) == 3000)
    }

    @Test func seekStartsAtTheFirstRowAtOrAfterItsTarget() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/t.db"
        try Self.makeDatabase(path, pageSize: 512)
        // Before the first row, a negative id, a gap, an exact id, the last, past the last.
        for target: Int64 in [.min, -2000, -18, 0, 2, 3, 1_000_015, 8997, 1_008_985, .max] {
            _ = try Self.compareWithSQLite(path: path, from: target)
        }
    }

    @Test func anEmptyTableHasNoRows() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/t.db"
        try SQLiteDatabase(path: path).execute("CREATE TABLE t (a, b, c, d, e, f)")
        #expect(try Self.compareWithSQLite(path: path) == 0)
    }

    @Test func aSealedShardReadsThroughItsFramesAsThroughSQLite() throws {
        let dir = TemporaryDirectory()
        let plain = dir.path + "/t.db"
        try Self.makeDatabase(plain, pageSize: 4096)
        let sealed = dir.path + "/t.sqlite.zst"
        // Frames that cut pages in two: a page is then read from two frames.
        try SeekableZstd.compress(source: plain, destination: sealed, level: 3, frameSize: 10_000)
        SeekableZstdVFS.register()
        #expect(try Self.compareWithSQLite(path: sealed) == 3000)
    }

    @Test func notADatabaseIsRefused() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/junk.db"
        try Data(repeating: 7, count: 8192).write(to: URL(fileURLWithPath: path))
        #expect { try DatabasePages(path: path) } throws: { ($0 as? SQLiteError)?.kind == .corrupt }
    }

    /// Damage pages at random (not the header): every read either matches what it
    /// reads or stops with a `.corrupt` error; nothing traps, loops or reads outside the
    /// file's bytes (the address sanitizer-free version of that: the process survives).
    @Test func damagedPagesFailWithAnErrorNeverACrash() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/t.db"
        try Self.makeDatabase(path, pageSize: 512, rows: 600)
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let root = try #require(try SQLiteDatabase(path: path, mode: .readOnly).scalarInteger("SELECT rootpage FROM sqlite_schema WHERE name = 't'"))
        var random = SystemRandomNumberGenerator()
        var failures = 0
        for round in 0..<150 {
            var damaged = original
            for _ in 0..<(1 + round % 8) {
                let at = Int.random(in: 100..<damaged.count, using: &random)
                damaged[at] = round % 3 == 0 ? 0xFF : UInt8.random(in: 0...255, using: &random)
            }
            let copy = dir.path + "/damaged.db"
            try Data(damaged).write(to: URL(fileURLWithPath: copy))
            do throws(SQLiteError) {
                let cursor = TableCursor(pages: try DatabasePages(path: copy), rootPage: Int(root))
                // Every third round decodes whole records (`decodeRecord`) instead.
                cursor.decodesHeaders = round % 3 != 1
                var values = [Int64](repeating: 0, count: 8), present = [Bool](repeating: false, count: 8)
                try cursor.seek(toRowID: round % 2 == 0 ? .min : Int64(round * 3))
                var rows = 0
                while try cursor.next() {
                    rows += 1
                    if !cursor.decodesHeaders {
                        _ = try values.withUnsafeMutableBufferPointer { v throws(SQLiteError) in
                            try present.withUnsafeMutableBufferPointer { p throws(SQLiteError) in
                                try cursor.decodeRecord(into: v.baseAddress!, present: p.baseAddress!, stride: 1, columns: 8)
                            }
                        }
                    }
                    for c in 0..<cursor.columnCount { _ = cursor.integerOrNull(c); _ = cursor.bytes(c)?.reduce(0, &+) }
                    // Damage may repeat subtrees (a child pointer changed to another): bounded, not endless.
                    if rows >= 100_000 { break }
                }
            } catch {
                #expect(error.kind == .corrupt, "\(error)")
                failures += 1
            }
        }
        #expect(failures > 0, "some of 150 damaged files must fail to read")
    }
}

/// Sealed and merged shards read whole rows from their pages (`ShardReader.readsPagesDirectly`):
/// the forwarder's chunks, `forEachFlow(rowIDs:orderedBy:)`, and the content checksum and
/// rollups of the seal's verification. Each must equal what SQLite reads.
@Suite struct ReadingPagesDirectlyTests {
    static func bothWays(_ path: String, _ body: (ShardReader) throws -> Void) throws {
        for direct in [true, false] {
            let reader = try ShardReader(path: path)
            reader.readsPagesDirectly = direct
            try body(reader)
        }
    }

    static func rollups() -> RollupAccumulator { RollupAccumulator(rcodeIDs: (1, 2, 3)) }

    /// The checksum the seal (or merge) recorded in the catalog.
    static func catalogChecksum(_ dir: TemporaryDirectory, _ id: ShardID) throws -> UInt64 {
        let catalog = try SQLiteDatabase(path: dir.path + "/catalog.sqlite", mode: .readOnly)
        let query = try catalog.prepare("SELECT checksum FROM shards WHERE id = ?1")
        query.bind(1, id.description)
        #expect(try query.step())
        return try #require(UInt64(query.text(0) ?? "", radix: 16))
    }

    @Test func sealedAndMergedShardsReadTheSameRowsBothWays() throws {
        let dir = TemporaryDirectory()
        let store = try MergeTests.store(dir, hours: 6)
        try store.mergeSealedShards(MergeTests.daily)
        let shards = try store.shards().filter { $0.state == .sealed && $0.rowCount > 0 }
        #expect(shards.contains { $0.id.windowEndMs - $0.id.windowStartMs == MergeTests.mergeWindowMs }, "a merged shard is among them")
        for shard in shards {
            let path = dir.path + "/" + shard.path
            var flows: [[String]] = [], checksums: [String] = [], aggregated: [[RollupKey: RollupMeasures]] = []
            try Self.bothWays(path) { reader in
                #expect(try reader.readsRowsFromPages() == reader.readsPagesDirectly)
                let range = try #require(try reader.rowIDRange())
                var read: [String] = []
                try reader.forEachFlow(rowIDs: range, orderedBy: ShardReader.sealOrderKeys) { read.append(FlowEncoder().encode($0)) }
                flows.append(read)
                let rollups = Self.rollups()
                let (rows, checksum) = try reader.contentChecksum(aggregatingInto: rollups)
                checksums.append("\(rows) \(checksum)")
                aggregated.append(rollups.minutes)
            }
            #expect(flows[0].count == Int(shard.rowCount))
            #expect(flows[0] == flows[1], "\(shard.id)")
            #expect(checksums[0] == checksums[1], "\(shard.id)")
            #expect(checksums[0] == "\(shard.rowCount) \(try Self.catalogChecksum(dir, shard.id))", "the catalog's checksum, from the seal")
            #expect(aggregated[0] == aggregated[1] && !aggregated[0].isEmpty, "\(shard.id)")
        }
    }

    /// A row holding a REAL or a text where an integer belongs (no flowrec writes one; a
    /// hand-edited shard might): the pages alone do not say what SQLite's arithmetic makes
    /// of it, so the checksum is computed through SQLite, and the seal still verifies.
    @Test(arguments: ["\"Bytes\" = 1.5, \"TimeFlowStartMs\" = 12.75", "\"Packets\" = 'seven'"])
    func aValueOnlySQLiteDefinesIsCheckedThroughSQLite(edit: String) throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch(generatedLines(3000)[...], firstLine: 1))
        let active = try #require(try store.shards().first { $0.state == .active })
        try SQLiteDatabase(path: dir.path + "/" + active.path).execute("UPDATE flow_rows SET \(edit) WHERE rowid = 7")
        try store.sealClosedWindows(watermarkMs: .max)
        let sealed = try #require(try store.shards().first { $0.id == active.id })
        #expect(sealed.state == .sealed)
        let reader = try ShardReader(path: dir.path + "/" + sealed.path)
        let cursor = TableCursor(pages: try DatabasePages(path: reader.path), rootPage: Int(try #require(try reader.db.scalarInteger("SELECT rootpage FROM sqlite_schema WHERE name = 'flow_rows'"))))
        let rollups = Self.rollups()
        #expect(try ShardChecksum.compute(cursor, strings: reader.db, timeEncoding: reader.timeEncoding, aggregatingInto: rollups) == nil)
        #expect(rollups.minutes.isEmpty, "what the pass had added is forgotten")
        #expect(try reader.contentChecksum().checksum == Self.catalogChecksum(dir, sealed.id))
    }

    /// A sealed shard edited by hand so that a relative time's decoding overflows 64
    /// bits: readers give the wrapped value both ways instead of trapping, and the
    /// checksum, which SQLite defines with a REAL there, is computed through SQLite.
    @Test func aRelativeTimeThatOverflowsReadsWrappedNeverTraps() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch(generatedLines(2000)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let sealed = try #require(try store.shards().first { $0.state == .sealed && $0.rowCount > 0 })
        let path = dir.path + "/" + sealed.path
        #expect(try ShardReader(path: path).timeEncoding == .endRelative)
        let plain = dir.path + "/edited.sqlite"
        try SeekableZstd.decompress(source: path, destination: plain)
        let stored = -Int64.max
        let (rowID, end) = try { () throws -> (Int64, Int64) in
            let edited = try SQLiteDatabase(path: plain)  // closed when it goes out of scope
            let rowID = try #require(try edited.scalarInteger("SELECT min(rowid) FROM flow_rows"))
            let end = try #require(try edited.scalarInteger("SELECT \"TimeFlowEndMs\" FROM flow_rows WHERE rowid = \(rowID)"))
            try edited.execute("UPDATE flow_rows SET \"TimeFlowStartMs\" = \(stored) WHERE rowid = \(rowID)")
            return (rowID, end)
        }()
        try SeekableZstd.compress(source: plain, destination: path, level: 3)

        var checksums: [UInt64] = []
        try Self.bothWays(path) { reader in
            var starts: [Int64?] = []
            try reader.forEachFlow(rowIDs: rowID...rowID, orderedBy: []) { starts.append($0.integer(FlowSchema.id(of: "TimeFlowStartMs"))) }
            #expect(starts == [end &- stored], "wrapped, pages directly: \(reader.readsPagesDirectly)")
            checksums.append(try reader.contentChecksum().checksum)
        }
        #expect(checksums[0] == checksums[1], "both through SQLite's arithmetic")
    }
}
