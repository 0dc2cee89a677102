import CSQLite
import FlowrecTesting
import Foundation
import StorageKit
import Testing

/// `TableTreeWriter` lays down a table's B-tree pages itself: SQLite must then find the
/// file sound (`integrity_check`), read every row exactly as it was in the source, and
/// go on writing to the file. `TableCursor.copyRecord` re-encodes chosen values of a
/// record and keeps the rest.
@Suite struct TableTreeWriterTests {
    /// Every column of `t` as SQL text (`quote`), by row id: compares values and types.
    static func rows(_ path: String, table: String = "t") throws -> [String] {
        let db = try SQLiteDatabase(path: path, mode: .readOnly)
        var rows: [String] = []
        let select = try db.prepare("SELECT rowid, quote(a), quote(b), quote(c), quote(d), quote(e), quote(f) FROM \(table) ORDER BY rowid")
        while try select.step() { rows.append((0..<7).map { select.text(Int32($0)) ?? "" }.joined(separator: "|")) }
        return rows
    }

    static func integrity(_ path: String) throws -> String {
        let db = try SQLiteDatabase(path: path, mode: .readOnly)
        let check = try db.prepare("PRAGMA integrity_check")
        var lines: [String] = []
        while try check.step() { lines.append(check.text(0) ?? "") }
        return lines.joined(separator: "\n")
    }

