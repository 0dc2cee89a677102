package import FlowrecConfig
package import KafkaSource

extension Recorder {
    /// The consumer's librdkafka properties: the configured ones, and flowrec's own
    /// defaults where librdkafka's do not suit (the `kafka.properties` setting lists them).
    package static func consumerProperties(_ config: RecorderConfiguration) -> KafkaProperties {
        var properties = KafkaProperties(config.kafkaProperties)
        properties["bootstrap.servers"] = config.bootstrapServers
        properties["group.id"] = config.groupID
        for (key, value) in RecorderConfiguration.kafkaDefaults where properties[key] == nil { properties[key] = value }
        if properties["fetch.message.max.bytes"] == nil {
            properties["fetch.message.max.bytes"] = String(max(config.maxMessageBytes + 1024, 1 << 20))
        }
        return properties
    }
}
