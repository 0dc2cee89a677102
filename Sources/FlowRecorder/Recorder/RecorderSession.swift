import FlowModel
import FlowrecConfig
import Foundation
import KafkaSource
import Logging
import Query
import ShardStore
import StorageKit
import Synchronization

/// One run of `flowrec record`, step by step: open the store, start the background
/// jobs, join the group, then turn the loop (poll a batch, store it, commit the lag
/// offsets; retention, gauges and clock-driven seals on their schedules) until told to
/// stop. Where a Kafka message becomes a row: `pollBatch` decodes each message into the
/// batch (`IngestBatch.decodeFlowOrDeadLetter`), `storeBatch` hands it to
/// `ShardStore.append`, which routes every flow to its window's shard.
final class RecorderSession {
    private(set) var counters = Recorder.Counters()
    private let config: RecorderConfiguration
    private let metrics: RecorderMetrics
    private let status: RecorderStatus
    private let logger: Logger
    /// Batches pushed to the Loki API, waiting for this loop (the store's one writer).
    private let pushes: PushInbox?

    /// Set by the sealing thread, taken by the loop: a seal frees a window to delete.
    private let sealedSinceRetention = SealFlag()
    private var decoder: FlowDecoder
    private var batch = IngestBatch()
    /// Per topic partition of what `batch` holds: the next offset (committed once the
    /// batch is stored) and the payload bytes (counted then, and dropped with the
    /// partition's messages at a revocation, as the message count is).
    private var batchPartitions: [String: [Int32: (next: Int64, bytes: Int)]] = [:]
    /// Next offset to read per partition: what lag is measured against.
    private var nextOffset: [String: [Int32: Int64]] = [:]
    /// The offset each partition should deliver next: where the store resumes it when the
    /// group assigns it, then one past each message read. A message beyond it means the
    /// broker no longer had the offsets in between (its retention deleted them before
    /// flowrec read them, and librdkafka's auto.offset.reset skipped ahead).
    private let expectedOffsets = ExpectedOffsets()
    /// Set while the disk is full: the batch waits in memory, fetching is paused, and
    /// the batch is retried at `retryAt`.
    private var paused: (since: Date, retryAt: Date, attempts: Int)?
    private var lastMessage = Date()
    private var lastReport = Date()
    private var lastRetention = Date.distantPast
    private var lastGauges = Date.distantPast
    private var lastClockSeal = Date.distantPast
    private var rollups: RollupReader?
    private var compactedReported = 0

    /// How often windows are checked for being closed by the wall clock while idle.
    static let clockSealIntervalSeconds = 5.0

    init(configuration: RecorderConfiguration, metrics: RecorderMetrics, status: RecorderStatus, pushes: PushInbox? = nil,
         logger: Logger) throws {
        config = configuration
        self.pushes = pushes
        self.metrics = metrics
        self.status = status
        self.logger = logger
        decoder = FlowDecoder(limits: .init(maxMessageBytes: configuration.maxMessageBytes))
    }

    func run(shouldStop: () -> Bool) throws {
        let forwarding = makeForwarding()
        let store = try openStore(forwarding: forwarding)
        forwarding?.start()
        defer { forwarding?.stop() }
        status.storeOpened()
        defer { status.storeClosed() }
        // Without brokers, flows arrive only through Loki pushes.
        let consumer = config.bootstrapServers.isEmpty ? nil : try joinGroup(store)
        if consumer == nil {
            logger.notice("no Kafka brokers set: flows arrive only through Loki pushes", metadata: [
                "push": "POST /loki/api/v1/push", "data": "\(config.dataDirectory)",
            ])
        }
        defer { pushes?.close() }
        let compactor = makeCompactor()
        defer { compactor?.stop() }
        let merger = makeMerger()
        merger?.start()
        defer { merger?.stop() }

        while !shouldStop() {
            status.loopTurned(assignedPartitions: consumer?.assignment.count)
            runRetentionIfDue(store)
            updateGaugesIfDue(store, consumer, compactor)
            servePushes(store, compactor)
            if paused != nil, let consumer {
                try retryPausedBatch(store, consumer)
                continue
            }
            let started = ContinuousClock.now
            guard let consumer else {
                // Push only: wait for the next push, then store it.
                pushes?.waitForPush(seconds: Double(config.pollTimeoutMs) / 1000)
                if !servePushes(store, compactor), try idle(store, nil, compactor) { break }
                continue
            }
            try pollBatch(consumer)
            if batch.isEmpty {
                if try idle(store, consumer, compactor) { break }
                continue
            }
            compactor?.setIdle(false)
            lastMessage = Date()
            guard try storeBatch(store, consumer) else { continue }
            metrics.batchDuration.record(ContinuousClock.now - started)
            reportProgressIfDue(consumer)
        }
        logger.info("stopping; finishing seals", metadata: ["stored_this_run": "\(counters.stored)"])
        pushes?.close()
        compactor?.stop()
        merger?.stop()
        // A seal that finishes now can free a window retention would delete: apply
        // retention once more after the last seals, so a stop leaves nothing it should not.
        try store.waitForBackgroundSeals()
        if !config.retention.isEmpty {
            lastRetention = .distantPast
            runRetentionIfDue(store)
        }
        try store.close()
        consumer?.close()
    }

