import CSQLite
import Foundation
import StorageKit
import Synchronization

/// Read-only connections to sealed shards, kept open between queries.
///
/// Opening a sealed shard costs more than a needle query spends in it: SQLite parses the
/// whole schema (the `flows` view's 116 expressions above all) before the first
/// statement, a quarter of a namespace-pair count over 30 merged days. Sealed shards
/// never change, so the connection a query is done with is kept for the next one, as
/// MergeTree keeps its parts' indexes in memory. Only query paths ask for it
/// (`ShardReader(path:reusable:)`); sealing, merging and checking always open afresh.
///
/// A kept connection holds its file open, and a deleted file's space is not given back
/// while it does. So: deleting or replacing a sealed file in this process calls
/// `forget(path:)` first; a connection is handed out or kept only while its path still
/// names the file it opened (device, inode, size, modification time); and one idle for
/// `idleSeconds` is closed at the next hand-out or return.
final class ReadConnectionPool: Sendable {
    static let shared = ReadConnectionPool()

    /// An idle connection and what it was opened on.
    struct Kept: @unchecked Sendable {  // the connection is used by one reader at a time: the pool hands it to one taker
        let db: SQLiteDatabase
        let timeEncoding: ShardSchema.TimeEncoding
        let identity: FileIdentity
        let since: Double
    }

    /// Idle connections in all; past it the longest idle is closed.
    let capacity: Int
    let idleSeconds: Double
    private let idle = Mutex<[String: [Kept]]>([:])

    init(capacity: Int = 64, idleSeconds: Double = 5) {
        self.capacity = capacity
        self.idleSeconds = idleSeconds
    }

    /// An idle connection to `path` opened on the file it names now, if one is kept.
    func take(_ path: String, identity: FileIdentity) -> Kept? {
        var closing: [Kept] = []
        defer { closing.removeAll() }  // closed outside the lock
        return idle.withLock { idle in
            closing = Self.expire(&idle, now: monotonicSeconds(), idleSeconds: idleSeconds)
            guard var kept = idle[path] else { return nil }
            // Connections to an older version of the file are of no use any more.
            closing += kept.filter { $0.identity != identity }
            kept.removeAll { $0.identity != identity }
            let taken = kept.popLast()
            idle[path] = kept.isEmpty ? nil : kept
            return taken
        }
    }

    /// Keeps `db` for the next reader of `path`, unless the path names another file now.
    func give(_ path: String, db: SQLiteDatabase, timeEncoding: ShardSchema.TimeEncoding, identity: FileIdentity) {
        var closing: [Kept] = []
        defer { closing.removeAll() }
        guard FileIdentity(path: path) == identity else { return }
        let now = monotonicSeconds()
        idle.withLock { idle in
            closing = Self.expire(&idle, now: now, idleSeconds: idleSeconds)
            idle[path, default: []].append(Kept(db: db, timeEncoding: timeEncoding, identity: identity, since: now))
            let count = idle.values.reduce(0) { $0 + $1.count }
            if count > capacity, let oldest = idle.min(by: { ($0.value.first?.since ?? .infinity) < ($1.value.first?.since ?? .infinity) }) {
                closing.append(oldest.value[0])
                idle[oldest.key] = oldest.value.count == 1 ? nil : Array(oldest.value.dropFirst())
            }
        }
    }

    /// Closes the idle connections to `path` (before the file is deleted or replaced).
    func forget(path: String) {
        var closing: [Kept] = []
        defer { closing.removeAll() }
        idle.withLock { idle in closing = idle.removeValue(forKey: path) ?? [] }
    }

    /// Idle connections now (for tests and the metrics).
    var idleCount: Int { idle.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    private static func expire(_ idle: inout [String: [Kept]], now: Double, idleSeconds: Double) -> [Kept] {
        var expired: [Kept] = []
        for (path, kept) in idle {
            let fresh = kept.filter { now - $0.since < idleSeconds }
            guard fresh.count != kept.count else { continue }
            expired += kept.filter { now - $0.since >= idleSeconds }
            idle[path] = fresh.isEmpty ? nil : fresh
        }
        return expired
    }
}
