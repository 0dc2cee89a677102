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
/// says a batch is durable.
public final class KafkaConsumer {
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private var closed = false

    /// `properties` must contain `bootstrap.servers` and `group.id`.
    public init(topics: [String], properties: KafkaProperties) throws(KafkaError) {
        var props = properties
        if props["enable.auto.commit"] == nil { props["enable.auto.commit"] = "false" }
        if props["enable.auto.offset.store"] == nil { props["enable.auto.offset.store"] = "false" }
        if props["auto.offset.reset"] == nil { props["auto.offset.reset"] = "earliest" }
        guard props["group.id"] != nil else { throw KafkaError("a consumer needs group.id") }
        let handle = try makeClient(RD_KAFKA_CONSUMER, props)
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
            try body(KafkaMessageView(
                topic: topicName, partition: m.pointee.partition, offset: m.pointee.offset,
                payload: UnsafeRawBufferPointer(start: m.pointee.payload, count: m.pointee.len)))
            delivered += 1
        }
        return delivered
    }
}