    // MARK: Pushes

    /// Stores the batches the Loki API received and answers each: 204 once committed,
    /// 503 while the disk is full (FLP retries), 500 for another failure (logged and
    /// counted too). Returns whether any arrived.
    @discardableResult
    private func servePushes(_ store: ShardStore, _ compactor: IdleCompactor?) -> Bool {
        guard let pending = pushes?.take(), !pending.isEmpty else { return false }
        compactor?.setIdle(false)
        lastMessage = Date()
        if paused != nil {
            for push in pending {
                push.answer(.refused(status: 503, message: "the disk is full: flowrec stores nothing until space returns (nothing already stored is lost); retry later",
                                     retryAfterSeconds: 30))
            }
            return true
        }
        // The pushes that waited together are stored as one batch: one transaction per
        // shard instead of one per request (FLP sends many small requests).
        var batch = IngestBatch()
        for push in pending { batch.absorb(push.batch) }
        let entries = batch.entryCount
        do {
            let summary = try store.append(batch)
            counters.messages += entries
            counters.stored += summary.stored
            counters.replaysSkipped += summary.skippedAsReplayed
            counters.deadLetters += summary.deadLetters
            metrics.flowsStored.increment(by: Int64(summary.stored))
            metrics.replaysSkipped.increment(by: Int64(summary.skippedAsReplayed))
            metrics.deadLetters.increment(by: Int64(summary.deadLetters))
            metrics.countPush(requests: pending.count, entries: entries)
            status.recovered(.store)
            for push in pending { push.answer(.stored(summary)) }
        } catch {
            metrics.countError("store")
            let full = error.isDiskFull
            let message = full ? "the disk is full: the push was not stored; free space or lower the retention limits (FLP retries it)"
                : "the push could not be stored: \(error)"
            status.failing(.store, message)
            logger.error("Loki pushes could not be stored; their clients are told to retry", metadata: [
                "error": "\(error)", "entries": "\(entries)", "pushes": "\(pending.count)",
            ])
            for push in pending { push.answer(.refused(status: full ? 503 : 500, message: message, retryAfterSeconds: full ? 30 : 5)) }
        }
        return true
    }

    // MARK: Starting

    private func makeForwarding() -> ContinuousForwarding? {
        guard !config.forwarders.isEmpty else { return nil }
        return ContinuousForwarding(directory: config.dataDirectory, forwarders: config.forwarders,
                                    intervalSeconds: config.forwardIntervalSeconds, metrics: metrics, status: status,
                                    logger: logger)
    }

