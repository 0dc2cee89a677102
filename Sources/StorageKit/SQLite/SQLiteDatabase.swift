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
        let target = mode == .readOnly && Self.isOnReadOnlyVolumeWithoutLog(path) ? Self.immutableURI(path) : path
        let rc = sqlite3_open_v2(target, &db, flags, vfs)
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

    /// Whether the connection can only read (opened `.readOnly`, or the file allows no more).
    package var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    /// Whether `path` (a file name, not a URI) is in a directory this process cannot write
    /// (a read-only mount, a snapshot) and has no write-ahead log beside it. A WAL-mode
    /// file there cannot be read the usual way: SQLite's reader needs the `-shm` file,
    /// which only a writer creates (SQLite's "Read-Only Databases" in wal.html). A file
    /// whose writer runs (elsewhere, through a mount that can write) has its `-wal` and
    /// `-shm`, and is read through them.
    static func isOnReadOnlyVolumeWithoutLog(_ path: String) -> Bool {
        isInUnwritableDirectory(path)
            && FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: path + "-wal")
    }

    /// Whether `path` (a file name, not a URI) is in a directory this process cannot
    /// write: a reader there can neither create the file nor change its journal mode or
    /// schema, and opens it `.readOnly`.
    package static func isInUnwritableDirectory(_ path: String) -> Bool {
        guard !path.hasPrefix("file:"), path != ":memory:", !path.isEmpty else { return false }
        let directory = (path as NSString).deletingLastPathComponent
        return access(directory.isEmpty ? "." : directory, W_OK) != 0
    }

    /// `path` as a URI with `immutable=1`: SQLite reads the file as it is, without locks
    /// or a `-shm` file. Used only where nothing writes the file (no `-wal`, an
    /// unwritable directory); a writer started later elsewhere is not seen by this
    /// connection, which the readers of such a volume (one command, one query) accept.
    static func immutableURI(_ path: String) -> String {
        var components = URLComponents()
        components.scheme = "file"
        components.path = path
        components.queryItems = [URLQueryItem(name: "immutable", value: "1"), URLQueryItem(name: "mode", value: "ro")]
        return components.string ?? "file:\(path)?immutable=1&mode=ro"
    }

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
