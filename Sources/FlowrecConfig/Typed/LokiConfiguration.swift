package import FlowModel

/// The Loki-compatible API (`loki.*`): how stored flows look as Loki streams, who may
/// read and push, and the limits the console is told about (`/config`).
package struct LokiConfiguration: Sendable {
    /// Flow fields that are stream labels: the operator's default `loki.labels`. Must
    /// match the FlowCollector's (its `spec.loki.advanced` and `excludeLabels`), because
    /// the console plugin decides from it which filters are stream matchers.
    package var labels = ["SrcK8S_Namespace", "SrcK8S_OwnerName", "SrcK8S_Type", "DstK8S_Namespace",
                          "DstK8S_OwnerName", "DstK8S_Type", "K8S_FlowLayer", "FlowDirection"]
    /// Labels every stream carries that are not flow fields.
    package var staticLabels = ["app": "netobserv-flowcollector"]
    /// When set, every Loki request must carry `X-Scope-OrgID` with this value.
    package var tenant: String?
    /// Whether `POST /loki/api/v1/push` stores flows.
    package var pushEnabled = true
    /// Loki's `max_entries_limit_per_query` (the console asks for up to 1,000).
    package var maxEntries = 10_000
    /// Loki's `max_query_series`.
    package var maxSeries = 10_000
    /// Loki's `max_query_length`.
    package var maxQueryLengthMs: Int64 = 721 * 3_600_000
    /// The most bytes one push may decompress to.
    package var maxPushBytes = 64 << 20
    /// The most bytes of one entry (labels merged back); larger ones become dead letters.
    package var maxEntryBytes = 1 << 20
    /// Pushed flows ending outside this range around the wall clock become dead letters.
    package var eventTimes = EventTime.Plausibility.default

    package init() {}
}
