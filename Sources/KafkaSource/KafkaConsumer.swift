import CRdKafka

/// One consumed message, valid only inside the callback that receives it (the bytes
/// belong to librdkafka's buffer; nothing is copied).
public struct KafkaMessageView {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public let payload: UnsafeRawBufferPointer
}

/// A consumer-group member that reads messages in batches without auto-committing.
///
/// flowrec stores offsets with the data, so this type never commits before the caller
/// says a batch is durable. When the group assigns partitions, `startOffset` (if given)
/// says where each one resumes: the store's own checkpoint, not the group's committed
/// offset, which only serves lag monitoring.
public final class KafkaConsumer {
    /// Where an assigned partition starts: an offset, or nil for the group's position
    /// (committed offset, else `auto.offset.reset`).
    public typealias StartOffset = (_ topic: String, _ partition: Int32) -> Int64?

    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private var closed = false
    private let rebalance: RebalanceContext

    /// Partitions currently assigned to this member.
    public var assignment: [(topic: String, partition: Int32)] { rebalance.assigned }

    /// `properties` must contain `bootstrap.servers` and `group.id`.
    public init(topics: [String], properties: KafkaProperties, startOffset: StartOffset? = nil) throws(KafkaError) {
        var props = properties
        if props["enable.auto.commit"] == nil { props["enable.auto.commit"] = "false" }
        if props["enable.auto.offset.store"] == nil { props["enable.auto.offset.store"] = "false" }
        if props["auto.offset.reset"] == nil { props["auto.offset.reset"] = "earliest" }
        guard props["group.id"] != nil else { throw KafkaError("a consumer needs group.id") }
        let conf = try props.makeConf()
        let rebalance = RebalanceContext(startOffset: startOffset)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(rebalance).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
            guard let rk, let opaque else { return }
            let context = Unmanaged<RebalanceContext>.fromOpaque(opaque).takeUnretainedValue()
            if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, let partitions {
                var assigned: [(String, Int32)] = []
                for i in 0..<Int(partitions.pointee.cnt) {
                    let element = partitions.pointee.elems[i]
                    let topic = String(cString: element.topic)
                    assigned.append((topic, element.partition))
                    if let offset = context.startOffset?(topic, element.partition) {
                        partitions.pointee.elems[i].offset = offset
                    }
                }
                context.assigned = assigned
                rd_kafka_assign(rk, partitions)
            } else {
                // Revoked: the caller stores each batch before polling again, so nothing is in
                // flight. Commit what was stored synchronously, so the member that takes the
                // partitions over starts exactly after it (an async commit could still be on
                // its way and let the new owner store the same flows again).
                if !context.storedOffsets.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(context.storedOffsets.count)) {
                    for (key, offset) in context.storedOffsets {
                        rd_kafka_topic_partition_list_add(list, key.topic, key.partition)?.pointee.offset = offset
                    }
                    _ = rd_kafka_commit(rk, list, 0)
                    rd_kafka_topic_partition_list_destroy(list)
                }
                context.storedOffsets = [:]
                context.assigned = []
                rd_kafka_assign(rk, nil)
            }
        }
        var errbuf = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errbuf, errbuf.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("cannot create Kafka consumer: \(String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        self.rebalance = rebalance
        rd_kafka_poll_set_consumer(handle)
        guard let list = rd_kafka_topic_partition_list_new(Int32(topics.count)) else {
            rd_kafka_destroy(handle)
            throw KafkaError("out of memory creating a topic list")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for t in topics { rd_kafka_topic_partition_list_add(list, t, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(handle)
            throw KafkaError.from(err, "cannot subscribe to \(topics.joined(separator: ","))")
        }
        guard let queue = rd_kafka_queue_get_consumer(handle) else {
            rd_kafka_destroy(handle)
            throw KafkaError("librdkafka gave no consumer queue")
        }
        self.handle = handle
        self.queue = queue
    }

    /// Commits "next offset to read" per partition to the group, asynchronously. flowrec
    /// calls it after a batch is durable, for lag monitoring only.
    public func commit(_ nextOffsets: [(topic: String, partition: Int32, offset: Int64)]) {
        for entry in nextOffsets {
            rebalance.storedOffsets[TopicPartition(topic: entry.topic, partition: entry.partition)] = entry.offset
        }
        guard !nextOffsets.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(nextOffsets.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for entry in nextOffsets {
            rd_kafka_topic_partition_list_add(list, entry.topic, entry.partition)?.pointee.offset = entry.offset
        }
        _ = rd_kafka_commit(handle, list, 1)
    }

    /// The partition's end offset as the broker last reported it in a fetch response
    /// (no request is made, so it is cheap to ask every batch); nil before the first fetch.
    public func highWatermark(topic: String, partition: Int32) -> Int64? {
        var low: Int64 = -1, high: Int64 = -1
        let error = rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high)
        return error == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    deinit {
        close()
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
    }

    /// Leaves the group cleanly so partitions move to other members at once.
    public func close() {
        guard !closed else { return }
        closed = true
        rd_kafka_consumer_close(handle)
    }

    /// Waits up to `timeoutMs` for messages and passes up to `maxMessages` of them to
    /// `body`. Returns how many messages were passed. Partition-end and transient
    /// broker events are not messages and are skipped; a fatal error is thrown.
    @discardableResult
    public func poll(maxMessages: Int = 10_000, timeoutMs: Int32 = 1000,
                     _ body: (KafkaMessageView) throws -> Void) throws -> Int {
        var messages = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: maxMessages)
        let n = rd_kafka_consume_batch_queue(queue, timeoutMs, &messages, maxMessages)
        guard n >= 0 else { throw KafkaError.from(rd_kafka_last_error(), "consume failed") }
        var delivered = 0
        defer { for i in 0..<n { rd_kafka_message_destroy(messages[i]) } }
        for i in 0..<n {
            guard let m = messages[i] else { continue }
            let err = m.pointee.err
            if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if rd_kafka_fatal_error(handle, nil, 0) != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError.from(err, "fatal consumer error")
                }
                continue  // transient: librdkafka retries by itself
            }
            let topicName = m.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
            // A rebalance can run inside this poll and still leave messages fetched before
            // it in the batch. Those of partitions no longer ours belong to their new owner,
            // which resumes from what we committed at revocation: drop them here.
            guard rebalance.isAssigned(topicName, m.pointee.partition) else { continue }
            try body(KafkaMessageView(
                topic: topicName, partition: m.pointee.partition, offset: m.pointee.offset,
                payload: UnsafeRawBufferPointer(start: m.pointee.payload, count: m.pointee.len)))
            delivered += 1
        }
        return delivered
    }
}

/// State the rebalance callback reaches through librdkafka's opaque pointer; only
/// touched on the polling thread (callbacks run inside poll).
private final class RebalanceContext {
    let startOffset: KafkaConsumer.StartOffset?
    var assigned: [(topic: String, partition: Int32)] = []
    /// Next offset per partition of what the caller has durably stored, for the
    /// synchronous commit on revocation.
    var storedOffsets: [TopicPartition: Int64] = [:]
    init(startOffset: KafkaConsumer.StartOffset?) { self.startOffset = startOffset }

    func isAssigned(_ topic: String, _ partition: Int32) -> Bool {
        assigned.contains { $0.topic == topic && $0.partition == partition }
    }
}

struct TopicPartition: Hashable {
    let topic: String
    let partition: Int32
}