    /// Opens the store with the seal observers wired to metrics, the probes and
    /// forwarding. A full disk at start-up is waited out, not fatal.
    private func openStore(forwarding: ContinuousForwarding?) throws -> ShardStore {
        var options = config.store
        let metrics = self.metrics, status = self.status, sealed = self.sealedSinceRetention
        options.sealObserver = { summary in
            metrics.recordSeal(summary)
            status.recovered(.seal)
            sealed.set()
            forwarding?.nudge()
        }
        options.sealFailureObserver = { error in
            metrics.countError("seal")
            status.failing(.seal, error.message)
        }
        // The recorder reads sealed files only to verify each seal (once, in order) and
        // for the odd API query: a small frame cache keeps its memory down (bench/NOTES.md).
        SeekableZstdVFS.frameCache.limitBytes = 16 << 20
        var attempt = 0
        while true {
            do {
                let store = try ShardStore(directory: config.dataDirectory, options: options, logger: logger)
                status.recovered(.store)
                return store
            } catch where error.isDiskFull && attempt < 60 {
                attempt += 1
                metrics.countError("store")
                status.failing(.store, "the disk is full; the store cannot open: free space or lower the retention limits")
                logger.error("the store cannot open: the disk is full; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                Thread.sleep(forTimeInterval: min(30, Double(attempt)))
            }
        }
    }

    private func joinGroup(_ store: ShardStore) throws -> KafkaConsumer {
        let properties = Recorder.consumerProperties(config)
        let expected = expectedOffsets, logger = self.logger
        let consumer = try KafkaConsumer(topics: config.topics, properties: properties, startOffset: { topic, partition in
            // The store's checkpoint, read when the group assigns the partition.
            let resume: Int64?
            expected.unanchored[topic, default: []].remove(partition)
            do {
                resume = try store.resumePositions()[SourcePartition(source: topic, partition: partition)]
                if resume == nil { expected.unanchored[topic, default: []].insert(partition) }
            } catch {
                // Nothing is lost: the committed offset is at or before what was stored,
                // and what the store holds already is skipped by position.
                resume = nil
                logger.error("the store's checkpoint could not be read: the partition starts at the group's committed offset", metadata: [
                    "topic": "\(topic)", "partition": "\(partition)", "error": "\(error)",
                ])
            }
            expected.next[topic, default: [:]][partition] = resume
            return resume
        }, revoked: { [unowned self] partitions in  // the consumer lives inside `run`, within self's life
            dropUnstored(partitions)
        }, logger: logger)
        logger.info("consuming", metadata: [
            "topics": "\(config.topics.joined(separator: ","))", "brokers": "\(config.bootstrapServers)",
            "group": "\(config.groupID)", "data": "\(config.dataDirectory)",
        ])
        return consumer
    }

    private func makeCompactor() -> IdleCompactor? {
        guard let deep = config.deepCompaction else { return nil }
        let metrics = self.metrics, status = self.status
        return IdleCompactor(directory: config.dataDirectory, level: deep.level, frameSize: config.store.frameSize,
                             logger: logger, onFailure: { error in
                                 metrics.countError("compaction")
                                 status.failing(.compaction, error.message)
                             }, onSuccess: { status.recovered(.compaction) })
    }

    private func makeMerger() -> BackgroundMerger? {
        guard let policy = config.merge else { return nil }
        let metrics = self.metrics, status = self.status
        var merge = policy
        // A forwarder the recorder sends to must have all of a group, or none of it.
        merge.requiredForwarders = config.forwarders.map(\.name)
        return BackgroundMerger(directory: config.dataDirectory, policy: merge, windowMs: config.store.windowMs,
                                graceMs: config.store.graceMs, logger: logger, onFailure: { error in
                                    metrics.countError("merge")
                                    status.failing(.merge, error.message)
                                }, onSuccess: { summary in
                                    metrics.shardsMerged.increment(by: Int64(summary.sources.count))
                                    status.recovered(.merge)
                                })
    }

    // MARK: The loop

    /// Takes up to a batch of messages, each decoded into the batch as a flow or a dead
    /// letter (with its reason); nothing is stored yet. Once a message has come, polls go
    /// on until the batch is full or `batchWaitMs` has passed since it came: at a rate
    /// the recorder keeps up with, a poll finds only what arrived since the last one, and
    /// batches of a few messages each cost a commit and write short sorted runs that the
    /// seal then reads nearly out of order (`SealRun`). A flow waits at most that long
    /// before queries and `tail -f` see it.
    private func pollBatch(_ consumer: KafkaConsumer) throws {
        batch.removeAll()
        batchPartitions = [:]
        try pollInto(consumer, timeoutMs: config.pollTimeoutMs)
        guard !batch.isEmpty, config.batchWaitMs > 0 else { return }
        let deadline = ContinuousClock.now + .milliseconds(config.batchWaitMs)
        while batch.entryCount < config.maxBatchMessages {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return }
            try pollInto(consumer, timeoutMs: Int32((left / .milliseconds(1)).rounded(.up)))
        }
    }

