import Foundation
import Synchronization

/// What the HTTP probes report about a running recorder, written by the recorder's loop
/// and its background jobs, read by the listener's threads.
package final class RecorderStatus: Sendable {
    /// A background job whose failure is shown in `/readyz` until it recovers.
    package enum Job: Hashable, Sendable, CustomStringConvertible {
        case store, seal, compaction, merge, retention
        case forwarding(String)

        /// Whether the recorder cannot do its main job while this fails: ingest is paused
        /// (the store cannot write) or closed windows cannot be sealed. `/readyz` then
        /// answers 503; the other jobs' problems are listed with a 200.
        var stopsIngest: Bool {
            switch self {
            case .store, .seal: true
            case .compaction, .merge, .retention, .forwarding: false
            }
        }

        package var description: String {
            switch self {
            case .store: "store"
            case .seal: "seal"
            case .compaction: "compaction"
            case .merge: "merge"
            case .retention: "retention"
            case .forwarding(let name): "forwarding to \(name)"
            }
        }
    }

    private struct State {
        var storeOpen = false
        /// nil without Kafka (flows come only from Loki pushes): nothing to be assigned.
        var assignedPartitions: Int? = 0
        var lastLoopMs: Int64 = 0
        var problems: [Job: (since: Int64, reason: String)] = [:]
    }
    private let state = Mutex(State())

    /// How long the loop may go without a turn before `/healthz` fails: a poll lasts
    /// under a second and a batch a few, so two minutes means it is stuck.
    package static let stalledAfterSeconds: Int64 = 120

    package init() {}

    func storeOpened() { state.withLock { $0.storeOpen = true } }
    func storeClosed() { state.withLock { $0.storeOpen = false } }

    func loopTurned(assignedPartitions: Int?) {
        let now = Self.nowMs()
        state.withLock {
            $0.lastLoopMs = now
            $0.assignedPartitions = assignedPartitions
        }
    }

    /// A job failed (it is retried): shown in `/readyz` until `recovered(job)`.
    package func failing(_ job: Job, _ reason: String) {
        let now = Self.nowMs()
        state.withLock { $0.problems[job] = ($0.problems[job]?.since ?? now, reason) }
    }

    /// The job succeeded again.
    package func recovered(_ job: Job) { state.withLock { $0.problems[job] = nil } }

    /// The jobs failing now, each with its reason.
    package var problems: [(job: Job, since: Int64, reason: String)] {
        state.withLock { $0.problems.map { ($0.key, $0.value.since, $0.value.reason) } }
            .sorted { $0.job.description < $1.job.description }
    }

    /// nil when live, else why not.
    package func livenessProblem() -> String? {
        let last = state.withLock { $0.lastLoopMs }
        guard last > 0 else { return nil }  // starting up: the store may be finishing seals
        let stalled = (Self.nowMs() - last) / 1000
        return stalled > Self.stalledAfterSeconds ? "the recorder loop has not turned for \(stalled) s" : nil
    }

    /// nil when ready (store open, partitions assigned, nothing that stops ingest
    /// failing), else why not.
    package func readinessProblem() -> String? {
        let snapshot = state.withLock { $0 }
        if !snapshot.storeOpen { return "the store is not open" }
        let blocking = problems.filter(\.job.stopsIngest)
        if !blocking.isEmpty { return blocking.map { Self.describe($0) }.joined(separator: "\n") }
        if snapshot.assignedPartitions == 0 { return "no partitions assigned yet (joining the consumer group)" }  // nil: no Kafka
        return nil
    }

    /// Problems of jobs that do not stop ingest, one line each (listed under "ready").
    package func warnings() -> [String] {
        problems.filter { !$0.job.stopsIngest }.map { Self.describe($0) }
    }

    private static func describe(_ problem: (job: Job, since: Int64, reason: String)) -> String {
        "\(problem.job) failing for \(max(0, nowMs() - problem.since) / 1000) s: \(problem.reason)"
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
