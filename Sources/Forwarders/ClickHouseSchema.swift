import FlowModel
import Foundation

/// The ClickHouse table flowrec replicates into, derived from `FlowSchema.fields`.
///
/// Modern servers get LowCardinality strings, per-column codecs, a daily partition and a
/// sort key chosen for flow queries (namespace and owner pairs, then time). Old servers
/// (such as Debian's 18.16) get a compatible variant without codecs and LowCardinality.
/// `migrations/clickhouse/` holds both, written by `flowrec schema --write-migrations`.
public enum ClickHouseSchema {
    public enum Dialect: String, Sendable, CaseIterable {
        case modern
        /// ClickHouse before 19.x: no codecs, no LowCardinality by default.
        case compatible
    }

    /// Sort-key columns: never NULL in ClickHouse (an absent value is stored as '').
    public static let sortKey = ["SrcK8S_Namespace", "DstK8S_Namespace", "SrcK8S_OwnerName", "DstK8S_OwnerName", "TimeFlowEndMs"]

    /// `CREATE TABLE` for the flows table.
    public static func createTable(database: String, table: String, dialect: Dialect, ttlDays: Int? = nil) -> String {
        var columns: [String] = []
        for spec in FlowSchema.fields {
            columns.append("    `\(spec.name)` \(columnType(spec, dialect: dialect))")
        }
        columns.append("    `_extras` \(dialect == .modern ? "Nullable(String) CODEC(ZSTD(3))" : "Nullable(String)")")
        columns.append("    `_shard` \(dialect == .modern ? "LowCardinality(String)" : "String")")
        var sql = "CREATE TABLE IF NOT EXISTS `\(database)`.`\(table)`\n(\n" + columns.joined(separator: ",\n") + "\n)\n"
        switch dialect {
        case .modern:
            sql += "ENGINE = MergeTree\n"
            sql += "PARTITION BY toYYYYMMDD(toDateTime(intDiv(TimeFlowEndMs, 1000)))\n"
            sql += "ORDER BY (\(sortKey.joined(separator: ", ")))\n"
            if let ttlDays { sql += "TTL toDateTime(intDiv(TimeFlowEndMs, 1000)) + INTERVAL \(ttlDays) DAY\n" }
            sql += "SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000"
        case .compatible:
            sql += "ENGINE = MergeTree\n"
            sql += "PARTITION BY toYYYYMMDD(toDateTime(intDiv(TimeFlowEndMs, 1000)))\n"
            sql += "ORDER BY (\(sortKey.joined(separator: ", ")))\n"
            sql += "SETTINGS index_granularity = 8192"
        }
        return sql
    }

    static func columnType(_ spec: FieldSpec, dialect: Dialect) -> String {
        let inKey = sortKey.contains(spec.name)
        var base = spec.clickHouseType
        if dialect == .compatible { base = base.replacingLowCardinality() }
        let isArray = base.hasPrefix("Array(")
        let type: String
        if spec.kind == .objectArray || spec.kind == .tcpFlags || spec.kind == .directionArray {
            // Kept as the JSON text flowrec stores, so every spelling NetObserv used survives.
            type = "Nullable(String)"
        } else if inKey || isArray {
            type = base
        } else if base.hasPrefix("LowCardinality(") {
            type = "LowCardinality(Nullable(" + base.dropFirst("LowCardinality(".count).dropLast() + "))"
        } else {
            type = "Nullable(\(base))"
        }
        guard dialect == .modern else { return type }
        let codec: String
        if spec.name.hasPrefix("Time") && spec.kind == .integer {
            codec = "CODEC(Delta, ZSTD(3))"
        } else {
            codec = "CODEC(ZSTD(3))"
        }
        return "\(type) \(codec)"
    }
}

extension String {
    /// `LowCardinality(T)` → `T`, for servers that lack it.
    func replacingLowCardinality() -> String {
        var s = self
        while let r = s.range(of: "LowCardinality(") {
            // Remove the wrapper and its matching parenthesis.
            var depth = 1
            var i = r.upperBound
            while i < s.endIndex, depth > 0 {
                if s[i] == "(" { depth += 1 } else if s[i] == ")" { depth -= 1 }
                if depth > 0 { i = s.index(after: i) }
            }
            s = String(s[..<r.lowerBound]) + String(s[r.upperBound..<i]) + String(s[s.index(after: i)...])
        }
        return s
    }
}

/// `migrations/clickhouse/`: the flows table in both dialects, for people and tools.
public enum ClickHouseMigrationFiles {
    public static var all: [(path: String, text: String)] {
        ClickHouseSchema.Dialect.allCases.map { dialect in
            ("migrations/clickhouse/0001_flows.\(dialect.rawValue).sql",
             "-- flowrec ClickHouse table (\(dialect.rawValue) servers), generated from FlowSchema.fields.\n"
                + ClickHouseSchema.createTable(database: "netobserv", table: "flows", dialect: dialect) + ";\n")
        }
    }
}
