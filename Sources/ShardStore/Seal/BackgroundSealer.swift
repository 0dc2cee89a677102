import Foundation
import Logging
import StorageKit

/// Seals detached shards on its own thread, one at a time, so the writer never waits
/// for compression. It has its own catalog connection; SQLite serializes the two.
///
/// A seal that fails (the disk is full, say) is logged with its cause, reported to the
/// failure observer (the recorder counts it and shows it in `/readyz`) and retried with
/// backoff, 1 s doubling to 60 s. The job stays first in the queue and its active shard
/// stays complete and readable until a seal succeeds, or the store closes (the next
/// start seals it).
final class BackgroundSealer: Sendable {
    struct Job: Sendable {
        let id: ShardID
        let activePath: String
        let sealedPath: String
        /// When its last attempt failed; nil before the first attempt or after a success.
        var failedAt: Date?
        var failures = 0
    }

    private struct State {
        var queue: [Job] = []
        var busy = false
        var stopping = false
        var started = false
        /// Set to retry a failed seal now (more work arrived, or space was freed).
        var retryNow = false
        var completed: [ShardStore.SealSummary] = []
        /// Failures not yet drained, by job: a job that succeeds later drops its own.
        var failures: [(job: ShardID, error: ShardStoreError)] = []
    }

    private let state = WaitableMutex(State())
    private let sealer: ShardSealer
    private let catalogPath: String
    private let observer: (@Sendable (ShardStore.SealSummary) -> Void)?
    private let failureObserver: (@Sendable (ShardStoreError) -> Void)?
    private let logger: Logger
    static let maxBackoffSeconds = 60.0

    init(sealer: ShardSealer, catalogPath: String, observer: (@Sendable (ShardStore.SealSummary) -> Void)?,
         failureObserver: (@Sendable (ShardStoreError) -> Void)?, logger: Logger) {
        self.sealer = sealer
        self.catalogPath = catalogPath
        self.observer = observer
        self.failureObserver = failureObserver
        self.logger = logger
    }

    func enqueue(_ job: Job) {
        let start = state.withLock { state -> Bool in
            state.queue.append(job)
            state.retryNow = true
            defer { state.started = true }
            return !state.started
        }
        if start {
            NamedThread.start("flowrec-sealer") { [self] in run() }
        }
    }

    /// Shards queued and not sealed yet (including one being sealed).
    var pending: Int { state.withLock { $0.queue.count } }

    /// Waits until every queued shard was sealed or has failed since this call began
    /// (failed ones stay queued for their retry); returns what happened since the last call.
    func drain() -> (sealed: [ShardStore.SealSummary], failures: [ShardStoreError]) {
        let began = Date()
        state.withLock { $0.retryNow = true }
        return state.wait(until: { state in
            !state.busy && state.queue.allSatisfy { ($0.failedAt ?? .distantPast) >= began } || !state.started
        }) { state in
            defer {
                state.completed = []
                state.failures = []
            }
            return (state.completed, state.failures.map(\.error))
        }
    }

    /// Waits for the seal in progress, then stops the thread; queued shards stay active.
    func stop() {
        state.withLock { $0.stopping = true }
        state.wait(until: { !$0.busy }) { _ in }
    }

    private func run() {
        while true {
            let next: Job? = state.wait(until: { state in
                state.stopping || state.queue.first.map { $0.failedAt == nil || state.retryNow } ?? false
                    || state.queue.first?.failedAt.map { Date() >= $0 + Self.backoff(after: state.queue[0].failures) } ?? false
            }, deadline: Date() + 1) { state, _ in
                guard !state.stopping, let first = state.queue.first else { return nil }
                if let failedAt = first.failedAt, !state.retryNow, Date() < failedAt + Self.backoff(after: first.failures) {
                    return nil
                }
                state.retryNow = false
                state.busy = true
                return first
            }
            if state.withLock({ $0.stopping && !$0.busy }) { return }
            guard let job = next else { continue }

            let started = Date()
            let outcome: Result<ShardStore.SealSummary, ShardStoreError>
            do {
                let result = try sealer.seal(activePath: job.activePath, sealedPath: job.sealedPath, id: job.id)
                let catalog = try Catalog(path: catalogPath)
                try catalog.markSealed(job.id, relativePath: job.id.sealedRelativePath, bytes: result.sealedBytes,
                                       checksum: result.checksum, level: sealer.level, summaries: result.summaries)
                outcome = .success(ShardStore.SealSummary(id: job.id, rows: result.rows, compactBytes: result.compactBytes,
                                                          sealedBytes: result.sealedBytes, seconds: Date().timeIntervalSince(started),
                                                          steps: result.steps, copiedThroughSQLiteBecause: result.copiedThroughSQLiteBecause))
            } catch let error as ShardStoreError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(ShardStoreError(.other, "sealing \(job.id) failed: \(error)", shard: job.id,
                                                   cause: error))
            }

            switch outcome {
            case .success(let summary):
                if let reason = summary.copiedThroughSQLiteBecause {
                    logger.info("sealed by copying the rows through SQLite, which is slower than copying records", metadata: [
                        "shard": "\(job.id)", "reason": "\(reason)",
                    ])
                }
                observer?(summary)
                state.withLock { state in
                    state.queue.removeFirst()
                    state.completed.append(summary)
                    // Its earlier failures are over: a later drain (a stop) must not report them.
                    state.failures.removeAll { $0.job == job.id }
                    state.busy = false
                }
            case .failure(let error):
                let failures = state.withLock { state -> Int in
                    state.queue[0].failedAt = Date()
                    state.queue[0].failures += 1
                    state.failures.append((job.id, error))
                    state.busy = false
                    return state.queue[0].failures
                }
                logger.error("sealing failed; the active shard is kept and the seal is retried", metadata: [
                    "shard": "\(job.id)", "error": "\(error)", "attempt": "\(failures)",
                    "retry_in_s": "\(Int(Self.backoff(after: failures)))",
                ])
                failureObserver?(error)
            }
        }
    }

    /// Seconds to wait after `failures` consecutive failures: 1, 2, 4, ... up to 60.
    static func backoff(after failures: Int) -> TimeInterval {
        min(maxBackoffSeconds, pow(2, Double(max(0, failures - 1))))
    }
}
