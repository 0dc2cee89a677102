/// A synthetic Kubernetes cluster: zones, nodes, namespaces, workloads, pods,
/// services and the external hosts they talk to, with the names, addresses and
/// MACs that NetObserv would report for them (OVN-Kubernetes conventions: pod MACs
/// are `0a:58:` plus the pod IP, services live in 172.30.0.0/16).
package struct ClusterModel: Sendable {
    package enum Size: String, Sendable, CaseIterable {
        case small, medium, large

        var nodes: Int { switch self { case .small: 3; case .medium: 24; case .large: 120 } }
        var zones: Int { switch self { case .small: 1; case .medium: 3; case .large: 3 } }
        var appNamespaces: Int { switch self { case .small: 5; case .medium: 36; case .large: 160 } }
        var externalHosts: Int { switch self { case .small: 20; case .medium: 300; case .large: 3000 } }
        /// Distinct endpoint pairs that carry traffic.
        var conversations: Int { switch self { case .small: 400; case .medium: 20000; case .large: 150_000 } }
        /// Flows per second of event time in a cluster of this size.
        package var typicalFlowRate: Int { switch self { case .small: 200; case .medium: 5000; case .large: 50000 } }
    }

    package let size: Size
    package let clusterName: String
    package internal(set) var nodes: [Endpoint] = []
    package internal(set) var pods: [Endpoint] = []
    package internal(set) var services: [Endpoint] = []
    package internal(set) var externals: [Endpoint] = []
    /// Pods grouped by the service that fronts them (same index as `services`).
    package internal(set) var serviceBackends: [[Int]] = []
    package internal(set) var dnsPods: [Int] = []
    package internal(set) var ingressPods: [Int] = []
    package internal(set) var apiServerPods: [Int] = []
    package internal(set) var namespaces: [String] = []

    package init(size: Size, random: inout SeededRandom) {
        self.size = size
        self.clusterName = "cluster-\(size.rawValue)"
        let zoneNames = ["us-east-1a", "us-east-1b", "us-east-1c"].prefix(size.zones)
        for n in 0..<size.nodes {
            let ip = "10.0.\(1 + n / 200).\(10 + n % 200)"
            let name = "ip-\(ip.replacingOccurrences(of: ".", with: "-")).ec2.internal"
            nodes.append(Endpoint(
                kind: .node, addr: ip, mac: Self.randomMAC(&random, prefix: "02"), name: name,
                type: "Node", ownerName: name, ownerType: "Node", namespace: nil,
                hostIP: ip, hostName: name, zone: zoneNames[n % zoneNames.count], subnetLabel: "Machines",
                nodeIndex: n, flowLayerApp: false))
        }

        // Infrastructure namespaces every OpenShift cluster has, then application ones.
        let daemonSets: [(ns: String, ds: String, port: Int)] = [
            ("openshift-dns", "dns-default", 5353),
            ("openshift-ovn-kubernetes", "ovnkube-node", 9103),
            ("openshift-monitoring", "node-exporter", 9100),
            ("netobserv-privileged", "netobserv-ebpf-agent", 9400),
        ]
        for entry in daemonSets {
            for node in 0..<size.nodes {
                let pod = addPod(namespace: entry.ns, owner: entry.ds, ownerType: "DaemonSet",
                                 podName: "\(entry.ds)-\(Self.suffix(&random, 5))", node: node, random: &random)
                if entry.ds == "dns-default" { dnsPods.append(pod) }
            }
        }
        let infraDeployments: [(ns: String, name: String, replicas: Int, port: Int)] = [
            ("openshift-ingress", "router-default", 2, 443),
            ("openshift-apiserver", "apiserver", 3, 6443),
            ("openshift-monitoring", "prometheus-k8s", 2, 9091),
            ("openshift-image-registry", "image-registry", 2, 5000),
            ("netobserv", "flowlogs-pipeline", 3, 2055),
            ("netobserv", "loki", 1, 3100),
            ("kube-system", "konnectivity-agent", 2, 8091),
        ]
        for d in infraDeployments {
            let indexes = addWorkload(namespace: d.ns, name: d.name, replicas: d.replicas, port: d.port, random: &random)
            if d.name == "router-default" { ingressPods = indexes }
            if d.name == "apiserver" { apiServerPods = indexes }
        }
        let appWords = ["payments", "checkout", "catalog", "cart", "search", "auth", "orders", "inventory",
                        "shipping", "billing", "reviews", "recommend", "frontend", "gateway", "analytics",
                        "notifications", "media", "profile", "ledger", "pricing", "loyalty", "fraud"]
        let envs = ["prod", "staging", "dev", "qa", "perf", "canary", "eu", "us"]
        let workloadWords = ["api", "web", "worker", "db", "cache", "broker", "scheduler", "ingest", "proxy", "exporter"]
        let ports = [8080, 8443, 443, 5432, 6379, 9092, 3000, 50051, 8000, 27017]
        for i in 0..<size.appNamespaces {
            let ns = appWords[i % appWords.count] + "-" + envs[(i / appWords.count) % envs.count]
                + (i >= appWords.count * envs.count ? "-\(i)" : "")
            let workloads = 2 + random.below(6)
            for w in 0..<workloads {
                let name = workloadWords[(i + w) % workloadWords.count] + (w >= workloadWords.count ? "-\(w)" : "")
                let replicas = 1 + random.below(4)
                _ = addWorkload(namespace: ns, name: name, replicas: replicas, port: ports[(i * 7 + w) % ports.count],
                                random: &random)
            }
        }
        let externalNames = ["api.github.com", "registry.redhat.io", "s3.amazonaws.com", "quay.io", "api.stripe.com",
                             "www.googleapis.com", "sentry.io", "login.microsoftonline.com"]
        for e in 0..<size.externalHosts {
            let v6 = e % 10 == 9
            let addr = v6
                ? "2600:1f18:\(String(0x4000 + e, radix: 16)):\(String(random.below(0xFFFF), radix: 16))::\(e % 97 + 1)"
                : "\([52, 54, 3, 142, 151, 185, 104][e % 7]).\(random.below(250) + 1).\(random.below(250) + 1).\(random.below(250) + 1)"
            externals.append(Endpoint(
                kind: .external, addr: addr, mac: nodes[e % nodes.count].mac, name: externalNames[e % externalNames.count],
                type: nil, ownerName: nil, ownerType: nil, namespace: nil, hostIP: nil, hostName: nil, zone: nil,
                subnetLabel: "EXT:ExternalIP", nodeIndex: nil, flowLayerApp: false, isIPv6: v6))
        }
        namespaces = Array(Set(pods.compactMap(\.namespace))).sorted()
    }

    /// Adds a Deployment (or StatefulSet for databases) with its pods and a Service.
    private mutating func addWorkload(namespace: String, name: String, replicas: Int, port: Int,
                                      random: inout SeededRandom) -> [Int] {
        let stateful = name.hasPrefix("db") || name == "loki" || name == "prometheus-k8s"
        let rsHash = Self.suffix(&random, 10)
        var indexes: [Int] = []
        for r in 0..<replicas {
            let podName = stateful ? "\(name)-\(r)" : "\(name)-\(rsHash)-\(Self.suffix(&random, 5))"
            indexes.append(addPod(namespace: namespace, owner: name, ownerType: stateful ? "StatefulSet" : "Deployment",
                                  podName: podName, node: random.below(size.nodes), random: &random))
        }
        let s = services.count
        services.append(Endpoint(
            kind: .service, addr: "172.30.\(s / 250).\(s % 250 + 1)", mac: "", name: name, type: "Service",
            ownerName: name, ownerType: "Service", namespace: namespace, hostIP: nil, hostName: nil, zone: nil,
            subnetLabel: "Services", nodeIndex: nil, flowLayerApp: Self.isAppNamespace(namespace), port: port))
        serviceBackends.append(indexes)
        return indexes
    }

    private mutating func addPod(namespace: String, owner: String, ownerType: String, podName: String, node: Int,
                                 random: inout SeededRandom) -> Int {
        let p = pods.count
        let ip = (128 + node / 2, (node % 2) * 128 + (p / 250) % 128, p % 250 + 2)
        let addr = "10.\(ip.0).\(ip.1).\(ip.2)"
        let mac = "0a:58:0a:" + [ip.0, ip.1, ip.2].map { Self.hex2($0) }.joined(separator: ":")
        let host = nodes[node]
        pods.append(Endpoint(
            kind: .pod, addr: addr, mac: mac, name: podName, type: "Pod", ownerName: owner, ownerType: ownerType,
            namespace: namespace, hostIP: host.addr, hostName: host.name, zone: host.zone, subnetLabel: "Pods",
            nodeIndex: node, flowLayerApp: Self.isAppNamespace(namespace),
            interface: Self.suffix(&random, 15, alphabet: "0123456789abcdef")))
        return p
    }

    /// NetObserv's rule for `K8S_FlowLayer`: a namespace not prefixed by netobserv or
    /// openshift, and not default or kube-*, makes the flow `app`.
    static func isAppNamespace(_ ns: String) -> Bool {
        !(ns.hasPrefix("openshift") || ns.hasPrefix("netobserv") || ns.hasPrefix("kube-") || ns == "default")
    }

    static func suffix(_ random: inout SeededRandom, _ n: Int, alphabet: String = "bcdfghjklmnpqrstvwxz2456789") -> String {
        let chars = Array(alphabet)
        return String((0..<n).map { _ in chars[random.below(chars.count)] })
    }

    static func hex2(_ v: Int) -> String {
        let s = String(v, radix: 16)
        return s.count == 1 ? "0" + s : s
    }

    static func randomMAC(_ random: inout SeededRandom, prefix: String) -> String {
        ([prefix] + (0..<5).map { _ in hex2(random.below(256)) }).joined(separator: ":")
    }
}

/// Something that sends or receives traffic, with the enrichment NetObserv attaches.
package struct Endpoint: Sendable {
    package enum Kind: Sendable { case node, pod, service, external }
    package let kind: Kind
    package let addr: String
    package let mac: String
    package let name: String
    package let type: String?
    package let ownerName: String?
    package let ownerType: String?
    package let namespace: String?
    package let hostIP: String?
    package let hostName: String?
    package let zone: String?
    package let subnetLabel: String
    package let nodeIndex: Int?
    package let flowLayerApp: Bool
    package var isIPv6: Bool = false
    /// The port a service listens on.
    package var port: Int = 0
    /// The pod's veth name on its node.
    package var interface: String = ""
}

import Foundation
