extension FlowrecSettings {
    /// librdkafka properties for TLS and SASL from the settings, secrets read from their
    /// files or the environment; `kafka.properties` are applied on top by the caller.
    package static func kafkaSecurityProperties(_ s: ResolvedSettings, readFile: (String) throws -> String) throws -> [String: String] {
        var properties: [String: String] = [:]
        let tls = s.string("kafka.tls.caFile") != nil || s.string("kafka.tls.certFile") != nil
        if let ca = s.string("kafka.tls.caFile") { properties["ssl.ca.location"] = ca }
        if (s.string("kafka.tls.certFile") == nil) != (s.string("kafka.tls.keyFile") == nil) {
            throw SettingsError(.conflict, key: "kafka.tls.certFile", "mutual TLS to Kafka needs both kafka.tls.certFile and kafka.tls.keyFile")
        }
        if let cert = s.string("kafka.tls.certFile") { properties["ssl.certificate.location"] = cert }
        if let key = s.string("kafka.tls.keyFile") { properties["ssl.key.location"] = key }
        if let file = s.string("kafka.tls.keyPasswordFile") { properties["ssl.key.password"] = try readFile(file) }
        let sasl = s.string("kafka.sasl.mechanism")
        if let mechanism = sasl {
            properties["sasl.mechanisms"] = mechanism
            properties["sasl.username"] = try s.required("kafka.sasl.username")
            if let file = s.string("kafka.sasl.passwordFile") {
                properties["sasl.password"] = try readFile(file)
            } else if let password = s.string("kafka.sasl.password") {
                properties["sasl.password"] = password
            } else {
                throw SettingsError(.missingValue, key: "kafka.sasl.password", "SASL needs a password: kafka.sasl.passwordFile (--kafka-sasl-password-file) or FLOWREC_KAFKA_SASL_PASSWORD")
            }
        }
        switch (tls, sasl != nil) {
        case (true, true): properties["security.protocol"] = "SASL_SSL"
        case (true, false): properties["security.protocol"] = "SSL"
        case (false, true): properties["security.protocol"] = "SASL_PLAINTEXT"
        case (false, false): break
        }
        return properties
    }
}
