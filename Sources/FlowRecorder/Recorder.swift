package import FlowModel
package import Forwarders
import Foundation
import KafkaSource
import Synchronization
package import ShardStore

/// What `flowrec record` needs to know.
package struct RecorderConfiguration: Sendable {
    package var bootstrapServers: String
    package var topics: [String] = ["flows-export"]
    package var groupID = "flowrec"
    package var dataDirectory = "./flowrec-data"
    package var store = ShardStore.Options(sealInBackground: true)
    /// Most messages taken from Kafka per batch (one store transaction per shard per batch).
    package var maxBatchMessages = 10_000
    package var pollTimeoutMs: Int32 = 500
    /// Larger messages become dead letters.
    package var maxMessageBytes = 1 << 20
    /// Flows ending outside this range around the wall clock become dead letters.
    package var eventTimes = EventTime.Plausibility.default
    /// Extra librdkafka properties (TLS, SASL, fetch sizes, ...), passed through.
    package var kafkaProperties: [String: String] = [:]
    /// Stop after this long without a message (for batch jobs and tests); nil runs until told to stop.
    package var exitWhenIdleSeconds: Double?
    /// Retention limits, applied at start and then every `retentionIntervalSeconds`.
    package var retention = RetentionPolicy()
    package var retentionIntervalSeconds: Double = 60
    /// The HTTP listener (`/metrics`, `/healthz`, `/readyz`, `/api/v1`); nil turns it off.
    package var http: HTTPListenerConfiguration?
    /// Bounds of one API request: its time range and its rows.
    package var apiMaxRangeMs: Int64 = 31 * 86_400_000
    package var apiMaxRows = 10_000
    /// Targets every sealed shard is forwarded to, right after its seal and then every
    /// `forwardIntervalSeconds` until delivered.
    package var forwarders: [any Forwarder] = []
    package var forwardIntervalSeconds: Double = 30
    /// Deep compaction while no message arrives; nil disables it.
    package var deepCompaction: DeepCompaction? = DeepCompaction()

    /// Recompress sealed shards at `level` on a lowest-priority thread once the topics
    /// have been quiet for `idleSeconds` (NetObserv traffic has daily lulls).
    package struct DeepCompaction: Sendable {
        package var level: Int32 = 19
        package var idleSeconds: Double = 60
        package init(level: Int32 = 19, idleSeconds: Double = 60) {
            self.level = level
            self.idleSeconds = idleSeconds
        }
    }

    package init(bootstrapServers: String) { self.bootstrapServers = bootstrapServers }
}

