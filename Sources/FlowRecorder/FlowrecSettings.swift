/// Every setting of `flowrec record`, `sync` and `prune`, by section. The YAML file
/// uses the same sections (`kafka:`, `store:`, ...); `docs/configuration.md` and
/// `deploy/flowrec.example.yaml` are generated from this table (`flowrec config`).
package enum FlowrecSettings {
    package static let data: [Setting] = [
        Setting("data", flag: "data", .string, default: "./flowrec-data", value: "DIR", "Data directory: shards, catalog, dead letters, rollups."),
    ]

    package static let kafka: [Setting] = [
        Setting("kafka.brokers", flag: "brokers", .string, value: "HOST:PORT,...", "Kafka bootstrap servers. Required."),
        Setting("kafka.topics", flag: "topic", .list, default: "flows-export", value: "TOPIC",
                "Topics to consume (repeat the flag, or a YAML list). NetObserv's exporter writes to flows-export by default."),
        Setting("kafka.group", flag: "group", .string, default: "flowrec", value: "ID", "Consumer group; recorders sharing it split the partitions."),
        Setting("kafka.batchSize", flag: "batch-size", .integer, default: "10000", "Most messages per batch (one store transaction per shard per batch)."),
        Setting("kafka.maxMessageBytes", flag: "max-message-bytes", .integer, default: "1048576", "Larger messages become dead letters."),
        Setting("kafka.tls.caFile", flag: "kafka-ca-file", .string, value: "FILE", "PEM CA bundle that signed the brokers' certificates; turns TLS on."),
        Setting("kafka.tls.certFile", flag: "kafka-cert-file", .string, value: "FILE", "PEM client certificate for mutual TLS; needs kafka.tls.keyFile."),
        Setting("kafka.tls.keyFile", flag: "kafka-key-file", .string, value: "FILE", "PEM private key of the client certificate."),
        Setting("kafka.tls.keyPasswordFile", flag: "kafka-key-password-file", .string, value: "FILE", "File holding the client key's password, if it has one."),
        Setting("kafka.sasl.mechanism", flag: "kafka-sasl-mechanism", .choice(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
                "SASL mechanism; turns SASL on (over TLS when a CA is set)."),
        Setting("kafka.sasl.username", flag: "kafka-sasl-username", .string, value: "USER", "SASL user name."),
        Setting("kafka.sasl.passwordFile", flag: "kafka-sasl-password-file", .string, value: "FILE", "File holding the SASL password."),
        Setting("kafka.sasl.password", flag: nil, .string, secret: true,
                "SASL password from the environment (instead of a file); never on the command line or in the file."),
        Setting("kafka.properties", flag: "kafka-property", .map,
                "Any librdkafka property, passed through (repeat the flag: --kafka-property fetch.wait.max.ms=100)."),
        Setting("exitWhenIdle", flag: "exit-when-idle", .duration, "Exit cleanly after this long without a message (batch jobs, tests)."),
    ]

    package static let store: [Setting] = [
        Setting("store.window", flag: "window", .duration, default: "1h", "Shard window, 1m to 1d."),
        Setting("store.grace", flag: "grace", .duration, default: "2m", "Wait after a window's end before sealing it (late flows)."),
        Setting("store.maxEventAge", flag: "max-event-age", .duration, default: "3650d",
                "Flows whose TimeFlowEndMs is older than this (against the wall clock) become dead letters: a broken agent clock or a poisoned message."),
        Setting("store.maxEventAhead", flag: "max-event-ahead", .duration, default: "1h",
                "Flows whose TimeFlowEndMs is this far in the future become dead letters (they would seal live windows early)."),
        Setting("store.compactLevel", flag: "compact-level", .integer, default: "19",
                "zstd level for deep compaction of sealed shards while the topics are quiet (4-22; 0 turns it off)."),
        Setting("store.compactWhenIdle", flag: "compact-when-idle", .duration, default: "60s",
                "How long the topics must be quiet before deep compaction starts (at the lowest CPU priority)."),
    ]

    package static let retention: [Setting] = [
        Setting("retention.maxAge", flag: "max-age", .duration, "Delete sealed shards whose window ended longer ago than this (e.g. 30d)."),
        Setting("retention.maxSize", flag: "max-size", .byteSize, "Keep the shards' total size under this (e.g. 200GiB)."),
        Setting("retention.minFree", flag: "min-free", .freeSpace,
                "Keep this much free on the data volume (20GiB or 10%); the hard limit: undelivered shards go too when it is reached."),
        Setting("retention.lowWatermark", flag: "low-watermark", .number, default: "0.9", "An exceeded limit is brought down to this share of it (0.5-1)."),
        Setting("retention.requireForwarders", flag: "require-forwarder", .list, value: "NAME",
                "Keep shards these forwarders have not delivered, unless free space runs out."),
        Setting("retention.rollupMaxAge", flag: "rollup-max-age", .duration, "Delete rollups of windows older than this (they outlive raw shards)."),
        Setting("retention.maxRunTime", flag: "max-run-time", .duration, default: "30s", "Longest time one retention run spends deleting."),
    ]

    package static let http: [Setting] = [
        Setting("http.listen", flag: "http-listen", .string, default: "127.0.0.1:9464", value: "HOST:PORT",
                "Listener for /metrics, /healthz, /readyz and the API; off turns it off."),
        Setting("http.tokenFile", flag: "http-token-file", .string, value: "FILE", "File holding the bearer token /metrics requires (required off loopback)."),
        Setting("http.token", flag: nil, .string, secret: true, "The bearer token from the environment, instead of a file."),
        Setting("http.tlsCert", flag: "http-tls-cert", .string, value: "FILE", "PEM certificate chain: serve HTTPS (needs http.tlsKey)."),
        Setting("http.tlsKey", flag: "http-tls-key", .string, value: "FILE", "PEM private key of http.tlsCert."),
        Setting("http.apiMaxRange", flag: "api-max-range", .duration, default: "31d", "The longest time range one /api/v1 request may cover."),
        Setting("http.apiMaxRows", flag: "api-max-rows", .integer, default: "10000", "The most flows or groups one /api/v1 response may hold."),
    ]

    package static let forwarding: [Setting] = [
        Setting("forward", flag: "forward", .list, value: "clickhouse|directory|exec",
                "Forward each sealed shard to these targets as soon as it is sealed (record only)."),
        Setting("forwardInterval", flag: "forward-interval", .duration, default: "30s",
                "How often forwarders retry and catch up, besides right after each seal."),
    ]

    package static let clickhouse: [Setting] = [
        Setting("clickhouse.url", flag: "clickhouse-url", .string, default: "http://127.0.0.1:8123", value: "URL",
                "ClickHouse HTTP interface: http://HOST:8123 or https://HOST:8443."),
        Setting("clickhouse.user", flag: "clickhouse-user", .string, default: "default", value: "USER", "ClickHouse user."),
        Setting("clickhouse.passwordFile", flag: "clickhouse-password-file", .string, value: "FILE", "File holding the ClickHouse password."),
        Setting("clickhouse.password", flag: nil, .string, secret: true, "The ClickHouse password from the environment, instead of a file."),
        Setting("clickhouse.database", flag: "clickhouse-database", .string, default: "netobserv", value: "NAME", "Target database."),
        Setting("clickhouse.table", flag: "clickhouse-table", .string, default: "flows", value: "NAME", "Target table."),
        Setting("clickhouse.format", flag: "clickhouse-format", .choice(["native", "rowbinary"]), default: "native",
                "Insert format: Native (columnar, the default) or RowBinary."),
        Setting("clickhouse.compression", flag: "clickhouse-compression", .choice(["gzip", "none"]), default: "gzip", "Request body compression."),
        Setting("clickhouse.chunkRows", flag: "clickhouse-chunk-rows", .integer, default: "100000", "Rows per INSERT; progress is saved after each."),
        Setting("clickhouse.dialect", flag: "clickhouse-dialect", .choice(["auto", "modern", "compatible"]), default: "auto",
                "Table flavour: by server version, modern (LowCardinality, codecs, TTL) or compatible (old servers)."),
        Setting("clickhouse.caFile", flag: "clickhouse-ca-file", .string, value: "FILE", "PEM CA that signed the server's certificate (https)."),
        Setting("clickhouse.certFile", flag: "clickhouse-cert-file", .string, value: "FILE", "PEM client certificate for mutual TLS."),
        Setting("clickhouse.keyFile", flag: "clickhouse-key-file", .string, value: "FILE", "PEM private key of the client certificate."),
        Setting("clickhouse.attempts", flag: "clickhouse-attempts", .integer, default: "10",
                "Attempts per request (network errors and HTTP 5xx are retried with backoff; 4xx are not)."),
        Setting("clickhouse.createTable", flag: "create-table", .bool, default: "false", "Create the database and table when missing."),
        Setting("clickhouse.ttlDays", flag: "clickhouse-ttl-days", .integer, "TTL in days of a table made by createTable (modern servers)."),
    ]

    package static let directory: [Setting] = [
        Setting("directory.path", flag: "directory-path", .string, value: "DIR",
                "Directory (NFS or object-store mount) receiving sealed shards and their manifests."),
    ]

    package static let exec: [Setting] = [
        Setting("exec.command", flag: "exec-command", .string, value: "COMMAND",
                "Run by /bin/sh once per sealed shard, with FLOWREC_SHARD_PATH and the shard's facts in its environment; exit 0 means delivered."),
        Setting("exec.timeout", flag: "exec-timeout", .duration, default: "10m", "Longest run before the command is killed."),
        Setting("exec.attempts", flag: "exec-attempts", .integer, default: "3", "Attempts per shard before the failure is reported."),
    ]

    package static var targets: [Setting] { clickhouse + directory + exec }
    /// `flowrec record`.
    package static var record: [Setting] { data + kafka + store + retention + http + forwarding + targets }
    /// `flowrec sync`.
    package static var sync: [Setting] { data + targets }
    /// `flowrec prune`.
    package static var prune: [Setting] { data + retention }

    /// librdkafka properties for TLS and SASL from the settings, secrets read from their
    /// files or the environment; `kafka.properties` are applied on top by the caller.
    package static func kafkaSecurityProperties(_ s: ResolvedSettings, readFile: (String) throws -> String) throws -> [String: String] {
        var properties: [String: String] = [:]
        let tls = s.string("kafka.tls.caFile") != nil || s.string("kafka.tls.certFile") != nil
        if let ca = s.string("kafka.tls.caFile") { properties["ssl.ca.location"] = ca }
        if (s.string("kafka.tls.certFile") == nil) != (s.string("kafka.tls.keyFile") == nil) {
            throw SettingsError("mutual TLS to Kafka needs both kafka.tls.certFile and kafka.tls.keyFile")
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
                throw SettingsError("SASL needs a password: kafka.sasl.passwordFile (--kafka-sasl-password-file) or FLOWREC_KAFKA_SASL_PASSWORD")
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

    /// `--help` text for a table: flag, YAML key, environment variable, default.
    package static func help(_ table: [Setting]) -> String {
        var lines: [String] = []
        for setting in table {
            let flag = setting.flag.map { "--\($0)" + (setting.kind == .bool ? "" : " \(setting.valueName)") } ?? "(environment only)"
            var facts = ["config: \(setting.key)", "env: \(setting.environmentVariable)"]
            if let d = setting.defaultValue { facts.append("default: \(d)") }
            lines.append("  \(flag)\n      \(setting.help) [\(facts.joined(separator: "; "))]")
        }
        return lines.joined(separator: "\n")
    }

    /// The configuration reference in Markdown (docs/configuration.md).
    package static func referenceMarkdown() -> String {
        var out = """
            # flowrec configuration reference

            Generated by `flowrec config reference` from the settings table in
            `Sources/FlowRecorder/FlowrecSettings.swift`; a test fails when this file is stale.

            Every setting can come from the YAML file given with `--config`, from an environment
            variable, or from a flag. Flags win over the environment, which wins over the file,
            which wins over the defaults. `flowrec record --check-config` prints the effective
            settings, each with where its value came from, secrets masked. Secrets (passwords,
            tokens) are read from files or the environment, never from flags or the YAML file.
            Lists take a YAML sequence, a repeated flag, or commas in the environment; maps take a
            YAML mapping, a repeated `KEY=VALUE` flag, or `K=V,K=V` in the environment.

            Durations: `250ms`, `90s`, `30m`, `2h`, `7d`, `1w`. Sizes: `500MB`, `20GiB` (decimal
            and binary units). Free space: a size or a share of the volume (`10%`).


            """
        let sections: [(String, String, [Setting])] = [
            ("Data", "record, sync, prune", data), ("Kafka", "record", kafka), ("Store", "record", store),
            ("Retention", "record, prune", retention), ("HTTP listener", "record", http),
            ("Forwarding", "record", forwarding), ("ClickHouse target", "record, sync", clickhouse),
            ("Directory target", "record, sync", directory), ("Exec target", "record, sync", exec),
        ]
        for (title, commands, table) in sections {
            out += "## \(title) (\(commands))\n\n| key | flag | environment | default | meaning |\n|---|---|---|---|---|\n"
            for s in table {
                let flag = s.flag.map { "`--\($0)`" } ?? "(none: secret)"
                let kind: String
                switch s.kind {
                case .choice(let options): kind = options.joined(separator: ", ")
                default: kind = s.valueName.isEmpty ? "true/false" : s.valueName
                }
                out += "| `\(s.key)` | \(flag) | `\(s.environmentVariable)` | \(s.defaultValue.map { "`\($0)`" } ?? "") | \(s.help) (\(kind)) |\n"
            }
            out += "\n"
        }
        return out
    }

    /// A commented example config file (deploy/flowrec.example.yaml).
    package static func exampleYAML() -> String {
        var out = """
            # flowrec configuration: `flowrec record --config flowrec.yaml`.
            # Generated by `flowrec config example`; every key is in docs/configuration.md.
            # Flags and FLOWREC_* environment variables override what is set here.
            # Secrets never go in this file: point at files (passwordFile, tokenFile) or use
            # FLOWREC_KAFKA_SASL_PASSWORD, FLOWREC_CLICKHOUSE_PASSWORD, FLOWREC_HTTP_TOKEN.

            """
        let example: [String: String] = [
            "data": "/var/lib/flowrec", "kafka.brokers": "kafka-bootstrap.netobserv:9092",
            "retention.maxAge": "30d", "retention.minFree": "10%", "http.listen": "0.0.0.0:9464",
            "http.tokenFile": "/etc/flowrec/http-token",
        ]
        var openSections: [String] = []
        for setting in record where !setting.secret {
            let parts = setting.key.split(separator: ".").map(String.init)
            let sections = Array(parts.dropLast())
            var common = 0
            while common < min(sections.count, openSections.count), sections[common] == openSections[common] { common += 1 }
            for depth in common..<sections.count {
                out += "\n" + String(repeating: "  ", count: depth) + sections[depth] + ":\n"
            }
            openSections = sections
            let indent = String(repeating: "  ", count: sections.count)
            out += "\(indent)# \(setting.help)\n"
            let name = parts.last ?? setting.key
            if let value = example[setting.key] {
                out += "\(indent)\(name): \(ResolvedSettings.yamlValue(value, kind: setting.kind))\n"
            } else if let d = setting.defaultValue {
                switch setting.kind {
                case .list: out += "\(indent)# \(name): [\(d)]\n"
                default: out += "\(indent)# \(name): \(ResolvedSettings.yamlValue(d, kind: setting.kind))\n"
                }
            } else {
                out += "\(indent)# \(name):\n"
            }
        }
        return out
    }
}
