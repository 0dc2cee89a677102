import ArgumentParser
import FlowRecorder
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

        Example:
          flowrec record --brokers kafka:9092 --topic flows-export --data /var/lib/flowrec
        """)

    @Option(help: "Kafka bootstrap servers (host:port,...).")
    var brokers: String

    @Option(name: .customLong("topic"), help: "Topic to consume (repeatable).")
    var topics: [String] = ["flows-export"]

    @Option(help: "Consumer group id; recorders sharing it split the partitions.")
    var group = "flowrec"

    @Option(help: "Data directory.")
    var data = "./flowrec-data"

    @Option(help: "Shard window, 1m to 1d.")
    var window: DurationArgument = DurationArgument(argument: "1h")!

    @Option(help: "Grace period after a window's end before it is sealed.")
    var grace: DurationArgument = DurationArgument(argument: "2m")!

    @Option(help: "Most messages per batch.")
    var batchSize = 10_000

    @Option(help: "Largest accepted message in bytes; larger ones become dead letters.")
    var maxMessageBytes = 1 << 20

    @Option(name: .customLong("kafka-property"), help: "Extra librdkafka property KEY=VALUE (repeatable): TLS, SASL, fetch sizes.")
    var kafkaProperties: [String] = []

    @Option(help: "Exit cleanly after this long without a message (batch jobs, tests).")
    var exitWhenIdle: DurationArgument?

    @Option(help: "zstd level for deep compaction of sealed shards while the topics are quiet (4-22; 0 turns it off).")
    var compactLevel: Int32 = 19

    @Option(help: "How long the topics must be quiet before deep compaction starts (it runs at the lowest CPU priority, so arriving flows take the CPU back at once).")
    var compactWhenIdle: DurationArgument = DurationArgument(argument: "60s")!

    @Option(help: "HTTP listener for /metrics, /healthz and /readyz: HOST:PORT, or off.")
    var httpListen = "127.0.0.1:9464"

    @Option(help: "File holding the bearer token /metrics requires (required off loopback). The FLOWREC_HTTP_TOKEN environment variable works too; the token is never printed.")
    var httpTokenFile: String?

    @Option(help: "PEM certificate (chain) to serve HTTPS with; needs --http-tls-key.")
    var httpTlsCert: String?

    @Option(help: "PEM private key for --http-tls-cert.")
    var httpTlsKey: String?

    @OptionGroup(title: "Retention (checked at start and every minute)") var retention: RetentionOptions

    @Option(name: .customLong("forward"), help: "Forward each sealed shard to this target as soon as it is sealed: clickhouse, directory or exec (repeatable). The target's options are the same as `flowrec sync`'s.")
    var forwardTargets: [ForwarderKind] = []

    @Option(help: "How often forwarders retry and catch up, besides right after each seal.")
    var forwardInterval: DurationArgument = DurationArgument(argument: "30s")!

    @OptionGroup(title: "ClickHouse target (with --forward clickhouse)") var clickhouse: ClickHouseTargetOptions
    @OptionGroup(title: "Directory target (with --forward directory)") var directory: DirectoryTargetOptions
    @OptionGroup(title: "Exec target (with --forward exec)") var exec: ExecTargetOptions

    /// The listener settings, with the token read from its file or the environment.
    func httpListener() throws -> HTTPListenerConfiguration? {
        if httpListen == "off" { return nil }
        var http = HTTPListenerConfiguration()
        guard let colon = httpListen.lastIndex(of: ":"), let port = Int(httpListen[httpListen.index(after: colon)...]) else {
            throw ValidationError("--http-listen takes HOST:PORT (e.g. 0.0.0.0:9464) or off; got \(httpListen)")
        }
        http.host = String(httpListen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        http.port = port
        if let file = httpTokenFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the token file \(file)")
            }
            http.bearerToken = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let token = ProcessInfo.processInfo.environment["FLOWREC_HTTP_TOKEN"], !token.isEmpty {
            http.bearerToken = token
        }
        http.tlsCertificatePath = httpTlsCert
        http.tlsKeyPath = httpTlsKey
        do { try http.validate() } catch { throw ValidationError(error.description) }
        return http
    }

    func validate() throws {
        if compactLevel != 0 && !(4...22).contains(compactLevel) { throw ValidationError("--compact-level must be 0 (off) or between 4 and 22") }
        if topics.isEmpty { throw ValidationError("name at least one --topic") }
        if batchSize < 1 { throw ValidationError("--batch-size must be positive") }
        for entry in kafkaProperties where !entry.contains("=") {
            throw ValidationError("--kafka-property needs KEY=VALUE, got \(entry)")
        }
        if Set(forwardTargets).count != forwardTargets.count { throw ValidationError("each --forward target may be named once") }
    }

    func run() throws {
        var config = RecorderConfiguration(bootstrapServers: brokers)
        config.topics = topics
        config.groupID = group
        config.dataDirectory = data
        config.store = ShardStore.Options(windowMs: Int64(window.seconds * 1000), graceMs: Int64(grace.seconds * 1000),
                                          sealInBackground: true)
        config.maxBatchMessages = batchSize
        config.maxMessageBytes = maxMessageBytes
        config.exitWhenIdleSeconds = exitWhenIdle?.seconds
        config.http = try httpListener()
        config.retention = retention.policy
        config.deepCompaction = compactLevel == 0 ? nil : .init(level: compactLevel, idleSeconds: compactWhenIdle.seconds)
        for entry in kafkaProperties {
            let eq = entry.firstIndex(of: "=")!
            config.kafkaProperties[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
        let log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data("flowrec record: \(line)\n".utf8)) }
        let factory = ForwarderFactory(clickhouse: clickhouse, directory: directory, exec: exec)
        config.forwarders = try forwardTargets.map { try factory.make($0, log: log) }
        config.forwardIntervalSeconds = forwardInterval.seconds
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        let recorder = Recorder(configuration: config, log: log)
        try recorder.run(shouldStop: { stopRequested.load(ordering: .relaxed) })
    }
}
