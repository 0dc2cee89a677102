import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A SQLite failure: the result code, SQLite's own message and the SQL involved, so the
/// user (or the log) sees what failed and where, and code decides by `kind`, never by
/// the message's words (GRDB's `DatabaseError` is the model).
package struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, by SQLite's primary result code (and errno for I/O errors).
    package enum Kind: Sendable, Equatable {
        /// SQLITE_FULL, or an I/O error caused by ENOSPC.
        case diskFull
        /// SQLITE_CORRUPT or SQLITE_NOTADB: the file is damaged or is not a database;
        /// also an I/O error reading a sealed file (a bad frame).
        case corrupt
        /// The statement was cancelled by a progress handler or `sqlite3_interrupt`
        /// (a query deadline).
        case interrupted
        /// The authorizer refused an operation (a read-only statement wrote, a function
        /// not on the allow-list).
        case notAuthorized
        /// SQLITE_ERROR on a statement: bad SQL, an unknown column or table.
        case invalidStatement
        /// SQLITE_TOOBIG or SQLITE_NOMEM: a value or the statement's memory hit a limit.
        case tooBig
        case busy
        case readOnly
        case constraint
        case cannotOpen
        case io
        case misuse
        case other
    }

    package let code: Int32
    package let message: String
    package let sql: String?
    package let path: String?
    /// The operating system's errno behind an I/O error (28 is ENOSPC), 0 if none.
    package var systemErrno: Int32 = 0

    package init(code: Int32, message: String, sql: String?, path: String?, systemErrno: Int32 = 0) {
        self.code = code
        self.message = message
        self.sql = sql
        self.path = path
        self.systemErrno = systemErrno
    }

    package var kind: Kind {
        switch code & 0xFF {
        case SQLITE_FULL: return .diskFull
        case SQLITE_IOERR: return systemErrno == ENOSPC ? .diskFull : .io
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .corrupt
        case SQLITE_INTERRUPT: return .interrupted
        case SQLITE_AUTH: return .notAuthorized
        case SQLITE_ERROR: return .invalidStatement
        case SQLITE_TOOBIG, SQLITE_NOMEM: return .tooBig
        case SQLITE_BUSY, SQLITE_LOCKED: return .busy
        case SQLITE_READONLY: return .readOnly
        case SQLITE_CONSTRAINT: return .constraint
        case SQLITE_CANTOPEN: return .cannotOpen
        case SQLITE_MISUSE: return .misuse
        default: return .other
        }
    }

    package var description: String {
        var text = "SQLite error \(code) (\(String(cString: sqlite3_errstr(code)))): \(message)"
        if let path { text += " [\(path)]" }
        if let sql { text += " in `\(sql.prefix(200))`" }
        if kind == .diskFull { text += ". The disk is full: free space or lower the retention limits; writing resumes once space returns." }
        return text
    }

    package var isDiskFull: Bool { kind == .diskFull }
}
