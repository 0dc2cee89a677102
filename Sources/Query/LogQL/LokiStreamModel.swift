package import FlowModel
import Foundation

/// How a stored flow looks to Loki's API, as flowlogs-pipeline writes it: the stream
/// labels are the static labels (`app="netobserv-flowcollector"`) plus the configured
/// label fields present in the flow, each as text; the line is the flow's JSON without
/// those fields, in the encoding NetObserv uses (so a regex the console sends matches
/// the same flows it would in Loki); the timestamp is `TimeFlowEndMs` in nanoseconds.
package struct LokiStreamModel: Sendable {
    /// The operator's default `loki.labels` (FLP's `labels` and the plugin's `loki.labels`).
    package static let operatorLabels = ["SrcK8S_Namespace", "SrcK8S_OwnerName", "SrcK8S_Type", "DstK8S_Namespace",
                                         "DstK8S_OwnerName", "DstK8S_Type", "K8S_FlowLayer", "FlowDirection"]
    package static let defaultStaticLabels = ["app": "netobserv-flowcollector"]

    package let staticLabels: [String: String]
    package let labelFields: [FieldID]
    let labelSet: FieldSet

    /// `labels` are flow field names (NetObserv's, as in `spec.loki.advanced`).
    package init(labels: [String] = operatorLabels, staticLabels: [String: String] = defaultStaticLabels) throws(QueryError) {
        var fields: [FieldID] = []
        for name in labels {
            guard let id = FlowSchema.id(named: name) else {
                throw QueryError(.unknownField, "\(name) is not a NetObserv field, so it cannot be a Loki label (labels are field names such as SrcK8S_Namespace)")
            }
            guard !id.kind.isJSONText else { throw QueryError(.invalidArgument, "\(name) is an array field; Loki labels are scalar fields") }
            fields.append(id)
        }
        labelFields = fields
        labelSet = FieldSet(fields)
        self.staticLabels = staticLabels
    }

    package func isLabel(_ name: String) -> Bool {
        staticLabels[name] != nil || FlowSchema.id(named: name).map { labelSet.contains($0) } ?? false
    }

    /// A field's value as Loki text (a label's value, or what `| json` extracts): strings as
    /// they are, integers in decimal (uint64 counters unsigned), booleans `true`/`false`;
    /// nil when absent, null, or an array (which `| json` skips).
    package func text(of field: FieldID, in flow: Flow) -> String? {
        guard flow.present.contains(field), !flow.nulls.contains(field) else { return nil }
        switch field.kind {
        case .string: return flow.string(field)
        case .bool: return flow.integer(field).map { $0 != 0 ? "true" : "false" }
        case .integer:
            guard let v = flow.integer(field) else { return nil }
            return v < 0 && field.spec.isUnsigned64 ? String(UInt64(bitPattern: v)) : String(v)
        case .stringArray, .directionArray, .objectArray, .tcpFlags:
            // Flags can arrive as a number (agents before 1.8): a scalar, then.
            if field.kind == .tcpFlags, let text = flow.string(field), !text.hasPrefix("[") { return text }
            return nil
        }
    }

    /// The stream labels of a flow, sorted by name (empty values are no label, as in Loki).
    package func streamLabels(of flow: Flow) -> [(name: String, value: String)] {
        var labels = staticLabels.map { ($0.key, $0.value) }
        for field in labelFields {
            if let value = text(of: field, in: flow), !value.isEmpty { labels.append((field.name, value)) }
        }
        return labels.sorted { $0.0 < $1.0 }
    }

    /// The line: the flow's JSON without its label fields.
    package func line(of flow: Flow, into out: inout [UInt8]) {
        FlowEncoder().encode(flow, into: &out, omitting: labelSet)
    }

    /// Loki's entry timestamp: `TimeFlowEndMs` in nanoseconds.
    package static func timestampNanos(_ flow: Flow) -> Int64 {
        (flow.integer(FlowSchema.requiredField) ?? 0).multipliedReportingOverflow(by: 1_000_000).partialValue
    }
}