    /// Adds what the consumer hands out to `batch`, up to a batch (also while paused: a
    /// partition assigned meanwhile may deliver before it is paused, and nothing read is
    /// dropped but what `dropUnstored` drops).
    private func pollInto(_ consumer: KafkaConsumer, timeoutMs: Int32) throws {
        // The plausible range moves with the wall clock.
        decoder.limits.acceptedEndMs = config.eventTimes.acceptedEndMs(nowMs: RecorderStatus.nowMs())
        let maxPayload = config.maxMessageBytes
        try consumer.poll(maxMessages: max(1, config.maxBatchMessages - batch.entryCount), timeoutMs: timeoutMs) { message in
            let position = SourcePosition(source: batch.sourceIndex(message.topic), partition: message.partition,
                                          position: message.offset)
            batch.decodeFlowOrDeadLetter(message.payload, at: position, with: decoder, maxPayloadBytes: maxPayload)
            let next = message.offset + 1, size = message.payload.count
            func add(_ entry: inout (next: Int64, bytes: Int)) {
                entry.next = next
                entry.bytes += size
            }
            add(&batchPartitions[message.topic, default: [:]][message.partition, default: (0, 0)])
            if expectedOffsets.unanchored[message.topic]?.remove(message.partition) != nil {
                firstRead(topic: message.topic, partition: message.partition, at: message.offset)
            }
            if let expected = expectedOffsets.next[message.topic]?[message.partition], message.offset > expected {
                offsetsSkipped(topic: message.topic, partition: message.partition, from: expected, to: message.offset)
            }
            expectedOffsets.next[message.topic, default: [:]][message.partition] = message.offset + 1
        }
    }

    /// The group took `partitions` away while the batch held messages of them, unstored
    /// (it fills over several polls, and waits while the disk is full). They are dropped:
    /// the consumer commits what this recorder stored of those partitions, and their new
    /// owner reads on from there, so it stores them; kept here too, they would be stored
    /// by two recorders. Called inside a poll, before that commit.
    private func dropUnstored(_ partitions: [(topic: String, partition: Int32)]) {
        var dropped = 0
        for (topic, partition) in partitions {
            if let source = batch.sources.firstIndex(of: topic) {
                dropped += batch.removeEntries(source: source, partition: partition)
            }
            batchPartitions[topic]?[partition] = nil
            expectedOffsets.next[topic]?[partition] = nil
            expectedOffsets.unanchored[topic]?.remove(partition)
        }
        guard dropped > 0 else { return }
        logger.info("partitions were taken away before this recorder stored what it had read of them: their new owner reads those messages from the handover commit", metadata: [
            "partitions": "\(partitions.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))", "messages_dropped": "\(dropped)",
        ])
    }

    /// The first message of a partition the store holds nothing of: where this store's
    /// copy of it begins. The consumer started at the group's committed offset, or at the
    /// broker's oldest (`auto.offset.reset=earliest`) when the group has none; what came
    /// before is not in this store, and without this line a new store that begins after
    /// offset 0 (the topic's retention had already deleted the start, or the group had
    /// committed past it) would look the same as one that lost its first flows.
    private func firstRead(topic: String, partition: Int32, at offset: Int64) {
        let metadata: Logger.Metadata = ["topic": "\(topic)", "partition": "\(partition)", "first_offset": "\(offset)"]
        if offset == 0 {
            logger.info("a partition new to this store starts at its first offset", metadata: metadata)
        } else {
            logger.notice("a partition new to this store starts after offset 0: the group had committed up to here, or the broker no longer had the earlier offsets; they are not in this store", metadata: metadata)
        }
    }

