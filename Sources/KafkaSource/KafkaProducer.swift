import CRdKafka

/// Sends messages to one topic with librdkafka, counting what the broker acknowledged.
///
/// Used by `flowrec generate --kafka` and by tests that seed the test broker. Not
/// thread-safe: one producer per task. Delivery reports are served on the calling
/// thread by `send` and `flush`.
package final class KafkaProducer {
    private let handle: OpaquePointer
    private let topic: OpaquePointer
    private let reports: DeliveryReports
    package let topicName: String

    /// Messages the broker acknowledged, and messages it finally refused.
    package var delivered: Int { reports.delivered }
    package var failed: Int { reports.failed }
    package var lastFailure: String? { reports.lastFailure }

    /// `properties` must contain `bootstrap.servers`; `compression.codec` picks none,
    /// gzip, snappy, lz4 or zstd. The producer is idempotent unless `properties` says
    /// otherwise: librdkafka's default resends a produce request whose answer a broker
    /// outage cut off, and the topic then holds the same flow at two offsets, which the
    /// recorder (exactly once per message) rightly stores twice. A test or `generate`
    /// run that counts flows must find each produced one once.
    package init(topic: String, properties: KafkaProperties) throws(KafkaError) {
        var props = properties
        if props["enable.idempotence"] == nil { props["enable.idempotence"] = "true" }
        if props["linger.ms"] == nil { props["linger.ms"] = "20" }
        if props["batch.num.messages"] == nil { props["batch.num.messages"] = "10000" }
        if props["queue.buffering.max.kbytes"] == nil { props["queue.buffering.max.kbytes"] = "262144" }
        let conf = try props.makeConf()
        let reports = DeliveryReports()
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(reports).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            let reports = Unmanaged<DeliveryReports>.fromOpaque(opaque).takeUnretainedValue()
            if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                reports.delivered += 1
            } else {
                reports.failed += 1
                reports.lastFailure = String(cString: rd_kafka_err2str(message.pointee.err))
            }
        }
        var errbuf = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errbuf, errbuf.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(.client, "cannot create Kafka producer: \(String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            rd_kafka_destroy(handle)
            throw KafkaError.from(rd_kafka_last_error(), kind: .client, "cannot use topic \(topic)")
        }
        self.handle = handle
        self.topic = topicHandle
        self.reports = reports
        self.topicName = topic
    }

    deinit {
        rd_kafka_topic_destroy(topic)
        rd_kafka_destroy(handle)
    }

    /// Queues one message (copied), waiting while librdkafka's queue is full.
    /// `partition` nil lets the partitioner spread messages, as NetObserv's exporter does.
    package func send(_ bytes: UnsafeRawBufferPointer, partition: Int32? = nil) throws(KafkaError) {
        while true {
            let rc = rd_kafka_produce(
                topic, partition ?? RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, nil, 0, nil)
            if rc == 0 { break }
            let err = rd_kafka_last_error()
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw KafkaError.from(err, kind: .produce, "cannot produce to \(topicName)") }
            rd_kafka_poll(handle, 50)
        }
        rd_kafka_poll(handle, 0)
    }

    package func send(_ bytes: [UInt8], partition: Int32? = nil) throws(KafkaError) {
        let result: Result<Void, KafkaError> = bytes.withUnsafeBytes { raw in
            Result { () throws(KafkaError) in try send(raw, partition: partition) }
        }
        try result.get()
    }

    /// How many messages each of the topic's first `partitions` partitions holds (its end
    /// offset, asked of the partition's leader). Tests compare it with what was stored: a
    /// producer that is not idempotent can write a message twice when a broker drops the
    /// connection before acknowledging, and those copies are distinct messages upstream.
    package func endOffsets(partitions: Int32, timeoutMs: Int32 = 10_000) throws(KafkaError) -> [Int64] {
        try offsetRanges(partitions: partitions, timeoutMs: timeoutMs).map(\.end)
    }

    /// Each of the topic's first `partitions` partitions' oldest offset the broker still
    /// has and its end offset. A broker's retention moves the first on: tests check that
    /// it is still 0, so a message the broker dropped is never taken for one flowrec lost.
    package func offsetRanges(partitions: Int32, timeoutMs: Int32 = 10_000) throws(KafkaError) -> [(start: Int64, end: Int64)] {
        var ranges: [(start: Int64, end: Int64)] = []
        for partition in 0..<partitions {
            var low: Int64 = -1, high: Int64 = -1
            let err = rd_kafka_query_watermark_offsets(handle, topicName, partition, &low, &high, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.from(err, kind: .client, "cannot read the offsets of \(topicName) partition \(partition)")
            }
            ranges.append((low, high))
        }
        return ranges
    }

    /// Waits until every queued message is acknowledged or failed.
    package func flush(timeoutMs: Int32 = 60_000) throws(KafkaError) {
        let err = rd_kafka_flush(handle, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(err, kind: .produce, "\(rd_kafka_outq_len(handle)) messages still unsent to \(topicName) after \(timeoutMs) ms")
        }
    }
}

/// Counters the delivery-report callback updates; only touched on the producing thread.
private final class DeliveryReports {
    var delivered = 0
    var failed = 0
    var lastFailure: String?
}
