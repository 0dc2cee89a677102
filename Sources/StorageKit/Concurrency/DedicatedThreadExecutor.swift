import Foundation

/// A task executor with a thread of its own.
///
/// `flowrec record` stores flows on a plain thread, and a test process runs many
/// blocking tests at once; either can occupy all of Swift's shared cooperative threads
/// (two on a 2-core machine). The HTTP listener's and the forwarders' tasks run on one
/// of these instead, so health probes and metrics answer however busy the rest of the
/// process is; the tests run their blocking bodies on one too (`.ownThread`).
package final class DedicatedThreadExecutor: TaskExecutor, Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        var stopping = false
    }
    private let queue = WaitableMutex(Queue())

    package init(name: String) {
        NamedThread.start(name) { [self] in runJobs() }
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.withLock { $0.jobs.append(job) }
    }

    /// Lets the thread end once the queued jobs are done.
    package func shutdown() {
        queue.withLock { $0.stopping = true }
    }

    private func runJobs() {
        while true {
            let next = queue.wait(until: { !$0.jobs.isEmpty || $0.stopping }) { queue -> UnownedJob? in
                queue.jobs.isEmpty ? nil : queue.jobs.removeFirst()
            }
            guard let job = next else { return }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
