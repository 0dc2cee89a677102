-- flowrec shard schema: per-second traffic per group of a sealed shard (created by the
-- sealer and the merger). Generated from TrafficSeries (Sources/ShardStore/Index/TrafficSeries.swift)
-- by `flowrec schema --write-migrations`. meta.traffic_series = '1' when complete.

-- One row per distinct combination of the columns below, stored as in flow_rows.
CREATE TABLE series_groups (
    group_id INTEGER PRIMARY KEY,
    "SrcK8S_Namespace" INTEGER,
    "DstK8S_Namespace" INTEGER,
    "SrcK8S_OwnerName" INTEGER,
    "DstK8S_OwnerName" INTEGER,
    "SrcK8S_OwnerType" INTEGER,
    "SrcK8S_Type" INTEGER,
    "SrcK8S_Name" INTEGER,
    "SrcK8S_HostName" INTEGER,
    "SrcK8S_HostIP" INTEGER,
    "SrcAddr" INTEGER,
    "SrcK8S_Zone" INTEGER,
    "SrcK8S_NetworkName" INTEGER,
    "SrcSubnetLabel" INTEGER,
    "DstK8S_OwnerType" INTEGER,
    "DstK8S_Type" INTEGER,
    "DstK8S_Name" INTEGER,
    "DstK8S_HostName" INTEGER,
    "DstK8S_HostIP" INTEGER,
    "DstAddr" INTEGER,
    "DstK8S_Zone" INTEGER,
    "DstK8S_NetworkName" INTEGER,
    "DstSubnetLabel" INTEGER,
    "FlowDirection" INTEGER,
    "K8S_FlowLayer" INTEGER,
    "K8S_ClusterName" INTEGER,
    "Duplicate" INTEGER,
    "Proto" INTEGER,
    "Etype" INTEGER,
    "Dscp" INTEGER,
    "Sampling" INTEGER,
    "AgentIP" INTEGER,
    "_RecordType" INTEGER,
    "_nulls" TEXT,
    "_quoted" TEXT,
    "_extras" TEXT,
    "_has_Bytes" INTEGER NOT NULL,
    "_has_Packets" INTEGER NOT NULL
    -- _has_X: 1 when the group's flows have X (every flow of a group has the same columns).
);

-- Per group (one or more chunks): its seconds, ceil(TimeFlowEndMs / 1000), as zigzag
-- varint deltas (the first from 0); per second the flows (varint) and the sum of each
-- value (varint; empty when the group's flows do not have it). See docs/on-disk-format.md.
CREATE TABLE series_data (
    group_id INTEGER NOT NULL,
    seconds BLOB NOT NULL,
    counts BLOB NOT NULL,
    "Bytes" BLOB NOT NULL,
    "Packets" BLOB NOT NULL
);
CREATE INDEX series_data_group ON series_data (group_id);
