import FlowModel

/// Per-minute, per-hour and per-day aggregates of sealed shards, in `rollups.sqlite`,
/// so top talkers and time series over weeks read thousands of rows instead of billions
/// of flows, and outlive the raw shards (they have their own, longer retention).
///
/// The sealer aggregates each shard while it copies it (no extra pass over the rows) and
/// adds the sums to every tier in one transaction that also records the shard in
/// `rollup_shards`; a shard already recorded is never added again, so a seal redone
/// after a crash cannot count twice.
package enum RollupSchema {
    /// A flow field the rollups group by, and its column in `rollup_groups`.
    package struct Dimension: Sendable {
        package let field: String
        package let column: String
        let isText: Bool
    }

    package static let dimensions: [Dimension] = [
        .init(field: "SrcK8S_Namespace", column: "src_namespace", isText: true),
        .init(field: "SrcK8S_OwnerName", column: "src_owner", isText: true),
        .init(field: "SrcK8S_OwnerType", column: "src_owner_type", isText: true),
        .init(field: "SrcK8S_Type", column: "src_type", isText: true),
        .init(field: "DstK8S_Namespace", column: "dst_namespace", isText: true),
        .init(field: "DstK8S_OwnerName", column: "dst_owner", isText: true),
        .init(field: "DstK8S_OwnerType", column: "dst_owner_type", isText: true),
        .init(field: "DstK8S_Type", column: "dst_type", isText: true),
        .init(field: "Proto", column: "proto", isText: false),
        .init(field: "DstPortClass", column: "dst_port_class", isText: true),
        .init(field: "K8S_FlowLayer", column: "flow_layer", isText: true),
        .init(field: "FlowDirection", column: "direction", isText: false),
    ]

    /// SQL for a dimension over the `flows` view (the port class is computed).
    package static func flowsExpression(_ field: String) -> String {
        field == "DstPortClass" ? """
            (CASE WHEN "DstPort" IS NULL THEN 'none' WHEN "DstPort" < 1024 THEN 'well-known'
                  WHEN "DstPort" < 49152 THEN 'registered' ELSE 'dynamic' END)
            """ : "\"\(field)\""
    }

    /// Rollup tiers, finest first: name (as in `rollup_horizons` and the settings), table,
    /// time column, bucket width.
    package static let tiers: [(name: String, table: String, timeColumn: String, bucketMs: Int64)] = [
        ("minute", "minute_rollups", "minute_ms", 60_000), ("hour", "hour_rollups", "hour_ms", 3_600_000),
        ("day", "day_rollups", "day_ms", 86_400_000),
    ]

    /// Version 2: how far back retention has pruned each tier, so that a reader never
    /// takes a pruned tier's missing rows for "no flows" (`RollupReader.span`).
    package static let horizonsSQL = """
        -- flowrec rollups, version 2. Generated from RollupSchema (Sources/ShardStore/Rollups/RollupSchema.swift)
        -- by `flowrec schema --write-migrations`.
        -- How far back retention has pruned each tier (retention.rollupMinuteMaxAge and
        -- the others, or the size limits): the tier holds no bucket that starts before
        -- pruned_before_ms. Readers answer from a tier only after its horizon.
        CREATE TABLE IF NOT EXISTS rollup_horizons (
            tier TEXT PRIMARY KEY,
            pruned_before_ms INTEGER NOT NULL
        );

        """

    /// The measure columns, in `RollupMeasure` order.
    package static let measureColumns: [String] = RollupMeasure.allCases.map(\.column)

    /// The measures of several rows combined (sums; min and max for RTT), aliased to
    /// their own column names, in `measureColumns` order.
    package static let mergedMeasuresSQL: String = RollupMeasure.allCases.map { m -> String in
        switch m.merge {
        case .sum: "sum(\(m.column)) AS \(m.column)"
        case .min: "min(\(m.column)) AS \(m.column)"
        case .max: "max(\(m.column)) AS \(m.column)"
        }
    }.joined(separator: ", ")

    package static let createSQL: String = {
        let dims = dimensions.map { "    \($0.column) \($0.isText ? "TEXT" : "INTEGER")" }.joined(separator: ",\n")
        let measures = RollupMeasure.allCases.map { "    \($0.column) INTEGER\($0.merge == .sum ? " NOT NULL" : "")" }.joined(separator: ",\n")
        let tierTables = tiers.map { tier in
            """
            CREATE TABLE IF NOT EXISTS \(tier.table) (
                \(tier.timeColumn) INTEGER NOT NULL,
                group_id INTEGER NOT NULL REFERENCES rollup_groups (id),
            \(measures),
                PRIMARY KEY (\(tier.timeColumn), group_id)
            ) WITHOUT ROWID;
            """
        }.joined(separator: "\n\n")
        return """
            -- flowrec rollups, version 1. Generated from RollupSchema (Sources/ShardStore/Rollups/RollupSchema.swift)
            -- by `flowrec schema --write-migrations`.
            -- Buckets are of TimeFlowEndMs. dst_port_class: well-known (< 1024), registered
            -- (< 49152), dynamic, none (no port). Averages: rtt_sum_ns / rtt_count and
            -- dns_latency_sum_ms / dns_latency_count. DNS counts are by DnsFlagsResponseCode.

            -- The shards whose flows the tiers hold (kept after retention deletes the shard).
            CREATE TABLE IF NOT EXISTS rollup_shards (
                shard_id TEXT PRIMARY KEY,
                window_start_ms INTEGER NOT NULL,
                window_end_ms INTEGER NOT NULL,
                flows INTEGER NOT NULL,
                rolled_up_ms INTEGER NOT NULL
            );

            -- Each distinct combination of dimensions, once.
            CREATE TABLE IF NOT EXISTS rollup_groups (
                id INTEGER PRIMARY KEY,
            \(dims)
            );
            CREATE UNIQUE INDEX IF NOT EXISTS rollup_groups_by_value ON rollup_groups (\(dimensions.map(\.column).joined(separator: ", ")));

            \(tierTables)

            """
    }()
}
