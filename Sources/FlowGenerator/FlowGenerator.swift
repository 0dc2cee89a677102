package import FlowModel

/// Which optional NetObserv features the generated flows show, and in which shape.
package struct GeneratorOptions: Sendable {
    package enum Shape: String, Sendable, CaseIterable {
        /// NetObserv 1.12: `Interfaces`/`IfDirections`/`Udns`, flag names, lower-case MACs.
        case current
        /// Before 1.6: `Interface`/`IfDirection`, numeric `Flags`, upper-case MACs, `DnsErrno` always.
        case legacy
    }

    package enum Feature: String, Sendable, CaseIterable {
        case dns, rtt, drops, networkEvents = "network-events", packetTranslation = "packet-translation"
        case tls, quic, ipsec, zones, subnetLabels = "subnet-labels", multiCluster = "multi-cluster"
        case conversations
    }

    package var cluster: ClusterModel.Size = .medium
    package var shape: Shape = .current
    package var features: Set<Feature> = GeneratorOptions.defaultFeatures
    package var seed: UInt64 = 1
    /// Event-time start of the first flow, epoch milliseconds.
    package var startMs: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z
    /// Flows per second of event time.
    package var flowsPerSecond: Int? = nil
    /// How far a flow's end may lag the event clock, as agents flush on timers.
    package var disorderMs: Int64 = 5000

    /// What NetObserv's FlowCollector enables in a typical install with the agent
    /// features turned on for troubleshooting.
    package static let defaultFeatures: Set<Feature> = [.dns, .rtt, .drops, .zones, .subnetLabels]

    package init() {}
}

