/// A pair of endpoints that talk, with the shape of their traffic. The generator
/// draws flows from a fixed set of conversations with skewed popularity.
struct Conversation: Sendable {
    let src: Endpoint
    let dst: Endpoint
    let proto: Int
    let srcPort: Int
    let dstPort: Int
    let ipv6: Bool
    let medianPackets: Double
    let medianPacketSize: Double
    /// The backend pod when `dst` is a Service and packet translation is shown.
    let translatedTo: Endpoint?
    let dnsName: String
    /// flowlogs-pipeline's conversation id: FNV-1a of the 5-tuple, hex, not zero-padded.
    let hashId: String

    static let tcpFlagChoices: [Int64] = [16, 16, 16, 24, 24, 17, 18, 2, 0, 20, 256 | 16, 512 | 16 | 1, 4]
    static let dropCauses = ["SKB_DROP_REASON_NO_SOCKET", "SKB_DROP_REASON_TCP_INVALID_SEQUENCE",
                             "OVS_DROP_LAST_ACTION", "SKB_DROP_REASON_NETFILTER_DROP", "SKB_DROP_REASON_SOCKET_FILTER"]

    /// Lays out the cluster's traffic: service calls, DNS lookups, egress to external
    /// hosts, ingress through the router, node-to-node infrastructure and some ICMP.
    static func plan(cluster: ClusterModel, random: inout SeededRandom) -> [Conversation] {
        var result: [Conversation] = []
        let count = cluster.size.conversations
        result.reserveCapacity(count)
        let dnsNames = ["api.github.com", "registry.redhat.io", "kubernetes.default.svc", "quay.io",
                        "postgres.payments-prod.svc", "s3.amazonaws.com", "redis.cart-prod.svc", "sentry.io"]
        while result.count < count {
            let roll = random.below(100)
            let client = cluster.pods[random.below(cluster.pods.count)]
            let ephemeral = 32768 + random.below(28000)
            switch roll {
            case 0..<45:  // pod → service (TCP)
                let s = random.below(cluster.services.count)
                let service = cluster.services[s]
                let backends = cluster.serviceBackends[s]
                let backend = backends.isEmpty ? nil : cluster.pods[backends[random.below(backends.count)]]
                let viaService = random.chance(0.5)
                let dst = viaService ? service : (backend ?? service)
                result.append(make(client, dst, proto: 6, ephemeral, service.port, packets: 12, size: 700,
                                   translatedTo: viaService ? backend : nil, random: &random, dnsNames: dnsNames))
            case 45..<62:  // DNS
                let dns = cluster.pods[cluster.dnsPods[random.below(cluster.dnsPods.count)]]
                result.append(make(client, dns, proto: 17, ephemeral, 5353, packets: 1, size: 90,
                                   translatedTo: nil, random: &random, dnsNames: dnsNames))
            case 62..<74:  // egress to the internet
                let ext = cluster.externals[random.below(cluster.externals.count)]
                let udp = random.chance(0.15)
                result.append(make(client, ext, proto: udp ? 17 : 6, ephemeral, 443, packets: 20, size: 900,
                                   translatedTo: nil, random: &random, dnsNames: dnsNames))
            case 74..<84:  // ingress through the router
                let ext = cluster.externals[random.below(cluster.externals.count)]
                let router = cluster.pods[cluster.ingressPods[random.below(cluster.ingressPods.count)]]
                result.append(make(ext, router, proto: 6, ephemeral, 443, packets: 30, size: 1100,
                                   translatedTo: nil, random: &random, dnsNames: dnsNames))
            case 84..<96:  // node to node: kubelet, geneve, API server
                let a = cluster.nodes[random.below(cluster.nodes.count)]
                let b = cluster.nodes[random.below(cluster.nodes.count)]
                let api = cluster.pods[cluster.apiServerPods[random.below(cluster.apiServerPods.count)]]
                let choice = random.below(3)
                let dst = choice == 2 ? api : b
                let port = [10250, 6081, 6443][choice]
                result.append(make(a, dst, proto: choice == 1 ? 17 : 6, ephemeral, port, packets: 40, size: 400,
                                   translatedTo: nil, random: &random, dnsNames: dnsNames))
            default:  // ICMP health checks
                let b = cluster.nodes[random.below(cluster.nodes.count)]
                result.append(make(client, b, proto: 1, 0, 0, packets: 1, size: 98,
                                   translatedTo: nil, random: &random, dnsNames: dnsNames))
            }
        }
        return result
    }

    private static func make(_ src: Endpoint, _ dst: Endpoint, proto: Int, _ srcPort: Int, _ dstPort: Int,
                             packets: Double, size: Double, translatedTo: Endpoint?,
                             random: inout SeededRandom, dnsNames: [String]) -> Conversation {
        let ipv6 = src.isIPv6 || dst.isIPv6
        // An IPv6 peer talks to an IPv6 address on our side: give pods a dual-stack view.
        let srcAddr = ipv6 && !src.isIPv6 ? Endpoint.ipv6(of: src) : src
        let dstAddr = ipv6 && !dst.isIPv6 ? Endpoint.ipv6(of: dst) : dst
        return Conversation(
            src: srcAddr, dst: dstAddr, proto: proto, srcPort: srcPort, dstPort: dstPort, ipv6: ipv6,
            medianPackets: packets * (0.5 + random.unit() * 2), medianPacketSize: size * (0.7 + random.unit() * 0.6),
            translatedTo: translatedTo, dnsName: dnsNames[random.below(dnsNames.count)],
            hashId: fnvHash(proto: proto, srcAddr.addr, srcPort, dstAddr.addr, dstPort))
    }

    /// Bidirectional: the endpoints are ordered so both directions hash alike.
    static func fnvHash(proto: Int, _ a: String, _ aPort: Int, _ b: String, _ bPort: Int) -> String {
        let (first, second) = (a, aPort) < (b, bPort) ? ((a, aPort), (b, bPort)) : ((b, bPort), (a, aPort))
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in "\(proto)|\(first.0)|\(first.1)|\(second.0)|\(second.1)".utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        return String(h, radix: 16)
    }
}

extension Endpoint {
    /// The MAC NetObserv shows: services have none of their own (the agent sees the node's).
    var macForFlow: String { mac.isEmpty ? "0a:58:64:58:00:01" : mac }

    static func ipv6(of e: Endpoint) -> Endpoint {
        var copy = e
        copy = Endpoint(kind: e.kind, addr: "fd01:0:0:\(e.addr.split(separator: ".").suffix(2).joined(separator: "::"))",
                        mac: e.mac, name: e.name, type: e.type, ownerName: e.ownerName, ownerType: e.ownerType,
                        namespace: e.namespace, hostIP: e.hostIP, hostName: e.hostName, zone: e.zone,
                        subnetLabel: e.subnetLabel, nodeIndex: e.nodeIndex, flowLayerApp: e.flowLayerApp,
                        isIPv6: true, port: e.port, interface: e.interface)
        return copy
    }
}