/// Consumes NetObserv flows from Kafka into the store, exactly once.
///
/// The group's committed offsets are never trusted for resuming: when partitions are
/// assigned, each one starts after the highest offset the store holds for it (its
/// high-water mark). After a batch is stored, offsets are committed to the group only so
/// that lag monitoring works. A crash at any moment loses nothing and stores nothing twice.
package final class Recorder {
    package struct Counters: Sendable {
        package var messages = 0
        package var stored = 0
        package var replaysSkipped = 0
        package var deadLetters = 0
        package var batches = 0
        package var shardsPruned = 0
        /// Deleted by the free-space limit before every required forwarder delivered them.
        package var undeliveredShardsPruned = 0
        package var retentionErrors = 0
    }

    package let configuration: RecorderConfiguration
    package private(set) var counters = Counters()
    /// Prometheus figures, also served on `/metrics` when the listener is on.
    package let metrics = RecorderMetrics()
    /// What `/healthz` and `/readyz` report.
    package let status = RecorderStatus()
    /// The listener's bound port once `run` has started it (tests listen on port 0).
    package var httpPort: Int? { server.withLock { $0?.port } }
    private let server = Mutex<StatusServer?>(nil)
    private let log: @Sendable (String) -> Void

    package init(configuration: RecorderConfiguration, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = configuration
        self.log = log
    }

    /// Runs until `shouldStop` returns true (checked between batches) or the topic stays
    /// idle for `exitWhenIdleSeconds`; then stores nothing further, waits for background
    /// seals, and leaves the group.
    package func run(shouldStop: () -> Bool) throws {
        let log = self.log
        let metrics = self.metrics
        if let http = configuration.http {
            var api = FlowAPI(dataDirectory: configuration.dataDirectory)
            api.maxRangeMs = configuration.apiMaxRangeMs
            api.maxRows = configuration.apiMaxRows
            let listener = try StatusServer(configuration: http, metrics: metrics, status: status, api: api, log: log)
            server.withLock { $0 = listener }
        }
        defer { server.withLock { $0?.stop(); $0 = nil } }

        var config = configuration
        let sealedSinceRetention = SealFlag()
        let forwarding = config.forwarders.isEmpty ? nil : ContinuousForwarding(
            directory: config.dataDirectory, forwarders: config.forwarders, intervalSeconds: config.forwardIntervalSeconds,
            metrics: metrics, log: log)
        config.store.sealObserver = { summary in
            metrics.recordSeal(summary)
            sealedSinceRetention.set()
            forwarding?.nudge()
        }
        // The recorder reads sealed files only to verify each seal (once, in order) and for
        // the odd API query: a small frame cache keeps its memory down (bench/NOTES.md).
        SealedShardVFS.frameCache.limitBytes = 16 << 20
        let store = try ShardStore(directory: config.dataDirectory, options: config.store)
        forwarding?.start()
        defer { forwarding?.stop() }
        status.storeOpened()
        defer { status.storeClosed() }
        var properties = KafkaProperties(config.kafkaProperties)
        properties["bootstrap.servers"] = config.bootstrapServers
        properties["group.id"] = config.groupID
        if properties["session.timeout.ms"] == nil { properties["session.timeout.ms"] = "10000" }
        if properties["fetch.message.max.bytes"] == nil { properties["fetch.message.max.bytes"] = String(max(config.maxMessageBytes + 1024, 1 << 20)) }
        let consumer = try KafkaConsumer(topics: config.topics, properties: properties, startOffset: { topic, partition in
            // The store's checkpoint, read when the group assigns the partition.
            (try? store.resumePositions())?[SourcePartition(source: topic, partition: partition)]
        }, handoverProblem: { log("warning: \($0)") })
        log("consuming \(config.topics.joined(separator: ",")) from \(config.bootstrapServers) as group \(config.groupID) into \(config.dataDirectory)")

        let compactor = config.deepCompaction.map {
            IdleCompactor(directory: config.dataDirectory, level: $0.level, frameSize: config.store.frameSize) { log($0) }
        }
        defer { compactor?.stop() }

        var decoder = FlowDecoder(limits: .init(maxMessageBytes: config.maxMessageBytes))
        var batch = IngestBatch()
        var lastMessage = Date()
        var lastReport = Date()
        var lastRetention = Date.distantPast
        var lastGauges = Date.distantPast
        var rollups: RollupStore?
        var compactedReported = 0
        /// Next offset to read per partition: what lag is measured against.
        var nextOffset: [String: [Int32: Int64]] = [:]
        while !shouldStop() {
            status.loopTurned(assignedPartitions: consumer.assignment.count)
            // Retention runs on its schedule and after every seal (a seal is what frees a window to delete).
            if !config.retention.isEmpty
                && (sealedSinceRetention.take() || Date().timeIntervalSince(lastRetention) >= config.retentionIntervalSeconds) {
                lastRetention = Date()
                do {
                    let report = try store.prune(config.retention, log: log)
                    counters.shardsPruned += report.deleted.count
                    counters.undeliveredShardsPruned += report.deleted.filter(\.undelivered).count
                    report.deleted.forEach(metrics.countPruned)
                } catch {
                    // Retention failing must not stop ingest; it is retried next interval.
                    counters.retentionErrors += 1
                    metrics.countError("retention")
                    log("error: retention failed, will retry: \(error)")
                }
            }
            if Date().timeIntervalSince(lastGauges) >= 10 {
                lastGauges = Date()
                if let shards = try? store.shards() {
                    if rollups == nil { rollups = try? store.rollups() }  // opened once it exists
                    let oldestRollup = (try? rollups?.oldestMinuteMs()) ?? nil
                    metrics.updateStore(shards, volume: VolumeSpace.of(config.dataDirectory), oldestRollupMs: oldestRollup,
                                        nowMs: RecorderStatus.nowMs())
                }
                metrics.assignedPartitions.set(Double(consumer.assignment.count))
                for (topic, partition) in consumer.assignment {
                    if let next = nextOffset[topic]?[partition], let end = consumer.highWatermark(topic: topic, partition: partition) {
                        metrics.setLag(max(0, end - next), topic: topic, partition: partition)
                    }
                }
                if let compacted = compactor?.counts.compacted, compacted > compactedReported {
                    metrics.shardsCompacted.increment(by: Int64(compacted - compactedReported))
                    compactedReported = compacted
                }
            }
            batch.removeAll()
            decoder.limits.acceptedEndMs = config.eventTimes.acceptedEndMs(nowMs: RecorderStatus.nowMs())
            var nextOffsets: [String: [Int32: Int64]] = [:]
            var payloadBytes = 0
            let started = ContinuousClock.now
            try consumer.poll(maxMessages: config.maxBatchMessages, timeoutMs: config.pollTimeoutMs) { message in
                let position = SourcePosition(source: batch.sourceIndex(message.topic), partition: message.partition,
                                              position: message.offset)
                payloadBytes += message.payload.count
                do {
                    try batch.appendFlow(at: position) { (flow: inout Flow) throws(FlowDecodingError) in
                        try decoder.decode(message.payload, into: &flow)
                    }
                } catch let error as FlowDecodingError {
                    batch.appendDeadLetter(DeadLetter(at: position, reason: error.description, errorOffset: error.offset,
                                                      payload: Array(message.payload.prefix(config.maxMessageBytes))))
                }
                nextOffsets[message.topic, default: [:]][message.partition] = message.offset + 1
            }
            if batch.isEmpty {
                // Idle time counts only while partitions are assigned: joining the group takes seconds.
                if consumer.assignment.isEmpty { lastMessage = Date() }
                let quiet = Date().timeIntervalSince(lastMessage)
                if let deep = config.deepCompaction, quiet >= deep.idleSeconds { compactor?.setIdle(true) }
                if let idle = config.exitWhenIdleSeconds, quiet >= idle { break }
                continue
            }
            compactor?.setIdle(false)
            lastMessage = Date()
            let summary: ShardStore.AppendSummary
            do {
                summary = try store.append(batch)
            } catch {
                metrics.countError("store")
                throw error
            }
            metrics.batchDuration.record(ContinuousClock.now - started)
            let messages = batch.flowCount + batch.deadLetters.count
            counters.messages += messages
            counters.stored += summary.stored
            counters.replaysSkipped += summary.skippedAsReplayed
            counters.deadLetters += summary.deadLetters
            counters.batches += 1
            metrics.messagesConsumed.increment(by: Int64(messages))
            metrics.messageBytes.increment(by: Int64(payloadBytes))
            metrics.flowsStored.increment(by: Int64(summary.stored))
            metrics.replaysSkipped.increment(by: Int64(summary.skippedAsReplayed))
            metrics.deadLetters.increment(by: Int64(summary.deadLetters))
            for (topic, partitions) in nextOffsets {
                for (partition, next) in partitions {
                    nextOffset[topic, default: [:]][partition] = next
                    if let end = consumer.highWatermark(topic: topic, partition: partition) {
                        metrics.setLag(max(0, end - next), topic: topic, partition: partition)
                    }
                }
            }
            consumer.commit(nextOffsets.flatMap { topic, partitions in partitions.map { (topic, $0.key, $0.value) } })
            if Date().timeIntervalSince(lastReport) >= 10 {
                lastReport = Date()
                log("messages \(counters.messages), stored \(counters.stored), replays skipped \(counters.replaysSkipped), dead letters \(counters.deadLetters), partitions \(consumer.assignment.count)")
            }
        }
        log("stopping: \(counters.stored) flows stored this run; finishing seals")
        compactor?.stop()
        try store.close()
        consumer.close()
    }
}

/// Set by the sealing thread, taken by the recorder loop.
private final class SealFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    /// Whether it was set, clearing it.
    func take() -> Bool { value.withLock { flag in defer { flag = false }; return flag } }
}
