import Foundation
package import Logging
import StorageKit

/// Merges sealed shards in `flowrec record`, on a thread at the lowest CPU priority
/// (Linux SCHED_IDLE): it only gets a core that ingest does not want, so it runs even
/// when the topics never go quiet (unlike deep compaction, which waits for quiet).
/// Every `intervalSeconds` it merges whatever `MergePolicy` makes due and removes the
/// files of sources merged away a while ago. A failed merge leaves its sources as they
/// were; it is logged, reported to the failure observer (counted, shown in `/readyz`)
/// and retried after a backoff that doubles per consecutive failure, up to an hour.
package final class BackgroundMerger: Sendable {
    private struct State {
        var stopping = false
        var running = false
        var merged = 0
        var failures = 0
        var notBefore = Date.distantPast
    }

    private let state = WaitableMutex(State())
    private let directory: URL
    private let policy: MergePolicy
    private let windowMs: Int64
    private let graceMs: Int64
    private let intervalSeconds: Double
    private let logger: Logger
    private let failureObserver: (@Sendable (ShardStoreError) -> Void)?
    private let successObserver: (@Sendable (ShardStore.MergeSummary) -> Void)?

    package init(directory: String, policy: MergePolicy, windowMs: Int64, graceMs: Int64, intervalSeconds: Double = 60,
                 logger: Logger = Logger(label: "flowrec.merge"),
                 onFailure: (@Sendable (ShardStoreError) -> Void)? = nil,
                 onSuccess: (@Sendable (ShardStore.MergeSummary) -> Void)? = nil) {
        self.directory = URL(fileURLWithPath: directory)
        self.policy = policy
        self.windowMs = windowMs
        self.graceMs = graceMs
        self.intervalSeconds = intervalSeconds
        self.logger = logger
        failureObserver = onFailure
        successObserver = onSuccess
    }

    /// Merges done since start.
    package var merged: Int { state.withLock { $0.merged } }

    package func start() {
        let start = state.withLock { state -> Bool in
            guard !state.running, !state.stopping else { return false }
            state.running = true
            return true
        }
        guard start else { return }
        IdleWork.startThread(name: "flowrec-merger", job: "merging", logger: logger) { [self] in run() }
    }

    /// Cancels the merge in progress (between rows and frames) and waits for the thread.
    package func stop() {
        state.withLock { $0.stopping = true }
        state.wait(until: { !$0.running }) { _ in }
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func run() {
        defer { state.withLock { $0.running = false } }
        while !isStopping {
            if Date() >= state.withLock({ $0.notBefore }) { pass() }
            let stop = state.wait(until: { $0.stopping }, deadline: Date() + intervalSeconds) { state, _ in state.stopping }
            if stop { return }
        }
    }

    private func pass() {
        do {
            let catalog = try Catalog(path: directory.appendingPathComponent("catalog.sqlite").path)
            defer { try? ShardStore.removeMergedSourceFiles(catalog: catalog, directory: directory, logger: logger, graceMs: policy.sourceGraceMs) }
            _ = try ShardStore.merge(policy, catalog: catalog, directory: directory, windowMs: windowMs, graceMs: graceMs,
                                 nowMs: Int64(Date().timeIntervalSince1970 * 1000), logger: logger,
                                 shouldCancel: { isStopping }) { summary in
                state.withLock {
                    $0.merged += 1
                    $0.failures = 0
                }
                successObserver?(summary)
            }
        } catch {
            let failures = state.withLock { state -> Int in
                state.failures += 1
                state.notBefore = IdleWork.retryDate(afterFailures: state.failures)
                return state.failures
            }
            let storeError = error as? ShardStoreError ?? ShardStoreError(.other, "merging sealed shards failed: \(error)", cause: error)
            logger.error("merging sealed shards failed; the shards are unchanged and the merge is retried later",
                         metadata: ["error": "\(error)", "attempt": "\(failures)"])
            failureObserver?(storeError)
        }
    }
}
