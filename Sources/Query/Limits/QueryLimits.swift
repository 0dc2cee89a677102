import CSQLite
import Foundation
package import ShardStore
package import StorageKit
import Synchronization

/// Bounds every query flowrec runs on behalf of a user (`query`, `sql`, `top`, `tail`,
/// `export`, the JSON and Loki APIs), so one statement cannot keep a core busy after its
/// client left, fill a disk with temporary files, or take the process's memory:
///
/// - a deadline, checked by SQLite's progress handler every few thousand VM steps (and a
///   cancel flag the caller can raise, when the client goes away);
/// - at most `maxMemoryBytes` of SQLite memory in the process while it runs (checked on
///   the same handler; a sorter or a recursive CTE growing past it is stopped);
/// - temporary tables and sorts in memory (`temp_store=MEMORY`: never on the root disk);
/// - no single string or blob larger than `maxValueBytes` (`SQLITE_LIMIT_LENGTH`), so
///   `printf('%.*c', 999999999, 'x')` fails at once instead of allocating a gigabyte.
///
/// A query stopped by a bound fails with a `QueryError` of kind `.cancelled` that says
/// which bound and how to raise it.
package struct QueryLimits: Sendable {
    /// nil: no deadline (the CLI's default is generous but set).
    package var deadlineSeconds: Double?
    package var maxMemoryBytes: Int64
    package var maxValueBytes: Int32
    /// Raised by the caller to stop the query (an HTTP client that went away).
    package var cancellation: QueryCancellation?

    package init(deadlineSeconds: Double? = 300, maxMemoryBytes: Int64 = 1 << 30, maxValueBytes: Int32 = 16 << 20) {
        self.deadlineSeconds = deadlineSeconds
        self.maxMemoryBytes = maxMemoryBytes
        self.maxValueBytes = maxValueBytes
    }

    /// What the CLI uses unless told otherwise (`--timeout`).
    package static let commandLine = QueryLimits()

    /// Exports: no deadline (a week of flows takes minutes to write), the same bounds on
    /// memory and values.
    package static let export = QueryLimits(deadlineSeconds: nil)
}

/// A flag that stops the queries that carry it, from any thread.
package final class QueryCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    package init() {}
    package func cancel() { flag.store(true, ordering: .relaxed) }
    package var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// One running query's guard: installed on the connections that run the user's SQL,
/// consulted by SQLite's progress handler. Keep it alive while the query runs.
package final class QueryGuard: Sendable {
    package let limits: QueryLimits
    private let deadline: Date?
    private let cancelled = Atomic<Bool>(false)
    /// Why the handler stopped the statement, for the error message.
    private let reason = Mutex<String?>(nil)
    /// What the authorizer refused (SQLite reports it as a plain SQLITE_ERROR).
    private let refused = Mutex<String?>(nil)

    package init(_ limits: QueryLimits) {
        self.limits = limits
        deadline = limits.deadlineSeconds.map { Date() + $0 }
    }

    /// Stops the query at its next check (the client went away, the process stops).
    package func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Sets the bounds on `db`, lets it only read and call `SQLFunctions.allowed`, and
    /// installs the handler. The guard must outlive `db`'s use by the query.
    package func install(on db: SQLiteDatabase) {
        sqlite3_limit(db.handle, SQLITE_LIMIT_LENGTH, limits.maxValueBytes)
        // Before the authorizer, which refuses every PRAGMA: sorts and temporary tables
        // stay in memory (bounded below), never in files on the root disk.
        // (Changing it drops the temp schema, so only when it is not set yet.)
        if (try? db.scalarInteger("PRAGMA temp_store")) != 2 { try? db.execute("PRAGMA temp_store=MEMORY") }
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_set_authorizer(db.handle, { context, action, _, name, _, _ in
            switch action {
            case SQLITE_SELECT, SQLITE_READ, SQLITE_RECURSIVE: return SQLITE_OK
            case SQLITE_FUNCTION:
                guard let name, let context else { return SQLITE_DENY }
                let function = String(cString: name)
                if SQLFunctions.isAllowed(function) { return SQLITE_OK }
                Unmanaged<QueryGuard>.fromOpaque(context).takeUnretainedValue().refuse("the function \(function)() is not allowed in flowrec's queries")
                return SQLITE_DENY
            default:
                if let context {
                    Unmanaged<QueryGuard>.fromOpaque(context).takeUnretainedValue().refuse("only reading the flows is allowed (no writes, PRAGMA or ATTACH)")
                }
                return SQLITE_DENY
            }
        }, context)
        sqlite3_progress_handler(db.handle, 4096, { context in
            guard let context else { return 0 }
            return Unmanaged<QueryGuard>.fromOpaque(context).takeUnretainedValue().shouldStop() ? 1 : 0
        }, context)
    }

    private func refuse(_ what: String) { refused.withLock { if $0 == nil { $0 = what } } }

    /// Removes the handler (before the guard goes away while `db` lives on).
    package func uninstall(from db: SQLiteDatabase) {
        sqlite3_progress_handler(db.handle, 0, nil, nil)
        sqlite3_set_authorizer(db.handle, nil, nil)
    }



    /// A reader of one shard for a user's query: only reading, within this guard's bounds.
    package func reader(for shard: ShardID, in store: ShardStore) throws -> ShardReader {
        try reader(for: shard, in: store.directory)
    }

    /// The same for a worker thread, which has the data directory but not the store.
    func reader(for shard: ShardID, in directory: URL) throws -> ShardReader {
        let reader = try ShardReader(path: ShardStore.currentPath(of: shard, in: directory).path, reusable: true)
        install(on: reader.db)
        return reader
    }

    private func shouldStop() -> Bool {
        if cancelled.load(ordering: .relaxed) || limits.cancellation?.isCancelled == true { return stop("it was cancelled (the client went away, or flowrec is stopping)") }
        if let deadline, Date() > deadline {
            return stop("it ran past its \(Self.seconds(limits.deadlineSeconds ?? 0)) deadline; narrow the range or the filter, or raise the timeout")
        }
        if sqlite3_memory_used() > limits.maxMemoryBytes {
            return stop("it used more than \(limits.maxMemoryBytes >> 20) MiB of memory (a large sort, DISTINCT or recursive CTE); narrow it")
        }
        return false
    }

    private func stop(_ why: String) -> Bool {
        reason.withLock { if $0 == nil { $0 = why } }
        return true
    }

    /// The error for a statement this guard interrupted, or nil if it did not.
    package func interruption() -> QueryError? {
        reason.withLock { $0 }.map { QueryError(.cancelled, "the query was stopped: \($0)") }
    }

    /// The error to report for `error`, a statement's failure: the guard's own reason
    /// when it stopped the statement, else `QueryError.fromStatement`.
    package func explain(_ error: any Error, _ prefix: String, check: String = "") -> QueryError {
        if let mine = interruption() { return mine }
        if let what = refused.withLock({ $0 }), (error as? SQLiteError)?.kind == .invalidStatement || (error as? SQLiteError)?.kind == .notAuthorized {
            return QueryError(.notAllowed, "\(prefix): \(what)", cause: error)
        }
        return QueryError.fromStatement(error, prefix, check: check)
    }

    private static func seconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s) }
}
