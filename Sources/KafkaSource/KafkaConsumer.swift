import CMalloc
import CRdKafka
package import Logging

/// One consumed message, valid only inside the callback that receives it (the bytes
/// belong to librdkafka's buffer; nothing is copied).
package struct KafkaMessageView {
    package let topic: String
    package let partition: Int32
    package let offset: Int64
    package let payload: UnsafeRawBufferPointer
}

/// A consumer-group member that reads messages in batches without auto-committing.
///
/// flowrec stores offsets with the data, so this type never commits before the caller
/// says a batch is durable. When the group assigns partitions, `startOffset` (if given)
/// says where each one resumes: the store's own checkpoint, not the group's committed
/// offset, which only serves lag monitoring.
package final class KafkaConsumer {
    /// Where an assigned partition starts: an offset, or nil for the group's position
    /// (committed offset, else `auto.offset.reset`).
    package typealias StartOffset = (_ topic: String, _ partition: Int32) -> Int64?
    /// Called inside `poll` when the group takes partitions away (or they are lost),
    /// before what was stored of them is committed: the caller drops whatever it read of
    /// them and has not stored yet, since their new owner starts at that commit.
    package typealias Revoked = (_ partitions: [(topic: String, partition: Int32)]) -> Void

    private let handle: OpaquePointer
    private var closed = false
    private let rebalance: RebalanceContext

    /// What every consumer gets unless `properties` sets it: offsets are committed only
    /// when the caller says a batch is durable, and a new group starts at the beginning.
    /// Cooperative rebalancing: a member gives up only the partitions that move, and it
    /// does so after the group has settled on the new generation, so its commit of what it
    /// stored is accepted before the new owner reads it. With the eager protocol the
    /// revocation commit races the rebalance (librdkafka's mock broker rejects it with
    /// "rebalance in progress") and the new owner could store the same flows again.
    package static let defaultProperties = [
        "enable.auto.commit": "false", "enable.auto.offset.store": "false", "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    ]

    /// Partitions currently assigned to this member.
    package var assignment: [(topic: String, partition: Int32)] { rebalance.assigned }

    /// `properties` must contain `bootstrap.servers` and `group.id`. `logger` hears of
    /// partitions given up without committing what was stored (a refused revocation
    /// commit, or an assignment lost to a session timeout), as warnings: their next
    /// owner may store those flows again, and an operator should know. A caller that
    /// polls again before storing what it read (a batch filled over several polls, or
    /// held while the disk is full) passes `revoked`.
    package init(topics: [String], properties: KafkaProperties, startOffset: StartOffset? = nil,
                 revoked: Revoked? = nil, logger: Logger = Logger(label: "flowrec.kafka")) throws(KafkaError) {
        var props = properties
        for (key, value) in Self.defaultProperties where props[key] == nil { props[key] = value }
        guard props["group.id"] != nil else { throw KafkaError(.configuration, "a consumer needs group.id") }
        let conf = try props.makeConf()
        let rebalance = RebalanceContext(startOffset: startOffset, revoked: revoked, logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(rebalance).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
            guard let rk, let opaque else { return }
            Unmanaged<RebalanceContext>.fromOpaque(opaque).takeUnretainedValue()
                .rebalance(rk, assigning: err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, partitions)
        }
        rd_kafka_conf_set_offset_commit_cb(conf) { _, err, _, opaque in
            guard let opaque else { return }
            Unmanaged<RebalanceContext>.fromOpaque(opaque).takeUnretainedValue().commitFinished(err)
        }
        var errbuf = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errbuf, errbuf.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(.client, "cannot create Kafka consumer: \(String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        self.rebalance = rebalance
        rd_kafka_poll_set_consumer(handle)
        guard let list = rd_kafka_topic_partition_list_new(Int32(topics.count)) else {
            rd_kafka_destroy(handle)
            throw KafkaError(.resources, "out of memory creating a topic list")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for t in topics { rd_kafka_topic_partition_list_add(list, t, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(handle)
            throw KafkaError.from(err, kind: .client, "cannot subscribe to \(topics.joined(separator: ","))")
        }
        self.handle = handle
    }

    /// Commits "next offset to read" per partition to the group, asynchronously. flowrec
    /// calls it after a batch is durable, for lag monitoring only.
    package func commit(_ nextOffsets: [(topic: String, partition: Int32, offset: Int64)]) {
        for entry in nextOffsets {
            rebalance.storedOffsets[TopicPartition(topic: entry.topic, partition: entry.partition)] = entry.offset
        }
        guard rebalance.lagCommitsAllowed(), !nextOffsets.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(nextOffsets.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for entry in nextOffsets {
            rd_kafka_topic_partition_list_add(list, entry.topic, entry.partition)?.pointee.offset = entry.offset
        }
        _ = rd_kafka_commit(handle, list, 1)
    }

    /// The partition's end offset as the broker last reported it in a fetch response
    /// (no request is made, so it is cheap to ask every batch); nil before the first fetch.
    package func highWatermark(topic: String, partition: Int32) -> Int64? {
        var low: Int64 = -1, high: Int64 = -1
        let error = rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high)
        return error == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    deinit {
        close()
        rd_kafka_destroy(handle)
    }

    /// Stops fetching the assigned partitions (they stay assigned; `poll` keeps the
    /// membership alive and returns no messages of them) until `resume`. The recorder
    /// pauses while the disk is full and it cannot store what it would read.
    package func pause() { setPaused(true) }

    /// Fetches the assigned partitions again, from where the caller last read.
    package func resume() { setPaused(false) }

    /// How long a poll waits on an empty queue before it checks whether the fetcher
    /// stalled.
    static let stallWakeMs: Int32 = 10

    /// librdkafka 2.0 stops fetching for the consumer's queue once it holds
    /// `queued.min.messages` or `queued.max.messages.kbytes`, and looks at the queue
    /// again only when the broker's thread next wakes: for a response, a request to send,
    /// or once a second (librdkafka issue #2879; 2.2 added `fetch.queue.backoff.ms` for
    /// it, Debian has 2.0.2). A consumer slower than its broker, which is flowrec catching
    /// up, drains the queue and then sits idle for up to a second with data waiting:
    /// measured, 90k flows/s where an unbounded queue gave 166k (and 1.2 GiB of memory).
    /// So when the queue runs dry while the broker is known to hold more for an assigned
    /// partition (its cached high watermark is past what was consumed), a watermark query
    /// for that partition goes to its leader: the request wakes the broker's thread, which
    /// then fetches at once. The query reads; it moves no position and cancels no fetch.
    /// One lagging partition is asked per empty wait, in turn, so with several brokers
    /// each is woken within a few waits.
    private func wakeStalledFetcher() {
        guard !paused else { return }
        let assigned = rebalance.assigned
        guard !assigned.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(assigned.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (topic, partition) in assigned { rd_kafka_topic_partition_list_add(list, topic, partition) }
        guard rd_kafka_position(handle, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        let count = Int(list.pointee.cnt)
        for step in 0..<count {
            let element = list.pointee.elems[(nextWake + step) % count]
            var low: Int64 = -1, high: Int64 = -1
            guard element.offset >= 0,
                  rd_kafka_get_watermark_offsets(handle, element.topic, element.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high > element.offset else { continue }
            nextWake = (nextWake + step + 1) % count
            _ = rd_kafka_query_watermark_offsets(handle, element.topic, element.partition, &low, &high, 200)
            stallWakes += 1  // the answer (or a timeout, if the broker is away) does not matter
            return
        }
    }

    /// Times `poll` woke a stalled fetcher (tests and benchmarks read it).
    package private(set) var stallWakes = 0
    private var nextWake = 0
    private var paused = false

    private func setPaused(_ paused: Bool) {
        self.paused = paused
        let assigned = rebalance.assigned
        guard !assigned.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(assigned.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (topic, partition) in assigned { rd_kafka_topic_partition_list_add(list, topic, partition) }
        _ = paused ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
    }

    /// Leaves the group cleanly so partitions move to other members at once.
    package func close() {
        guard !closed else { return }
        closed = true
        rd_kafka_consumer_close(handle)
    }

    /// Waits up to `timeoutMs` for messages and passes up to `maxMessages` of them to
    /// `body`. Returns how many messages were passed. Partition-end and transient
    /// broker events are not messages and are skipped; a fatal error is thrown.
    ///
    /// Messages are taken one at a time (`rd_kafka_consumer_poll`), not with
    /// `rd_kafka_consume_batch_queue`: librdkafka 2.0 documents that the batch call can
    /// lose or repeat messages when a rebalance runs while it collects a batch (fixed in
    /// 2.1), and a test of two recorders saw a partition stop short after a cooperative
    /// rebalance with it.
    ///
    /// A wait that finds the queue empty while the broker has more for an assigned
    /// partition wakes the fetcher (see `wakeStalledFetcher`) after `stallWakeMs`.
    @discardableResult
    package func poll(maxMessages: Int = 10_000, timeoutMs: Int32 = 1000,
                     _ body: (KafkaMessageView) throws -> Void) throws -> Int {
        var delivered = 0
        var waitMs = timeoutMs
        for _ in 0..<maxMessages {
            var message = rd_kafka_consumer_poll(handle, min(waitMs, Self.stallWakeMs))
            if message == nil, waitMs > Self.stallWakeMs {
                wakeStalledFetcher()
                message = rd_kafka_consumer_poll(handle, waitMs - Self.stallWakeMs)
            }
            guard let m = message else { break }
            defer { rd_kafka_message_destroy(m) }
            waitMs = 0  // the first message may be waited for; the rest are what is ready
            let err = m.pointee.err
            if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if rd_kafka_fatal_error(handle, nil, 0) != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError.from(err, kind: .fatal, "fatal consumer error")
                }
                continue  // transient: librdkafka retries by itself
            }
            let topicName = m.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
            // Belt and braces: a message of a partition no longer ours belongs to its new
            // owner, which resumes from what we committed at revocation.
            guard rebalance.isAssigned(topicName, m.pointee.partition) else { continue }
            try body(KafkaMessageView(
                topic: topicName, partition: m.pointee.partition, offset: m.pointee.offset,
                payload: UnsafeRawBufferPointer(start: m.pointee.payload, count: m.pointee.len)))
            delivered += 1
        }
        if delivered > 0 { giveBackFreedBuffersIfDue() }
        return delivered
    }

    /// How often, at most, `poll` hands freed message memory back to the kernel.
    package static let trimIntervalSeconds = 0.25

    /// librdkafka decompresses each fetched batch into a buffer its broker thread
    /// allocates, so from that thread's glibc arena; the buffer is freed here, on the
    /// polling thread, when the batch's last message is destroyed. glibc keeps freed
    /// memory in its arena for reuse and returns it to the kernel only from the arena's
    /// top, which fragmentation rarely frees: a recorder catching up at librdkafka's
    /// default queue (`queued.max.messages.kbytes=65536`) kept 70-90 MiB more resident than
    /// it used (`flowrec record` peaked at 315-321 MiB). `malloc_trim(0)` returns the free
    /// pages of every arena; it costs about 4 ms. Trimming every 0.5 s, the peak was
    /// 215-256 MiB; every 0.25 s, 209-224 MiB (1.6% of the polling thread, no slower in
    /// the Kafka benchmark). Nothing is lost by trimming too often but time, and by
    /// trimming too rarely, memory.
    private func giveBackFreedBuffersIfDue() {
        let now = ContinuousClock.now
        guard now - lastTrim >= .seconds(Self.trimIntervalSeconds) else { return }
        lastTrim = now
        malloc_trim(0)
        memoryTrims += 1
    }

    /// Times `poll` returned freed memory to the kernel (tests read it).
    package private(set) var memoryTrims = 0
    private var lastTrim = ContinuousClock.now
}

/// State the rebalance callback reaches through librdkafka's opaque pointer; only
/// touched on the polling thread (callbacks run inside poll).
private final class RebalanceContext {
    let startOffset: KafkaConsumer.StartOffset?
    let revoked: KafkaConsumer.Revoked?
    var assigned: [(topic: String, partition: Int32)] = []
    /// Next offset per partition of what the caller has durably stored, for the
    /// synchronous commit on revocation.
    var storedOffsets: [TopicPartition: Int64] = [:]
    let logger: Logger
    init(startOffset: KafkaConsumer.StartOffset?, revoked: KafkaConsumer.Revoked?, logger: Logger) {
        self.startOffset = startOffset
        self.revoked = revoked
        self.logger = logger
    }

    /// A handover that did not commit what this recorder stored.
    func handoverProblem(_ what: String, partitions: String) {
        logger.warning("\(what): their new owner may store some of those flows again", metadata: ["partitions": "\(partitions)"])
    }

    func isAssigned(_ topic: String, _ partition: Int32) -> Bool {
        assigned.contains { $0.topic == topic && $0.partition == partition }
    }

    /// Lag commits wait while the group rebalances. Commits sent then are refused, or
    /// worse: librdkafka holds those made while it rejoins and sends them with the old
    /// generation, the broker answers "illegal generation", and librdkafka then treats
    /// the whole assignment as lost, so the revocation commit is skipped and the new
    /// owner starts from an older offset. Set by a "rebalance in progress" commit answer
    /// or a revocation; cleared by an assignment that ends a rebalance (under the
    /// cooperative protocol a revocation is followed by an assignment and a rejoin, so
    /// that assignment does not end it).
    private var rebalancingSince: ContinuousClock.Instant?
    private var rejoinFollowsNextAssign = false

    /// The result of an asynchronous lag commit, served inside poll.
    func commitFinished(_ error: rd_kafka_resp_err_t) {
        if error == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || error == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION {
            rebalancingSince = .now
        }
    }

    /// False while a rebalance is under way; true again after it, or after 30 s in case
    /// no callback came to end it.
    func lagCommitsAllowed() -> Bool {
        guard let since = rebalancingSince else { return true }
        if since.duration(to: .now) > .seconds(30) { rebalancingSince = nil }
        return rebalancingSince == nil
    }

    /// Handles both protocols: under "COOPERATIVE" the list holds only the partitions
    /// added or taken away; under the eager one it is the whole assignment.
    func rebalance(_ rk: OpaquePointer, assigning: Bool, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE"
        if assigning {
            if rejoinFollowsNextAssign { rejoinFollowsNextAssign = false } else { rebalancingSince = nil }
        } else {
            rebalancingSince = .now
            rejoinFollowsNextAssign = cooperative
        }
        var changed: [(topic: String, partition: Int32)] = []
        if let partitions {
            for i in 0..<Int(partitions.pointee.cnt) {
                let element = partitions.pointee.elems[i]
                let topic = String(cString: element.topic)
                changed.append((topic, element.partition))
                // An assigned partition resumes at the store's checkpoint.
                if assigning, let offset = startOffset?(topic, element.partition) { partitions.pointee.elems[i].offset = offset }
            }
        }
        if assigning {
            assigned = cooperative ? assigned + changed : changed
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, partitions) { rd_kafka_error_destroy(error) }
            } else {
                rd_kafka_assign(rk, partitions)
            }
            return
        }
        // Revoked: the caller first drops what it read of these partitions and has not
        // stored (`revoked`), so nothing of them is in flight. Then what was stored is
        // committed synchronously, so the member that takes the partitions over starts
        // exactly after it (an async commit could still be on its way and let the new
        // owner store the same flows again). Partitions lost to a session timeout cannot
        // be committed any more; their new owner may repeat a batch, which the store then
        // holds twice only if it is another recorder's. Under the eager protocol the list
        // is the whole assignment.
        if !changed.isEmpty { self.revoked?(changed) }
        let revoked = Set(changed.map { TopicPartition(topic: $0.topic, partition: $0.partition) })
        let toCommit = storedOffsets.filter { revoked.contains($0.key) }
        let described = { toCommit.keys.map { "\($0.topic)[\($0.partition)]" }.sorted().joined(separator: ", ") }
        if rd_kafka_assignment_lost(rk) != 0, !toCommit.isEmpty {
            handoverProblem("partitions \(described()) were lost (session timeout) before this recorder could commit what it stored",
                            partitions: described())
        } else if !toCommit.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(toCommit.count)) {
            for (key, offset) in toCommit {
                rd_kafka_topic_partition_list_add(list, key.topic, key.partition)?.pointee.offset = offset
            }
            let err = rd_kafka_commit(rk, list, 0)
            rd_kafka_topic_partition_list_destroy(list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                handoverProblem("the broker refused the commit of partitions \(described()) as they were handed over (\(String(cString: rd_kafka_err2str(err))))",
                                partitions: described())
            }
        }
        for key in revoked { storedOffsets[key] = nil }
        assigned.removeAll { revoked.contains(TopicPartition(topic: $0.topic, partition: $0.partition)) }
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, partitions) { rd_kafka_error_destroy(error) }
        } else {
            storedOffsets = [:]
            assigned = []
            rd_kafka_assign(rk, nil)
        }
    }
}

struct TopicPartition: Hashable {
    let topic: String
    let partition: Int32
}
