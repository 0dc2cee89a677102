-- flowrec shard schema, version 1.
-- Generated from FlowSchema.fields (Sources/FlowModel/FlowSchema.swift) by
-- `flowrec schema --write-migrations`; edit the field list, not this file.

-- Every distinct string value of the shard (names, addresses, labels, and the JSON
-- text of array fields), stored once; rows refer to them by id.
CREATE TABLE strings (
    id INTEGER PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per flow, integers only: integer fields hold their value, string and
-- array fields the id of their text in `strings`. Absent fields are NULL.
CREATE TABLE flow_rows (
    "TimeFlowStartMs" INTEGER,
    "TimeFlowEndMs" INTEGER,
    "TimeReceived" INTEGER,
    "AgentIP" INTEGER,  -- strings.id
    "SrcMac" INTEGER,  -- strings.id
    "DstMac" INTEGER,  -- strings.id
    "Etype" INTEGER,
    "Interfaces" INTEGER,  -- strings.id
    "IfDirections" INTEGER,  -- strings.id
    "Udns" INTEGER,  -- strings.id
    "Bytes" INTEGER,
    "Packets" INTEGER,
    "Sampling" INTEGER,
    "SrcAddr" INTEGER,  -- strings.id
    "DstAddr" INTEGER,  -- strings.id
    "Proto" INTEGER,
    "Dscp" INTEGER,
    "SrcPort" INTEGER,
    "DstPort" INTEGER,
    "Flags" INTEGER,  -- strings.id
    "IcmpType" INTEGER,
    "IcmpCode" INTEGER,
    "FlowDirection" INTEGER,
    "K8S_FlowLayer" INTEGER,  -- strings.id
    "SrcK8S_Name" INTEGER,  -- strings.id
    "SrcK8S_Type" INTEGER,  -- strings.id
    "SrcK8S_OwnerName" INTEGER,  -- strings.id
    "SrcK8S_OwnerType" INTEGER,  -- strings.id
    "SrcK8S_Namespace" INTEGER,  -- strings.id
    "SrcK8S_NetworkName" INTEGER,  -- strings.id
    "SrcK8S_HostIP" INTEGER,  -- strings.id
    "SrcK8S_HostName" INTEGER,  -- strings.id
    "SrcK8S_Zone" INTEGER,  -- strings.id
    "DstK8S_Name" INTEGER,  -- strings.id
    "DstK8S_Type" INTEGER,  -- strings.id
    "DstK8S_OwnerName" INTEGER,  -- strings.id
    "DstK8S_OwnerType" INTEGER,  -- strings.id
    "DstK8S_Namespace" INTEGER,  -- strings.id
    "DstK8S_NetworkName" INTEGER,  -- strings.id
    "DstK8S_HostIP" INTEGER,  -- strings.id
    "DstK8S_HostName" INTEGER,  -- strings.id
    "DstK8S_Zone" INTEGER,  -- strings.id
    "SrcSubnetLabel" INTEGER,  -- strings.id
    "DstSubnetLabel" INTEGER,  -- strings.id
    "K8S_ClusterName" INTEGER,  -- strings.id
    "DnsId" INTEGER,
    "DnsFlags" INTEGER,
    "DnsFlagsResponseCode" INTEGER,  -- strings.id
    "DnsLatencyMs" INTEGER,
    "DnsName" INTEGER,  -- strings.id
    "DnsErrno" INTEGER,
    "PktDropBytes" INTEGER,
    "PktDropPackets" INTEGER,
    "PktDropLatestFlags" INTEGER,
    "PktDropLatestState" INTEGER,  -- strings.id
    "PktDropLatestDropCause" INTEGER,  -- strings.id
    "TimeFlowRttNs" INTEGER,
    "NetworkEvents" INTEGER,  -- strings.id
    "ZoneId" INTEGER,
    "XlatSrcAddr" INTEGER,  -- strings.id
    "XlatDstAddr" INTEGER,  -- strings.id
    "XlatSrcPort" INTEGER,
    "XlatDstPort" INTEGER,
    "XlatSrcK8S_Name" INTEGER,  -- strings.id
    "XlatSrcK8S_Type" INTEGER,  -- strings.id
    "XlatSrcK8S_Namespace" INTEGER,  -- strings.id
    "XlatSrcK8S_OwnerName" INTEGER,  -- strings.id
    "XlatSrcK8S_OwnerType" INTEGER,  -- strings.id
    "XlatSrcK8S_NetworkName" INTEGER,  -- strings.id
    "XlatSrcK8S_HostIP" INTEGER,  -- strings.id
    "XlatSrcK8S_HostName" INTEGER,  -- strings.id
    "XlatDstK8S_Name" INTEGER,  -- strings.id
    "XlatDstK8S_Type" INTEGER,  -- strings.id
    "XlatDstK8S_Namespace" INTEGER,  -- strings.id
    "XlatDstK8S_OwnerName" INTEGER,  -- strings.id
    "XlatDstK8S_OwnerType" INTEGER,  -- strings.id
    "XlatDstK8S_NetworkName" INTEGER,  -- strings.id
    "XlatDstK8S_HostIP" INTEGER,  -- strings.id
    "XlatDstK8S_HostName" INTEGER,  -- strings.id
    "IPSecStatus" INTEGER,  -- strings.id
    "IPSecRetCode" INTEGER,
    "TLSVersion" INTEGER,  -- strings.id
    "TLSTypes" INTEGER,  -- strings.id
    "TLSCipherSuite" INTEGER,  -- strings.id
    "TLSGroup" INTEGER,  -- strings.id
    "QuicVersion" INTEGER,  -- strings.id
    "QuicSeenLongHdr" INTEGER,
    "QuicSeenShortHdr" INTEGER,
    "_RecordType" INTEGER,  -- strings.id
    "_HashId" INTEGER,  -- strings.id
    "_IsFirst" INTEGER,
    "Bytes_AB" INTEGER,
    "Bytes_BA" INTEGER,
    "Packets_AB" INTEGER,
    "Packets_BA" INTEGER,
    "numFlowLogs" INTEGER,
    "PktDropBytes_AB" INTEGER,
    "PktDropBytes_BA" INTEGER,
    "PktDropPackets_AB" INTEGER,
    "PktDropPackets_BA" INTEGER,
    "MaxTimeFlowRttNs" INTEGER,
    "Interface" INTEGER,  -- strings.id
    "IfDirection" INTEGER,
    "Duplicate" INTEGER,
    "TLSCurve" INTEGER,  -- strings.id
    "UdnId" INTEGER,  -- strings.id
    "_nulls" TEXT,  -- names of fields whose JSON value was null, comma separated
    "_quoted" TEXT,  -- names of integer fields that arrived as numeric strings, comma separated
    "_extras" TEXT  -- fields flowrec does not know, as one JSON object, verbatim
);

-- The flows with NetObserv's own field names and values, for sqlite3, DuckDB, pandas.
CREATE VIEW flows AS SELECT
    r."TimeFlowStartMs" AS "TimeFlowStartMs",
    r."TimeFlowEndMs" AS "TimeFlowEndMs",
    r."TimeReceived" AS "TimeReceived",
    (SELECT value FROM strings WHERE id = r."AgentIP") AS "AgentIP",
    (SELECT value FROM strings WHERE id = r."SrcMac") AS "SrcMac",
    (SELECT value FROM strings WHERE id = r."DstMac") AS "DstMac",
    r."Etype" AS "Etype",
    (SELECT value FROM strings WHERE id = r."Interfaces") AS "Interfaces",
    (SELECT value FROM strings WHERE id = r."IfDirections") AS "IfDirections",
    (SELECT value FROM strings WHERE id = r."Udns") AS "Udns",
    r."Bytes" AS "Bytes",
    r."Packets" AS "Packets",
    r."Sampling" AS "Sampling",
    (SELECT value FROM strings WHERE id = r."SrcAddr") AS "SrcAddr",
    (SELECT value FROM strings WHERE id = r."DstAddr") AS "DstAddr",
    r."Proto" AS "Proto",
    r."Dscp" AS "Dscp",
    r."SrcPort" AS "SrcPort",
    r."DstPort" AS "DstPort",
    (SELECT value FROM strings WHERE id = r."Flags") AS "Flags",
    r."IcmpType" AS "IcmpType",
    r."IcmpCode" AS "IcmpCode",
    r."FlowDirection" AS "FlowDirection",
    (SELECT value FROM strings WHERE id = r."K8S_FlowLayer") AS "K8S_FlowLayer",
    (SELECT value FROM strings WHERE id = r."SrcK8S_Name") AS "SrcK8S_Name",
    (SELECT value FROM strings WHERE id = r."SrcK8S_Type") AS "SrcK8S_Type",
    (SELECT value FROM strings WHERE id = r."SrcK8S_OwnerName") AS "SrcK8S_OwnerName",
    (SELECT value FROM strings WHERE id = r."SrcK8S_OwnerType") AS "SrcK8S_OwnerType",
    (SELECT value FROM strings WHERE id = r."SrcK8S_Namespace") AS "SrcK8S_Namespace",
    (SELECT value FROM strings WHERE id = r."SrcK8S_NetworkName") AS "SrcK8S_NetworkName",
    (SELECT value FROM strings WHERE id = r."SrcK8S_HostIP") AS "SrcK8S_HostIP",
    (SELECT value FROM strings WHERE id = r."SrcK8S_HostName") AS "SrcK8S_HostName",
    (SELECT value FROM strings WHERE id = r."SrcK8S_Zone") AS "SrcK8S_Zone",
    (SELECT value FROM strings WHERE id = r."DstK8S_Name") AS "DstK8S_Name",
    (SELECT value FROM strings WHERE id = r."DstK8S_Type") AS "DstK8S_Type",
    (SELECT value FROM strings WHERE id = r."DstK8S_OwnerName") AS "DstK8S_OwnerName",
    (SELECT value FROM strings WHERE id = r."DstK8S_OwnerType") AS "DstK8S_OwnerType",
    (SELECT value FROM strings WHERE id = r."DstK8S_Namespace") AS "DstK8S_Namespace",
    (SELECT value FROM strings WHERE id = r."DstK8S_NetworkName") AS "DstK8S_NetworkName",
    (SELECT value FROM strings WHERE id = r."DstK8S_HostIP") AS "DstK8S_HostIP",
    (SELECT value FROM strings WHERE id = r."DstK8S_HostName") AS "DstK8S_HostName",
    (SELECT value FROM strings WHERE id = r."DstK8S_Zone") AS "DstK8S_Zone",
    (SELECT value FROM strings WHERE id = r."SrcSubnetLabel") AS "SrcSubnetLabel",
    (SELECT value FROM strings WHERE id = r."DstSubnetLabel") AS "DstSubnetLabel",
    (SELECT value FROM strings WHERE id = r."K8S_ClusterName") AS "K8S_ClusterName",
    r."DnsId" AS "DnsId",
    r."DnsFlags" AS "DnsFlags",
    (SELECT value FROM strings WHERE id = r."DnsFlagsResponseCode") AS "DnsFlagsResponseCode",
    r."DnsLatencyMs" AS "DnsLatencyMs",
    (SELECT value FROM strings WHERE id = r."DnsName") AS "DnsName",
    r."DnsErrno" AS "DnsErrno",
    r."PktDropBytes" AS "PktDropBytes",
    r."PktDropPackets" AS "PktDropPackets",
    r."PktDropLatestFlags" AS "PktDropLatestFlags",
    (SELECT value FROM strings WHERE id = r."PktDropLatestState") AS "PktDropLatestState",
    (SELECT value FROM strings WHERE id = r."PktDropLatestDropCause") AS "PktDropLatestDropCause",
    r."TimeFlowRttNs" AS "TimeFlowRttNs",
    (SELECT value FROM strings WHERE id = r."NetworkEvents") AS "NetworkEvents",
    r."ZoneId" AS "ZoneId",
    (SELECT value FROM strings WHERE id = r."XlatSrcAddr") AS "XlatSrcAddr",
    (SELECT value FROM strings WHERE id = r."XlatDstAddr") AS "XlatDstAddr",
    r."XlatSrcPort" AS "XlatSrcPort",
    r."XlatDstPort" AS "XlatDstPort",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_Name") AS "XlatSrcK8S_Name",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_Type") AS "XlatSrcK8S_Type",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_Namespace") AS "XlatSrcK8S_Namespace",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_OwnerName") AS "XlatSrcK8S_OwnerName",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_OwnerType") AS "XlatSrcK8S_OwnerType",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_NetworkName") AS "XlatSrcK8S_NetworkName",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_HostIP") AS "XlatSrcK8S_HostIP",
    (SELECT value FROM strings WHERE id = r."XlatSrcK8S_HostName") AS "XlatSrcK8S_HostName",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_Name") AS "XlatDstK8S_Name",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_Type") AS "XlatDstK8S_Type",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_Namespace") AS "XlatDstK8S_Namespace",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_OwnerName") AS "XlatDstK8S_OwnerName",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_OwnerType") AS "XlatDstK8S_OwnerType",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_NetworkName") AS "XlatDstK8S_NetworkName",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_HostIP") AS "XlatDstK8S_HostIP",
    (SELECT value FROM strings WHERE id = r."XlatDstK8S_HostName") AS "XlatDstK8S_HostName",
    (SELECT value FROM strings WHERE id = r."IPSecStatus") AS "IPSecStatus",
    r."IPSecRetCode" AS "IPSecRetCode",
    (SELECT value FROM strings WHERE id = r."TLSVersion") AS "TLSVersion",
    (SELECT value FROM strings WHERE id = r."TLSTypes") AS "TLSTypes",
    (SELECT value FROM strings WHERE id = r."TLSCipherSuite") AS "TLSCipherSuite",
    (SELECT value FROM strings WHERE id = r."TLSGroup") AS "TLSGroup",
    (SELECT value FROM strings WHERE id = r."QuicVersion") AS "QuicVersion",
    r."QuicSeenLongHdr" AS "QuicSeenLongHdr",
    r."QuicSeenShortHdr" AS "QuicSeenShortHdr",
    (SELECT value FROM strings WHERE id = r."_RecordType") AS "_RecordType",
    (SELECT value FROM strings WHERE id = r."_HashId") AS "_HashId",
    r."_IsFirst" AS "_IsFirst",
    r."Bytes_AB" AS "Bytes_AB",
    r."Bytes_BA" AS "Bytes_BA",
    r."Packets_AB" AS "Packets_AB",
    r."Packets_BA" AS "Packets_BA",
    r."numFlowLogs" AS "numFlowLogs",
    r."PktDropBytes_AB" AS "PktDropBytes_AB",
    r."PktDropBytes_BA" AS "PktDropBytes_BA",
    r."PktDropPackets_AB" AS "PktDropPackets_AB",
    r."PktDropPackets_BA" AS "PktDropPackets_BA",
    r."MaxTimeFlowRttNs" AS "MaxTimeFlowRttNs",
    (SELECT value FROM strings WHERE id = r."Interface") AS "Interface",
    r."IfDirection" AS "IfDirection",
    r."Duplicate" AS "Duplicate",
    (SELECT value FROM strings WHERE id = r."TLSCurve") AS "TLSCurve",
    (SELECT value FROM strings WHERE id = r."UdnId") AS "UdnId",
    r."_nulls" AS "_nulls",
    r."_quoted" AS "_quoted",
    r."_extras" AS "_extras"
FROM flow_rows AS r;

-- Per source partition: the positions this shard absorbed, and (when this shard
-- took a batch's final commit) how far the store had processed: every position
-- up to high_water is stored somewhere, so a restart resumes after the largest.
CREATE TABLE positions (
    source TEXT NOT NULL,
    partition INTEGER NOT NULL,
    first_position INTEGER,          -- lowest position stored here (NULL: none yet)
    last_position INTEGER,           -- highest position stored here
    high_water INTEGER,              -- every position up to this one is stored in some shard
    PRIMARY KEY (source, partition)
) WITHOUT ROWID;

-- Self-description: schema_version, window_start_ms, window_end_ms, part, created_ms;
-- row_count, min_time_ms, max_time_ms (kept current by every batch); after sealing
-- also bytes_total, packets_total, content_checksum, sealed_ms, time_encoding.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value ANY
) WITHOUT ROWID;
