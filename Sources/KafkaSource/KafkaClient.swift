package import CRdKafka

/// A librdkafka failure, with librdkafka's own message and what the user can do.
package struct KafkaError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// A property librdkafka refuses, or a missing one (`group.id`).
        case configuration
        /// The client could not be created or subscribe.
        case client
        /// Producing failed (queue full for too long, a message refused).
        case produce
        /// librdkafka reported a fatal error: the client must be recreated.
        case fatal
        /// Out of memory in librdkafka.
        case resources
    }

    package let kind: Kind
    /// librdkafka's `rd_kafka_resp_err_t`, when the failure came with one.
    package let code: rd_kafka_resp_err_t?
    package let message: String

    package init(_ kind: Kind, _ message: String, code: rd_kafka_resp_err_t? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
    }

    package var description: String { message }

    /// An error with librdkafka's code and its text after `context`.
    static func from(_ code: rd_kafka_resp_err_t, kind: Kind, _ context: String) -> KafkaError {
        KafkaError(kind, "\(context): \(String(cString: rd_kafka_err2str(code)))", code: code)
    }
}

/// librdkafka properties (`bootstrap.servers`, `security.protocol`, `compression.codec`,
/// ...), passed through unchanged. Values whose keys look secret are masked in `description`.
package struct KafkaProperties: Sendable, CustomStringConvertible {
    /// The librdkafka flowrec runs with (`flowrec --version`).
    package static var libraryVersion: String { String(cString: rd_kafka_version_str()) }

    package private(set) var values: [String: String]

    package init(_ values: [String: String] = [:]) { self.values = values }

    package subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    package static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        return k.contains("password") || k.contains("secret") || k.hasSuffix(".key.pem") || k.contains("sasl.oauthbearer.config")
    }

    package var description: String {
        values.keys.sorted().map { "\($0)=\(Self.isSecret($0) ? "*****" : values[$0] ?? "")" }.joined(separator: " ")
    }

    /// A librdkafka configuration object; the caller owns it until `rd_kafka_new` takes it.
    func makeConf() throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(.resources, "rd_kafka_conf_new failed") }
        var errbuf = [CChar](repeating: 0, count: 512)
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let reason = String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw KafkaError(.configuration, "Kafka property \(key): \(reason). Check the name and value against librdkafka's CONFIGURATION.md.")
            }
        }
        return conf
    }
}

/// Creates a client handle from properties, turning librdkafka's error buffer into a `KafkaError`.
func makeClient(_ type: rd_kafka_type_t, _ properties: KafkaProperties) throws(KafkaError) -> OpaquePointer {
    let conf = try properties.makeConf()
    var errbuf = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &errbuf, errbuf.count) else {
        rd_kafka_conf_destroy(conf)
        let reason = String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw KafkaError(.client, "cannot create Kafka client: \(reason)")
    }
    return handle
}
