import Foundation

/// A task executor with a thread of its own.
///
/// `flowrec record` stores flows on a plain thread, and a test process runs many
/// blocking tests at once; either can occupy all of Swift's shared cooperative threads
/// (two on a 2-core machine). The HTTP listener's tasks run here instead, so health
/// probes and metrics answer however busy the rest of the process is.
final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {  // state behind `condition`
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    init(name: String) {
        let thread = Thread { [self] in runJobs() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread end once the queued jobs are done.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
