import Foundation
import StorageKit

/// Runs the API's queries on a fixed number of threads of their own, so a slow or runaway
/// query occupies one of them, not the listener or Swift's shared threads: probes and
/// metrics keep answering, and at most `threads` queries run at once. A request that
/// would wait behind more than `maxQueued` others is refused at once (503, "too many
/// outstanding requests": the console plugin shows its hint for that phrase).
final class QueryPool: Sendable {
    struct Busy: Error {}

    private typealias Job = @Sendable () -> Void
    private struct Queue {
        var jobs: [Job] = []
        var stopping = false
    }
    private let queue = WaitableMutex(Queue())
    let threads: Int
    let maxQueued: Int

    init(threads: Int, maxQueued: Int, name: String = "flowrec-api") {
        self.threads = max(1, threads)
        self.maxQueued = max(0, maxQueued)
        for i in 0..<self.threads {
            NamedThread.start("\(name)-\(i)") { [self] in work() }
        }
    }

    /// Runs `body` on a pool thread and returns its result, or throws `Busy`.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = queue.withLock { queue -> Bool in
                guard !queue.stopping, queue.jobs.count < threads + maxQueued else { return false }
                queue.jobs.append { continuation.resume(returning: body()) }
                return true
            }
            if !accepted { continuation.resume(throwing: Busy()) }
        }
    }

    /// Lets the threads end once the queued jobs are done.
    func shutdown() { queue.withLock { $0.stopping = true } }

    private func work() {
        while true {
            let next = queue.wait(until: { !$0.jobs.isEmpty || $0.stopping }) { queue -> Job? in
                queue.jobs.isEmpty ? nil : queue.jobs.removeFirst()
            }
            guard let job = next else { return }
            job()
        }
    }
}
