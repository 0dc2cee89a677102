package import CSQLite
import Foundation

/// A prepared statement. Bind with 1-based indexes, step, read columns with 0-based
/// indexes, as the C API does; `reset()` makes it reusable.
package final class SQLiteStatement {
    /// The C statement; the accessors below are inlinable so a row loop in another
    /// module pays for SQLite's call only, not for this wrapper's.
    package let handle: OpaquePointer
    unowned let database: SQLiteDatabase
    package let sql: String

    /// Prepares exactly one statement: text after it (`...; DROP TABLE t`) is an error,
    /// never silently ignored.
    init(database: SQLiteDatabase, sql: String) throws(SQLiteError) {
        var stmt: OpaquePointer?
        var trailing = ""
        let rc = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v3(database.handle, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, &tail)
            if let tail { trailing = String(cString: tail) }
            return rc
        }
        guard rc == SQLITE_OK, let stmt else { throw database.error(rc, sql: sql) }
        let rest = trailing.trimmingCharacters(in: CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: ";")))
        guard rest.isEmpty else {
            sqlite3_finalize(stmt)
            throw SQLiteError(code: SQLITE_MISUSE, message: "only one SQL statement is allowed; found more after it: \(rest.prefix(60))",
                              sql: sql, path: database.path)
        }
        self.handle = stmt
        self.database = database
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    // MARK: Binding

    @inlinable @inline(__always) package func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    @inlinable @inline(__always) package func bindNull(_ index: Int32) {
        sqlite3_bind_null(handle, index)
    }

    /// Binds UTF-8 text that SQLite copies (the bytes need not outlive the call).
    @inlinable @inline(__always) package func bind(_ index: Int32, utf8 bytes: UnsafeBufferPointer<UInt8>) {
        // A zero-length string must still be bound as text (not NULL): point at a static byte.
        let pointer = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(emptyText)
        sqlite3_bind_text(handle, index, pointer.assumingMemoryBound(to: CChar.self), Int32(bytes.count), sqliteTransient)
    }

    /// Binds UTF-8 text without copying: the bytes must stay valid until the statement
    /// is stepped and reset (the row insert loop binds and steps inside one closure).
    @inlinable @inline(__always) package func bind(_ index: Int32, borrowedUTF8 bytes: UnsafeBufferPointer<UInt8>) {
        let pointer = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(emptyText)
        sqlite3_bind_text(handle, index, pointer.assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil)
    }

    package func bind(_ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bind(index, utf8: $0) }
    }

    /// Binds a copy of `bytes`; an empty buffer (whose base address may be nil, which
    /// SQLite would take for NULL) binds an empty blob.
    package func bind(_ index: Int32, blob bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            sqlite3_bind_zeroblob(handle, index, 0)
            return
        }
        sqlite3_bind_blob(handle, index, base, Int32(bytes.count), sqliteTransient)
    }

    package func clearBindings() { sqlite3_clear_bindings(handle) }

    // MARK: Running

    /// Advances to the next row; false when done.
    @discardableResult
    package func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let error = database.error(rc, sql: sql)
        sqlite3_reset(handle)
        throw error
    }

    package func reset() { sqlite3_reset(handle) }

    // MARK: Reading columns

    package var columnCount: Int32 { sqlite3_column_count(handle) }
    package func columnName(_ i: Int32) -> String { String(cString: sqlite3_column_name(handle, i)) }
    @inlinable @inline(__always) package func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }

    package enum ColumnType: Sendable { case null, integer, real, text, blob }

    /// The storage class of a result column in the current row.
    package func columnType(_ i: Int32) -> ColumnType {
        switch sqlite3_column_type(handle, i) {
        case SQLITE_NULL: .null
        case SQLITE_INTEGER: .integer
        case SQLITE_FLOAT: .real
        case SQLITE_BLOB: .blob
        default: .text
        }
    }
    @inlinable @inline(__always) package func integer(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }
    /// An integer column's value, nil when NULL, in one call into SQLite for every
    /// value but 0 (NULL reads as 0, so only a 0 needs its type asked): row readers
    /// call this for a hundred columns per row.
    @inlinable @inline(__always) package func integerOrNull(_ i: Int32) -> Int64? {
        let value = sqlite3_column_int64(handle, i)
        return value == 0 && sqlite3_column_type(handle, i) == SQLITE_NULL ? nil : value
    }
    @inlinable @inline(__always) package func double(_ i: Int32) -> Double { sqlite3_column_double(handle, i) }
    @inlinable @inline(__always) package func isInteger(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_INTEGER }

    package func text(_ i: Int32) -> String? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))), as: UTF8.self)
    }

    /// The column's UTF-8 bytes, valid until the next step or reset.
    @inlinable @inline(__always) package func withText<R>(_ i: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return body(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))))
    }

    /// A blob column's bytes, valid only inside `body` (no copy); empty for NULL or an
    /// empty blob.
    @inlinable @inline(__always) package func withBlob<R>(_ i: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // The pointer first, then its length (SQLite's documented order).
        guard let p = sqlite3_column_blob(handle, i) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))))
    }

    package func blob(_ i: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(handle, i))
        guard n > 0, let p = sqlite3_column_blob(handle, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}

/// A valid pointer for binding empty strings.
package nonisolated(unsafe) let emptyText = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)  // one byte, never written: shared safely

/// SQLite's SQLITE_TRANSIENT (a macro Swift cannot import): "copy the bytes now".
package let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
/// SQLITE_STATIC: SQLite uses the bytes in place, so they must outlive every use it makes of them.
package let sqliteStatic = unsafeBitCast(0, to: sqlite3_destructor_type.self)
