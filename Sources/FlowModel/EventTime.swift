/// Which flow end times (`TimeFlowEndMs`) flowrec accepts, and how it writes them for people.
///
/// Two bounds apply. The *storable* range is fixed: shard windows are named by their UTC
/// start and end (`YYYYMMDDTHHMM`), so an end time must lie between 1970 and the last
/// day of year 9999, and window arithmetic never overflows inside it. The *plausible*
/// range is configurable and moves with the wall clock: a flow from years ago or from
/// next week is a broken agent clock or a poisoned message, and accepting it would move
/// the store's watermark (which decides when windows seal) to nonsense. Flows outside
/// either range become dead letters with the reason; nothing traps.
package enum EventTime {
    /// End times a shard window can hold: 1970-01-01 up to (not including) 9999-12-31.
    package static let storableEndMs: ClosedRange<Int64> = 0...253_402_214_399_999

    /// A range around the wall clock: `maxAgeMs` into the past, `maxAheadMs` into the future.
    package struct Plausibility: Sendable, Equatable {
        package var maxAgeMs: Int64
        package var maxAheadMs: Int64

        package init(maxAgeMs: Int64, maxAheadMs: Int64) {
            self.maxAgeMs = maxAgeMs
            self.maxAheadMs = maxAheadMs
        }

        /// Ten years back (historical imports), one hour ahead (clock skew between nodes is
        /// seconds; a flow an hour ahead would move the watermark and seal live windows early).
        package static let `default` = Plausibility(maxAgeMs: 3650 * 86_400_000, maxAheadMs: 3_600_000)

        /// The end times accepted at `nowMs`, never wider than the storable range.
        package func acceptedEndMs(nowMs: Int64) -> ClosedRange<Int64> {
            let low = max(EventTime.storableEndMs.lowerBound, nowMs.subtractingClamped(maxAgeMs))
            let high = min(EventTime.storableEndMs.upperBound, nowMs.addingClamped(maxAheadMs))
            return low <= high ? low...high : high...high
        }
    }

    /// `2026-01-01T00:05:00.250Z`: epoch milliseconds as RFC 3339 in UTC (proleptic
    /// Gregorian, any Int64), without Foundation, for messages written on hot paths.
    package static func rfc3339(_ ms: Int64) -> String {
        let c = components(ms)
        var text = "\(padded(c.year, 4))-\(padded(c.month, 2))-\(padded(c.day, 2))T\(padded(c.hour, 2)):\(padded(c.minute, 2)):\(padded(c.second, 2))"
        if c.millisecond != 0 { text += "." + padded(c.millisecond, 3) }
        return text + "Z"
    }

    /// `v` in decimal with leading zeros up to `width` digits (a minus sign first).
    package static func padded(_ v: Int64, _ width: Int) -> String {
        let digits = String(v.magnitude)
        let zeros = String(repeating: "0", count: max(0, width - digits.count))
        return (v < 0 ? "-" : "") + zeros + digits
    }

    /// The UTC calendar fields of an instant, for names and messages.
    package struct Components: Sendable, Equatable {
        package let year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, millisecond: Int64
    }

    package static func components(_ ms: Int64) -> Components {
        let (seconds, millis) = ms.floorDivided(by: 1000)
        let (days, secondOfDay) = seconds.floorDivided(by: 86_400)
        let (year, month, day) = civilDate(fromDays: days)
        return Components(year: year, month: month, day: day, hour: secondOfDay / 3600, minute: secondOfDay / 60 % 60,
                          second: secondOfDay % 60, millisecond: millis)
    }

    /// Epoch milliseconds of a UTC calendar time; nil when a field is out of its range
    /// (month 13, February 30, hour 24, ...).
    package static func epochMs(year: Int64, month: Int64, day: Int64, hour: Int64 = 0, minute: Int64 = 0,
                               second: Int64 = 0, millisecond: Int64 = 0) -> Int64? {
        guard (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
              (0...999).contains(millisecond), (-1_000_000...1_000_000).contains(year) else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[Int(month - 1)]).contains(day) else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millisecond
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Year, month, day of the day `days` after 1970-01-01 (Howard Hinnant's algorithm).
    static func civilDate(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    /// `self - other`, stopping at `Int64.min`/`Int64.max` instead of trapping.
    @inlinable package func subtractingClamped(_ other: Int64) -> Int64 {
        let (value, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? .min : .max) : value
    }

    /// `self + other`, stopping at `Int64.min`/`Int64.max` instead of trapping.
    @inlinable package func addingClamped(_ other: Int64) -> Int64 {
        let (value, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : value
    }

    /// Quotient rounded toward minus infinity, and the non-negative remainder.
    @inlinable package func floorDivided(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = self / divisor, r = self % divisor
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }
}
