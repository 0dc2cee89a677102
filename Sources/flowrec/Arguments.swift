import ArgumentParser
import Foundation

/// A duration such as `90s`, `30m`, `2h`, `7d` or plain seconds.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let seconds: Double

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604_800)]
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            guard let v = Double(argument.dropLast(suffix.count)), v >= 0 else { return nil }
            seconds = v * factor
            return
        }
        guard let v = Double(argument), v >= 0 else { return nil }
        seconds = v
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A point in time: epoch milliseconds or RFC 3339 (`2026-01-01T00:00:00Z`).
struct TimeArgument: ExpressibleByArgument, Sendable {
    let epochMilliseconds: Int64

    init?(argument: String) {
        if let ms = Int64(argument) {
            epochMilliseconds = ms
            return
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: argument) ?? ISO8601DateFormatter().date(from: argument) {
            epochMilliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
            return
        }
        return nil
    }
}
