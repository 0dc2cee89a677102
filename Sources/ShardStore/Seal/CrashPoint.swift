import Foundation

/// Test hook: when FLOWREC_TEST_CRASH_AT names a point, the process dies there at once,
/// as under SIGKILL (no cleanup, no buffered writes flushed), so the crash tests can
/// stop a seal between any two of its steps. Unset in normal use, it costs one check.
enum CrashPoint {
    private static let target = ProcessInfo.processInfo.environment["FLOWREC_TEST_CRASH_AT"]

    static func reached(_ name: String) {
        if target == name { _exit(137) }
    }
}
