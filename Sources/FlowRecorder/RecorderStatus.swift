import Foundation
import Synchronization

/// What the HTTP probes report about a running recorder, written by the recorder's loop
/// and read by the listener's threads.
package final class RecorderStatus: Sendable {
    private struct State {
        var storeOpen = false
        var assignedPartitions = 0
        var lastLoopMs: Int64 = 0
    }
    private let state = Mutex(State())

    /// How long the loop may go without a turn before `/healthz` fails: a poll lasts
    /// under a second and a batch a few, so two minutes means it is stuck.
    package static let stalledAfterSeconds: Int64 = 120

    package init() {}

    func storeOpened() { state.withLock { $0.storeOpen = true } }
    func storeClosed() { state.withLock { $0.storeOpen = false } }

    func loopTurned(assignedPartitions: Int) {
        let now = Self.nowMs()
        state.withLock {
            $0.lastLoopMs = now
            $0.assignedPartitions = assignedPartitions
        }
    }

    /// nil when live, else why not.
    package func livenessProblem() -> String? {
        let last = state.withLock { $0.lastLoopMs }
        guard last > 0 else { return nil }  // starting up: the store may be finishing seals
        let stalled = (Self.nowMs() - last) / 1000
        return stalled > Self.stalledAfterSeconds ? "the recorder loop has not turned for \(stalled) s" : nil
    }

    /// nil when ready (store open and partitions assigned), else why not.
    package func readinessProblem() -> String? {
        let snapshot = state.withLock { $0 }
        if !snapshot.storeOpen { return "the store is not open" }
        if snapshot.assignedPartitions == 0 { return "no partitions assigned yet (joining the consumer group)" }
        return nil
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
