import StorageKit
import FlowModel
import Foundation
package import ShardStore

/// Exports the flows of a time range for offline analysis.
///
/// - JSON lines: each flow re-encoded as NetObserv wrote it (unknown fields included),
///   so the export equals the ingested records.
/// - SQLite: one plain file with a flat `flows` table, NetObserv's column names and
///   explicit types (INTEGER is 64-bit for sqlite3, DuckDB and ClickHouse's `sqlite()`).
package struct FlowExporter {
    package let store: ShardStore

    package init(store: ShardStore) { self.store = store }

    /// Writes every flow of the range as one JSON object per line to `write`; returns the count.
    @discardableResult
    package func exportJSONLines(fromMs: Int64?, toMs: Int64?, progress: (Int) -> Void = { _ in },
                                write: ([UInt8]) throws -> Void) throws -> Int {
        let encoder = FlowEncoder()
        let end = FlowSchema.requiredField
        var count = 0
        var line: [UInt8] = []
        for shard in try store.shards(overlappingFromMs: fromMs, toMs: toMs) {
            try store.forEachFlow(in: shard.id) { flow in
                if let t = flow.integer(end) {
                    if let fromMs, t < fromMs { return }
                    if let toMs, t >= toMs { return }
                }
                line.removeAll(keepingCapacity: true)
                encoder.encode(flow, into: &line)
                line.append(UInt8(ascii: "\n"))
                try write(line)
                count += 1
                if count % 100_000 == 0 { progress(count) }
            }
        }
        return count
    }

    /// Writes the range into a new SQLite file at `path` with a flat `flows` table.
    @discardableResult
    package func exportSQLite(to path: String, fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil,
                             progress: (Int) -> Void = { _ in }) throws -> Int {
        if FileManager.default.fileExists(atPath: path) {
            throw QueryError(.outputFailed, "\(path) already exists; remove it or choose another --output")
        }
        let columns = FlowSchema.fields.map { "\"\($0.name)\" \($0.kind.isTextStored ? "TEXT" : "INTEGER")" }
            + ShardSchema.bookkeepingColumns.map { "\"\($0.name)\" TEXT" }
        let out = try SQLiteDatabase(path: path)
        try out.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=65536;")
        try out.execute("CREATE TABLE flows (\n  " + columns.joined(separator: ",\n  ") + "\n)")
        var conditions: [String] = []
        if let fromMs { conditions.append("TimeFlowEndMs >= \(fromMs)") }
        if let toMs { conditions.append("TimeFlowEndMs < \(toMs)") }
        if let filter = try WhereClause(whereSQL) { conditions.append("(\(filter.text))") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        var total = 0
        for shard in try store.shards(overlappingFromMs: fromMs, toMs: toMs) {
            let attach = try out.prepare("ATTACH DATABASE ?1 AS shard")
            attach.bind(1, store.readURI(for: shard.id))
            try attach.step()
            let copied: Result<Void, SQLiteError> = Result { () throws(SQLiteError) in
                try out.execute("BEGIN; INSERT INTO main.flows SELECT * FROM shard.flows\(filter); COMMIT;")
            }
            if case .failure(let error) = copied {
                try? out.execute("ROLLBACK")
                try? out.execute("DETACH DATABASE shard")
                throw QueryError(error.isDiskFull ? .outputFailed : .unreadableShard, "export failed on shard \(shard.id): \(error.message)", shard: shard.id, cause: error)
            }
            try out.execute("DETACH DATABASE shard")
            total = Int(try out.scalarInteger("SELECT count(*) FROM main.flows") ?? 0)
            progress(total)
        }
        try out.execute("CREATE INDEX flows_by_time ON flows (TimeFlowEndMs)")
        return total
    }
}
