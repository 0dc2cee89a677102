package import Logging
import FlowModel
import Foundation
import Forwarders
import ShardStore

/// Resolved settings → the typed configurations of the recorder, retention and the
/// HTTP listener. Values with a default always resolve (the table's default is applied
/// first), so nothing here repeats a default.
extension RecorderConfiguration {
    package init(settings s: ResolvedSettings, logger: Logger) throws(SettingsError) {
        self.init(bootstrapServers: s.string("kafka.brokers") ?? "")
        loki = try LokiConfiguration(settings: s)
        guard !bootstrapServers.isEmpty || loki.pushEnabled else {
            throw SettingsError(.missingValue, key: "kafka.brokers", "set kafka.brokers (--brokers HOST:PORT), or turn loki.push on to take flows from Loki pushes only")
        }
        topics = s.list("kafka.topics")
        guard !topics.isEmpty else { throw SettingsError(.missingValue, key: "kafka.topics", "name at least one topic (kafka.topics, --topic)") }
        groupID = s.text("kafka.group")
        dataDirectory = s.text("data")
        store = ShardStore.Options(windowMs: s.milliseconds("store.window"), graceMs: s.milliseconds("store.grace"), sealInBackground: true)
        do { try store.validate() } catch { throw SettingsError(.invalidValue, key: "store.window", "store.window: \(error.message)", cause: error) }
        maxBatchMessages = Int(s.count("kafka.batchSize"))
        guard maxBatchMessages >= 1 else { throw SettingsError(.invalidValue, key: "kafka.batchSize", "kafka.batchSize must be at least 1") }
        batchWaitMs = s.milliseconds("kafka.batchWait")
        guard batchWaitMs <= Self.maxBatchWaitMs else {
            throw SettingsError(.invalidValue, key: "kafka.batchWait", "kafka.batchWait must be at most \(String.duration(ms: Self.maxBatchWaitMs)): a flow waits that long before queries see it")
        }
        maxMessageBytes = Int(s.count("kafka.maxMessageBytes"))
        eventTimes = EventTime.Plausibility(maxAgeMs: s.milliseconds("store.maxEventAge"), maxAheadMs: s.milliseconds("store.maxEventAhead"))
        loki.eventTimes = eventTimes
        loki.maxEntryBytes = maxMessageBytes
        exitWhenIdleSeconds = s.seconds("exitWhenIdle")
        do {
            kafkaProperties = try FlowrecSettings.kafkaSecurityProperties(s, readFile: Secrets.read)
                .merging(s.map("kafka.properties")) { _, passedThrough in passedThrough }
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError(.invalidValue, key: "kafka", "\(error)", cause: error)
        }
        http = try HTTPListenerConfiguration(settings: s)
        apiMaxRangeMs = s.milliseconds("http.apiMaxRange")
        apiMaxRows = Int(s.count("http.apiMaxRows"))
        guard apiMaxRows >= 1 else { throw SettingsError(.invalidValue, key: "http.apiMaxRows", "http.apiMaxRows must be at least 1") }
        apiQueryTimeoutSeconds = s.durationSeconds("http.apiQueryTimeout")
        apiMaxConcurrentQueries = Int(s.count("http.apiMaxConcurrent"))
        guard (1...64).contains(apiMaxConcurrentQueries) else {
            throw SettingsError(.invalidValue, key: "http.apiMaxConcurrent", "http.apiMaxConcurrent must be between 1 and 64")
        }
        retention = try RetentionPolicy(settings: s)
        let level = Int32(s.count("store.compactLevel"))
        guard level == 0 || (4...22).contains(level) else {
            throw SettingsError(.invalidValue, key: "store.compactLevel", "store.compactLevel must be 0 (off) or between 4 and 22")
        }
        deepCompaction = level == 0 ? nil : .init(level: level, idleSeconds: s.durationSeconds("store.compactWhenIdle"))
        merge = try MergePolicy(settings: s, storeWindowMs: store.windowMs, level: level == 0 ? store.sealLevel : level)
        let targets = s.list("forward")
        guard Set(targets).count == targets.count else { throw SettingsError(.invalidValue, key: "forward", "each forward target may be named once") }
        forwarders = try targets.map { name throws(SettingsError) in
            guard let kind = ForwarderKind(rawValue: name) else {
                throw SettingsError(.invalidValue, key: "forward", "forward: unknown target '\(name)'; targets are "
                                    + ForwarderKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return try ForwarderFactory(settings: s).make(kind, logger: logger)
        }
        forwardIntervalSeconds = s.durationSeconds("forwardInterval")
    }
}

extension MergePolicy {
    /// `store.mergeWindow`, `store.mergeMaxRows` and `store.mergeColumnBlocks` (flowrec
    /// record and flowrec merge); nil
    /// when merging is off (a zero window).
    package init?(settings s: ResolvedSettings, storeWindowMs: Int64, level: Int32) throws(SettingsError) {
        let windowMs = s.milliseconds("store.mergeWindow")
        guard windowMs > 0 else { return nil }
        self.init(windowMs: windowMs, maxRows: s.count("store.mergeMaxRows"), level: level)
        columnBlocks = s.bool("store.mergeColumnBlocks")
        do {
            try validate(storeWindowMs: storeWindowMs)
        } catch {
            throw SettingsError(.invalidValue, key: "store.mergeWindow", error.message, cause: error)
        }
    }
}

extension RetentionPolicy {
    /// `retention.*` (flowrec record and flowrec prune).
    package init(settings s: ResolvedSettings) throws(SettingsError) {
        let free = s.freeSpace("retention.minFree")
        self.init(maxAgeMs: s.seconds("retention.maxAge").map { Int64($0 * 1000) }, maxTotalBytes: s.bytes("retention.maxSize"),
                  minFreeBytes: free?.bytes, minFreeFraction: free?.fraction, lowWatermark: s.decimal("retention.lowWatermark"),
                  requiredForwarders: s.list("retention.requireForwarders"))
        maxRunSeconds = s.durationSeconds("retention.maxRunTime")
        deadLetterShare = s.decimal("retention.deadLetterShare")
        func ms(_ key: String) -> Int64? { s.seconds(key).map { Int64($0 * 1000) } }
        rollupMaxAge = RollupAges(minuteMs: ms("retention.rollupMinuteMaxAge"), hourMs: ms("retention.rollupHourMaxAge"),
                                  dayMs: ms("retention.rollupDayMaxAge")).capped(at: ms("retention.rollupMaxAge"))
        do { try validate() } catch { throw SettingsError(.invalidValue, key: "retention", "retention: \(error.message)", cause: error) }
    }
}

extension HTTPListenerConfiguration {
    /// The listener settings, with the token read from its file or the environment; nil
    /// when `http.listen` is `off`.
    package init?(settings s: ResolvedSettings) throws(SettingsError) {
        let listen = s.text("http.listen")
        if listen == "off" { return nil }
        self.init()
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw SettingsError(.invalidValue, key: "http.listen", "http.listen takes HOST:PORT (e.g. 0.0.0.0:9464) or off; got \(listen)")
        }
        host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
        if let file = s.string("http.tokenFile") {
            bearerToken = try Secrets.read(file)
        } else if let token = s.string("http.token"), !token.isEmpty {
            bearerToken = token
        }
        tlsCertificatePath = s.string("http.tlsCert")
        tlsKeyPath = s.string("http.tlsKey")
        allowUnauthenticated = s.bool("http.allowUnauthenticated")
        try validate()
    }
}

extension LokiConfiguration {
    /// `loki.*`.
    package init(settings s: ResolvedSettings) throws(SettingsError) {
        self.init()
        labels = s.list("loki.labels")
        for name in labels {
            guard let field = FlowSchema.id(named: name) else {
                throw SettingsError(.invalidValue, key: "loki.labels", "loki.labels: \(name) is not a NetObserv field (labels are field names such as SrcK8S_Namespace)")
            }
            guard !field.kind.isJSONText else {
                throw SettingsError(.invalidValue, key: "loki.labels", "loki.labels: \(name) is an array field; labels are scalar fields")
            }
        }
        staticLabels = s.map("loki.staticLabels")
        tenant = s.string("loki.tenant").flatMap { $0.isEmpty ? nil : $0 }
        pushEnabled = s.bool("loki.push")
        maxEntries = Int(s.count("loki.maxEntries"))
        maxSeries = Int(s.count("loki.maxSeries"))
        guard maxEntries >= 1, maxSeries >= 1 else {
            throw SettingsError(.invalidValue, key: "loki.maxEntries", "loki.maxEntries and loki.maxSeries must be at least 1")
        }
        maxQueryLengthMs = s.milliseconds("loki.maxQueryLength")
        maxPushBytes = Int(s.bytes("loki.maxPushBytes") ?? Int64(maxPushBytes))
        guard maxPushBytes >= 1024 else { throw SettingsError(.invalidValue, key: "loki.maxPushBytes", "loki.maxPushBytes must be at least 1KiB") }
    }
}

/// Secrets kept in files (passwords, tokens): the file's text without its final newline;
/// an error names the file, never its content.
package enum Secrets {
    package static func read(_ path: String) throws(SettingsError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .newlines)
        } catch {
            throw SettingsError(.unreadableFile, "cannot read the secret file \(path)", cause: error)
        }
    }
}
