/// The one list of NetObserv flow fields that flowrec knows.
///
/// Everything that needs a field list derives it from `FlowSchema.fields`: the JSON
/// decoder's key table, the encoder's key order, the shard columns, the exports and the
/// ClickHouse DDL. Adding a field NetObserv starts emitting is one line here; a field
/// that is not listed is still kept, verbatim, among a flow's extras.
///
/// The source for every entry is `shared/reference/netobserv-flow-fields.md`, which
/// traces each field to the NetObserv code that produces it.
@usableFromInline package enum FlowSchema {
    /// Every known field, in the order of their `FieldID`s (which is also the column
    /// order of a shard). The order is append-only: ids are stored in shards.
    package static let fields: [FieldSpec] = [
        // Base fields: every flow log from the eBPF agent and flowlogs-pipeline.
        .init("TimeFlowStartMs", .integer, ch: "Int64", .base, "Flow start, epoch milliseconds."),
        .init("TimeFlowEndMs", .integer, ch: "Int64", .base, "Flow end, epoch milliseconds; flowrec partitions shards by it."),
        .init("TimeReceived", .integer, ch: "Int64", .base, "When flowlogs-pipeline decoded the record, epoch seconds. Absent in conntrack records."),
        .init("AgentIP", .string, ch: "LowCardinality(String)", .base, "IP of the reporting eBPF agent (the node)."),
        .init("SrcMac", .string, ch: "String", .base, "Source MAC; lower case since agent 1.9, upper case before."),
        .init("DstMac", .string, ch: "String", .base, "Destination MAC; lower case since agent 1.9, upper case before."),
        .init("Etype", .integer, ch: "UInt16", .base, "EtherType: 2048 IPv4, 34525 IPv6."),
        .init("Interfaces", .stringArray, ch: "Array(LowCardinality(String))", .base, "Interfaces where the flow was seen (first seen plus up to 6)."),
        .init("IfDirections", .directionArray, ch: "Array(UInt8)", .base, "Per-interface direction, 0 ingress, 1 egress; numbers, numeric strings, or a base64 string (agent of January 2025)."),
        .init("Udns", .stringArray, ch: "Array(LowCardinality(String))", .udnMapping, "Per-interface user-defined network name; empty strings unless UDN mapping is on."),
        .init("Bytes", .integer, ch: "UInt64", .base, "Bytes; omitted when 0."),
        .init("Packets", .integer, ch: "UInt64", .base, "Packets; omitted when 0."),
        .init("Sampling", .integer, ch: "UInt32", .base, "Sampling rate applied; omitted when 0."),
        .init("SrcAddr", .string, ch: "String", .base, "Source IPv4 or IPv6 address; absent for non-IP flows."),
        .init("DstAddr", .string, ch: "String", .base, "Destination IPv4 or IPv6 address; absent for non-IP flows."),
        .init("Proto", .integer, ch: "UInt8", .base, "L4 protocol number."),
        .init("Dscp", .integer, ch: "UInt8", .base, "DSCP value."),
        .init("SrcPort", .integer, ch: "UInt16", .base, "Source port (TCP, UDP, SCTP)."),
        .init("DstPort", .integer, ch: "UInt16", .base, "Destination port (TCP, UDP, SCTP)."),
        .init("Flags", .tcpFlags, ch: "Array(LowCardinality(String))", .base, "TCP flags: string array since 1.8, a number bitfield before, null when no bit is set."),
        .init("IcmpType", .integer, ch: "UInt8", .base, "ICMP type."),
        .init("IcmpCode", .integer, ch: "UInt8", .base, "ICMP code."),
        .init("FlowDirection", .integer, ch: "UInt8", .base, "Node-level direction: 0 ingress, 1 egress, 2 inner. A string when read back from Loki.", acceptsNumericString: true),
        .init("K8S_FlowLayer", .string, ch: "LowCardinality(String)", .base, "`app` or `infra`."),

        // Kubernetes enrichment by flowlogs-pipeline.
        .init("SrcK8S_Name", .string, ch: "String", .kubeEnrichment, "Source pod, service or node name."),
        .init("SrcK8S_Type", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Source kind: Pod, Service, Node."),
        .init("SrcK8S_OwnerName", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Source owner (Deployment, StatefulSet, ...) name."),
        .init("SrcK8S_OwnerType", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Source owner kind."),
        .init("SrcK8S_Namespace", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Source namespace."),
        .init("SrcK8S_NetworkName", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Source secondary network or UDN name."),
        .init("SrcK8S_HostIP", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Source node IP."),
        .init("SrcK8S_HostName", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Source node name."),
        .init("SrcK8S_Zone", .string, ch: "LowCardinality(String)", .zones, "Source node's topology zone."),
        .init("DstK8S_Name", .string, ch: "String", .kubeEnrichment, "Destination pod, service or node name."),
        .init("DstK8S_Type", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Destination kind: Pod, Service, Node."),
        .init("DstK8S_OwnerName", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Destination owner name."),
        .init("DstK8S_OwnerType", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Destination owner kind."),
        .init("DstK8S_Namespace", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Destination namespace."),
        .init("DstK8S_NetworkName", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Destination secondary network or UDN name."),
        .init("DstK8S_HostIP", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Destination node IP."),
        .init("DstK8S_HostName", .string, ch: "LowCardinality(String)", .kubeEnrichment, "Destination node name."),
        .init("DstK8S_Zone", .string, ch: "LowCardinality(String)", .zones, "Destination node's topology zone."),
        .init("SrcSubnetLabel", .string, ch: "LowCardinality(String)", .subnetLabels, "Source subnet label (Pods, Services, Machines, EXT:..., custom)."),
        .init("DstSubnetLabel", .string, ch: "LowCardinality(String)", .subnetLabels, "Destination subnet label."),
        .init("K8S_ClusterName", .string, ch: "LowCardinality(String)", .multiCluster, "Cluster name in multi-cluster deployments."),

        // DNS tracking.
        .init("DnsId", .integer, ch: "UInt16", .dnsTracking, "DNS transaction id."),
        .init("DnsFlags", .integer, ch: "UInt16", .dnsTracking, "Raw DNS flags."),
        .init("DnsFlagsResponseCode", .string, ch: "LowCardinality(String)", .dnsTracking, "DNS response code name (NoError, NXDomain, ...)."),
        .init("DnsLatencyMs", .integer, ch: "Int64", .dnsTracking, "DNS latency, milliseconds."),
        .init("DnsName", .string, ch: "String", .dnsTracking, "Queried DNS name (since 1.11)."),
        .init("DnsErrno", .integer, ch: "UInt8", .dnsTracking, "errno from the DNS hook; 0 on every flow in older versions."),

        // Packet drops.
        .init("PktDropBytes", .integer, ch: "UInt64", .packetDrop, "Dropped bytes (saturating uint16 per record; summed in conntrack)."),
        .init("PktDropPackets", .integer, ch: "UInt64", .packetDrop, "Dropped packets."),
        .init("PktDropLatestFlags", .integer, ch: "UInt16", .packetDrop, "TCP flags of the last dropped packet."),
        .init("PktDropLatestState", .string, ch: "LowCardinality(String)", .packetDrop, "TCP state of the last drop (TCP_ESTABLISHED, ...)."),
        .init("PktDropLatestDropCause", .string, ch: "LowCardinality(String)", .packetDrop, "Kernel or OVS drop reason of the last drop."),

        // RTT, network events, translation, IPsec, TLS, QUIC.
        .init("TimeFlowRttNs", .integer, ch: "Int64", .flowRTT, "TCP smoothed RTT, nanoseconds."),
        .init("NetworkEvents", .objectArray, ch: "String", .networkEvents, "Up to 4 OVN network events, each an object of strings (JSON text in ClickHouse)."),
        .init("ZoneId", .integer, ch: "UInt16", .packetTranslation, "Conntrack zone of the translation."),
        .init("XlatSrcAddr", .string, ch: "String", .packetTranslation, "Translated source address."),
        .init("XlatDstAddr", .string, ch: "String", .packetTranslation, "Translated destination address."),
        .init("XlatSrcPort", .integer, ch: "UInt16", .packetTranslation, "Translated source port."),
        .init("XlatDstPort", .integer, ch: "UInt16", .packetTranslation, "Translated destination port."),
        .init("XlatSrcK8S_Name", .string, ch: "String", .packetTranslation, "Kube name of the translated source."),
        .init("XlatSrcK8S_Type", .string, ch: "LowCardinality(String)", .packetTranslation, "Kube kind of the translated source."),
        .init("XlatSrcK8S_Namespace", .string, ch: "LowCardinality(String)", .packetTranslation, "Namespace of the translated source."),
        .init("XlatSrcK8S_OwnerName", .string, ch: "LowCardinality(String)", .packetTranslation, "Owner of the translated source."),
        .init("XlatSrcK8S_OwnerType", .string, ch: "LowCardinality(String)", .packetTranslation, "Owner kind of the translated source."),
        .init("XlatSrcK8S_NetworkName", .string, ch: "LowCardinality(String)", .packetTranslation, "Network of the translated source."),
        .init("XlatSrcK8S_HostIP", .string, ch: "LowCardinality(String)", .packetTranslation, "Node IP of the translated source."),
        .init("XlatSrcK8S_HostName", .string, ch: "LowCardinality(String)", .packetTranslation, "Node name of the translated source."),
        .init("XlatDstK8S_Name", .string, ch: "String", .packetTranslation, "Kube name of the translated destination."),
        .init("XlatDstK8S_Type", .string, ch: "LowCardinality(String)", .packetTranslation, "Kube kind of the translated destination."),
        .init("XlatDstK8S_Namespace", .string, ch: "LowCardinality(String)", .packetTranslation, "Namespace of the translated destination."),
        .init("XlatDstK8S_OwnerName", .string, ch: "LowCardinality(String)", .packetTranslation, "Owner of the translated destination."),
        .init("XlatDstK8S_OwnerType", .string, ch: "LowCardinality(String)", .packetTranslation, "Owner kind of the translated destination."),
        .init("XlatDstK8S_NetworkName", .string, ch: "LowCardinality(String)", .packetTranslation, "Network of the translated destination."),
        .init("XlatDstK8S_HostIP", .string, ch: "LowCardinality(String)", .packetTranslation, "Node IP of the translated destination."),
        .init("XlatDstK8S_HostName", .string, ch: "LowCardinality(String)", .packetTranslation, "Node name of the translated destination."),
        .init("IPSecStatus", .string, ch: "LowCardinality(String)", .ipsec, "IPsec xfrm result: success or error."),
        .init("IPSecRetCode", .integer, ch: "Int32", .ipsec, "IPsec xfrm return code."),
        .init("TLSVersion", .string, ch: "LowCardinality(String)", .tlsTracking, "TLS version, e.g. `TLS 1.3`."),
        .init("TLSTypes", .stringArray, ch: "Array(LowCardinality(String))", .tlsTracking, "TLS record types seen."),
        .init("TLSCipherSuite", .string, ch: "LowCardinality(String)", .tlsTracking, "Negotiated cipher suite."),
        .init("TLSGroup", .string, ch: "LowCardinality(String)", .tlsTracking, "Key exchange group, e.g. X25519."),
        .init("QuicVersion", .string, ch: "LowCardinality(String)", .quic, "QUIC version."),
        .init("QuicSeenLongHdr", .integer, ch: "UInt8", .quic, "1 when a QUIC long header was seen."),
        .init("QuicSeenShortHdr", .integer, ch: "UInt8", .quic, "1 when a QUIC short header was seen."),

        // Conversation tracking (processor.logTypes other than Flows).
        .init("_RecordType", .string, ch: "LowCardinality(String)", .conntrack, "flowLog, newConnection, heartbeat or endConnection."),
        .init("_HashId", .string, ch: "String", .conntrack, "Connection id (FNV-1a, hex, not zero-padded)."),
        .init("_IsFirst", .bool, ch: "UInt8", .conntrack, "True on the first report of a connection."),
        .init("Bytes_AB", .integer, ch: "UInt64", .conntrack, "Bytes from A to B."),
        .init("Bytes_BA", .integer, ch: "UInt64", .conntrack, "Bytes from B to A."),
        .init("Packets_AB", .integer, ch: "UInt64", .conntrack, "Packets from A to B."),
        .init("Packets_BA", .integer, ch: "UInt64", .conntrack, "Packets from B to A."),
        .init("numFlowLogs", .integer, ch: "UInt64", .conntrack, "Flow logs aggregated into the record."),
        .init("PktDropBytes_AB", .integer, ch: "UInt64", .conntrack, "Dropped bytes from A to B."),
        .init("PktDropBytes_BA", .integer, ch: "UInt64", .conntrack, "Dropped bytes from B to A."),
        .init("PktDropPackets_AB", .integer, ch: "UInt64", .conntrack, "Dropped packets from A to B."),
        .init("PktDropPackets_BA", .integer, ch: "UInt64", .conntrack, "Dropped packets from B to A."),
        .init("MaxTimeFlowRttNs", .integer, ch: "Int64", .conntrack, "Largest RTT of the connection, nanoseconds."),

        // Fields of older NetObserv versions, kept under their own names.
        .init("Interface", .string, ch: "LowCardinality(String)", .legacy, "Single interface, before 1.6 (now `Interfaces`)."),
        .init("IfDirection", .integer, ch: "UInt8", .legacy, "Single interface direction, before 1.6 (now `IfDirections`)."),
        .init("Duplicate", .bool, ch: "UInt8", .legacy, "Agent 1.7 and older: true when the flow was a duplicate."),
        .init("TLSCurve", .string, ch: "LowCardinality(String)", .legacy, "Old name of `TLSGroup`, before May 2026."),
        .init("UdnId", .string, ch: "LowCardinality(String)", .legacy, "Loki stream label of the console mocks; not produced by flowlogs-pipeline."),
    ]

    /// The field a flow must have: it decides which shard window the flow belongs to.
    package static let requiredField: FieldID = id(of: "TimeFlowEndMs")

    /// The id of a field by its NetObserv name; `nil` for names not in the list.
    package static func id(named name: String) -> FieldID? {
        indexByName[name].map { FieldID(rawValue: UInt8($0)) }
    }

    /// The id of a field the code refers to by name. Only for names spelled in
    /// flowrec's own source: a typo is a programming error, caught by the first test.
    package static func id(of name: String) -> FieldID {
        guard let id = id(named: name) else { preconditionFailure("\(name) is not in FlowSchema.fields") }
        return id
    }

    /// Field ids in JSON key order (byte-wise, as Go's `encoding/json` sorts map keys).
    package static let idsInKeyOrder: [FieldID] = fields.indices
        .sorted { Array(fields[$0].name.utf8).lexicographicallyPrecedes(Array(fields[$1].name.utf8)) }
        .map { FieldID(rawValue: UInt8($0)) }

    package static var count: Int { fields.count }

    /// Per-field facts the hot paths read, kept apart from `fields` so that reading a
    /// kind does not copy (and retain) a `FieldSpec`'s strings.
    @usableFromInline package static let tables = SchemaTables(fields)

    private static let indexByName: [String: Int] = Dictionary(
        uniqueKeysWithValues: fields.enumerated().map { ($0.element.name, $0.offset) })
}

/// A known field, by its position in `FlowSchema.fields`.
///
/// Public, with its hot accessors `@inlinable public`, though nothing outside this
/// package uses it: Swift 6.3 does not serialize the body of an `@inlinable package`
/// declaration, so other modules called even `index` (`perf`: 4% of the forwarder's
/// encoding); public ones are inlined. The same holds for `FieldSet`, `FieldKind`,
/// `Flow`'s readers, `FlowValues` and StorageKit's `TableCursor`.
public struct FieldID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public var index: Int { Int(rawValue) }
    package var spec: FieldSpec { FlowSchema.fields[index] }
    /// Same as `spec.kind`, without copying the spec.
    @inlinable public var kind: FieldKind { FlowSchema.tables.kinds[index] }
    package var name: String { spec.name }
    public var description: String { spec.name }
    @inlinable public static func < (a: FieldID, b: FieldID) -> Bool { a.rawValue < b.rawValue }
}

/// Everything flowrec needs to know about one NetObserv field.
package struct FieldSpec: Sendable {
    /// The JSON key, exactly as NetObserv writes it; also the column name everywhere.
    package let name: String
    package let kind: FieldKind
    /// The column type in the ClickHouse table that the forwarder writes to.
    package let clickHouseType: String
    /// The NetObserv feature (or agent version) that makes the field appear.
    package let feature: FlowFeature
    package let summary: String
    /// A counter NetObserv types as uint64 (`Bytes`, `Packets`, the conntrack sums): any
    /// value from 0 to 2^64-1 is accepted, and held in the flow's Int64 slot as its bit
    /// pattern (so 2^63 and above read as negative where the slot is used as Int64:
    /// in SQLite, see docs/on-disk-format.md). Encoders and outputs write it unsigned.
    package var isUnsigned64: Bool { kind == .integer && clickHouseType == "UInt64" }

    /// FlowDirection arrives as `"1"` when it went through Loki; the number is stored
    /// and the spelling remembered so the flow is re-encoded as it came.
    package let acceptsNumericString: Bool

    init(_ name: String, _ kind: FieldKind, ch: String, _ feature: FlowFeature, _ summary: String,
         acceptsNumericString: Bool = false) {
        self.name = name
        self.kind = kind
        self.clickHouseType = ch
        self.feature = feature
        self.summary = summary
        self.acceptsNumericString = acceptsNumericString
    }
}

/// The JSON shape of a field, which decides how it is decoded, stored and encoded.
public enum FieldKind: String, Sendable, CaseIterable {  // public: see FieldID
    /// A JSON integer (integral floats such as `1e3` are accepted), stored as Int64.
    case integer
    /// A JSON string, stored as UTF-8 text.
    case string
    /// `true` or `false`, stored as 1 or 0.
    case bool
    /// An array of strings, kept as its JSON text.
    case stringArray
    /// `IfDirections`: an array of numbers or numeric strings, or a base64 string; kept as its JSON text.
    case directionArray
    /// An array of objects whose values are strings (`NetworkEvents`); kept as its JSON text.
    case objectArray
    /// `Flags`: an array of flag names, a number bitfield, or null; kept as its JSON text.
    case tcpFlags

    /// Whether the value is kept as its JSON text rather than as a scalar.
    package var isJSONText: Bool {
        switch self {
        case .integer, .string, .bool: false
        case .stringArray, .directionArray, .objectArray, .tcpFlags: true
        }
    }
}

/// Which NetObserv feature produces a field; for docs and for the generator's switches.
package enum FlowFeature: String, Sendable, CaseIterable {
    case base, kubeEnrichment, zones, subnetLabels, multiCluster, udnMapping
    case dnsTracking, packetDrop, flowRTT, networkEvents, packetTranslation
    case ipsec, tlsTracking, quic, conntrack, legacy
}

/// Lookup tables derived from `FlowSchema.fields` for the decoder and the encoder.
@usableFromInline package final class SchemaTables: Sendable {
    @usableFromInline package let kinds: [FieldKind]
    let acceptsNumericString: [Bool]
    /// Integer fields NetObserv types as uint64: held as the bit pattern of their value.
    let unsigned64: [Bool]
    /// `"Name":` of every field, back to back; `keyPrefixStart[i]..<keyPrefixStart[i+1]` is field i's.
    let keyPrefixBytes: [UInt8]
    let keyPrefixStart: [Int]

    init(_ fields: [FieldSpec]) {
        kinds = fields.map(\.kind)
        acceptsNumericString = fields.map(\.acceptsNumericString)
        unsigned64 = fields.map(\.isUnsigned64)
        var bytes: [UInt8] = []
        var starts: [Int] = []
        for spec in fields {
            starts.append(bytes.count)
            JSONEscaping.appendQuoted(spec.name.utf8, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
        }
        starts.append(bytes.count)
        keyPrefixBytes = bytes
        keyPrefixStart = starts
    }
}
