import Foundation
import Logging
import StorageKit

/// What deep compaction and merging share: they are worth doing but never worth slowing
/// ingest for, so each runs on its own thread at Linux's lowest CPU priority, and a pass
/// that fails waits longer before each retry.
enum IdleWork {
    /// Starts `body` on a thread named `name` at SCHED_IDLE: it gets a core only when
    /// nothing else wants it, below even nice 19, so ingest preempts it through the
    /// scheduler instead of through locks or checks. Where the policy is refused (some
    /// container runtimes), the job still runs, at normal priority, and says so.
    static func startThread(name: String, job: String, logger: Logger, _ body: @escaping @Sendable () -> Void) {
        NamedThread.start(name) {
            // SCHED_IDLE is 5 in <sched.h>; Swift does not import the GNU macro.
            var parameters = sched_param(sched_priority: 0)
            if pthread_setschedparam(pthread_self(), 5, &parameters) != 0 {
                logger.notice("\(job) runs at normal priority: SCHED_IDLE was refused")
            }
            body()
        }
    }

    /// When to try again after `failures` consecutive failures: a minute, doubling per
    /// failure, at most an hour, so a persistent fault neither spins nor is forgotten.
    static func retryDate(afterFailures failures: Int, from now: Date = Date()) -> Date {
        now + min(3600, 60 * pow(2, Double(max(0, failures - 1))))
    }
}
