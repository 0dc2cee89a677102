import Foundation

/// Names one shard: its time window and its part. Part 0 is the window's first shard;
/// a flow that arrives after its window was sealed opens the next part, so sealed
/// shards are never modified.
public struct ShardID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let windowStartMs: Int64
    public let windowEndMs: Int64
    public let part: Int

    public init(windowStartMs: Int64, windowEndMs: Int64, part: Int) {
        self.windowStartMs = windowStartMs
        self.windowEndMs = windowEndMs
        self.part = part
    }

    /// `20260101T0000Z_20260101T0100Z.0`: sorts by time, readable in `ls`.
    public var description: String {
        "\(Self.stamp(windowStartMs))_\(Self.stamp(windowEndMs)).\(part)"
    }

    /// `shards/YYYY/MM/DD/<id>.sqlite`, relative to the data directory.
    public var activeRelativePath: String {
        let day = Self.dayFolder(windowStartMs)
        return "shards/\(day)/\(description).sqlite"
    }

    /// The sealed file's path: the active path plus `.zst`.
    public var sealedRelativePath: String { activeRelativePath + ".zst" }

    public init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let part = Int(parts[1]) else { return nil }
        let times = parts[0].split(separator: "_")
        guard times.count == 2, let start = Self.parseStamp(times[0]), let end = Self.parseStamp(times[1]) else { return nil }
        self.init(windowStartMs: start, windowEndMs: end, part: part)
    }

    public static func < (a: ShardID, b: ShardID) -> Bool {
        (a.windowStartMs, a.part) < (b.windowStartMs, b.part)
    }

    static func stamp(_ ms: Int64) -> String {
        let c = utcComponents(ms)
        return String(format: "%04d%02d%02dT%02d%02d%@", c.year, c.month, c.day, c.hour, c.minute,
                      c.second == 0 ? "Z" : String(format: "%02dZ", c.second))
    }

    static func dayFolder(_ ms: Int64) -> String {
        let c = utcComponents(ms)
        return String(format: "%04d/%02d/%02d", c.year, c.month, c.day)
    }

    static func parseStamp(_ s: Substring) -> Int64? {
        let digits = s.filter(\.isNumber)
        guard s.hasSuffix("Z"), digits.count == 12 || digits.count == 14 else { return nil }
        let n = Array(digits).map { Int(String($0))! }
        func num(_ from: Int, _ len: Int) -> Int { n[from..<(from + len)].reduce(0) { $0 * 10 + $1 } }
        var comps = DateComponents()
        comps.calendar = Calendar(identifier: .gregorian)
        comps.timeZone = TimeZone(identifier: "UTC")
        comps.year = num(0, 4); comps.month = num(4, 2); comps.day = num(6, 2)
        comps.hour = num(8, 2); comps.minute = num(10, 2); comps.second = digits.count == 14 ? num(12, 2) : 0
        guard let date = comps.date else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    private static func utcComponents(_ ms: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        // Civil-from-days (Howard Hinnant's algorithm): no calendar objects per call.
        let seconds = Int(floorDiv(ms, 1000))
        let days = floorDiv(Int64(seconds), 86400)
        let secOfDay = seconds - Int(days) * 86400
        let z = Int(days) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, secOfDay / 3600, secOfDay % 3600 / 60, secOfDay % 60)
    }
}

@inline(__always) func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
