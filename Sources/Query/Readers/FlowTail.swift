import StorageKit
package import ShardStore
import Foundation

/// `flowrec tail`: the newest stored flows, then (following) each flow as it is stored.
///
/// New flows land in active shards, appended in rowid order a batch at a time (each
/// batch sorted in the seal order), so following is reading each active shard past the
/// last rowid seen, once per poll, printed by end time. A shard that gets sealed
/// between two polls may have taken a last batch after the previous poll: that is
/// reported (with the `query` that shows those flows), never skipped silently.
package final class FlowTail {
    package let store: ShardStore
    package var fields: [String]
    package var whereSQL: String?
    /// Active shards being followed: the last rowid printed of each.
    private var seen: [ShardID: Int64] = [:]
    private var readers: [ShardID: ShardReader] = [:]
    /// Only reading, no deadline (a tail runs until stopped), the other bounds as usual.
    private let tailGuard = QueryGuard(QueryLimits(deadlineSeconds: nil))

    package init(store: ShardStore, fields: [String], whereSQL: String?) throws {
        self.store = store
        self.fields = fields
        self.whereSQL = try WhereClause(whereSQL)?.text
    }

    /// The last `count` matching flows, oldest first; following continues after them.
    /// They come from the active shards (the newest stored: the last `count` rows stored,
    /// so newest to within one write batch, printed by end time), and when those hold fewer,
    /// from the sealed shards before them, newest window first and newest end time
    /// first within a shard: a tail just after a seal still shows `count` flows.
    package func last(_ count: Int, row: ([QueryValue]) throws -> Void) throws {
        var newest: [[QueryValue]] = []
        let shards = try store.shards()
        for shard in shards where shard.state == .active {  // oldest window first
            let reader = try reader(for: shard.id)
            let end = try reader.lastRowID()
            if count > 0 {
                try read(reader, after: 0, through: end, limit: count) { newest.append($0) }
            }
            seen[shard.id] = end
        }
        // Sealed shards, newest window first, until `count` flows are found.
        var older: [[[QueryValue]]] = []
        var missing = count - min(count, newest.count)
        let sealed = shards.filter { $0.state == .sealed }.sorted { ($0.id.windowEndMs, $0.id.part) > ($1.id.windowEndMs, $1.id.part) }
        for shard in sealed where missing > 0 {
            var rows: [[QueryValue]] = []
            try readNewest(try tailGuard.reader(for: shard.id, in: store), limit: missing) { rows.append($0) }
            missing -= rows.count
            older.append(rows)
        }
        for rows in older.reversed() { for values in rows { try row(values) } }
        for values in newest.suffix(count) { try row(values) }
    }

    /// One poll: prints what was stored since the previous one. Returns notices about
    /// flows that were sealed before they could be read.
    @discardableResult
    package func poll(row: ([QueryValue]) throws -> Void) throws -> [String] {
        var notices: [String] = []
        let shards = try store.shards()
        let active = shards.filter { $0.state == .active }
        for shard in active {
            let reader = try reader(for: shard.id)
            let after = seen[shard.id] ?? 0
            let end = try reader.lastRowID()
            if end > after { try read(reader, after: after, through: end, limit: nil, row: row) }
            seen[shard.id] = end
        }
        // Followed shards that are no longer active: sealed (or deleted) since the last poll.
        let activeIDs = Set(active.map(\.id))
        for (id, printed) in seen where !activeIDs.contains(id) {
            if let sealed = shards.first(where: { $0.id == id }), sealed.rowCount > printed {
                notices.append("\(sealed.rowCount - printed) flows of shard \(id) were stored just before it was sealed and are not shown; `flowrec query --from \(id.windowStartMs) --to \(id.windowEndMs)` shows the window")
            }
            seen[id] = nil
            readers[id] = nil
        }
        return notices
    }

    private func reader(for id: ShardID) throws -> ShardReader {
        if let reader = readers[id] { return reader }
        let reader = try tailGuard.reader(for: id, in: store)
        readers[id] = reader
        return reader
    }

    private func readNewest(_ reader: ShardReader, limit: Int, row: ([QueryValue]) throws -> Void) throws {
        try reading(row) { emit in try reader.forEachNewestRow(fields: fields, whereSQL: whereSQL, limit: limit, emit) }
    }

    private func read(_ reader: ShardReader, after: Int64, through: Int64, limit: Int?, row: ([QueryValue]) throws -> Void) throws {
        try reading(row) { emit in
            try reader.forEachStoredRow(after: after, through: through, fields: fields, whereSQL: whereSQL, newestFirstLimit: limit, emit)
        }
    }

    /// Runs `statements`, turning each row it emits into `fields`' values for `row`; an
    /// SQLite error there is the user's filter or field list.
    private func reading(_ row: ([QueryValue]) throws -> Void,
                         _ statements: (_ emit: (SQLiteStatement) throws -> Void) throws -> Void) throws {
        let width = Int32(fields.count)
        let unsigned = QueryValue.UnsignedColumns(names: fields)
        do {
            // Two non-escaping closures, one calling the other: fine, as neither is kept.
            try withoutActuallyEscaping(row) { row in
                try statements { s in try row(QueryValue.row(of: s, columns: width, unsigned: unsigned)) }
            }
        } catch {
            throw QueryError.fromStatement(error, "the filter is not valid SQL over the flows table", check: "Check --where and --fields.")
        }
    }
}
