package import FlowModel
package import Forwarders
package import ShardStore

/// What `flowrec record` needs to know.
package struct RecorderConfiguration: Sendable {
    package var bootstrapServers: String
    package var topics: [String] = ["flows-export"]
    package var groupID = "flowrec"
    package var dataDirectory = FlowrecSettings.defaultDataDirectory
    package var store = ShardStore.Options(sealInBackground: true)
    /// Most messages taken from Kafka per batch (one store transaction per shard per batch).
    /// Not more: a batch's decoded flows are read again by the writer, out of their
    /// memory order (`SealRun`), and 10,000 of them (about 10 MB) no longer stayed in the
    /// cache. In the Kafka benchmark by hand, 3,500 against 10,000: catching up, 20.9
    /// against 22.8 µs of CPU per flow and 188 against 227 MiB at the peak; at a steady
    /// 20,000 flows/s with `batchWaitMs`, 9.0 against 11.6 µs (bench/NOTES.md).
    package var maxBatchMessages = 3_500
    /// How long a batch keeps filling after its first message, unless full first (0:
    /// each poll's messages are a batch). What a flow waits, at most, before it is stored.
    package var batchWaitMs: Int64 = 500
    /// The longest `batchWaitMs` accepted: queries and `tail -f` should see a flow within seconds.
    package static let maxBatchWaitMs: Int64 = 5_000
    package var pollTimeoutMs: Int32 = 500
    /// Larger messages become dead letters.
    package var maxMessageBytes = 1 << 20
    /// Flows ending outside this range around the wall clock become dead letters.
    package var eventTimes = EventTime.Plausibility.default
    /// Extra librdkafka properties (TLS, SASL, fetch sizes, ...), passed through.
    package var kafkaProperties: [String: String] = [:]
    /// librdkafka properties flowrec's consumer gets unless `kafkaProperties` sets them
    /// (`fetch.message.max.bytes` too, from `maxMessageBytes`). The prefetch queue keeps
    /// librdkafka's default (`queued.max.messages.kbytes`, 64 MiB): flowrec set 16 MiB
    /// while librdkafka's freed buffers stayed resident (328 MiB at the peak against 225).
    /// Since `KafkaConsumer.poll` hands them back, the default peaks at 211-224 MiB in the
    /// Kafka benchmark, and stores 8-10% faster than 16 MiB (which peaks at 189-191).
    package static let kafkaDefaults = ["session.timeout.ms": "10000"]
    /// Stop after this long without a message (for batch jobs and tests); nil runs until told to stop.
    package var exitWhenIdleSeconds: Double?
    /// Retention limits, applied at start and then every `retentionIntervalSeconds`.
    package var retention = RetentionPolicy()
    package var retentionIntervalSeconds: Double = 60
    /// The HTTP listener (`/metrics`, `/healthz`, `/readyz`, `/api/v1`); nil turns it off.
    package var http: HTTPListenerConfiguration?
    /// Bounds of one API request: its time range and its rows.
    package var apiMaxRangeMs: Int64 = 31 * 86_400_000
    package var apiMaxRows = 10_000
    /// How long one API query may run, and how many run at once (more wait, then get 503).
    package var apiQueryTimeoutSeconds = 30.0
    package var apiMaxConcurrentQueries = 2
    /// Targets every sealed shard is forwarded to, right after its seal and then every
    /// `forwardIntervalSeconds` until delivered.
    package var forwarders: [any Forwarder] = []
    package var forwardIntervalSeconds: Double = 30
    /// The Loki-compatible read and push API on the listener.
    package var loki = LokiConfiguration()
    /// Deep compaction while no message arrives; nil disables it.
    package var deepCompaction: DeepCompaction? = DeepCompaction()
    /// Merging sealed shards in the background; nil disables it.
    package var merge: MergePolicy? = MergePolicy()

    /// Recompress sealed shards at `level` on a lowest-priority thread once the topics
    /// have been quiet for `idleSeconds` (NetObserv traffic has daily lulls).
    package struct DeepCompaction: Sendable {
        package var level: Int32 = 19
        package var idleSeconds: Double = 60
        package init(level: Int32 = 19, idleSeconds: Double = 60) {
            self.level = level
            self.idleSeconds = idleSeconds
        }
    }

    package init(bootstrapServers: String) { self.bootstrapServers = bootstrapServers }
}

/// The recorder's HTTP listener: `/metrics`, the probes, `/api/v1`.
package struct HTTPListenerConfiguration: Sendable {
    package var host = "127.0.0.1"
    package var port = 9464
    /// Required as `Authorization: Bearer <token>` on `/metrics` when set. The probes stay
    /// open so Kubernetes can call them without a secret in the pod spec.
    package var bearerToken: String?
    /// PEM files; both or neither.
    package var tlsCertificatePath: String?
    package var tlsKeyPath: String?
    /// Serve off loopback without a token: for a pod that only the console plugin and
    /// FLP can reach (a NetworkPolicy), as Loki itself runs in NetObserv's Manual mode.
    package var allowUnauthenticated = false

    package init() {}

    package var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }

    /// A listener reachable from other hosts must not expose metrics to anyone.
    package func validate() throws(SettingsError) {
        if !isLoopback && (bearerToken ?? "").isEmpty && !allowUnauthenticated {
            throw SettingsError(.missingValue, key: "http.tokenFile", "listening on \(host) (not loopback) needs a bearer token: set --http-token-file or FLOWREC_HTTP_TOKEN, listen on 127.0.0.1, or set http.allowUnauthenticated behind a NetworkPolicy")
        }
        if (tlsCertificatePath == nil) != (tlsKeyPath == nil) {
            throw SettingsError(.conflict, key: "http.tlsCert", "TLS needs both a certificate and a key (--http-tls-cert and --http-tls-key)")
        }
        if !(0...65535).contains(port) { throw SettingsError(.invalidValue, key: "http.listen", "the HTTP port must be between 0 and 65535") }
    }
}
