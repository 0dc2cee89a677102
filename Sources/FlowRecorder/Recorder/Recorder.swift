package import FlowrecConfig
import Foundation
package import Logging
import Synchronization

/// Consumes NetObserv flows from Kafka into the store, exactly once: `flowrec record`.
///
/// The group's committed offsets are never trusted for resuming: when partitions are
/// assigned, each one starts after the highest offset the store holds for it (its
/// high-water mark). After a batch is stored, offsets are committed to the group only so
/// that lag monitoring works. A crash at any moment loses nothing and stores nothing twice.
///
/// One `run` is a `RecorderSession`: where a Kafka message becomes a row, step by step.
package final class Recorder {
    package struct Counters: Sendable {
        package var messages = 0
        package var stored = 0
        package var replaysSkipped = 0
        package var deadLetters = 0
        package var batches = 0
        package var shardsPruned = 0
        /// Deleted by the free-space limit before every required forwarder delivered them.
        package var undeliveredShardsPruned = 0
        package var retentionErrors = 0
    }

    package let configuration: RecorderConfiguration
    /// What the current (or last) run did; read between batches by `shouldStop`.
    package var counters: Counters { session?.counters ?? finishedCounters }
    /// Prometheus figures, also served on `/metrics` when the listener is on.
    package let metrics = RecorderMetrics()
    /// What `/healthz` and `/readyz` report.
    package let status = RecorderStatus()
    /// The listener's bound port once `run` has started it (tests listen on port 0).
    package var httpPort: Int? { server.withLock { $0?.port } }
    private let server = Mutex<StatusServer?>(nil)
    private let logger: Logger
    private var session: RecorderSession?
    private var finishedCounters = Counters()

    package init(configuration: RecorderConfiguration, logger: Logger = Logger(label: "flowrec.record")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until `shouldStop` returns true (checked between batches) or the topic stays
    /// idle for `exitWhenIdleSeconds`; then stores nothing further, waits for background
    /// seals, and leaves the group.
    package func run(shouldStop: () -> Bool) throws {
        try startListener()
        defer { server.withLock { $0?.stop(); $0 = nil } }
        let session = try RecorderSession(configuration: configuration, metrics: metrics, status: status,
                                          pushes: server.withLock { $0?.pushInbox }, logger: logger)
        self.session = session
        defer {
            finishedCounters = session.counters
            self.session = nil
        }
        try session.run(shouldStop: shouldStop)
    }

    /// `/metrics`, the probes and the API, before the store opens (so a probe sees the
    /// start-up instead of a refused connection).
    private func startListener() throws {
        guard let http = configuration.http else { return }
        let threads = configuration.apiMaxConcurrentQueries
        let pool = QueryPool(threads: threads, maxQueued: 4 * threads)
        var api = FlowAPI(dataDirectory: configuration.dataDirectory, pool: pool)
        api.maxRangeMs = configuration.apiMaxRangeMs
        api.maxRows = configuration.apiMaxRows
        api.queryTimeoutSeconds = configuration.apiQueryTimeoutSeconds
        var loki = LokiAPI(dataDirectory: configuration.dataDirectory, loki: configuration.loki, queries: pool, inbox: PushInbox())
        loki.queryTimeoutSeconds = configuration.apiQueryTimeoutSeconds
        let listener = try StatusServer(configuration: http, metrics: metrics, status: status, api: api, loki: loki, logger: logger)
        server.withLock { $0 = listener }
    }
}
