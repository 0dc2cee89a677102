package import Prometheus
import ShardStore

/// Every figure `flowrec record` exposes on `/metrics`, in Prometheus' text format.
///
/// Names carry the `flowrec_` prefix, counters end in `_total`, durations are seconds
/// and sizes bytes, as Prometheus' naming guide asks, so dashboards can use `rate()` and
/// unit-aware panels without translation.
package final class RecorderMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry

    let messagesConsumed: Counter
    let messageBytes: Counter
    let flowsStored: Counter
    let replaysSkipped: Counter
    let deadLetters: Counter
    let batchDuration: DurationHistogram
    let sealDuration: DurationHistogram
    let shardsSealed: Counter
    let shardsCompacted: Counter
    let shardsMerged: Counter
    let activeShards: Gauge
    let sealedShards: Gauge
    let storeBytes: Gauge
    let volumeFreeBytes: Gauge
    let oldestShardAge: Gauge
    let assignedPartitions: Gauge
    let oldestRollupAge: Gauge

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        messagesConsumed = registry.makeCounter(descriptor: Self.named("messages_consumed", "total", "Kafka messages taken from the flow topics."))
        messageBytes = registry.makeCounter(descriptor: Self.named("consumed_bytes", "total", "Payload bytes of the consumed messages."))
        flowsStored = registry.makeCounter(descriptor: Self.named("flows_stored", "total", "Flows written to shards (each exactly once)."))
        replaysSkipped = registry.makeCounter(descriptor: Self.named("replays_skipped", "total", "Messages already stored, skipped after a restart or rebalance."))
        deadLetters = registry.makeCounter(descriptor: Self.named("dead_letters", "total", "Messages that were not flows, kept in the dead-letter table."))
        batchDuration = registry.makeDurationHistogram(
            descriptor: Self.named("batch_duration", "seconds", "Time to store one batch durably (decode, write, commit)."),
            buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                      .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)])
        sealDuration = registry.makeDurationHistogram(
            descriptor: Self.named("seal_duration", "seconds", "Time to seal one shard (compact copy, compress, verify, rename)."),
            buckets: [.seconds(0.5), .seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120),
                      .seconds(300), .seconds(600), .seconds(1800)])
        shardsSealed = registry.makeCounter(descriptor: Self.named("shards_sealed", "total", "Shards sealed."))
        shardsCompacted = registry.makeCounter(descriptor: Self.named("shards_compacted", "total", "Sealed shards recompressed by deep compaction."))
        shardsMerged = registry.makeCounter(descriptor: Self.named("shards_merged", "total", "Sealed shards merged into larger ones (counted by source)."))
        activeShards = registry.makeGauge(descriptor: Self.named("active_shards", "", "Shards being written."))
        sealedShards = registry.makeGauge(descriptor: Self.named("sealed_shards", "", "Sealed shards in the store."))
        storeBytes = registry.makeGauge(descriptor: Self.named("store", "bytes", "Bytes of all shards on disk."))
        volumeFreeBytes = registry.makeGauge(descriptor: Self.named("volume_free", "bytes", "Free bytes on the data volume."))
        oldestShardAge = registry.makeGauge(descriptor: Self.named("oldest_shard_age", "seconds", "Age of the oldest stored window's end (0 when empty)."))
        assignedPartitions = registry.makeGauge(descriptor: Self.named("assigned_partitions", "", "Partitions the group assigned to this recorder."))
        oldestRollupAge = registry.makeGauge(descriptor: Self.named("oldest_rollup_age", "seconds", "Age of the oldest minute the rollups hold (0 when none)."))
        // Every kind of error is exported from the start, at 0, so an alert on
        // `increase(flowrec_errors_total[...]) > 0` works before the first one.
        for kind in Self.errorKinds { errorCounter(kind) }
    }

    /// The kinds of `flowrec_errors_total`: a batch that could not be stored (`store`),
    /// a background seal, deep compaction, a merge, retention.
    static let errorKinds = ["store", "seal", "compaction", "merge", "retention"]

    private static func named(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "flowrec", metricName: name, unitName: unit, helpText: help)
    }

    /// Messages the broker holds beyond what this recorder has stored, per partition.
    func setLag(_ lag: Int64, topic: String, partition: Int32) {
        registry.makeGauge(descriptor: Self.named("consumer_lag", "messages", "Messages in the partition not yet stored (broker end offset minus next offset)."),
                           labels: [("topic", topic), ("partition", String(partition))])
            .set(Double(lag))
    }

    /// Loki pushes stored, and their entries (flows and dead letters).
    func countPush(requests: Int, entries: Int) {
        registry.makeCounter(descriptor: Self.named("loki_pushes", "total", "Loki push requests stored (answered 204).")).increment(by: Int64(requests))
        registry.makeCounter(descriptor: Self.named("loki_push_entries", "total", "Entries of stored Loki pushes, flows and dead letters."))
            .increment(by: Int64(entries))
    }

    /// Loki pushes answered with an error, by reason (`malformed`, `too_large`, or the
    /// status: 429 and 503 ask the client to retry).
    func countPushRejected(_ reason: String) {
        registry.makeCounter(descriptor: Self.named("loki_pushes_rejected", "total", "Loki push requests refused, by reason; malformed bodies are kept as dead letters."),
                             labels: [("reason", reason)]).increment()
    }

    /// Offsets a partition skipped (the broker had deleted them before they were read).
    func countOffsetsSkipped(_ count: Int64, topic: String, partition: Int32) {
        registry.makeCounter(descriptor: Self.named("offsets_skipped", "total", "Offsets the broker no longer had when they were to be read (retention outran the recorder): their flows never arrived."),
                             labels: [("topic", topic), ("partition", String(partition))]).increment(by: count)
    }

    /// Errors by kind (`errorKinds`); each is also logged, and retried.
    func countError(_ kind: String) { errorCounter(kind).increment() }

    @discardableResult
    private func errorCounter(_ kind: String) -> Counter {
        registry.makeCounter(descriptor: Self.named("errors", "total", "Errors by kind; each is also logged and retried."),
                             labels: [("kind", kind)])
    }

    /// Shards deleted by retention, by reason; `undelivered` marks those a required
    /// forwarder had not delivered (deleted because free space ran out).
    func countPruned(_ decision: PruneDecision) {
        registry.makeCounter(descriptor: Self.named("shards_deleted", "total", "Sealed shards deleted by retention, by reason."),
                             labels: [("reason", decision.reason.rawValue)]).increment()
        if decision.undelivered {
            registry.makeCounter(descriptor: Self.named("undelivered_shards_deleted", "total",
                                                        "Shards deleted for free space before every required forwarder delivered them.")).increment()
        }
    }

    /// Dead letters deleted by retention, by reason: past the age limit (`age`), or the
    /// oldest beyond their share of the size limits (`share`).
    func countDeadLettersPruned(_ report: PruneReport) {
        for (reason, count) in [("age", report.deadLettersDeleted), ("share", report.deadLettersOverShare)] where count > 0 {
            registry.makeCounter(descriptor: Self.named("dead_letters_deleted", "total", "Dead letters deleted by retention, by reason."),
                                 labels: [("reason", reason)]).increment(by: Int64(count))
        }
    }

    func recordSeal(_ summary: ShardStore.SealSummary) {
        shardsSealed.increment()
        sealDuration.recordNanoseconds(Int64(summary.seconds * 1e9))
    }

    /// Refreshes the store gauges from the catalog and the volume.
    func updateStore(_ shards: [ShardRecord], volume: VolumeSpace?, oldestRollupMs: Int64?, nowMs: Int64) {
        oldestRollupAge.set(oldestRollupMs.map { Double(max(0, nowMs - $0)) / 1000 } ?? 0)
        activeShards.set(Double(shards.filter { $0.state == .active }.count))
        sealedShards.set(Double(shards.filter { $0.state == .sealed }.count))
        storeBytes.set(Double(shards.reduce(Int64(0)) { $0 + $1.bytesOnDisk }))
        if let volume { volumeFreeBytes.set(Double(volume.freeBytes)) }
        let oldest = shards.map(\.id.windowEndMs).min()
        oldestShardAge.set(oldest.map { Double(max(0, nowMs - $0)) / 1000 } ?? 0)
    }

    // MARK: Forwarding

    /// A chunk reached a forwarder's target.
    func countDelivered(rows: Int, forwarder: String) {
        registry.makeCounter(descriptor: Self.named("forwarded_rows", "total", "Rows delivered to a forwarder's target."),
                             labels: [("forwarder", forwarder)]).increment(by: Int64(rows))
    }

    /// A shard is completely delivered.
    func countShardDelivered(forwarder: String) {
        registry.makeCounter(descriptor: Self.named("forwarded_shards", "total", "Sealed shards completely delivered to a forwarder's target."),
                             labels: [("forwarder", forwarder)]).increment()
    }

    /// How far behind a forwarder is: the age of the oldest sealed shard it has not
    /// delivered (0 when it is caught up), and how many there are.
    func setForwarderLag(oldestUndeliveredWindowEndMs: Int64?, pendingShards: Int, forwarder: String, nowMs: Int64) {
        registry.makeGauge(descriptor: Self.named("forwarder_lag", "seconds", "Age of the oldest sealed shard a forwarder has not delivered (0: caught up)."),
                           labels: [("forwarder", forwarder)])
            .set(oldestUndeliveredWindowEndMs.map { Double(max(0, nowMs - $0)) / 1000 } ?? 0)
        registry.makeGauge(descriptor: Self.named("forwarder_pending_shards", "", "Sealed shards a forwarder has not delivered yet."),
                           labels: [("forwarder", forwarder)])
            .set(Double(pendingShards))
    }

    /// A forwarder run failed (it is retried later).
    func countForwarderError(forwarder: String) {
        registry.makeCounter(descriptor: Self.named("forwarder_errors", "total", "Failed forwarding runs, by forwarder; each is also logged and retried."),
                             labels: [("forwarder", forwarder)]).increment()
    }
}
