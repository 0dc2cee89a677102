import FlowModel
import Foundation

/// A point in time as a person types it on the command line or in the API: RFC 3339 with
/// or without seconds, fraction and zone (UTC when none), a date alone (its midnight,
/// UTC), or an epoch number in seconds or milliseconds, told apart by magnitude.
///
/// Epoch seconds are a common mistake for milliseconds (`date +%s`): read as
/// milliseconds, `1767225900` is 1970-01-21 and a query over "since then" returns
/// everything. A number below 10^11 is therefore read as seconds (10^11 seconds is the
/// year 5138; 10^11 milliseconds is 1973-03-03, before any NetObserv flow), and the
/// reading says so in `note`, for the caller to print.
package struct TimeExpression: Sendable, Equatable {
    package let epochMilliseconds: Int64
    /// How an ambiguous input was read ("1767225900 read as epoch seconds: ..."), for the
    /// user; nil when the text says what it is.
    package let note: String?

    /// Epoch numbers below this are seconds, at or above it milliseconds.
    static let secondsLimit: Int64 = 100_000_000_000

    package init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let number = Int64(trimmed) {
            guard number >= 0 else { return nil }
            if number < Self.secondsLimit {
                let (ms, overflow) = number.multipliedReportingOverflow(by: 1000)
                guard !overflow, SettingParsers.acceptedTimeMs.contains(ms) else { return nil }
                self.init(ms: ms, note: "\(trimmed) read as epoch seconds: \(Self.rfc3339(ms)) (epoch milliseconds have 13 digits)")
            } else {
                guard SettingParsers.acceptedTimeMs.contains(number) else { return nil }
                self.init(ms: number, note: nil)
            }
            return
        }
        guard let ms = Self.calendarTime(trimmed), SettingParsers.acceptedTimeMs.contains(ms) else { return nil }
        self.init(ms: ms, note: nil)
    }

    private init(ms: Int64, note: String?) {
        epochMilliseconds = ms
        self.note = note
    }

    /// What the forms look like, for error messages.
    package static let accepted = "RFC 3339 (2026-01-01T00:05:00Z, 2026-01-01T00:05, 2026-01-01T02:05+02:00), a date (2026-01-01, midnight UTC), or epoch seconds or milliseconds (1767225900, 1767225900000); times without a zone are UTC"

    /// `YYYY-MM-DD`, then optionally `T` or a space and `HH:MM[:SS[.fff]]`, then
    /// optionally `Z` or `±HH:MM`.
    static func calendarTime(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int64? {
            guard i + n <= b.count else { return nil }
            var v: Int64 = 0
            for k in i..<(i + n) {
                guard (48...57).contains(b[k]) else { return nil }
                v = v * 10 + Int64(b[k] - 48)
            }
            i += n
            return v
        }
        func expect(_ c: Character) -> Bool {
            guard i < b.count, b[i] == UInt8(ascii: c.unicodeScalars.first!) else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2) else { return nil }
        var hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0, millisecond: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ") {
            i += 1
            guard let h = digits(2), expect(":"), let m = digits(2) else { return nil }
            hour = h
            minute = m
            if expect(":") {
                guard let s = digits(2) else { return nil }
                second = s
                if expect(".") {
                    var fraction = 0, scale: Int64 = 100
                    while i < b.count, (48...57).contains(b[i]) {
                        if fraction < 3 { millisecond += Int64(b[i] - 48) * scale; scale /= 10 }
                        fraction += 1
                        i += 1
                    }
                    guard fraction > 0 else { return nil }
                }
            }
        }
        var offsetMinutes: Int64 = 0
        if i < b.count {
            if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
                i += 1
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let h = digits(2), h < 24 else { return nil }
                _ = expect(":")
                guard let m = digits(2), m < 60 else { return nil }
                offsetMinutes = sign * (h * 60 + m)
            }
        }
        guard i == b.count, let local = EventTime.epochMs(year: year, month: month, day: day, hour: hour, minute: minute,
                                                           second: second, millisecond: millisecond) else { return nil }
        return local - offsetMinutes * 60_000
    }

    /// `2026-01-01T00:05:00Z` (milliseconds when there are any).
    package static func rfc3339(_ ms: Int64) -> String {
        let c = EventTime.components(ms)
        let p = EventTime.padded
        return p(c.year, 4) + "-" + p(c.month, 2) + "-" + p(c.day, 2) + "T" + p(c.hour, 2) + ":" + p(c.minute, 2) + ":" + p(c.second, 2)
            + (c.millisecond == 0 ? "" : "." + p(c.millisecond, 3)) + "Z"
    }
}
