public import ShardStore

/// Top-N groups by bytes, packets or flows over a time range, from raw shards.
///
/// Each overlapping shard aggregates inside SQLite (`GROUP BY` on the requested fields);
/// the per-shard sums are merged here, so memory grows with the number of distinct
/// groups, not with the number of flows. Per-minute rollups (a later issue) will answer
/// long ranges without opening raw shards.
public struct TopTalkers {
    public enum Metric: String, Sendable, CaseIterable {
        case bytes, packets, flows

        var sql: String {
            switch self {
            case .bytes: "sum(Bytes)"
            case .packets: "sum(Packets)"
            case .flows: "count(*)"
            }
        }
    }

    public struct Row: Sendable, Equatable {
        /// Values of the grouping fields ("" where a flow has none).
        public let group: [String]
        public var bytes: Int64
        public var packets: Int64
        public var flows: Int64
    }

    public let store: ShardStore

    public init(store: ShardStore) { self.store = store }

    public func run(by fields: [String], metric: Metric, fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil,
                    limit: Int = 10) throws -> [Row] {
        guard !fields.isEmpty else { throw QueryError("name at least one field to group by, e.g. --by SrcK8S_Namespace,DstK8S_Namespace") }
        for name in fields where !ShardSchemaColumns.fieldNames.contains(name) {
            throw QueryError("unknown field \(name); fields are NetObserv's names, e.g. SrcK8S_Namespace (see `flowrec schema`)")
        }
        let keys = fields.map { "coalesce(\"\($0)\", '')" }
        var conditions: [String] = []
        if fromMs != nil { conditions.append("TimeFlowEndMs >= ?1") }
        if toMs != nil { conditions.append("TimeFlowEndMs < ?2") }
        if let whereSQL, !whereSQL.isEmpty { conditions.append("(\(whereSQL))") }
        let sql = "SELECT \(keys.joined(separator: ", ")), total(Bytes), total(Packets), count(*) FROM flows"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " GROUP BY \((1...fields.count).map(String.init).joined(separator: ", "))"
        var merged: [[String]: Row] = [:]
        for shard in try store.shards(overlappingFromMs: fromMs, toMs: toMs) {
            do {
                try store.reader(for: shard.id).query(sql, bind: { s in
                    if let fromMs { s.bind(1, fromMs) }
                    if let toMs { s.bind(2, toMs) }
                }) { s in
                    let n = Int32(fields.count)
                    let group = (0..<n).map { s.text($0) ?? "" }
                    let bytes = Int64(s.double(n)), packets = Int64(s.double(n + 1)), flows = s.integer(n + 2)
                    if var row = merged[group] {
                        row.bytes += bytes
                        row.packets += packets
                        row.flows += flows
                        merged[group] = row
                    } else {
                        merged[group] = Row(group: group, bytes: bytes, packets: packets, flows: flows)
                    }
                }
            } catch let error as SQLiteError where error.sql != nil {
                throw QueryError("the filter is not valid SQL over the flows table: \(error.message)")
            }
        }
        let value: (Row) -> Int64 = { row in
            switch metric {
            case .bytes: row.bytes
            case .packets: row.packets
            case .flows: row.flows
            }
        }
        return merged.values.sorted { value($0) != value($1) ? value($0) > value($1) : $0.group.lexicographicallyPrecedes($1.group) }
            .prefix(limit).map { $0 }
    }
}
