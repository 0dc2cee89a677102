import Foundation
package import LokiPush
import Query

/// A flow as flowlogs-pipeline's Loki writer sends it: the label fields (stringified)
/// and the static labels in the stream, the rest as the JSON line, the timestamp from
/// `TimeFlowEndMs`. The load generator of the push benchmark and the push tests build
/// their requests with it; the real FLP is what the integration tests use.
package enum FLPLokiSplit {
    /// The operator's default label fields.
    package static let operatorLabels = LokiStreamModel.operatorLabels

    package struct NotAFlowObject: Error {}

    package static func split(_ line: [UInt8], labels: [String] = operatorLabels,
                              staticLabels: [String: String] = ["app": "netobserv-flowcollector"]) throws -> PushedStream {
        guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { throw NotAFlowObject() }
        var pairs = staticLabels.map { LabelPair($0.key, $0.value) }
        var rest = object
        for name in labels {
            guard let value = object[name] else { continue }
            rest[name] = nil
            pairs.append(LabelPair(name, (value as? String) ?? "\(value)"))
        }
        let body = try JSONSerialization.data(withJSONObject: rest)
        let end = (object["TimeFlowEndMs"] as? NSNumber)?.int64Value ?? 0
        return PushedStream(labels: pairs.sorted { $0.name < $1.name },
                            entries: [PushedEntry(nanos: end * 1_000_000, line: String(decoding: body, as: UTF8.self))])
    }
}
