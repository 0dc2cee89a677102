import Foundation

/// Ends a test's wait when it stops making progress, not at a fixed deadline: on a loaded
/// two-core CI machine the same work can take ten times longer than alone, but lost work
/// shows up as a stall, not as slowness.
package struct ProgressWatch {
    package let stallSeconds: Double
    private var best = Int.min
    private var since = Date()

    package init(stallSeconds: Double) { self.stallSeconds = stallSeconds }

    /// Records `progress` (a count that only grows while work gets done) and says whether
    /// it has not grown for `stallSeconds`.
    package mutating func stalled(progress: Int) -> Bool {
        if progress > best { best = progress; since = Date() }
        return Date().timeIntervalSince(since) > stallSeconds
    }
}
