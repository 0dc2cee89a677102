import FlowModel
import Testing

@Suite struct FlowSchemaTests {
    @Test func namesAreUniqueAndFitTheKeyTable() {
        let names = FlowSchema.fields.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.utf8.count <= 24 })
        #expect(FlowSchema.count <= 128, "FieldSet holds 128 fields")
    }

    @Test func everyFieldIsFoundByName() {
        for (index, spec) in FlowSchema.fields.enumerated() {
            #expect(FlowSchema.id(named: spec.name)?.index == index)
        }
        #expect(FlowSchema.id(named: "NoSuchField") == nil)
    }

    @Test func keyOrderIsGoSortOrder() {
        let order = FlowSchema.idsInKeyOrder.map(\.name)
        #expect(order == FlowSchema.fields.map(\.name).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        #expect(order.count == FlowSchema.count)
    }

    @Test func everyFieldHasDocsAndAClickHouseType() {
        for spec in FlowSchema.fields {
            #expect(!spec.summary.isEmpty, "\(spec.name) needs a summary")
            #expect(!spec.clickHouseType.isEmpty, "\(spec.name) needs a ClickHouse type")
        }
    }

    @Test func theSpecFieldsAreAllKnown() {
        // Every field the reference names in its tables (current, conntrack and legacy).
        let expected = """
        TimeFlowStartMs TimeFlowEndMs TimeReceived AgentIP SrcMac DstMac Etype Interfaces IfDirections Udns Bytes
        Packets Sampling SrcAddr DstAddr Proto Dscp SrcPort DstPort Flags IcmpType IcmpCode FlowDirection K8S_FlowLayer
        SrcK8S_Name DstK8S_Name SrcK8S_Type DstK8S_Type SrcK8S_OwnerName DstK8S_OwnerName SrcK8S_OwnerType
        DstK8S_OwnerType SrcK8S_Namespace DstK8S_Namespace SrcK8S_NetworkName DstK8S_NetworkName SrcK8S_HostIP
        DstK8S_HostIP SrcK8S_HostName DstK8S_HostName SrcK8S_Zone DstK8S_Zone SrcSubnetLabel DstSubnetLabel
        K8S_ClusterName DnsId DnsFlags DnsFlagsResponseCode DnsLatencyMs DnsName DnsErrno PktDropBytes PktDropPackets
        PktDropLatestFlags PktDropLatestState PktDropLatestDropCause TimeFlowRttNs NetworkEvents ZoneId XlatSrcAddr
        XlatDstAddr XlatSrcPort XlatDstPort IPSecStatus IPSecRetCode TLSVersion TLSTypes TLSCipherSuite TLSGroup
        QuicVersion QuicSeenLongHdr QuicSeenShortHdr _RecordType _HashId _IsFirst Bytes_AB Bytes_BA Packets_AB
        Packets_BA numFlowLogs PktDropBytes_AB PktDropBytes_BA PktDropPackets_AB PktDropPackets_BA MaxTimeFlowRttNs
        Interface IfDirection Duplicate TLSCurve UdnId
        """.split(whereSeparator: { $0 == " " || $0 == "\n" })
        for name in expected { #expect(FlowSchema.id(named: String(name)) != nil, "\(name) missing") }
        for side in ["Src", "Dst"] {
            for suffix in ["Name", "Type", "Namespace", "OwnerName", "OwnerType", "NetworkName", "HostIP", "HostName"] {
                #expect(FlowSchema.id(named: "Xlat\(side)K8S_\(suffix)") != nil)
            }
        }
    }
}
