import FlowModel
import Foundation

/// Durations, sizes and free-space limits as users write them.
package enum SettingParsers {
    /// The longest duration accepted anywhere (100 years): every duration times 1000 fits
    /// in an Int64 of milliseconds, and `now - duration` cannot overflow.
    package static let maxSeconds: Double = 100 * 365.25 * 86_400

    /// `90s`, `30m`, `2h`, `7d`, `1w`, `250ms` or plain seconds; nil for anything else,
    /// including `inf`, `nan` and more than `maxSeconds`.
    package static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604_800)]
        var value: Double?
        if let (suffix, factor) = units.first(where: { text.hasSuffix($0.0) }) {
            value = Double(text.dropLast(suffix.count)).map { $0 * factor }
        } else {
            value = Double(text)
        }
        guard let v = value, v.isFinite, v >= 0, v <= maxSeconds else { return nil }
        return v
    }

    /// `500MB`, `20GiB`, `1.5TB` or plain bytes; decimal and binary units, as `df -H` and
    /// `df -h` print them.
    package static func bytes(_ text: String) -> Int64? {
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
            ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
        ]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let v = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v >= 0,
                  v * factor < 9.2e18 else { return nil }
            return Int64(v * factor)
        }
        guard let v = Int64(trimmed), v >= 0 else { return nil }
        return v
    }

    /// A point in time: epoch milliseconds or RFC 3339 (`2026-01-01T00:00:00Z`), between
    /// 1970 and the end of year 9999 (`EventTime.storableEndMs`, widened to the last
    /// millisecond of 9999); nil otherwise, so no caller's arithmetic can overflow.
    package static func timeMs(_ text: String) -> Int64? {
        let ms: Int64
        if let integer = Int64(text) {
            ms = integer
        } else {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) else { return nil }
            let value = (date.timeIntervalSince1970 * 1000).rounded()
            guard value.isFinite, abs(value) < 9e18 else { return nil }
            ms = Int64(value)
        }
        return acceptedTimeMs.contains(ms) ? ms : nil
    }

    /// What `timeMs` accepts: 1970-01-01 to 9999-12-31T23:59:59.999Z.
    package static let acceptedTimeMs: ClosedRange<Int64> = 0...253_402_300_799_999

    /// A size (`20GiB`) or a share of the volume (`10%`).
    package static func freeSpace(_ text: String) -> (bytes: Int64?, fraction: Double?)? {
        if text.hasSuffix("%") {
            guard let percent = Double(text.dropLast()), (0..<100).contains(percent) else { return nil }
            return (nil, percent / 100)
        }
        return bytes(text).map { ($0, nil) }
    }
}

extension String {
    /// A duration as a setting's default is written: the largest unit that divides it
    /// (`1h`, `2m`, `3650d`, `250ms`), which `SettingParsers.seconds` reads back exactly.
    package static func duration(ms: Int64) -> String {
        guard ms % 1000 == 0 else { return "\(ms)ms" }
        let seconds = ms / 1000
        for (unit, size) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3600), ("m", 60)] where seconds != 0 && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    package static func duration(seconds: Double) -> String { duration(ms: Int64((seconds * 1000).rounded())) }
}
