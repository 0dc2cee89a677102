import Foundation
package import ShardStore
import StorageKit

/// Hands pushed batches from the HTTP listener to the recorder's loop, the store's only
/// writer, and the loop's verdict back: the request is answered only once its entries
/// are committed (or refused), so a 204 means stored and anything else means "send it
/// again" (FLP retries 429 and 5xx).
///
/// At most `maxPending` batches wait; more get 429 at once ("too many outstanding
/// requests"), so a burst of pushes cannot hold unbounded memory.
package final class PushInbox: Sendable {
    /// What became of a pushed batch.
    package enum Outcome: Sendable, Equatable {
        case stored(ShardStore.AppendSummary)
        /// Not stored; the client should retry after `retryAfterSeconds`.
        case refused(status: Int, message: String, retryAfterSeconds: Int)
    }

    struct Pending: Sendable {
        let batch: IngestBatch
        let payloadBytes: Int
        let answer: @Sendable (Outcome) -> Void
    }

    private struct State {
        var pending: [Pending] = []
        /// Set while the store cannot take pushes (the disk is full, the recorder stops).
        var refusal: (status: Int, message: String)?
        var closed = false
    }

    private let state = WaitableMutex(State())
    package let maxPending: Int

    package init(maxPending: Int = 8) {
        self.maxPending = max(1, maxPending)
    }

    /// Queues a batch for the loop and waits for its outcome.
    package func submit(_ batch: IngestBatch, payloadBytes: Int) async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let refused: Outcome? = state.withLock { state in
                if state.closed {
                    return .refused(status: 503, message: "flowrec is stopping; retry against its next start", retryAfterSeconds: 5)
                }
                if let refusal = state.refusal {
                    return .refused(status: refusal.status, message: refusal.message, retryAfterSeconds: 10)
                }
                guard state.pending.count < maxPending else {
                    return .refused(status: 429, message: "too many outstanding requests: \(maxPending) pushes are waiting to be stored; retry shortly",
                                    retryAfterSeconds: 1)
                }
                state.pending.append(Pending(batch: batch, payloadBytes: payloadBytes, answer: { continuation.resume(returning: $0) }))
                return nil
            }
            if let refused { continuation.resume(returning: refused) }
        }
    }

    /// The batches waiting, oldest first (the loop stores them and answers each).
    func take() -> [Pending] {
        state.withLock { state in
            defer { state.pending.removeAll() }
            return state.pending
        }
    }

    /// Waits up to `seconds` for a push (the loop's idle wait when no Kafka is configured).
    func waitForPush(seconds: Double) {
        state.wait(until: { !$0.pending.isEmpty || $0.closed }, deadline: Date() + seconds) { _, _ in }
    }

    /// Refuses new pushes with `status` and `message` until `accept()` (a full disk).
    func refuse(status: Int, _ message: String) { state.withLock { $0.refusal = (status, message) } }
    func accept() { state.withLock { $0.refusal = nil } }

    /// Refuses everything from now on, and answers what waits (the recorder stops).
    func close() {
        let waiting = state.withLock { state -> [Pending] in
            state.closed = true
            defer { state.pending.removeAll() }
            return state.pending
        }
        for pending in waiting {
            pending.answer(.refused(status: 503, message: "flowrec is stopping; retry against its next start", retryAfterSeconds: 5))
        }
    }
}
