import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One connection to one SQLite file. Not thread-safe: each thread or task that needs
/// the database opens its own, as SQLite intends.
///
/// ```swift
/// let db = try SQLiteDatabase(path: "x.sqlite")
/// try db.execute("CREATE TABLE t(a INTEGER)")
/// ```
package final class SQLiteDatabase {
    /// The SQLite library flowrec runs with (`flowrec --version`).
    package static var libraryVersion: String { String(cString: sqlite3_libversion()) }

    package let path: String
    /// The C connection, for the few calls this wrapper does not cover (registering
    /// functions, modules and VFS-level settings).
    package let handle: OpaquePointer

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

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    package var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last row inserted on this connection.
    package var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    package var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }

    package func error(_ rc: Int32, sql: String?) -> SQLiteError {
        var error = SQLiteError(code: rc, message: lastMessage, sql: sql, path: path)
        error.systemErrno = sqlite3_system_errno(handle)
        return error
    }
}
