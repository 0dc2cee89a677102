import FlowModel

/// Names one shard: its time window and its part. Part 0 is the window's first shard;
/// a flow that arrives after its window was sealed opens the next part, so sealed
/// shards are never modified.
package struct ShardID: Hashable, Comparable, Sendable, CustomStringConvertible {
    package let windowStartMs: Int64
    package let windowEndMs: Int64
    package let part: Int

    package init(windowStartMs: Int64, windowEndMs: Int64, part: Int) {
        self.windowStartMs = windowStartMs
        self.windowEndMs = windowEndMs
        self.part = part
    }

    /// `20260101T0000Z_20260101T0100Z.0`: sorts by time, readable in `ls`.
    package var description: String {
        "\(Self.stamp(windowStartMs))_\(Self.stamp(windowEndMs)).\(part)"
    }

    /// `shards/YYYY/MM/DD/<id>.sqlite`, relative to the data directory.
    package var activeRelativePath: String {
        let day = Self.dayFolder(windowStartMs)
        return "shards/\(day)/\(description).sqlite"
    }

    /// The sealed file's path: the active path plus `.zst`.
    package var sealedRelativePath: String { activeRelativePath + ".zst" }

    package init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let part = Int(parts[1]) else { return nil }
        let times = parts[0].split(separator: "_")
        guard times.count == 2, let start = Self.parseStamp(times[0]), let end = Self.parseStamp(times[1]) else { return nil }
        self.init(windowStartMs: start, windowEndMs: end, part: part)
    }

    /// The shard a file is: `<id>.sqlite`, `<id>.sqlite.zst` (or a temporary of either).
    package init?(fileName: String) {
        guard let stem = fileName.split(separator: ".sqlite", maxSplits: 1, omittingEmptySubsequences: false).first,
              stem.count < fileName.count else { return nil }
        self.init(String(stem))
    }

    package static func < (a: ShardID, b: ShardID) -> Bool {
        (a.windowStartMs, a.part) < (b.windowStartMs, b.part)
    }

    static func stamp(_ ms: Int64) -> String {
        let c = EventTime.components(ms)
        let p = EventTime.padded
        return p(c.year, 4) + p(c.month, 2) + p(c.day, 2) + "T" + p(c.hour, 2) + p(c.minute, 2)
            + (c.second == 0 ? "" : p(c.second, 2)) + "Z"
    }

    static func dayFolder(_ ms: Int64) -> String {
        let c = EventTime.components(ms)
        return EventTime.padded(c.year, 4) + "/" + EventTime.padded(c.month, 2) + "/" + EventTime.padded(c.day, 2)
    }

    /// `YYYYMMDDTHHMM[SS]Z` in ASCII digits only; anything else (other digits, a stray
    /// character, an impossible date) is not a stamp.
    static func parseStamp(_ s: Substring) -> Int64? {
        let bytes = Array(s.utf8)
        guard bytes.count == 14 || bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes.last == UInt8(ascii: "Z") else { return nil }
        var digits: [Int64] = []
        for (i, b) in bytes.enumerated() where i != 8 && i != bytes.count - 1 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) else { return nil }
            digits.append(Int64(b - UInt8(ascii: "0")))
        }
        func num(_ from: Int, _ len: Int) -> Int64 { digits[from..<(from + len)].reduce(0) { $0 * 10 + $1 } }
        return EventTime.epochMs(year: num(0, 4), month: num(4, 2), day: num(6, 2), hour: num(8, 2), minute: num(10, 2),
                                 second: digits.count == 14 ? num(12, 2) : 0)
    }
}

@inline(__always) func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
