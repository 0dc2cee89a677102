import ArgumentParser
import FlowModel
import FlowRecorder
import Forwarders
import Foundation
import ShardStore
import Synchronization

/// Set by SIGTERM/SIGINT; the recorder checks it between batches.
let stopRequested = Atomic<Bool>(false)

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Consume NetObserv flows from Kafka into the data directory, exactly once.",
        discussion: """
        Joins a consumer group on the flow topic (NetObserv's Kafka exporter writes to flows-export by default), stores every flow in time-window shards, and seals closed windows in the background. Offsets are stored with the data: on (re)assignment each partition resumes after what the store already holds, so a crash or SIGKILL loses and duplicates nothing. Offsets are also committed to the group after each stored batch, for lag monitoring only. SIGTERM or SIGINT finishes the current batch and exits cleanly.

        Settings come from a YAML file (--config), FLOWREC_* environment variables and flags; flags win over the environment, which wins over the file. --check-config prints the effective settings and where each came from, secrets masked. Secrets (SASL and ClickHouse passwords, the HTTP token) come from files or the environment only.

        Examples:
          flowrec record --brokers kafka:9092 --topic flows-export --data /var/lib/flowrec
          flowrec record --config /etc/flowrec/flowrec.yaml --check-config

        Settings:
        \(FlowrecSettings.help(FlowrecSettings.record))
        """)

    @Option(help: "YAML config file (see deploy/flowrec.example.yaml).")
    var config: String?

    @Flag(help: "Validate the settings, print the effective configuration with secrets masked, and exit.")
    var checkConfig = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settings: [String] = []

    func run() throws {
        let resolved = try ResolvedSettings(table: FlowrecSettings.record, arguments: settings,
                                        environment: ProcessInfo.processInfo.environment, configFile: self.config)
        let config = try RecorderSettings.configuration(from: resolved, log: Self.log)
        if checkConfig {
            print(resolved.rendered(), terminator: "")
            print("# configuration is valid")
            return
        }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        let recorder = Recorder(configuration: config, log: Self.log)
        try recorder.run(shouldStop: { stopRequested.load(ordering: .relaxed) })
    }

    static let log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data("flowrec record: \(line)\n".utf8)) }
}

/// Settings → the typed configurations of the recorder, retention and forwarders.
enum RecorderSettings {
    static func configuration(from s: ResolvedSettings, log: @escaping @Sendable (String) -> Void) throws -> RecorderConfiguration {
        var config = RecorderConfiguration(bootstrapServers: try s.required("kafka.brokers"))
        config.topics = s.list("kafka.topics")
        guard !config.topics.isEmpty else { throw SettingsError("name at least one topic (kafka.topics, --topic)") }
        config.groupID = s.string("kafka.group") ?? "flowrec"
        config.dataDirectory = s.string("data") ?? "./flowrec-data"
        let windowMs = Int64((s.seconds("store.window") ?? 3600) * 1000)
        config.store = ShardStore.Options(windowMs: windowMs, graceMs: Int64((s.seconds("store.grace") ?? 120) * 1000),
                                          sealInBackground: true)
        do { try config.store.validate() } catch { throw SettingsError("store.window: \(error.description)") }
        config.maxBatchMessages = Int(s.integer("kafka.batchSize") ?? 10_000)
        guard config.maxBatchMessages >= 1 else { throw SettingsError("kafka.batchSize must be at least 1") }
        config.maxMessageBytes = Int(s.integer("kafka.maxMessageBytes") ?? 1 << 20)
        config.eventTimes = EventTime.Plausibility(maxAgeMs: Int64((s.seconds("store.maxEventAge") ?? 0) * 1000),
                                                   maxAheadMs: Int64((s.seconds("store.maxEventAhead") ?? 0) * 1000))
        config.exitWhenIdleSeconds = s.seconds("exitWhenIdle")
        config.kafkaProperties = try FlowrecSettings.kafkaSecurityProperties(s, readFile: readSecretFile)
            .merging(s.map("kafka.properties")) { _, passedThrough in passedThrough }
        config.http = try httpListener(s)
        config.apiMaxRangeMs = Int64((s.seconds("http.apiMaxRange") ?? 31 * 86_400) * 1000)
        config.apiMaxRows = Int(s.integer("http.apiMaxRows") ?? 10_000)
        guard config.apiMaxRows >= 1 else { throw SettingsError("http.apiMaxRows must be at least 1") }
        config.retention = try retentionPolicy(s)
        let level = Int32(s.integer("store.compactLevel") ?? 19)
        guard level == 0 || (4...22).contains(level) else { throw SettingsError("store.compactLevel must be 0 (off) or between 4 and 22") }
        config.deepCompaction = level == 0 ? nil : .init(level: level, idleSeconds: s.seconds("store.compactWhenIdle") ?? 60)
        let targets = s.list("forward")
        guard Set(targets).count == targets.count else { throw SettingsError("each forward target may be named once") }
        config.forwarders = try targets.map { name in
            guard let kind = ForwarderKind(rawValue: name) else {
                throw SettingsError("forward: unknown target '\(name)'; targets are " + ForwarderKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return try ForwarderFactory(settings: s).make(kind, log: log)
        }
        config.forwardIntervalSeconds = s.seconds("forwardInterval") ?? 30
        return config
    }

    static func retentionPolicy(_ s: ResolvedSettings) throws -> RetentionPolicy {
        let free = s.freeSpace("retention.minFree")
        var policy = RetentionPolicy(maxAgeMs: s.seconds("retention.maxAge").map { Int64($0 * 1000) },
                                     maxTotalBytes: s.bytes("retention.maxSize"),
                                     minFreeBytes: free?.bytes, minFreeFraction: free?.fraction,
                                     lowWatermark: s.number("retention.lowWatermark") ?? 0.9,
                                     requiredForwarders: s.list("retention.requireForwarders"))
        policy.maxRunSeconds = s.seconds("retention.maxRunTime") ?? 30
        policy.rollupMaxAgeMs = s.seconds("retention.rollupMaxAge").map { Int64($0 * 1000) }
        do { try policy.validate() } catch { throw SettingsError("retention: \(error.description)") }
        return policy
    }

    /// The listener settings, with the token read from its file or the environment.
    static func httpListener(_ s: ResolvedSettings) throws -> HTTPListenerConfiguration? {
        let listen = s.string("http.listen") ?? "127.0.0.1:9464"
        if listen == "off" { return nil }
        var http = HTTPListenerConfiguration()
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw SettingsError("http.listen takes HOST:PORT (e.g. 0.0.0.0:9464) or off; got \(listen)")
        }
        http.host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        http.port = port
        if let file = s.string("http.tokenFile") {
            http.bearerToken = try readSecretFile(file)
        } else if let token = s.string("http.token"), !token.isEmpty {
            http.bearerToken = token
        }
        http.tlsCertificatePath = s.string("http.tlsCert")
        http.tlsKeyPath = s.string("http.tlsKey")
        do { try http.validate() } catch { throw SettingsError(error.description) }
        return http
    }
}

/// A secret's file, trimmed of its final newline; the error names the file, not its content.
func readSecretFile(_ path: String) throws -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw SettingsError("cannot read the secret file \(path)")
    }
    return text.trimmingCharacters(in: .newlines)
}