/// Produces an endless, deterministic stream of realistic NetObserv flows.
///
/// ```swift
/// var generator = FlowGenerator(options: GeneratorOptions())
/// var line: [UInt8] = []
/// generator.nextRecord(into: &line)     // one JSON object, as the Kafka exporter writes it
/// ```
package struct FlowGenerator: Sendable {
    package let options: GeneratorOptions
    package let cluster: ClusterModel
    private var random: SeededRandom
    private let conversations: [Conversation]
    private let popularity: ZipfSampler
    private let encoder = FlowEncoder()
    private var flow = Flow()
    /// Event time of the next flow, in microseconds so that high rates still advance.
    private var clockMicros: Int64
    private let stepMicros: Int64
    /// Conversation-tracking records waiting to be emitted after the current flow log.
    private var pendingConnectionRecords: [Flow] = []
    private var connectionState: [Int: ConnectionTotals] = [:]

    package init(options: GeneratorOptions) {
        self.options = options
        var random = SeededRandom(seed: options.seed)
        let cluster = ClusterModel(size: options.cluster, random: &random)
        self.cluster = cluster
        self.conversations = Conversation.plan(cluster: cluster, random: &random)
        self.popularity = ZipfSampler(count: conversations.count, exponent: 1.05)
        self.random = random
        self.clockMicros = options.startMs * 1000
        let rate = max(1, options.flowsPerSecond ?? cluster.size.typicalFlowRate)
        self.stepMicros = max(1, 1_000_000 / Int64(rate))
    }

    /// Event time of the next flow, epoch milliseconds.
    package var eventClockMs: Int64 { clockMicros / 1000 }

    /// Appends the next record's JSON (no newline) to `out`.
    package mutating func nextRecord(into out: inout [UInt8]) {
        let record = nextFlow()
        encoder.encode(record, into: &out)
    }

    /// The next record as a `Flow`.
    package mutating func nextFlow() -> Flow {
        if !pendingConnectionRecords.isEmpty { return pendingConnectionRecords.removeFirst() }
        clockMicros += stepMicros
        let index = popularity.sample(&random)
        buildFlowLog(conversations[index], id: index)
        return flow
    }

    // MARK: Building one flow log

    private mutating func buildFlowLog(_ c: Conversation, id: Int) {
        let legacy = options.shape == .legacy
        let features = options.features
        flow.removeAll()
        let endMs = clockMicros / 1000 - Int64(random.below(Int(options.disorderMs) + 1))
        let durationMs = Int64(random.below(c.proto == 6 ? 5000 : 1000))
        // Which side's agent reports the flow, and the direction on that node.
        let srcNode = c.src.nodeIndex, dstNode = c.dst.nodeIndex
        let reportFromSource = dstNode == nil || (srcNode != nil && random.chance(0.5))
        let reporter = reportFromSource ? (srcNode ?? dstNode ?? 0) : (dstNode ?? srcNode ?? 0)
        let agent = cluster.nodes[reporter]

        set(F.timeFlowStartMs, endMs - durationMs)
        set(F.timeFlowEndMs, endMs)
        set(F.timeReceived, endMs / 1000 + Int64(random.below(3)))
        set(F.agentIP, agent.addr)
        set(F.srcMac, legacy ? c.src.macForFlow.uppercased() : c.src.macForFlow)
        set(F.dstMac, legacy ? c.dst.macForFlow.uppercased() : c.dst.macForFlow)
        set(F.etype, c.ipv6 ? 34525 : 2048)

        let packets = max(1, Int64(random.logNormal(median: c.medianPackets, sigma: 1.1)))
        let bytes = packets * Int64(max(40, random.logNormal(median: c.medianPacketSize, sigma: 0.4)))
        set(F.bytes, bytes)
        set(F.packets, packets)
        set(F.sampling, 50)
        set(F.srcAddr, c.src.addr)
        set(F.dstAddr, c.dst.addr)
        set(F.proto, Int64(c.proto))
        set(F.dscp, 0)
        if c.proto == 1 {
            set(F.icmpType, 8)
            set(F.icmpCode, 0)
        } else {
            set(F.srcPort, Int64(c.srcPort))
            set(F.dstPort, Int64(c.dstPort))
        }
        let egress = reportFromSource
        let sameNode = srcNode != nil && srcNode == dstNode
        if sameNode || c.src.kind == .node || c.dst.kind == .node || random.chance(0.3) {
            set(F.flowDirection, sameNode ? 2 : (egress ? 1 : 0))
        }
        let endpoint = egress ? c.src : c.dst
        let iface = endpoint.kind == .pod ? endpoint.interface : (c.src.kind == .external || c.dst.kind == .external ? "br-ex" : "genev_sys_6081")
        if legacy {
            set(F.interface, iface)
            set(F.ifDirection, egress ? 1 : 0)
        } else {
            let d = egress ? 1 : 0
            if endpoint.kind == .pod && random.chance(0.35) {
                flow.set(F.interfaces, text: "[\"\(iface)\",\"genev_sys_6081\"]")
                flow.set(F.ifDirections, text: "[\(d),\(d)]")
                flow.set(F.udns, text: "[\"\",\"\"]")
            } else {
                flow.set(F.interfaces, text: "[\"\(iface)\"]")
                flow.set(F.ifDirections, text: "[\(d)]")
                flow.set(F.udns, text: "[\"\"]")
            }
        }
        if c.proto == 6 {
            let bits = Conversation.tcpFlagChoices[random.below(Conversation.tcpFlagChoices.count)]
            if legacy {
                set(F.flags, text: String(bits))
            } else if bits == 0 {
                flow.setNull(F.flags)
            } else {
                flow.set(F.flags, text: TCPFlagNames.jsonArray(bits))
            }
        }
        set(F.k8sFlowLayer, c.src.flowLayerApp || c.dst.flowLayerApp ? "app" : "infra")
        enrich(c.src, side: .source)
        enrich(c.dst, side: .destination)
        if features.contains(.multiCluster) { set(F.clusterName, cluster.clusterName) }

        if features.contains(.dns), c.dstPort == 53 || c.dstPort == 5353 {
            set(F.dnsId, Int64(random.below(65535) + 1))
            let nx = random.chance(0.08)
            set(F.dnsFlags, nx ? 33155 : 33152)
            set(F.dnsFlagsResponseCode, nx ? "NXDomain" : "NoError")
            set(F.dnsLatencyMs, Int64(random.logNormal(median: 2, sigma: 1)))
            if !legacy { set(F.dnsName, c.dnsName) }
        }
        if legacy && c.proto != 1 { set(F.dnsErrno, 0) }
        if features.contains(.drops), random.chance(0.03) {
            set(F.pktDropBytes, min(65535, Int64(random.below(Int(bytes)) + 40)))
            set(F.pktDropPackets, Int64(1 + random.below(3)))
            set(F.pktDropLatestFlags, c.proto == 6 ? 16 : 0)
            set(F.pktDropLatestState, c.proto == 6 ? "TCP_ESTABLISHED" : "TCP_INVALID_STATE")
            set(F.pktDropLatestDropCause, random.element(Conversation.dropCauses))
        }
        if features.contains(.rtt), c.proto == 6 {
            set(F.timeFlowRttNs, Int64(random.logNormal(median: c.dst.kind == .external ? 12_000_000 : 150_000, sigma: 0.8)))
        }
        if features.contains(.networkEvents), random.chance(0.01) {
            let ns = c.dst.namespace ?? "default"
            flow.set(F.networkEvents, text:
                "[{\"Action\":\"allow\",\"Direction\":\"Ingress\",\"Feature\":\"acl\",\"Name\":\"allow-\(c.dst.ownerName ?? "all")\",\"Namespace\":\"\(ns)\",\"Type\":\"NetworkPolicy\"}]")
        }
        if features.contains(.packetTranslation), let backend = c.translatedTo {
            set(F.zoneId, 0)
            set(F.xlatSrcAddr, c.src.addr)
            set(F.xlatDstAddr, backend.addr)
            set(F.xlatSrcPort, Int64(c.srcPort))
            set(F.xlatDstPort, Int64(c.dstPort))
            set(F.xlatDstK8SName, backend.name)
            set(F.xlatDstK8SType, "Pod")
            if let ns = backend.namespace { set(F.xlatDstK8SNamespace, ns) }
            if let o = backend.ownerName { set(F.xlatDstK8SOwnerName, o) }
            if let o = backend.ownerType { set(F.xlatDstK8SOwnerType, o) }
            if let h = backend.hostIP { set(F.xlatDstK8SHostIP, h) }
            if let h = backend.hostName { set(F.xlatDstK8SHostName, h) }
        }
        if features.contains(.ipsec), c.src.kind == .node, c.dst.kind == .node {
            set(F.ipsecStatus, "success")
            set(F.ipsecRetCode, 0)
        }
        if features.contains(.tls), c.proto == 6, c.dstPort == 443 || c.dstPort == 8443 || c.dstPort == 6443 {
            set(F.tlsVersion, "TLS 1.3")
            flow.set(F.tlsTypes, text: random.chance(0.2) ? "[\"ClientHello\",\"ServerHello\",\"ChangeCipher\",\"AppData\"]" : "[\"AppData\"]")
            set(F.tlsCipherSuite, "TLS_AES_128_GCM_SHA256")
            set(legacy ? F.tlsCurve : F.tlsGroup, "X25519")
        }
        if features.contains(.quic), c.proto == 17, c.dstPort == 443 {
            set(F.quicVersion, "QUIC v1")
            set(F.quicSeenLongHdr, random.chance(0.1) ? 1 : 0)
            set(F.quicSeenShortHdr, 1)
        }
        if legacy && random.chance(0.02) { set(F.duplicate, 1) }
        if features.contains(.conversations), c.proto == 6 || c.proto == 17 {
            set(F.recordType, "flowLog")
            set(F.hashId, c.hashId)
            trackConnection(c, id: id, bytes: bytes, packets: packets, startMs: endMs - durationMs, endMs: endMs,
                            aToB: reportFromSource)
        }
    }

    private enum Side { case source, destination }

    private mutating func enrich(_ e: Endpoint, side: Side) {
        let s = side == .source
        guard e.kind != .external else {
            if options.features.contains(.subnetLabels) { set(s ? F.srcSubnetLabel : F.dstSubnetLabel, e.subnetLabel) }
            return
        }
        set(s ? F.srcName : F.dstName, e.name)
        if let v = e.type { set(s ? F.srcType : F.dstType, v) }
        if let v = e.ownerName { set(s ? F.srcOwnerName : F.dstOwnerName, v) }
        if let v = e.ownerType { set(s ? F.srcOwnerType : F.dstOwnerType, v) }
        if let v = e.namespace { set(s ? F.srcNamespace : F.dstNamespace, v) }
        if let v = e.hostIP { set(s ? F.srcHostIP : F.dstHostIP, v) }
        if let v = e.hostName { set(s ? F.srcHostName : F.dstHostName, v) }
        if options.features.contains(.zones), let v = e.zone { set(s ? F.srcZone : F.dstZone, v) }
        if options.features.contains(.subnetLabels) { set(s ? F.srcSubnetLabel : F.dstSubnetLabel, e.subnetLabel) }
    }

    @inline(__always) private mutating func set(_ f: FieldID, _ v: Int64) { flow.set(f, integer: v) }
    @inline(__always) private mutating func set(_ f: FieldID, _ v: String) { flow.set(f, text: v) }
    @inline(__always) private mutating func set(_ f: FieldID, text v: String) { flow.set(f, text: v) }

    // MARK: Conversation tracking (flowlogs-pipeline conntrack, logTypes: All)

    private struct ConnectionTotals {
        var bytesAB: Int64 = 0, bytesBA: Int64 = 0, packetsAB: Int64 = 0, packetsBA: Int64 = 0
        var flowLogs: Int64 = 0
        var startMs: Int64 = .max, endMs: Int64 = 0
        var reported = false
    }

    private mutating func trackConnection(_ c: Conversation, id: Int, bytes: Int64, packets: Int64,
                                          startMs: Int64, endMs: Int64, aToB: Bool) {
        var t = connectionState[id] ?? ConnectionTotals()
        if aToB { t.bytesAB += bytes; t.packetsAB += packets } else { t.bytesBA += bytes; t.packetsBA += packets }
        t.flowLogs += 1
        t.startMs = min(t.startMs, startMs)
        t.endMs = max(t.endMs, endMs)
        let kind: String?
        if !t.reported { kind = "newConnection" } else if random.chance(0.05) { kind = "endConnection" } else if t.flowLogs % 8 == 0 { kind = "heartbeat" } else { kind = nil }
        if let kind {
            var r = Flow()
            r.set(F.recordType, text: kind)
            r.set(F.hashId, text: c.hashId)
            r.set(F.isFirst, integer: t.reported ? 0 : 1)
            r.set(F.srcAddr, text: c.src.addr)
            r.set(F.dstAddr, text: c.dst.addr)
            r.set(F.srcPort, integer: Int64(c.srcPort))
            r.set(F.dstPort, integer: Int64(c.dstPort))
            r.set(F.proto, integer: Int64(c.proto))
            r.set(F.timeFlowStartMs, integer: t.startMs)
            r.set(F.timeFlowEndMs, integer: t.endMs)
            r.set(F.agentIP, text: flow.string(F.agentIP) ?? "")
            r.set(F.bytes, integer: t.bytesAB + t.bytesBA)
            r.set(F.packets, integer: t.packetsAB + t.packetsBA)
            if t.bytesAB > 0 { r.set(F.bytesAB, integer: t.bytesAB) }
            if t.bytesBA > 0 { r.set(F.bytesBA, integer: t.bytesBA) }
            if t.packetsAB > 0 { r.set(F.packetsAB, integer: t.packetsAB) }
            if t.packetsBA > 0 { r.set(F.packetsBA, integer: t.packetsBA) }
            r.set(F.numFlowLogs, integer: t.flowLogs)
            if let rtt = flow.integer(F.timeFlowRttNs) { r.set(F.maxTimeFlowRttNs, integer: rtt) }
            r.set(F.k8sFlowLayer, text: flow.string(F.k8sFlowLayer) ?? "infra")
            for f in F.enrichment { if let v = flow.string(f) { r.set(f, text: v) } }
            t.reported = true
            if kind == "endConnection" { t = ConnectionTotals() }
            pendingConnectionRecords.append(r)
        }
        connectionState[id] = t
    }
}

