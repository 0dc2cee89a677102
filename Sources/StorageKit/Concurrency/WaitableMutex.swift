package import Foundation

/// A value behind a lock that threads can also wait on until it changes: the one place
/// flowrec uses a condition variable (`Synchronization.Mutex` has none). Worker threads
/// that hand work back and forth (the background sealer, idle compaction, the parallel
/// scan, the ingest pipeline) keep all their shared state in one of these.
///
/// ```swift
/// let queue = WaitableMutex<[Job]>([])
/// queue.withLock { $0.append(job) }            // wakes every waiter
/// let job = queue.wait(until: { !$0.isEmpty }) { $0.removeFirst() }
/// ```
package final class WaitableMutex<Value>: @unchecked Sendable {  // `value` is only touched with `condition` locked
    private let condition = NSCondition()
    private var value: Value

    package init(_ value: Value) { self.value = value }

    /// Runs `body` with the lock held, then wakes every waiter (the value may have changed).
    @discardableResult
    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return try body(&value)
    }

    /// Waits until `ready` holds, then runs `body` with the lock still held.
    @discardableResult
    package func wait<R>(until ready: (Value) -> Bool, then body: (inout Value) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        while !ready(value) { condition.wait() }
        return try body(&value)
    }

    /// As `wait(until:then:)`, giving up at `deadline`: `body` then sees the value as it
    /// is and `timedOut` true.
    @discardableResult
    package func wait<R>(until ready: (Value) -> Bool, deadline: Date,
                         then body: (inout Value, _ timedOut: Bool) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        var timedOut = false
        while !ready(value) {
            if !condition.wait(until: deadline) {
                timedOut = !ready(value)
                break
            }
        }
        return try body(&value, timedOut)
    }
}
