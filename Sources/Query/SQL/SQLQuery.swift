import StorageKit
package import ShardStore

/// `flowrec sql`: one read-only statement over a `flows` relation spanning every shard
/// of a range (`FlowsAcrossShards`), results as `QueryValue`s.
package struct SQLQuery {
    package let store: ShardStore
    package var fromMs: Int64?
    package var toMs: Int64?
    /// Whether merged shards may answer from their column blocks (`ColumnBlockScan`);
    /// off only to measure what the rows alone cost (the long-range benchmark).
    package var readsColumnBlocks = true

    package init(store: ShardStore, fromMs: Int64? = nil, toMs: Int64? = nil) {
        self.store = store
        self.fromMs = fromMs
        self.toMs = toMs
    }

    /// Runs `sql`; `columns` hears the result's column names first, then `row` each
    /// row (return false to stop). Returns how many shards were opened. Damaged shards
    /// are skipped and recorded in `unreadable` (pass one to learn of them); what the
    /// scans read is added to `statistics` (`--explain`).
    @discardableResult
    package func run(_ sql: String, limits: QueryLimits = .commandLine, unreadable: UnreadableShards? = nil,
                     statistics: ScanStatistics = ScanStatistics(),
                     columns: ([String]) -> Void, row: ([QueryValue]) throws -> Bool) throws -> Int {
        let connection = try FlowsAcrossShards(store: store, fromMs: fromMs, toMs: toMs, statistics: statistics,
                                               readsColumnBlocks: readsColumnBlocks)
        defer { if let unreadable { unreadable.absorb(connection.unreadable) } }
        var width: Int32 = 0
        var unsigned = QueryValue.UnsignedColumns.none
        do {
            try connection.query(sql, limits: limits, columns: { names in
                width = Int32(names.count)
                unsigned = QueryValue.UnsignedColumns(names: names)
                columns(names)
            }) { statement in
                let values = QueryValue.row(of: statement, columns: width, unsigned: unsigned)
                return try row(values)
            }
        } catch {
            throw QueryError.fromStatement(error, "the statement is not valid SQL over the flows table")
        }
        return connection.shardsOpened
    }
}
