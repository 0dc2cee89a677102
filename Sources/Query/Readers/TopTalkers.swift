import StorageKit
package import ShardStore

/// Top-N groups by bytes, packets or flows over a time range.
///
/// When every grouping field is a rollup dimension and there is no filter, the whole
/// minutes covered by rollups are answered from `rollups.sqlite` (days, hours, then
/// minutes) and only the edges and the not yet sealed windows from raw shards. Raw
/// shards aggregate inside SQLite (`GROUP BY` per shard) and the sums are merged here,
/// so memory grows with the number of groups, not of flows.
package struct TopTalkers {
    package enum Metric: String, Sendable, CaseIterable {
        case bytes, packets, flows

        var sql: String {
            switch self {
            case .bytes: "sum(Bytes)"
            case .packets: "sum(Packets)"
            case .flows: "count(*)"
            }
        }
    }

    package struct Row: Sendable, Equatable {
        /// Values of the grouping fields ("" where a flow has none).
        package let group: [String]
        package var bytes: Int64
        package var packets: Int64
        package var flows: Int64
    }

    package let store: ShardStore
    package var limits: QueryLimits

    package init(store: ShardStore, limits: QueryLimits = .commandLine) {
        self.store = store
        self.limits = limits
    }

    package func run(by fields: [String], metric: Metric, fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil,
                    limit: Int = 10) throws -> [Row] {
        try answer(by: fields, metric: metric, fromMs: fromMs, toMs: toMs, whereSQL: whereSQL, limit: limit).rows
    }

    /// The top rows, and the span answered from rollups (nil: all from raw shards).
    package func answer(by fields: [String], metric: Metric, fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil,
                       limit: Int = 10) throws -> (rows: [Row], fromRollups: (fromMs: Int64, toMs: Int64)?) {
        guard !fields.isEmpty else { throw QueryError(.invalidArgument, "name at least one field to group by, e.g. --by SrcK8S_Namespace,DstK8S_Namespace") }
        let rollups = (whereSQL ?? "").isEmpty && RollupReader.covers(fields) ? try RollupReader(store: store) : nil
        for name in fields where !ShardSchemaColumns.fieldNames.contains(name) && rollups == nil {
            throw QueryError(.unknownField, "unknown field \(name); fields are NetObserv's names, e.g. SrcK8S_Namespace (see `flowrec schema`)")
        }
        var merged: [[String]: Row] = [:]
        func add(_ group: [String], bytes: Int64, packets: Int64, flows: Int64) {
            if var row = merged[group] {
                row.bytes += bytes
                row.packets += packets
                row.flows += flows
                merged[group] = row
            } else {
                merged[group] = Row(group: group, bytes: bytes, packets: packets, flows: flows)
            }
        }
        // Rollups answer the whole minutes they cover; raw shards the rest of the range.
        let span = try rollups.flatMap { try $0.span(of: store, fromMs: fromMs, toMs: toMs) }
        if let rollups, let span {
            for row in try rollups.totals(by: fields, fromMs: span.fromMs, toMs: span.toMs) {
                add(row.group, bytes: row.bytes, packets: row.packets, flows: row.flows)
            }
            if fromMs.map({ $0 < span.fromMs }) ?? true {
                try raw(by: fields, fromMs: fromMs, toMs: span.fromMs, whereSQL: whereSQL, add)
            }
            if toMs.map({ $0 > span.toMs }) ?? true {
                try raw(by: fields, fromMs: span.toMs, toMs: toMs, whereSQL: whereSQL, add)
            }
        } else {
            try raw(by: fields, fromMs: fromMs, toMs: toMs, whereSQL: whereSQL, add)
        }
        let value: (Row) -> Int64 = { row in
            switch metric {
            case .bytes: row.bytes
            case .packets: row.packets
            case .flows: row.flows
            }
        }
        let rows = merged.values.sorted { value($0) != value($1) ? value($0) > value($1) : $0.group.lexicographicallyPrecedes($1.group) }
            .prefix(limit).map { $0 }
        return (rows, span)
    }

    /// Per-shard GROUP BY over the flows of [fromMs, toMs), merged through `add`.
    private func raw(by fields: [String], fromMs: Int64?, toMs: Int64?, whereSQL: String?,
                     _ add: ([String], _ bytes: Int64, _ packets: Int64, _ flows: Int64) -> Void) throws {
        let keys = fields.map { "coalesce(\(RollupSchema.flowsExpression($0)), '')" }
        var conditions: [String] = []
        if fromMs != nil { conditions.append("TimeFlowEndMs >= ?1") }
        if toMs != nil { conditions.append("TimeFlowEndMs < ?2") }
        let filter = try WhereClause(whereSQL)
        if let filter { conditions.append("(\(filter.text))") }
        let clauses = (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " GROUP BY \((1...fields.count).map(String.init).joined(separator: ", "))"
        let guarding = QueryGuard(limits)
        let planner = ScanPlanner(store: store)
        do {
            let skip = try planner.skipFilter(where: filter, fromMs: fromMs, toMs: toMs)
            try planner.forEachShard(skip, guarding: guarding) { _, reader, source in
                let sql = "SELECT \(keys.joined(separator: ", ")), sum(Bytes), sum(Packets), count(*) FROM \(source)" + clauses
                try reader.query(sql, bind: { s in
                    if let fromMs { s.bind(1, fromMs) }
                    if let toMs { s.bind(2, toMs) }
                }) { s in
                    let n = Int32(fields.count)
                    add((0..<n).map { s.text($0) ?? "" }, s.integer(n), s.integer(n + 1), s.integer(n + 2))
                }
                return true
            }
        } catch {
            throw guarding.explain(error, "the filter is not valid SQL over the flows table")
        }
    }
}
