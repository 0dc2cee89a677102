-- flowrec shard schema: the skip index of a sealed shard (created by the sealer).
-- Generated from SkipIndex.fields (Sources/ShardStore/Index/SkipIndex.swift) by
-- `flowrec schema --write-migrations`.

-- Every 2048 rows in the seal order (SrcK8S_Namespace, DstK8S_Namespace,
-- SrcK8S_OwnerName, DstK8S_OwnerName, then TimeFlowEndMs): their row ids, time range
-- and the smallest and largest value of each indexed field (NULL: none in the granule).
CREATE TABLE granules (
    first_rowid INTEGER PRIMARY KEY,
    last_rowid INTEGER NOT NULL,
    min_time_ms INTEGER,
    max_time_ms INTEGER,
    "SrcK8S_Namespace_min" TEXT,
    "SrcK8S_Namespace_max" TEXT,
    "DstK8S_Namespace_min" TEXT,
    "DstK8S_Namespace_max" TEXT,
    "SrcK8S_OwnerName_min" TEXT,
    "SrcK8S_OwnerName_max" TEXT,
    "DstK8S_OwnerName_min" TEXT,
    "DstK8S_OwnerName_max" TEXT,
    "SrcK8S_Name_min" TEXT,
    "SrcK8S_Name_max" TEXT,
    "DstK8S_Name_min" TEXT,
    "DstK8S_Name_max" TEXT,
    "SrcK8S_OwnerType_min" TEXT,
    "SrcK8S_OwnerType_max" TEXT,
    "DstK8S_OwnerType_min" TEXT,
    "DstK8S_OwnerType_max" TEXT,
    "SrcK8S_Type_min" TEXT,
    "SrcK8S_Type_max" TEXT,
    "DstK8S_Type_min" TEXT,
    "DstK8S_Type_max" TEXT,
    "SrcK8S_HostName_min" TEXT,
    "SrcK8S_HostName_max" TEXT,
    "DstK8S_HostName_min" TEXT,
    "DstK8S_HostName_max" TEXT,
    "SrcAddr_min" TEXT,
    "SrcAddr_max" TEXT,
    "DstAddr_min" TEXT,
    "DstAddr_max" TEXT,
    "SrcPort_min" INTEGER,
    "SrcPort_max" INTEGER,
    "DstPort_min" INTEGER,
    "DstPort_max" INTEGER,
    "Proto_min" INTEGER,
    "Proto_max" INTEGER,
    "K8S_FlowLayer_min" TEXT,
    "K8S_FlowLayer_max" TEXT,
    "_RecordType_min" TEXT,
    "_RecordType_max" TEXT,
    bloom BLOB  -- the values of the fields after the first four, each with its field (see docs/on-disk-format.md)
);

-- Per indexed field: how many distinct values the shard holds, the smallest and
-- largest, and either the values themselves ('values': a JSON array, at most
-- 64) or a Bloom filter of them ('bloom', see docs/on-disk-format.md).
CREATE TABLE skip_summaries (
    field TEXT PRIMARY KEY,
    distinct_count INTEGER NOT NULL,
    min_value ANY,
    max_value ANY,
    kind TEXT NOT NULL CHECK (kind IN ('values', 'bloom')),
    data BLOB NOT NULL
) WITHOUT ROWID;
