import StorageKit
import Foundation
package import ShardStore

/// A query over flows: a time range, a filter in SQL syntax on NetObserv's field names,
/// the fields to return, and a row limit.
package struct FlowQuery: Sendable {
    /// Inclusive start and exclusive end on `TimeFlowEndMs`, epoch milliseconds.
    package var fromMs: Int64?
    package var toMs: Int64?
    /// An SQL boolean expression, e.g. `SrcK8S_Namespace = 'shop' AND DstPort = 443`.
    package var whereSQL: String?
    /// Fields to return; empty means every field.
    package var fields: [String] = []
    package var limit: Int?

    package init() {}
}

/// Runs a `FlowQuery` over the shards of a store, oldest first, streaming rows.
///
/// Only shards whose stored time range overlaps the query are opened (the catalog knows
/// each shard's min and max `TimeFlowEndMs`); each is opened read-only (sealed ones in
/// place), so no statement can change stored data. Rows arrive shard by shard, in time
/// order within a shard, and the run stops as soon as `limit` rows were produced.
package struct FlowQueryRunner {
    package let store: ShardStore
    package var limits: QueryLimits
    /// Damaged shards skipped by the runs (the answer's warning names them).
    package let unreadable = UnreadableShards()
    /// What the runs read (`--explain`).
    package let statistics = ScanStatistics()

    package init(store: ShardStore, limits: QueryLimits = .commandLine) {
        self.store = store
        self.limits = limits
    }

    /// Column names of the result, in order.
    package func columns(for query: FlowQuery) -> [String] {
        query.fields.isEmpty ? ShardSchemaColumns.fieldNames : query.fields
    }

    /// Calls `row` with each result row's values (nil for SQL NULL); return false to stop.
    package func run(_ query: FlowQuery, row: ([QueryValue]) throws -> Bool) throws {
        let columns = columns(for: query)
        for name in columns where !ShardSchemaColumns.fieldNames.contains(name) {
            throw QueryError(.unknownField, "unknown field \(name); fields are NetObserv's names, e.g. SrcK8S_Namespace, Bytes (see `flowrec schema`)")
        }
        var remaining = query.limit ?? .max
        guard remaining > 0 else { return }
        let selected = columns.map { "\"\($0)\"" }.joined(separator: ", ")
        var conditions: [String] = []
        if query.fromMs != nil { conditions.append("TimeFlowEndMs >= ?1") }
        if query.toMs != nil { conditions.append("TimeFlowEndMs < ?2") }
        let filter = try WhereClause(query.whereSQL)
        if let filter { conditions.append("(\(filter.text))") }
        let clauses = (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) + " ORDER BY TimeFlowEndMs LIMIT ?3"
        let unsigned = QueryValue.UnsignedColumns(names: columns)
        let guarding = QueryGuard(limits)
        // The filter's time bounds and `field = value` terms, as SQLite pushes them into
        // `flowrec sql`'s table: shards and granules that cannot match are skipped.
        let planner = ScanPlanner(store: store, statistics: statistics)
        let skip: SkipFilter
        do {
            skip = try planner.skipFilter(where: filter, fromMs: query.fromMs, toMs: query.toMs)
        } catch {
            throw guarding.explain(error, "the query is not valid SQL over the flows table", check: "Check --where and --fields.")
        }
        try planner.forEachShard(skip, guarding: guarding, unreadable: unreadable) { shard, reader, source in
            let sql = "SELECT \(selected) FROM \(source)" + clauses
            var stop = false
            do {
                try reader.query(sql, bind: { statement in
                    if let from = query.fromMs { statement.bind(1, from) }
                    if let to = query.toMs { statement.bind(2, to) }
                    statement.bind(3, Int64(min(remaining, Int(Int32.max))))
                }) { statement in
                    guard !stop else { return }
                    let values = QueryValue.row(of: statement, columns: Int32(columns.count), unsigned: unsigned)
                    remaining -= 1
                    if try !row(values) || remaining == 0 { stop = true }
                }
            } catch where guarding.interruption() == nil && unreadable.skip(shard.id, after: error) {
                return true
            } catch {
                throw guarding.explain(error, "the query is not valid SQL over the flows table", check: "Check --where and --fields.")
            }
            return !(stop || remaining == 0)
        }
    }
}

/// The flows view's column names (NetObserv's field names), in schema order.
package enum ShardSchemaColumns {
    package static let fieldNames: [String] = ShardSchema.viewFieldNames
}
