package import FlowModel

/// Field presence and cardinalities of generated flows, for `flowrec generate --stats`:
/// a quick way to see that a generated data set looks like a real cluster's.
package struct GeneratorStatistics: Sendable {
    private var presence = [Int](repeating: 0, count: FlowSchema.count)
    private var addresses = Set<String>()
    private var pods = Set<String>()
    private var namespaces = Set<String>()
    private var pairs = Set<String>()
    package private(set) var records = 0

    package init() {}

    package mutating func add(_ flow: Flow) {
        records += 1
        for field in flow.present { presence[field.index] += 1 }
        for f in [F.srcAddr, F.dstAddr] { if let v = flow.string(f) { addresses.insert(v) } }
        for (name, type) in [(F.srcName, F.srcType), (F.dstName, F.dstType)] where flow.string(type) == "Pod" {
            if let v = flow.string(name) { pods.insert(v) }
        }
        for f in [F.srcNamespace, F.dstNamespace] { if let v = flow.string(f) { namespaces.insert(v) } }
        pairs.insert((flow.string(F.srcAddr) ?? "") + ">" + (flow.string(F.dstAddr) ?? ""))
    }

    package var distinctAddresses: Int { addresses.count }
    package var distinctPods: Int { pods.count }
    package var distinctNamespaces: Int { namespaces.count }

    package func report(total: Int) -> String {
        var lines = ["records: \(records)",
                     "distinct IPs: \(addresses.count)",
                     "distinct pods: \(pods.count)",
                     "distinct namespaces: \(namespaces.count)",
                     "distinct address pairs: \(pairs.count)",
                     "field presence (share of records):"]
        for (index, count) in presence.enumerated() where count > 0 {
            let share = Double(count) / Double(max(records, 1)) * 100
            lines.append("  \(FlowSchema.fields[index].name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(format: "%6.2f", share))%")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

import Foundation