    /// Offsets [from, to) of a partition were never delivered: logged and counted, since
    /// no flow of them can reach the store (nor a dead letter: there is no message).
    private func offsetsSkipped(topic: String, partition: Int32, from: Int64, to: Int64) {
        metrics.countOffsetsSkipped(to - from, topic: topic, partition: partition)
        logger.warning("offsets were skipped: the broker no longer had them when flowrec asked (its retention deleted them before they were read, so auto.offset.reset moved ahead); their flows are lost upstream. Consume faster or keep the topic longer.", metadata: [
            "topic": "\(topic)", "partition": "\(partition)", "first_missing": "\(from)", "next_read": "\(to)", "missing": "\(to - from)",
        ])
    }

    /// Stores the batch, then commits its offsets for lag monitoring. A full disk pauses
    /// ingest instead (the batch stays in memory, nothing is lost): false then.
    private func storeBatch(_ store: ShardStore, _ consumer: KafkaConsumer) throws -> Bool {
        let summary: ShardStore.AppendSummary
        do {
            summary = try store.append(batch)
        } catch where error.isDiskFull {
            metrics.countError("store")
            pause(consumer, error)
            return false
        } catch {
            metrics.countError("store")
            throw error
        }
        let messages = batch.entryCount
        counters.messages += messages
        counters.stored += summary.stored
        counters.replaysSkipped += summary.skippedAsReplayed
        counters.deadLetters += summary.deadLetters
        counters.batches += 1
        metrics.messagesConsumed.increment(by: Int64(messages))
        metrics.messageBytes.increment(by: Int64(batchPartitions.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.bytes } }))
        metrics.flowsStored.increment(by: Int64(summary.stored))
        metrics.replaysSkipped.increment(by: Int64(summary.skippedAsReplayed))
        metrics.deadLetters.increment(by: Int64(summary.deadLetters))
        for (topic, partitions) in batchPartitions {
            for (partition, (next, _)) in partitions {
                nextOffset[topic, default: [:]][partition] = next
                if let end = consumer.highWatermark(topic: topic, partition: partition) {
                    metrics.setLag(max(0, end - next), topic: topic, partition: partition)
                }
            }
        }
        consumer.commit(batchPartitions.flatMap { topic, partitions in partitions.map { (topic, $0.key, $0.value.next) } })
        return true
    }

    /// The disk is full: stop fetching (the partitions stay ours), say so in `/readyz`,
    /// and retry the batch with backoff until space returns.
    private func pause(_ consumer: KafkaConsumer, _ error: any Error) {
        let attempts = (paused?.attempts ?? 0) + 1
        let delay = min(30, pow(2, Double(attempts - 1)))
        if paused == nil {
            logger.error("the disk is full: ingest is paused and resumes by itself when space returns; free space or lower the retention limits",
                         metadata: ["error": "\(error)", "batch_messages": "\(batch.entryCount)"])
        }
        paused = (paused?.since ?? Date(), Date() + delay, attempts)
        status.failing(.store, "the disk is full: ingest is paused (nothing is lost) and resumes when space returns; free space or lower the retention limits")
        consumer.pause()
    }

    private func retryPausedBatch(_ store: ShardStore, _ consumer: KafkaConsumer) throws {
        guard let state = paused else { return }
        consumer.pause()  // partitions assigned since the pause
        try pollInto(consumer, timeoutMs: config.pollTimeoutMs)  // serves the group (rebalances) while paused
        guard Date() >= state.retryAt else { return }
        guard try storeBatch(store, consumer) else { return }
        paused = nil
        consumer.resume()
        status.recovered(.store)
        logger.notice("space is back: ingest resumed", metadata: ["paused_s": "\(Int(Date().timeIntervalSince(state.since)))"])
    }

    /// Nothing arrived: deep compaction may start, windows the wall clock has closed are
    /// sealed when the source is caught up, and `exitWhenIdleSeconds` may end the run.
    /// Returns whether to stop.
    private func idle(_ store: ShardStore, _ consumer: KafkaConsumer?, _ compactor: IdleCompactor?) throws -> Bool {
        // Idle time counts only while partitions are assigned: joining the group takes seconds.
        if let consumer, consumer.assignment.isEmpty { lastMessage = Date() }
        let quiet = Date().timeIntervalSince(lastMessage)
        if let deep = config.deepCompaction, quiet >= deep.idleSeconds { compactor?.setIdle(true) }
        let caughtUp = consumer.map { !$0.assignment.isEmpty } ?? true
        if caughtUp, Date().timeIntervalSince(lastClockSeal) >= Self.clockSealIntervalSeconds {
            lastClockSeal = Date()
            // An empty poll means this recorder has read what the broker had: a window
            // whose end plus grace is in the past can take no more flows worth waiting for.
            try store.sealWindowsClosed(byWallClockMs: RecorderStatus.nowMs())
        }
        if let limit = config.exitWhenIdleSeconds, quiet >= limit { return true }
        return false
    }

    /// Retention runs on its schedule and after every seal (a seal is what frees a window
    /// to delete); a failure is logged, counted, shown in `/readyz` and retried.
    private func runRetentionIfDue(_ store: ShardStore) {
        guard !config.retention.isEmpty,
              sealedSinceRetention.take()
                || Date().timeIntervalSince(lastRetention) >= config.retentionIntervalSeconds else { return }
        lastRetention = Date()
        do {
            let report = try store.prune(config.retention)
            counters.shardsPruned += report.deleted.count
            counters.undeliveredShardsPruned += report.deleted.filter(\.undelivered).count
            report.deleted.forEach(metrics.countPruned)
            metrics.countDeadLettersPruned(report)
            status.recovered(.retention)
            if !report.deleted.isEmpty || report.deadLetterBytesFreed > 0, paused != nil { paused?.retryAt = Date() }  // space was freed
        } catch {
            // Retention failing must not stop ingest; it is retried next interval.
            counters.retentionErrors += 1
            metrics.countError("retention")
            status.failing(.retention, "\(error)")
            logger.error("retention failed; it is retried", metadata: [
                "error": "\(error)", "retry_in_s": "\(Int(config.retentionIntervalSeconds))",
            ])
        }
    }

    private func updateGaugesIfDue(_ store: ShardStore, _ consumer: KafkaConsumer?, _ compactor: IdleCompactor?) {
        guard Date().timeIntervalSince(lastGauges) >= 10 else { return }
        lastGauges = Date()
        if let shards = try? store.shards() {
            if rollups == nil { rollups = (try? RollupReader(store: store)) ?? nil }  // opened once it exists
            let oldestRollup = (try? rollups?.oldestMinuteMs()) ?? nil
            metrics.updateStore(shards, volume: VolumeSpace.of(config.dataDirectory), oldestRollupMs: oldestRollup,
                                nowMs: RecorderStatus.nowMs())
        }
        metrics.assignedPartitions.set(Double(consumer?.assignment.count ?? 0))
        for (topic, partition) in consumer?.assignment ?? [] {
            if let next = nextOffset[topic]?[partition], let end = consumer?.highWatermark(topic: topic, partition: partition) {
                metrics.setLag(max(0, end - next), topic: topic, partition: partition)
            }
        }
        if let compacted = compactor?.counts.compacted, compacted > compactedReported {
            metrics.shardsCompacted.increment(by: Int64(compacted - compactedReported))
            compactedReported = compacted
        }
    }

    private func reportProgressIfDue(_ consumer: KafkaConsumer) {
        guard Date().timeIntervalSince(lastReport) >= 10 else { return }
        lastReport = Date()
        logger.info("progress", metadata: [
            "messages": "\(counters.messages)", "stored": "\(counters.stored)", "replays_skipped": "\(counters.replaysSkipped)",
            "dead_letters": "\(counters.deadLetters)", "partitions": "\(consumer.assignment.count)",
        ])
    }
}

/// Set by the sealing thread, taken by the recorder loop.
private final class SealFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    /// Whether it was set, clearing it.
    func take() -> Bool { value.exchange(false, ordering: .relaxed) }
}

/// See `RecorderSession.expectedOffsets`: filled by the assignment callback and the
/// loop, both on the loop's thread.
final class ExpectedOffsets {
    var next: [String: [Int32: Int64]] = [:]
    /// Partitions assigned while the store held nothing of them (no checkpoint), until
    /// their first message says where they start (`firstRead`).
    var unanchored: [String: Set<Int32>] = [:]
}
