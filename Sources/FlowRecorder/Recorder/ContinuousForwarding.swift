import Forwarders
import Foundation
import StorageKit
import Logging
import ShardStore
import Synchronization

/// Forwards sealed shards while `flowrec record` runs: each forwarder gets every shard
/// as soon as it is sealed (the seal observer nudges this thread), and on a timer, so a
/// target that was down catches up once it is back. Failures are logged, counted, shown
/// in `/readyz` and retried on the next turn; ingest never waits for a target.
///
/// It runs on a thread of its own with its own catalog connection (`DeliveryLedger`):
/// encoding chunks is CPU work that must not hold the recorder's loop or the
/// cooperative threads that serve `/metrics`.
final class ContinuousForwarding: Sendable {
    private let directory: String
    private let forwarders: [any Forwarder]
    private let intervalSeconds: Double
    private let metrics: RecorderMetrics
    private let status: RecorderStatus
    private let logger: Logger
    private let nudged = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let executor = DedicatedThreadExecutor(name: "flowrec-forward")

    init(directory: String, forwarders: [any Forwarder], intervalSeconds: Double, metrics: RecorderMetrics,
         status: RecorderStatus, logger: Logger) {
        self.directory = directory
        self.forwarders = forwarders
        self.intervalSeconds = intervalSeconds
        self.metrics = metrics
        self.status = status
        self.logger = logger
    }

    func start() {
        Task(executorPreference: executor) {
            await self.loop()
            self.finished.signal()
        }
    }

    /// A shard was sealed: forward now rather than at the next tick.
    func nudge() { nudged.store(true, ordering: .relaxed) }

    /// Finishes the chunk in flight, then returns (at most `timeoutSeconds` later).
    func stop(timeoutSeconds: Double = 60) {
        stopping.store(true, ordering: .relaxed)
        _ = finished.wait(timeout: .now() + timeoutSeconds)
        executor.shutdown()
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) }

    private func loop() async {
        while !isStopping {
            for forwarder in forwarders where !isStopping {
                await forwardPending(forwarder)
            }
            // Sleep until the interval is up, a seal nudges, or stop is asked.
            let waitStarted = Date()
            while !isStopping, !nudged.exchange(false, ordering: .relaxed),
                  Date().timeIntervalSince(waitStarted) < intervalSeconds {
                try? await Task.sleep(nanoseconds: 250_000_000)
            }
        }
    }

    private func forwardPending(_ forwarder: any Forwarder) async {
        do {
            let replicator = ShardReplicator(ledger: try DeliveryLedger(directory: directory), forwarder: forwarder)
            var rowsReported: Int64 = 0
            let summary = try await replicator.run(shouldStop: { self.isStopping }) { progress in
                self.metrics.countDelivered(rows: Int(progress.rowsDone - rowsReported), forwarder: forwarder.name)
                rowsReported = progress.rowsDone
            }
            for _ in 0..<summary.shardsDelivered { metrics.countShardDelivered(forwarder: forwarder.name) }
            if summary.shardsDelivered > 0 {
                logger.info("forwarded sealed shards", metadata: [
                    "forwarder": "\(forwarder.name)", "shards": "\(summary.shardsDelivered)", "rows": "\(summary.rowsDelivered)",
                ])
            }
            status.recovered(.forwarding(forwarder.name))
            let pending = try replicator.pending()
            metrics.setForwarderLag(oldestUndeliveredWindowEndMs: pending.map(\.shard.id.windowEndMs).min(),
                                    pendingShards: pending.count, forwarder: forwarder.name, nowMs: RecorderStatus.nowMs())
        } catch {
            metrics.countForwarderError(forwarder: forwarder.name)
            status.failing(.forwarding(forwarder.name), "\(error)")
            logger.error("forwarding failed; it is retried", metadata: [
                "forwarder": "\(forwarder.name)", "error": "\(error)", "retry_in_s": "\(Int(intervalSeconds))",
            ])
        }
    }
}
