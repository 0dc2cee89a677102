import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A SQLite failure: the result code, SQLite's own message and the SQL involved, so the
/// user (or the log) sees what failed and where.
package struct SQLiteError: Error, Sendable, CustomStringConvertible {
    package let code: Int32
    package let message: String
    package let sql: String?
    package let path: String?
    /// The operating system's errno behind an I/O error (28 is ENOSPC), 0 if none.
    package var systemErrno: Int32 = 0

    package var description: String {
        var text = "SQLite error \(code) (\(String(cString: sqlite3_errstr(code)))): \(message)"
        if let path { text += " [\(path)]" }
        if let sql { text += " in `\(sql.prefix(200))`" }
        if isDiskFull { text += ". The disk is full: free space or lower the retention limits; writing resumes once space returns." }
        return text
    }

    /// SQLITE_FULL, or an I/O error caused by ENOSPC.
    package var isDiskFull: Bool {
        code & 0xFF == SQLITE_FULL || systemErrno == ENOSPC || message.contains("database or disk is full")
    }
}

/// One connection to one SQLite file. Not thread-safe: each thread or task that needs
/// the database opens its own, as SQLite intends.
///
/// ```swift
/// let db = try SQLiteDatabase(path: "x.sqlite")
/// try db.execute("CREATE TABLE t(a INTEGER)")
/// ```
package final class SQLiteDatabase {
    package let path: String
    let handle: OpaquePointer

    package enum Mode: Sendable { case readWrite, readOnly }

    package init(path: String, mode: Mode = .readWrite, vfs: String? = nil) throws(SQLiteError) {
        var db: OpaquePointer?
        let flags = (mode == .readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
            | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        let rc = sqlite3_open_v2(path, &db, flags, vfs)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: message, sql: nil, path: path)
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 10_000)
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more statements that return no rows.
    package func execute(_ sql: String) throws(SQLiteError) {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? lastMessage
            sqlite3_free(errmsg)
            var error = SQLiteError(code: rc, message: message, sql: sql, path: path)
            error.systemErrno = sqlite3_system_errno(handle)
            throw error
        }
    }

    package func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try SQLiteStatement(database: self, sql: sql)
    }

    /// The first column of the first row, as an integer (`SELECT count(*) ...`).
    package func scalarInteger(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.integer(0)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    package func transaction<R>(_ body: () throws(SQLiteError) -> R) throws(SQLiteError) -> R {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }

    func error(_ rc: Int32, sql: String?) -> SQLiteError {
        var error = SQLiteError(code: rc, message: lastMessage, sql: sql, path: path)
        error.systemErrno = sqlite3_system_errno(handle)
        return error
    }
}

/// A prepared statement. Bind with 1-based indexes, step, read columns with 0-based
/// indexes, as the C API does; `reset()` makes it reusable.
package final class SQLiteStatement {
    let handle: OpaquePointer
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

    @inline(__always) package func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    @inline(__always) package func bindNull(_ index: Int32) {
        sqlite3_bind_null(handle, index)
    }

    /// Binds UTF-8 text that SQLite copies (the bytes need not outlive the call).
    @inline(__always) package func bind(_ index: Int32, utf8 bytes: UnsafeBufferPointer<UInt8>) {
        // A zero-length string must still be bound as text (not NULL): point at a static byte.
        let pointer = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(emptyText)
        sqlite3_bind_text(handle, index, pointer.assumingMemoryBound(to: CChar.self), Int32(bytes.count), sqliteTransient)
    }

    /// Binds UTF-8 text without copying: the bytes must stay valid until the statement
    /// is stepped and reset (the row insert loop binds and steps inside one closure).
    @inline(__always) package func bind(_ index: Int32, borrowedUTF8 bytes: UnsafeBufferPointer<UInt8>) {
        let pointer = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(emptyText)
        sqlite3_bind_text(handle, index, pointer.assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil)
    }

    package func bind(_ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bind(index, utf8: $0) }
    }

    package func bind(_ index: Int32, blob bytes: UnsafeRawBufferPointer) {
        sqlite3_bind_blob(handle, index, bytes.baseAddress, Int32(bytes.count), sqliteTransient)
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
    @inline(__always) package func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }

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
    @inline(__always) package func integer(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }
    @inline(__always) package func double(_ i: Int32) -> Double { sqlite3_column_double(handle, i) }
    @inline(__always) package func isInteger(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_INTEGER }

    package func text(_ i: Int32) -> String? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))), as: UTF8.self)
    }

    /// The column's UTF-8 bytes, valid until the next step or reset.
    @inline(__always) package func withText<R>(_ i: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return body(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))))
    }

    package func blob(_ i: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(handle, i))
        guard n > 0, let p = sqlite3_column_blob(handle, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}

/// A valid pointer for binding empty strings.
nonisolated(unsafe) private let emptyText = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)

/// SQLite's SQLITE_TRANSIENT (a macro Swift cannot import): "copy the bytes now".
let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
