import FlowGenerator
import FlowModel
import Testing

@Suite struct FlowGeneratorTests {
    func records(_ options: GeneratorOptions, _ count: Int) -> [[UInt8]] {
        var generator = FlowGenerator(options: options)
        return (0..<count).map { _ in
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            return line
        }
    }

    @Test func sameSeedSameFlowsOtherSeedOtherFlows() {
        var a = GeneratorOptions(), b = GeneratorOptions()
        a.seed = 9
        b.seed = 9
        #expect(records(a, 2000) == records(b, 2000))
        b.seed = 10
        #expect(records(a, 2000) != records(b, 2000))
    }

    @Test func mediumClusterHasRealisticCardinalities() throws {
        var generator = FlowGenerator(options: GeneratorOptions())
        var stats = GeneratorStatistics()
        for _ in 0..<50_000 { stats.add(generator.nextFlow()) }
        #expect(stats.distinctNamespaces >= 30)
        #expect(stats.distinctPods >= 300)
        #expect(stats.distinctAddresses >= 500)
        #expect(generator.cluster.nodes.count == 24)
    }

    @Test func trafficIsSkewedTowardsFewPairs() {
        var generator = FlowGenerator(options: GeneratorOptions())
        var counts: [String: Int] = [:]
        let src = FlowSchema.id(of: "SrcAddr"), dst = FlowSchema.id(of: "DstAddr")
        for _ in 0..<50_000 {
            let f = generator.nextFlow()
            counts[(f.string(src) ?? "") + ">" + (f.string(dst) ?? ""), default: 0] += 1
        }
        let sorted = counts.values.sorted(by: >)
        let top1Percent = sorted.prefix(max(1, sorted.count / 100)).reduce(0, +)
        #expect(Double(top1Percent) / 50_000 > 0.15, "the busiest 1% of pairs should carry a large share")
    }

    @Test func everyRecordDecodesAndCarriesTheBaseFields() throws {
        var options = GeneratorOptions()
        options.features = Set(GeneratorOptions.Feature.allCases)
        let decoder = FlowDecoder()
        var flow = Flow()
        var seen = FieldSet()
        for line in records(options, 20_000) {
            try decoder.decode(line, into: &flow)
            // Conversation records carry no MACs, Etype or interfaces (conntrack drops them).
            let isConnectionRecord = flow.string(FlowSchema.id(of: "_RecordType")).map { $0 != "flowLog" } ?? false
            for name in ["TimeFlowStartMs", "TimeFlowEndMs", "AgentIP"] + (isConnectionRecord ? [] : ["SrcMac", "DstMac", "Etype"]) {
                #expect(flow.has(FlowSchema.id(of: name)), "\(name) missing")
            }
            for f in flow.present { seen.insert(f) }
        }
        // With every feature on, every feature's fields show up somewhere.
        for name in ["DnsLatencyMs", "DnsName", "PktDropBytes", "TimeFlowRttNs", "NetworkEvents", "XlatDstAddr",
                     "TLSVersion", "TLSGroup", "QuicVersion", "IPSecStatus", "SrcK8S_Zone", "SrcSubnetLabel",
                     "K8S_ClusterName", "_RecordType", "_HashId", "_IsFirst", "Bytes_AB", "numFlowLogs", "Udns"] {
            #expect(seen.contains(FlowSchema.id(of: name)), "\(name) never generated")
        }
    }

    @Test func legacyShapeLooksLikeNetObservBefore16() throws {
        var options = GeneratorOptions()
        options.shape = .legacy
        let decoder = FlowDecoder()
        var seen = FieldSet()
        for line in records(options, 5000) {
            let flow = try decoder.decode(line)
            for f in flow.present { seen.insert(f) }
            if let mac = flow.string(FlowSchema.id(of: "SrcMac")) { #expect(mac == mac.uppercased()) }
            if let flags = flow.string(FlowSchema.id(of: "Flags")) { #expect(Int(flags) != nil, "numeric Flags") }
        }
        #expect(seen.contains(FlowSchema.id(of: "Interface")))
        #expect(seen.contains(FlowSchema.id(of: "IfDirection")))
        #expect(!seen.contains(FlowSchema.id(of: "Interfaces")))
        #expect(!seen.contains(FlowSchema.id(of: "Udns")))
    }

    @Test func eventClockAdvancesByTheRate() {
        var options = GeneratorOptions()
        options.flowsPerSecond = 1000
        options.disorderMs = 0
        var generator = FlowGenerator(options: options)
        let end = FlowSchema.requiredField
        let first = generator.nextFlow().integer(end) ?? 0
        for _ in 0..<9_998 { _ = generator.nextFlow() }
        let last = generator.nextFlow().integer(end) ?? 0
        #expect(last - first == 9_999)  // 10,000 flows at 1000/s span ~10 s of event time
    }
}
