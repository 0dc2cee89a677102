package import FlowrecConfig
package import KafkaSource

extension Recorder {
    /// The consumer's librdkafka properties: the configured ones, and flowrec's own
    /// defaults where librdkafka's do not suit (the `kafka.properties` setting lists them).
    package static func consumerProperties(_ config: RecorderConfiguration) -> KafkaProperties {
        var properties = KafkaProperties(config.kafkaProperties)
        properties["bootstrap.servers"] = config.bootstrapServers
        properties["group.id"] = config.groupID
        if properties["session.timeout.ms"] == nil { properties["session.timeout.ms"] = "10000" }
        // librdkafka's 64 MiB prefetch queue is ~120 MiB of memory (per-message overhead
        // and decompressed batches) and buys nothing now that `KafkaConsumer.poll` wakes a
        // stalled fetcher: with 16 MiB the Kafka benchmark stored as fast (192k against
        // 182k flows/s) and peaked at 225 MiB instead of 328.
        if properties["queued.max.messages.kbytes"] == nil { properties["queued.max.messages.kbytes"] = "16384" }
        if properties["fetch.message.max.bytes"] == nil {
            properties["fetch.message.max.bytes"] = String(max(config.maxMessageBytes + 1024, 1 << 20))
        }
        return properties
    }
}
