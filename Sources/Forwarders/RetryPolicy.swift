import Foundation

/// Exponential backoff with full jitter between attempts at one request, so a target
/// that comes back is not hit by every waiting chunk at the same instant.
package struct RetryPolicy: Sendable {
    /// Attempts in all, the first one included.
    package var maxAttempts: Int
    package var initialDelaySeconds: Double
    package var maxDelaySeconds: Double

    package init(maxAttempts: Int = 10, initialDelaySeconds: Double = 0.5, maxDelaySeconds: Double = 30) {
        self.maxAttempts = maxAttempts
        self.initialDelaySeconds = initialDelaySeconds
        self.maxDelaySeconds = maxDelaySeconds
    }

    /// The pause before attempt `attempt + 1` (attempt counts from 1): a random time
    /// up to initial × 2^(attempt-1), capped.
    package func delay(afterAttempt attempt: Int) -> Double {
        let ceiling = min(maxDelaySeconds, initialDelaySeconds * pow(2, Double(max(0, attempt - 1))))
        return Double.random(in: (ceiling / 2)...ceiling)
    }

    /// Runs `body` until it succeeds, it throws an error `isRetryable` rejects, or the
    /// attempts run out (the last error is rethrown). `onRetry` hears each failure.
    package func run<T>(isRetryable: (any Error) -> Bool, onRetry: (_ attempt: Int, _ error: any Error, _ delay: Double) -> Void = { _, _, _ in },
                       _ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch {
                guard attempt < maxAttempts, isRetryable(error) else { throw error }
                let pause = delay(afterAttempt: attempt)
                onRetry(attempt, error, pause)
                try await Task.sleep(nanoseconds: UInt64(pause * 1_000_000_000))
                attempt += 1
            }
        }
    }
}