    /// An empty `t` after another table with a row, so `t`'s root is not the file's last page.
    static func makeDestination(_ path: String, pageSize: Int) throws -> Int {
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA page_size = \(pageSize); PRAGMA journal_mode = OFF;")
        try db.execute("CREATE TABLE other (x); CREATE TABLE t (a, b, c, d, e, f); INSERT INTO other VALUES ('before');")
        return Int(try #require(try db.scalarInteger("SELECT rootpage FROM sqlite_schema WHERE name = 't'")))
    }

    /// Copies every row of `TableCursorTests`' database (every serial type, negative row
    /// ids, records of five and six columns) record by record: deep trees on small pages,
    /// one interior level on large ones. A record that needs overflow pages is refused
    /// as too big and left out.
    @Test(arguments: [512, 1024, 4096, 65536])
    func sqliteReadsTheCopiedTableAsTheSource(pageSize: Int) throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/source.sqlite", copy = dir.path + "/copy.sqlite"
        try TableCursorTests.makeDatabase(source, pageSize: pageSize)
        let root = try Self.makeDestination(copy, pageSize: pageSize)
        let sourceRoot = Int(try #require(try SQLiteDatabase(path: source).scalarInteger("SELECT rootpage FROM sqlite_schema WHERE name = 't'")))
        let cursor = TableCursor(pages: try DatabasePages(path: source), rootPage: sourceRoot)
        try cursor.seek(toRowID: .min)
        let writer = try TableTreeWriter(path: copy, rootPage: root)
        var left: Set<String> = []
        while try cursor.next() {
            do {
                try writer.append(rowID: cursor.rowID, record: cursor.record)
            } catch {
                #expect(error.kind == .tooBig)
                #expect(cursor.record.count > pageSize - 35, "only a record that needs overflow pages is refused")
                left.insert(String(cursor.rowID))
            }
        }
        try writer.finish()
        #expect(writer.rows >= 500)
        #expect(try Self.integrity(copy) == "ok")
        let expected = try Self.rows(source).filter { !left.contains(String($0.prefix { $0 != "|" })) }
        #expect(try Self.rows(copy) == expected)
        if pageSize == 65536 { #expect(left.isEmpty) } else { #expect(!left.isEmpty) }

        // SQLite goes on from the written file: new pages come after the writer's.
        let db = try SQLiteDatabase(path: copy)
        try db.execute("""
            INSERT INTO other SELECT randomblob(300) FROM t;
            INSERT INTO t (rowid, a) VALUES ((SELECT max(rowid) + 1 FROM t), 'after');
            """)
        #expect(try Self.integrity(copy) == "ok")
        #expect(try db.scalarInteger("SELECT count(*) FROM t") == Int64(expected.count + 1))
        #expect(try db.scalarInteger("SELECT count(*) FROM other") == Int64(expected.count + 1))
    }

    /// No rows leave the table empty; one row makes the root a leaf.
    @Test(arguments: [0, 1])
    func anEmptyOrOneRowTable(rows: Int) throws {
        let dir = TemporaryDirectory()
        let copy = dir.path + "/copy.sqlite"
        let root = try Self.makeDestination(copy, pageSize: 4096)
        let writer = try TableTreeWriter(path: copy, rootPage: root)
        if rows == 1 {
            // The record of (NULL, 7, 'x', NULL, NULL, NULL): header 7 bytes, then 7 and 'x'.
            let record: [UInt8] = [7, 0, 1, 15, 0, 0, 0, 7, UInt8(ascii: "x")]
            try record.withUnsafeBytes { try writer.append(rowID: 42, record: $0) }
        }
        try writer.finish()
        #expect(try Self.integrity(copy) == "ok")
        #expect(try Self.rows(copy) == (rows == 1 ? ["42|NULL|7|'x'|NULL|NULL|NULL"] : []))
    }

    /// Row ids must ascend, and the root must be an empty table: anything else is refused.
    @Test func misuseIsRefused() throws {
        let dir = TemporaryDirectory()
        let copy = dir.path + "/copy.sqlite"
        let root = try Self.makeDestination(copy, pageSize: 4096)
        let record: [UInt8] = [2, 1, 5]
        let writer = try TableTreeWriter(path: copy, rootPage: root)
        try record.withUnsafeBytes { try writer.append(rowID: 5, record: $0) }
        #expect(throws: SQLiteError.self) { try record.withUnsafeBytes { try writer.append(rowID: 5, record: $0) } }
        try writer.finish()
        #expect(throws: SQLiteError.self) { _ = try TableTreeWriter(path: copy, rootPage: root) }
        let other = Int(try #require(try SQLiteDatabase(path: copy).scalarInteger("SELECT rootpage FROM sqlite_schema WHERE name = 'other'")))
        #expect(throws: SQLiteError.self) { _ = try TableTreeWriter(path: copy, rootPage: other) }
        #expect(try Self.integrity(copy) == "ok")
    }

    /// Columns b and d replaced by integers of every width (and NULL), the rest kept:
    /// SQLite reads the replaced values and the source's others. A record whose replaced
    /// column is a long text or blob (a two-byte type in the header) is refused.
    @Test func copyRecordReplacesValuesAndKeepsTheRest() throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/source.sqlite", copy = dir.path + "/copy.sqlite"
        try TableCursorTests.makeDatabase(source, pageSize: 65536, rows: 600)
        let root = try Self.makeDestination(copy, pageSize: 65536)
        let sourceDB = try SQLiteDatabase(path: source)
        let sourceRoot = Int(try #require(try sourceDB.scalarInteger("SELECT rootpage FROM sqlite_schema WHERE name = 't'")))
        let cursor = TableCursor(pages: try DatabasePages(path: source), rootPage: sourceRoot)
        try cursor.seek(toRowID: .min)
        let writer = try TableTreeWriter(path: copy, rootPage: root)
        let replacementValues: [Int64?] = [nil, 0, 1, -1, 127, -128, 128, 32767, -32768, 32768, 8_388_607, -8_388_608, 8_388_608,
                                           2_147_483_647, -2_147_483_648, 2_147_483_648, 140_737_488_355_327, -140_737_488_355_328,
                                           140_737_488_355_328, .max, .min]
        let replacements = UnsafeMutableBufferPointer<TableCursor.Replacement>.allocate(capacity: 2)
        defer { replacements.deallocate() }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 17, alignment: 8)
        defer { out.deallocate() }
        var expected: [String] = []
        let quoted = try sourceDB.prepare("SELECT quote(a), quote(c), quote(e), quote(f), typeof(b), length(b), typeof(d), length(d) FROM t WHERE rowid = ?1")
        var i = 0, refused = 0
        while try cursor.next() {
            let b = replacementValues[i % replacementValues.count], d = replacementValues[(i * 7 + 3) % replacementValues.count]
            i += 1
            replacements[0] = .init(column: 1, value: b)
            replacements[1] = .init(column: 3, value: d)
            quoted.reset()
            quoted.bind(1, cursor.rowID)
            #expect(try quoted.step())
            let long = { (type: String?, length: Int64) in (type == "text" || type == "blob") && length >= 58 }
            guard let size = cursor.copyRecord(to: out.baseAddress!, replacing: UnsafeBufferPointer(replacements)) else {
                #expect(long(quoted.text(4), quoted.integer(5)) || long(quoted.text(6), quoted.integer(7)), "row \(cursor.rowID) refused")
                refused += 1
                continue
            }
            guard size <= 65536 - 35 else { continue }
            try writer.append(rowID: cursor.rowID, record: UnsafeRawBufferPointer(rebasing: out[0..<size]))
            let text = { (v: Int64?) in v.map(String.init) ?? "NULL" }
            expected.append([String(cursor.rowID), quoted.text(0)!, text(b), quoted.text(1)!, text(d), quoted.text(2)!, quoted.text(3)!]
                .joined(separator: "|"))
        }
        try writer.finish()
        #expect(refused > 0 && expected.count >= 150, "\(refused) refused, \(expected.count) copied")
        #expect(try Self.integrity(copy) == "ok")
        #expect(try Self.rows(copy) == expected)
    }
}