/// Field handles the generator writes; resolved once from `FlowSchema`.
enum F {
    static let timeFlowStartMs = FlowSchema.id(of: "TimeFlowStartMs")
    static let timeFlowEndMs = FlowSchema.id(of: "TimeFlowEndMs")
    static let timeReceived = FlowSchema.id(of: "TimeReceived")
    static let agentIP = FlowSchema.id(of: "AgentIP")
    static let srcMac = FlowSchema.id(of: "SrcMac")
    static let dstMac = FlowSchema.id(of: "DstMac")
    static let etype = FlowSchema.id(of: "Etype")
    static let interfaces = FlowSchema.id(of: "Interfaces")
    static let ifDirections = FlowSchema.id(of: "IfDirections")
    static let udns = FlowSchema.id(of: "Udns")
    static let bytes = FlowSchema.id(of: "Bytes")
    static let packets = FlowSchema.id(of: "Packets")
    static let sampling = FlowSchema.id(of: "Sampling")
    static let srcAddr = FlowSchema.id(of: "SrcAddr")
    static let dstAddr = FlowSchema.id(of: "DstAddr")
    static let proto = FlowSchema.id(of: "Proto")
    static let dscp = FlowSchema.id(of: "Dscp")
    static let srcPort = FlowSchema.id(of: "SrcPort")
    static let dstPort = FlowSchema.id(of: "DstPort")
    static let flags = FlowSchema.id(of: "Flags")
    static let icmpType = FlowSchema.id(of: "IcmpType")
    static let icmpCode = FlowSchema.id(of: "IcmpCode")
    static let flowDirection = FlowSchema.id(of: "FlowDirection")
    static let k8sFlowLayer = FlowSchema.id(of: "K8S_FlowLayer")
    static let srcName = FlowSchema.id(of: "SrcK8S_Name")
    static let srcType = FlowSchema.id(of: "SrcK8S_Type")
    static let srcOwnerName = FlowSchema.id(of: "SrcK8S_OwnerName")
    static let srcOwnerType = FlowSchema.id(of: "SrcK8S_OwnerType")
    static let srcNamespace = FlowSchema.id(of: "SrcK8S_Namespace")
    static let srcHostIP = FlowSchema.id(of: "SrcK8S_HostIP")
    static let srcHostName = FlowSchema.id(of: "SrcK8S_HostName")
    static let srcZone = FlowSchema.id(of: "SrcK8S_Zone")
    static let dstName = FlowSchema.id(of: "DstK8S_Name")
    static let dstType = FlowSchema.id(of: "DstK8S_Type")
    static let dstOwnerName = FlowSchema.id(of: "DstK8S_OwnerName")
    static let dstOwnerType = FlowSchema.id(of: "DstK8S_OwnerType")
    static let dstNamespace = FlowSchema.id(of: "DstK8S_Namespace")
    static let dstHostIP = FlowSchema.id(of: "DstK8S_HostIP")
    static let dstHostName = FlowSchema.id(of: "DstK8S_HostName")
    static let dstZone = FlowSchema.id(of: "DstK8S_Zone")
    static let srcSubnetLabel = FlowSchema.id(of: "SrcSubnetLabel")
    static let dstSubnetLabel = FlowSchema.id(of: "DstSubnetLabel")
    static let clusterName = FlowSchema.id(of: "K8S_ClusterName")
    static let dnsId = FlowSchema.id(of: "DnsId")
    static let dnsFlags = FlowSchema.id(of: "DnsFlags")
    static let dnsFlagsResponseCode = FlowSchema.id(of: "DnsFlagsResponseCode")
    static let dnsLatencyMs = FlowSchema.id(of: "DnsLatencyMs")
    static let dnsName = FlowSchema.id(of: "DnsName")
    static let dnsErrno = FlowSchema.id(of: "DnsErrno")
    static let pktDropBytes = FlowSchema.id(of: "PktDropBytes")
    static let pktDropPackets = FlowSchema.id(of: "PktDropPackets")
    static let pktDropLatestFlags = FlowSchema.id(of: "PktDropLatestFlags")
    static let pktDropLatestState = FlowSchema.id(of: "PktDropLatestState")
    static let pktDropLatestDropCause = FlowSchema.id(of: "PktDropLatestDropCause")
    static let timeFlowRttNs = FlowSchema.id(of: "TimeFlowRttNs")
    static let networkEvents = FlowSchema.id(of: "NetworkEvents")
    static let zoneId = FlowSchema.id(of: "ZoneId")
    static let xlatSrcAddr = FlowSchema.id(of: "XlatSrcAddr")
    static let xlatDstAddr = FlowSchema.id(of: "XlatDstAddr")
    static let xlatSrcPort = FlowSchema.id(of: "XlatSrcPort")
    static let xlatDstPort = FlowSchema.id(of: "XlatDstPort")
    static let xlatDstK8SName = FlowSchema.id(of: "XlatDstK8S_Name")
    static let xlatDstK8SType = FlowSchema.id(of: "XlatDstK8S_Type")
    static let xlatDstK8SNamespace = FlowSchema.id(of: "XlatDstK8S_Namespace")
    static let xlatDstK8SOwnerName = FlowSchema.id(of: "XlatDstK8S_OwnerName")
    static let xlatDstK8SOwnerType = FlowSchema.id(of: "XlatDstK8S_OwnerType")
    static let xlatDstK8SHostIP = FlowSchema.id(of: "XlatDstK8S_HostIP")
    static let xlatDstK8SHostName = FlowSchema.id(of: "XlatDstK8S_HostName")
    static let ipsecStatus = FlowSchema.id(of: "IPSecStatus")
    static let ipsecRetCode = FlowSchema.id(of: "IPSecRetCode")
    static let tlsVersion = FlowSchema.id(of: "TLSVersion")
    static let tlsTypes = FlowSchema.id(of: "TLSTypes")
    static let tlsCipherSuite = FlowSchema.id(of: "TLSCipherSuite")
    static let tlsGroup = FlowSchema.id(of: "TLSGroup")
    static let tlsCurve = FlowSchema.id(of: "TLSCurve")
    static let quicVersion = FlowSchema.id(of: "QuicVersion")
    static let quicSeenLongHdr = FlowSchema.id(of: "QuicSeenLongHdr")
    static let quicSeenShortHdr = FlowSchema.id(of: "QuicSeenShortHdr")
    static let recordType = FlowSchema.id(of: "_RecordType")
    static let hashId = FlowSchema.id(of: "_HashId")
    static let isFirst = FlowSchema.id(of: "_IsFirst")
    static let bytesAB = FlowSchema.id(of: "Bytes_AB")
    static let bytesBA = FlowSchema.id(of: "Bytes_BA")
    static let packetsAB = FlowSchema.id(of: "Packets_AB")
    static let packetsBA = FlowSchema.id(of: "Packets_BA")
    static let numFlowLogs = FlowSchema.id(of: "numFlowLogs")
    static let maxTimeFlowRttNs = FlowSchema.id(of: "MaxTimeFlowRttNs")
    static let interface = FlowSchema.id(of: "Interface")
    static let ifDirection = FlowSchema.id(of: "IfDirection")
    static let duplicate = FlowSchema.id(of: "Duplicate")

    /// Kube enrichment copied onto conversation records (conntrack runs before enrichment).
    static let enrichment = [srcName, srcType, srcOwnerName, srcOwnerType, srcNamespace, srcHostIP, srcHostName,
                             dstName, dstType, dstOwnerName, dstOwnerType, dstNamespace, dstHostIP, dstHostName,
                             srcZone, dstZone, srcSubnetLabel, dstSubnetLabel, clusterName]
}
