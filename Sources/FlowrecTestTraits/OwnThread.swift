import StorageKit
import Synchronization
package import Testing

/// Runs each test of a suite on a thread of its own instead of Swift's shared
/// cooperative threads.
///
/// A test that starts a broker, a recorder or a child process and then waits for it
/// (`waitUntilExit`, `Thread.sleep`, a blocking HTTP call) holds the thread it runs on
/// for seconds to minutes. The cooperative pool has one thread per core (two here), so
/// two such tests used to stall every other test of the run, including async ones whose
/// own timers then fired ten minutes late. With this trait the waiting happens on a
/// dedicated thread (a task executor preference, so the test body and the async code it
/// calls run there), and at most `concurrentTests` such tests run at once, so that the
/// heavy integration tests do not all compete for the two cores together.
package struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    /// Heavy tests that may run at the same time; the others wait without holding a thread.
    package static let concurrentTests = 3

    package var isRecursive: Bool { true }

    package func provideScope(for test: Test, testCase: Test.Case?,
                              performing function: @Sendable () async throws -> Void) async throws {
        // Suites are scoped too (isRecursive applies the trait to each test): only test
        // functions take a thread.
        guard !test.isSuite else {
            try await function()
            return
        }
        await Self.permits.acquire()
        defer { Self.permits.release() }
        let executor = DedicatedThreadExecutor(name: "test \(test.name)")
        defer { executor.shutdown() }
        try await withTaskExecutorPreference(executor) {
            try await function()
        }
    }

    private static let permits = AsyncPermits(Self.concurrentTests)
}

extension Trait where Self == OwnThreadTrait {
    /// Each test of the suite runs on a thread of its own (see `OwnThreadTrait`).
    package static var ownThread: Self { OwnThreadTrait() }
}

/// A counting semaphore whose waiters suspend instead of blocking a thread.
final class AsyncPermits: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(_ count: Int) { state = Mutex(State(available: count)) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
