import Forwarders
import ShardStore

/// Every setting of `flowrec record`, `sync`, `prune` and `merge`, by section. The YAML file
/// uses the same sections (`kafka:`, `store:`, ...); `docs/configuration.md` and
/// `deploy/flowrec.example.yaml` are generated from this table (`flowrec config`).
package enum FlowrecSettings {
    /// Where every command looks for its data unless told otherwise.
    package static let defaultDataDirectory = "./flowrec-data"

    // The defaults below are read from the types the settings configure, so each is
    // written once: a library default and the documented default cannot drift apart.
    private static let recorder = RecorderConfiguration(bootstrapServers: "")
    private static let storeDefaults = ShardStore.Options()
    private static let compaction = RecorderConfiguration.DeepCompaction()
    private static let mergeDefaults = MergePolicy()
    private static let retentionDefaults = RetentionPolicy()
    private static let listener = HTTPListenerConfiguration()
    private static let clickHouseDefaults = ClickHouseForwarderOptions.defaults
    private static let execDefaults = ExecForwarderOptions(command: "")
    private static let lokiDefaults = LokiConfiguration()

    package static let data: [Setting] = [
        Setting("data", flag: "data", .string, default: defaultDataDirectory, value: "DIR", "Data directory: shards, catalog, dead letters, rollups."),
    ]

    package static let kafka: [Setting] = [
        Setting("kafka.brokers", flag: "brokers", .string, value: "HOST:PORT,...",
                "Kafka bootstrap servers. Without them flowrec takes flows only from Loki pushes (loki.push)."),
        Setting("kafka.topics", flag: "topic", .list, default: recorder.topics.joined(separator: ","), value: "TOPIC",
                "Topics to consume (repeat the flag, or a YAML list). NetObserv's exporter writes to flows-export by default."),
        Setting("kafka.group", flag: "group", .string, default: recorder.groupID, value: "ID", "Consumer group; recorders sharing it split the partitions."),
        Setting("kafka.batchSize", flag: "batch-size", .integer, default: String(recorder.maxBatchMessages), "Most messages per batch (one store transaction per shard per batch)."),
        Setting("kafka.batchWait", flag: "batch-wait", .duration, default: .duration(ms: recorder.batchWaitMs),
                "How long a batch keeps filling after its first message, unless it is full first: fuller batches mean fewer commits and longer sorted runs for the seal to read. A flow waits at most this long before queries and tail -f see it; 0 stores what each poll returns. At most \(String.duration(ms: RecorderConfiguration.maxBatchWaitMs))."),
        Setting("kafka.maxMessageBytes", flag: "max-message-bytes", .integer, default: String(recorder.maxMessageBytes), "Larger messages become dead letters."),
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
                "Any librdkafka property, passed through (repeat the flag: --kafka-property fetch.wait.max.ms=100). Where librdkafka's default does not suit, flowrec sets its own unless given here: \(RecorderConfiguration.kafkaDefaults.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")), fetch.message.max.bytes (the largest message plus 1 KiB, at least 1 MiB), enable.auto.commit=false, enable.auto.offset.store=false, auto.offset.reset=earliest, partition.assignment.strategy=cooperative-sticky."),
        Setting("exitWhenIdle", flag: "exit-when-idle", .duration, "Exit cleanly after this long without a message (batch jobs, tests)."),
    ]

    package static let store: [Setting] = [
        Setting("store.window", flag: "window", .duration, default: .duration(ms: storeDefaults.windowMs), "Shard window, 1m to 1d."),
        Setting("store.grace", flag: "grace", .duration, default: .duration(ms: storeDefaults.graceMs), "Wait after a window's end before sealing it (late flows)."),
        Setting("store.maxEventAge", flag: "max-event-age", .duration, default: .duration(ms: recorder.eventTimes.maxAgeMs),
                "Flows whose TimeFlowEndMs is older than this (against the wall clock) become dead letters: a broken agent clock or a poisoned message."),
        Setting("store.maxEventAhead", flag: "max-event-ahead", .duration, default: .duration(ms: recorder.eventTimes.maxAheadMs),
                "Flows whose TimeFlowEndMs is this far in the future become dead letters (they would seal live windows early)."),
        Setting("store.compactLevel", flag: "compact-level", .integer, default: String(compaction.level),
                "zstd level for deep compaction of sealed shards while the topics are quiet (4-22; 0 turns it off)."),
        Setting("store.compactWhenIdle", flag: "compact-when-idle", .duration, default: .duration(seconds: compaction.idleSeconds),
                "How long the topics must be quiet before deep compaction starts (at the lowest CPU priority)."),
        Setting("store.mergeWindow", flag: "merge-window", .duration, default: .duration(ms: mergeDefaults.windowMs),
                "Merge the sealed shards of each such window, once it is over, into one shard (at the lowest CPU priority, at the compaction level): fewer, larger, indexed shards answer long ranges faster and take less disk. A multiple of store.window up to 7d; 0 turns merging off."),
        Setting("store.mergeMaxRows", flag: "merge-max-rows", .integer, default: String(mergeDefaults.maxRows),
                "Most flows in one merged shard; a busier merge window becomes several merged shards."),
        Setting("store.mergeColumnBlocks", flag: "merge-column-blocks", .bool, default: String(mergeDefaults.columnBlocks),
                "Give merged shards column blocks of addresses, ports, protocol, Bytes and Packets: a count or sum filtered on an address or a port over weeks reads those columns instead of every candidate row (several times faster), for about 4.6 bytes per flow (17% of a merged day) more disk."),
    ]

    package static let retention: [Setting] = [
        Setting("retention.maxAge", flag: "max-age", .duration, "Delete sealed shards whose window ended longer ago than this (e.g. 30d), and dead letters received longer ago."),
        Setting("retention.maxSize", flag: "max-size", .byteSize, "Keep the store's total size under this (e.g. 200GiB): shards, rollups and dead letters."),
        Setting("retention.minFree", flag: "min-free", .freeSpace,
                "Keep this much free on the data volume (20GiB or 10%); the hard limit: undelivered shards go too when it is reached."),
        Setting("retention.lowWatermark", flag: "low-watermark", .number, default: "\(retentionDefaults.lowWatermark)", "An exceeded limit is brought down to this share of it (0.5-1)."),
        Setting("retention.deadLetterShare", flag: "dead-letter-share", .number, default: "\(retentionDefaults.deadLetterShare)",
                "While a size or free-space limit is set, dead letters may take at most this share of retention.maxSize (or of the store, with only retention.minFree); the oldest beyond it are deleted, so a producer writing garbage cannot push flows out."),
        Setting("retention.requireForwarders", flag: "require-forwarder", .list, value: "NAME",
                "Keep shards these forwarders have not delivered, unless free space runs out."),
        Setting("retention.rollupMinuteMaxAge", flag: "rollup-minute-max-age", .duration, default: "14d",
                "Delete minute rollups older than this (about 1.5 GiB a day for a medium cluster); hours and days still answer for them."),
        Setting("retention.rollupHourMaxAge", flag: "rollup-hour-max-age", .duration, default: "180d",
                "Delete hour rollups older than this (about 1/30 of the minutes' size); at least the minute age."),
        Setting("retention.rollupDayMaxAge", flag: "rollup-day-max-age", .duration,
                "Delete day rollups older than this (a few MiB a day); at least the hour age. Unset: kept."),
        Setting("retention.rollupMaxAge", flag: "rollup-max-age", .duration,
                "The longest any rollup is kept: caps the three tier ages (rollups outlive raw shards)."),
        Setting("retention.maxRunTime", flag: "max-run-time", .duration, default: .duration(seconds: retentionDefaults.maxRunSeconds), "Longest time one retention run spends deleting."),
    ]

    package static let http: [Setting] = [
        Setting("http.listen", flag: "http-listen", .string, default: "\(listener.host):\(listener.port)", value: "HOST:PORT",
                "Listener for /metrics, /healthz, /readyz and the API; off turns it off."),
        Setting("http.tokenFile", flag: "http-token-file", .string, value: "FILE", "File holding the bearer token /metrics, /api/v1 and the Loki API require (required off loopback)."),
        Setting("http.token", flag: nil, .string, secret: true, "The bearer token from the environment, instead of a file."),
        Setting("http.allowUnauthenticated", flag: "http-allow-unauthenticated", .bool, default: "false",
                "Listen off loopback without a token (only behind a NetworkPolicy: the console plugin's Manual mode may send none)."),
        Setting("http.tlsCert", flag: "http-tls-cert", .string, value: "FILE", "PEM certificate chain: serve HTTPS (needs http.tlsKey)."),
        Setting("http.tlsKey", flag: "http-tls-key", .string, value: "FILE", "PEM private key of http.tlsCert."),
        Setting("http.apiMaxRange", flag: "api-max-range", .duration, default: .duration(ms: recorder.apiMaxRangeMs), "The longest time range one /api/v1 request may cover."),
        Setting("http.apiMaxRows", flag: "api-max-rows", .integer, default: String(recorder.apiMaxRows), "The most flows or groups one /api/v1 response may hold."),
        Setting("http.apiQueryTimeout", flag: "api-query-timeout", .duration, default: .duration(seconds: recorder.apiQueryTimeoutSeconds),
                "How long one API query may run before it is stopped (503)."),
        Setting("http.apiMaxConcurrent", flag: "api-max-concurrent", .integer, default: String(recorder.apiMaxConcurrentQueries),
                "API queries run at once, on threads of their own (probes never wait for them); a few more may queue, the rest get 503."),
    ]

    package static let loki: [Setting] = [
        Setting("loki.labels", flag: "loki-label", .list, default: lokiDefaults.labels.joined(separator: ","), value: "FIELD",
                "Flow fields that are Loki stream labels; must match the FlowCollector's loki labels (the console plugin routes filters by it)."),
        Setting("loki.staticLabels", flag: "loki-static-label", .map, default: lokiDefaults.staticLabels.map { "\($0.key)=\($0.value)" }.joined(),
                "Labels every stream carries that are not flow fields (FLP's staticLabels)."),
        Setting("loki.tenant", flag: "loki-tenant", .string, value: "ORG",
                "Require this X-Scope-OrgID on every Loki request (the FlowCollector's loki tenantID); unset accepts any."),
        Setting("loki.push", flag: "loki-push", .bool, default: String(lokiDefaults.pushEnabled),
                "Store flows pushed to /loki/api/v1/push (FLP's Loki writer), beside or instead of Kafka."),
        Setting("loki.maxEntries", flag: "loki-max-entries", .integer, default: String(lokiDefaults.maxEntries),
                "Most entries one log query may ask for (Loki's max_entries_limit_per_query)."),
        Setting("loki.maxSeries", flag: "loki-max-series", .integer, default: String(lokiDefaults.maxSeries),
                "Most series one metric query may answer (Loki's max_query_series)."),
        Setting("loki.maxQueryLength", flag: "loki-max-query-length", .duration, default: .duration(ms: lokiDefaults.maxQueryLengthMs),
                "Longest time range of one Loki query (Loki's max_query_length)."),
        Setting("loki.maxPushBytes", flag: "loki-max-push-bytes", .byteSize, default: "\(lokiDefaults.maxPushBytes >> 20)MiB",
                "Most bytes one push may decompress to (FLP sends batches of about 10 MiB)."),
    ]

    package static let forwarding: [Setting] = [
        Setting("forward", flag: "forward", .list, value: "clickhouse|directory|exec",
                "Forward each sealed shard to these targets as soon as it is sealed (record only)."),
        Setting("forwardInterval", flag: "forward-interval", .duration, default: .duration(seconds: recorder.forwardIntervalSeconds),
                "How often forwarders retry and catch up, besides right after each seal."),
    ]

    package static let clickhouse: [Setting] = [
        Setting("clickhouse.url", flag: "clickhouse-url", .string, default: ClickHouseEndpoint.defaultURL, value: "URL",
                "ClickHouse HTTP interface: http://HOST:8123 or https://HOST:8443."),
        Setting("clickhouse.user", flag: "clickhouse-user", .string, default: ClickHouseEndpoint.defaultUser, value: "USER", "ClickHouse user."),
        Setting("clickhouse.passwordFile", flag: "clickhouse-password-file", .string, value: "FILE", "File holding the ClickHouse password."),
        Setting("clickhouse.password", flag: nil, .string, secret: true, "The ClickHouse password from the environment, instead of a file."),
        Setting("clickhouse.database", flag: "clickhouse-database", .string, default: clickHouseDefaults.database, value: "NAME", "Target database."),
        Setting("clickhouse.table", flag: "clickhouse-table", .string, default: clickHouseDefaults.table, value: "NAME", "Target table."),
        Setting("clickhouse.format", flag: "clickhouse-format", .choice(["native", "rowbinary"]), default: "native",
                "Insert format: Native (columnar, the default) or RowBinary."),
        Setting("clickhouse.compression", flag: "clickhouse-compression", .choice(ClickHouseBodyCompression.allCases.map(\.rawValue)),
                default: clickHouseDefaults.compression.rawValue, "Request body compression: zstd (ClickHouse's own compressed blocks, sent with decompress=1; the cheapest for both sides), gzip (Content-Encoding: gzip, for a proxy that passes only standard HTTP encodings) or none."),
        Setting("clickhouse.chunkRows", flag: "clickhouse-chunk-rows", .integer, default: String(clickHouseDefaults.chunkRows), "Rows per INSERT; progress is saved after each."),
        Setting("clickhouse.dialect", flag: "clickhouse-dialect", .choice(["auto", "modern", "compatible"]), default: "auto",
                "Table flavour: by server version, modern (LowCardinality, codecs, TTL) or compatible (old servers)."),
        Setting("clickhouse.caFile", flag: "clickhouse-ca-file", .string, value: "FILE", "PEM CA that signed the server's certificate (https)."),
        Setting("clickhouse.certFile", flag: "clickhouse-cert-file", .string, value: "FILE", "PEM client certificate for mutual TLS."),
        Setting("clickhouse.keyFile", flag: "clickhouse-key-file", .string, value: "FILE", "PEM private key of the client certificate."),
        Setting("clickhouse.attempts", flag: "clickhouse-attempts", .integer, default: String(clickHouseDefaults.retry.maxAttempts),
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
        Setting("exec.timeout", flag: "exec-timeout", .duration, default: .duration(seconds: execDefaults.timeoutSeconds), "Longest run before the command is killed."),
        Setting("exec.attempts", flag: "exec-attempts", .integer, default: String(execDefaults.retry.maxAttempts), "Attempts per shard before the failure is reported."),
    ]

    /// The sections in the order the reference documents them, with the commands that
    /// read each: the one list `docs/configuration.md` is generated from.
    package static let sections: [(title: String, commands: String, settings: [Setting])] = [
        ("Data", "record, sync, prune, merge", data), ("Kafka", "record", kafka), ("Store", "record, merge", store),
        ("Retention", "record, prune", retention), ("HTTP listener", "record", http),
        ("Loki API (NetObserv's console, FLP pushes)", "record", loki),
        ("Forwarding", "record", forwarding), ("ClickHouse target", "record, sync", clickhouse),
        ("Directory target", "record, sync", directory), ("Exec target", "record, sync", exec),
    ]

    package static var targets: [Setting] { clickhouse + directory + exec }
    /// `flowrec record`.
    package static var record: [Setting] { data + kafka + store + retention + http + loki + forwarding + targets }
    /// `flowrec sync`.
    package static var sync: [Setting] { data + targets }
    /// `flowrec prune`.
    package static var prune: [Setting] { data + retention }
    /// `flowrec merge`.
    package static var merge: [Setting] { data + store }
}
