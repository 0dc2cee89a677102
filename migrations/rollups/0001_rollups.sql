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
    src_namespace TEXT,
    src_owner TEXT,
    src_owner_type TEXT,
    src_type TEXT,
    dst_namespace TEXT,
    dst_owner TEXT,
    dst_owner_type TEXT,
    dst_type TEXT,
    proto INTEGER,
    dst_port_class TEXT,
    flow_layer TEXT,
    direction INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS rollup_groups_by_value ON rollup_groups (src_namespace, src_owner, src_owner_type, src_type, dst_namespace, dst_owner, dst_owner_type, dst_type, proto, dst_port_class, flow_layer, direction);

CREATE TABLE IF NOT EXISTS minute_rollups (
    minute_ms INTEGER NOT NULL,
    group_id INTEGER NOT NULL REFERENCES rollup_groups (id),
    flows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    dropped_bytes INTEGER NOT NULL,
    dropped_packets INTEGER NOT NULL,
    rtt_min_ns INTEGER,
    rtt_max_ns INTEGER,
    rtt_sum_ns INTEGER NOT NULL,
    rtt_count INTEGER NOT NULL,
    dns_latency_sum_ms INTEGER NOT NULL,
    dns_latency_count INTEGER NOT NULL,
    dns_noerror INTEGER NOT NULL,
    dns_nxdomain INTEGER NOT NULL,
    dns_servfail INTEGER NOT NULL,
    dns_other_rcode INTEGER NOT NULL,
    PRIMARY KEY (minute_ms, group_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS hour_rollups (
    hour_ms INTEGER NOT NULL,
    group_id INTEGER NOT NULL REFERENCES rollup_groups (id),
    flows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    dropped_bytes INTEGER NOT NULL,
    dropped_packets INTEGER NOT NULL,
    rtt_min_ns INTEGER,
    rtt_max_ns INTEGER,
    rtt_sum_ns INTEGER NOT NULL,
    rtt_count INTEGER NOT NULL,
    dns_latency_sum_ms INTEGER NOT NULL,
    dns_latency_count INTEGER NOT NULL,
    dns_noerror INTEGER NOT NULL,
    dns_nxdomain INTEGER NOT NULL,
    dns_servfail INTEGER NOT NULL,
    dns_other_rcode INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, group_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS day_rollups (
    day_ms INTEGER NOT NULL,
    group_id INTEGER NOT NULL REFERENCES rollup_groups (id),
    flows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    dropped_bytes INTEGER NOT NULL,
    dropped_packets INTEGER NOT NULL,
    rtt_min_ns INTEGER,
    rtt_max_ns INTEGER,
    rtt_sum_ns INTEGER NOT NULL,
    rtt_count INTEGER NOT NULL,
    dns_latency_sum_ms INTEGER NOT NULL,
    dns_latency_count INTEGER NOT NULL,
    dns_noerror INTEGER NOT NULL,
    dns_nxdomain INTEGER NOT NULL,
    dns_servfail INTEGER NOT NULL,
    dns_other_rcode INTEGER NOT NULL,
    PRIMARY KEY (day_ms, group_id)
) WITHOUT ROWID;
