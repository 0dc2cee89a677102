package import FlowModel
import Foundation

/// The ClickHouse table flowrec replicates into, derived from `FlowSchema.fields`.
///
/// Modern servers get LowCardinality strings, per-column codecs, a daily partition and a
/// sort key chosen for flow queries (namespace and owner pairs, then time). Old servers
/// (such as Debian's 18.16) get a compatible variant without codecs and LowCardinality.
/// `migrations/clickhouse/` holds both, written by `flowrec schema --write-migrations`.
package enum ClickHouseSchema {
    package enum Dialect: String, Sendable, CaseIterable {
        case modern
        /// ClickHouse before 19.x: no codecs, no LowCardinality by default.
        case compatible
    }

    /// Sort-key columns: never NULL in ClickHouse (an absent value is stored as '').
    package static let sortKey = ["SrcK8S_Namespace", "DstK8S_Namespace", "SrcK8S_OwnerName", "DstK8S_OwnerName", "TimeFlowEndMs"]

    /// One column of the flows table.
    package struct Column: Sendable, Equatable {
        package let name: String
        /// The type in the table's DDL (for this dialect).
        package let type: String
        /// `CODEC(...)` on modern servers, empty otherwise.
        package let codec: String
        /// The field it holds; nil for flowrec's own `_extras` and `_shard`.
        package let field: FieldID?

        /// The type the forwarder's payload declares: LowCardinality is only a storage
        /// choice of the table, RowBinary and Native (with
        /// `low_cardinality_allow_in_native_format=0`) carry the plain type.
        package var payloadType: String { type.replacingLowCardinality() }
    }

    /// The flows table's columns, in the order the payload writes them: every field of
    /// `FlowSchema.fields`, then `_extras` (unknown fields and values that do not fit
    /// their column, as a JSON object) and `_shard` (the shard id a row came from).
    package static func columns(dialect: Dialect) -> [Column] {
        var columns = FlowSchema.fields.indices.map { index in
            let spec = FlowSchema.fields[index]
            let (type, codec) = columnType(spec, dialect: dialect)
            return Column(name: spec.name, type: type, codec: codec, field: FieldID(rawValue: UInt8(index)))
        }
        columns.append(Column(name: "_extras", type: "Nullable(String)", codec: dialect == .modern ? "CODEC(ZSTD(3))" : "", field: nil))
        columns.append(Column(name: "_shard", type: dialect == .modern ? "LowCardinality(String)" : "String", codec: "", field: nil))
        return columns
    }

    /// `CREATE TABLE` for the flows table.
    package static func createTable(database: String, table: String, dialect: Dialect, ttlDays: Int? = nil) -> String {
        let columns = columns(dialect: dialect).map { column in
            "    `\(column.name)` \(column.type)" + (column.codec.isEmpty ? "" : " \(column.codec)")
        }
        var sql = "CREATE TABLE IF NOT EXISTS `\(database)`.`\(table)`\n(\n" + columns.joined(separator: ",\n") + "\n)\n"
        sql += "ENGINE = MergeTree\n"
        sql += "PARTITION BY toYYYYMMDD(toDateTime(intDiv(TimeFlowEndMs, 1000)))\n"
        sql += "ORDER BY (\(sortKey.joined(separator: ", ")))\n"
        switch dialect {
        case .modern:
            if let ttlDays { sql += "TTL toDateTime(intDiv(TimeFlowEndMs, 1000)) + INTERVAL \(ttlDays) DAY\n" }
            // Lets `insert_deduplication_token` drop a retried chunk on a non-replicated table.
            sql += "SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000"
        case .compatible:
            sql += "SETTINGS index_granularity = 8192"
        }
        return sql
    }

    static func columnType(_ spec: FieldSpec, dialect: Dialect) -> (type: String, codec: String) {
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
        guard dialect == .modern else { return (type, "") }
        if spec.name.hasPrefix("Time") && spec.kind == .integer { return (type, "CODEC(Delta, ZSTD(3))") }
        return (type, "CODEC(ZSTD(3))")
    }
}

extension String {
    /// `LowCardinality(T)` → `T`, for servers that lack it.
    package func replacingLowCardinality() -> String {
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
package enum ClickHouseMigrationFiles {
    package static var all: [(path: String, text: String)] {
        ClickHouseSchema.Dialect.allCases.map { dialect in
            ("migrations/clickhouse/0001_flows.\(dialect.rawValue).sql",
             "-- flowrec ClickHouse table (\(dialect.rawValue) servers), generated from FlowSchema.fields.\n"
                + ClickHouseSchema.createTable(database: "netobserv", table: "flows", dialect: dialect) + ";\n")
        }
    }
}
