import Foundation
package import Logging
import StorageKit

/// Deep compaction while the recorder is idle: a thread at the lowest CPU priority
/// (Linux SCHED_IDLE) recompresses sealed shards below the target level, oldest first,
/// one at a time, whenever it is told the source is quiet. Ingest preempts it through
/// the scheduler; `stop()` cancels the shard in progress (between frames) so shutdown
/// stays quick, and that shard is simply compacted again another time.
///
/// A compaction that fails leaves the shard as it was; it is logged, reported to the
/// failure observer (counted, shown in `/readyz`) and retried after a backoff that
/// doubles per failure of that shard, up to an hour, so one bad shard neither spins nor
/// is forgotten.
package final class IdleCompactor: Sendable {
    private struct State {
        var idle = false
        var stopping = false
        var running = false
        var compacted = 0
        var failed = 0
        /// Per shard that failed: how often, and when it may be tried again.
        var retries: [ShardID: (failures: Int, notBefore: Date)] = [:]
    }

    private let state = WaitableMutex(State())
    private let compactor: ShardCompactor
    private let catalogPath: String
    private let logger: Logger
    private let failureObserver: (@Sendable (ShardStoreError) -> Void)?
    private let successObserver: (@Sendable () -> Void)?

    package init(directory: String, level: Int32 = 19, frameSize: Int = 1 << 20,
                 logger: Logger = Logger(label: "flowrec.compaction"),
                 onFailure: (@Sendable (ShardStoreError) -> Void)? = nil, onSuccess: (@Sendable () -> Void)? = nil) {
        let url = URL(fileURLWithPath: directory)
        compactor = ShardCompactor(directory: url, level: level, frameSize: frameSize)
        catalogPath = url.appendingPathComponent("catalog.sqlite").path
        self.logger = logger
        failureObserver = onFailure
        successObserver = onSuccess
    }

    /// Shards compacted and compactions failed since start.
    package var counts: (compacted: Int, failed: Int) { state.withLock { ($0.compacted, $0.failed) } }

    /// Tells the compactor whether the source is quiet. Idle starts (or resumes) the pass.
    package func setIdle(_ isIdle: Bool) {
        let start = state.withLock { state -> Bool in
            guard state.idle != isIdle else { return false }
            state.idle = isIdle
            guard isIdle, !state.running, !state.stopping else { return false }
            state.running = true
            return true
        }
        if start {
            IdleWork.startThread(name: "flowrec-compactor", job: "deep compaction", logger: logger) { [self] in run() }
        }
    }

    /// Cancels the shard in progress and waits for the thread to end.
    package func stop() {
        state.withLock { $0.stopping = true }
        state.wait(until: { !$0.running }) { _ in }
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func run() {
        defer { state.withLock { $0.running = false } }
        var catalog: Catalog?
        while true {
            let stop = state.wait(until: { $0.idle || $0.stopping }) { $0.stopping }
            if stop { return }
            do {
                let open = try catalog ?? Catalog(path: catalogPath)
                catalog = open
                guard let next = try nextShard(in: open) else {
                    // Nothing due: wait for the next idle period, or a minute for a retry.
                    state.wait(until: { !$0.idle || $0.stopping }, deadline: Date() + 60) { _, _ in }
                    continue
                }
                do {
                    let summary = try compactor.compact(id: next.id, relativePath: next.path, checksum: next.checksum,
                                                        catalog: open, shouldCancel: { isStopping })
                    state.withLock {
                        $0.compacted += 1
                        $0.retries[next.id] = nil
                    }
                    successObserver?()
                    logger.info("compacted a sealed shard", metadata: [
                        "shard": "\(summary.id)", "level": "\(compactor.level)", "bytes_before": "\(summary.bytesBefore)",
                        "bytes_after": "\(summary.bytesAfter)", "seconds": "\(String(format: "%.1f", summary.seconds))",
                    ])
                } catch is ShardCompactor.Cancelled {
                    return
                } catch {
                    report(error, shard: next.id)
                }
            } catch {
                // The catalog itself: try again in a minute.
                report(error, shard: nil)
                state.wait(until: { $0.stopping }, deadline: Date() + 60) { _, _ in }
            }
        }
    }

    /// The oldest shard below the level that is not waiting for a retry.
    private func nextShard(in catalog: Catalog) throws -> (id: ShardID, path: String, checksum: String?)? {
        let now = Date()
        let retries = state.withLock { $0.retries }
        return try catalog.sealedBelow(level: compactor.level).first { retries[$0.id].map { now >= $0.notBefore } ?? true }
    }

    private func report(_ error: any Error, shard: ShardID?) {
        let failures = state.withLock { state -> Int in
            state.failed += 1
            guard let shard else { return 1 }
            let failures = (state.retries[shard]?.failures ?? 0) + 1
            state.retries[shard] = (failures, IdleWork.retryDate(afterFailures: failures))
            return failures
        }
        let storeError = error as? ShardStoreError
            ?? ShardStoreError(.other, "deep compaction failed: \(error)", shard: shard, cause: error)
        logger.error("deep compaction failed; the shard is unchanged and is retried later", metadata: [
            "shard": "\(shard.map(String.init(describing:)) ?? "-")", "error": "\(error)", "attempt": "\(failures)",
        ])
        failureObserver?(storeError)
    }
}
