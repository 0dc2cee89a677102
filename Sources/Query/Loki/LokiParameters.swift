import Foundation

/// A request the Loki API refused: the HTTP status and Loki's kind of message (the
/// console shows a 400's body as "Loki message: ...", so it must say what to change).
package struct LokiRequestError: Error, Sendable, CustomStringConvertible {
    package let status: Int
    package let message: String

    package init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    package var description: String { message }
}

/// The query string of a Loki request, parsed as Go's `url.ParseQuery` does: the console
/// plugin sends LogQL unescaped (`{`, `"`, `|`, backticks) with `+` for the spaces of
/// `+or+`, and `%22`/`%20` only in metric queries.
package enum LokiQueryString {
    /// Parameters by name (the first value wins, as `url.Values.Get` takes it).
    package static func parse(_ raw: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let (key, value): (Substring, Substring)
            if let eq = pair.firstIndex(of: "=") {
                (key, value) = (pair[..<eq], pair[pair.index(after: eq)...])
            } else {
                (key, value) = (pair, "")
            }
            let name = decode(key)
            if result[name] == nil { result[name] = decode(value) }
        }
        return result
    }

    /// `+` becomes a space and `%XX` its byte; a `%` not followed by two hex digits stays.
    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        let utf8 = Array(text.utf8)
        var i = 0
        while i < utf8.count {
            let c = utf8[i]
            if c == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if c == UInt8(ascii: "%"), i + 2 < utf8.count, let h = hex(utf8[i + 1]), let l = hex(utf8[i + 2]) {
                bytes.append(h << 4 | l)
                i += 2
            } else {
                bytes.append(c)
            }
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Loki's time and duration parameters, read as `pkg/loghttp/params.go` reads them.
package enum LokiTime {
    /// Latest instant the API accepts (9999-12-31, in nanoseconds it would overflow: Loki's
    /// own bound is 2262, the end of int64 nanoseconds).
    static let maxNanos = Int64.max

    /// `start`/`end`/`time`: an integer of at most 10 digits is Unix seconds, a longer one
    /// nanoseconds; a number with a fraction is seconds; else RFC 3339 (fractions allowed).
    package static func nanos(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { return nil }
        if t.allSatisfy({ $0.isASCII && $0.isNumber }) || (t.hasPrefix("-") && t.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber })) {
            guard let n = Int64(t) else { return nil }
            if t.count <= 10 { return n.multipliedReportingOverflow(by: 1_000_000_000).overflow ? nil : n * 1_000_000_000 }
            return n
        }
        if let seconds = Double(t), seconds.isFinite, t.contains(".") {
            let ns = seconds * 1e9
            guard abs(ns) < 9.2e18 else { return nil }
            return Int64(ns.rounded())
        }
        return rfc3339Nanos(t)
    }

    /// `2026-01-01T00:00:00Z`, `2026-01-01T00:00:00.123456789+02:00`.
    static func rfc3339Nanos(_ t: String) -> Int64? {
        let utf8 = Array(t.utf8)
        // Split off the fraction so every precision is kept (Foundation keeps milliseconds).
        guard let dot = utf8.firstIndex(of: UInt8(ascii: ".")) else { return wholeSeconds(t).map { $0 * 1_000_000_000 } }
        var end = dot + 1
        while end < utf8.count, utf8[end] >= UInt8(ascii: "0"), utf8[end] <= UInt8(ascii: "9") { end += 1 }
        let digits = utf8[(dot + 1)..<end]
        guard !digits.isEmpty, digits.count <= 9 else { return nil }
        let fraction = Int64(String(decoding: digits, as: UTF8.self))! * Int64(pow(10.0, Double(9 - digits.count)))
        let rest = String(decoding: utf8[..<dot] + utf8[end...], as: UTF8.self)
        guard let seconds = wholeSeconds(rest) else { return nil }
        return seconds * 1_000_000_000 + fraction
    }

    private static func wholeSeconds(_ t: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: t) else { return nil }
        return Int64(date.timeIntervalSince1970)
    }

    /// A step or duration in milliseconds: a Go/Prometheus duration (`15s`, `1m30s`,
    /// `500ms`, `2h`) or a number of seconds (`15`, `0.5`). Nil when not one, not
    /// positive, or finer than a millisecond.
    package static func durationMs(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(t) {
            guard seconds.isFinite, seconds > 0, seconds < 1e12 else { return nil }
            let ms = seconds * 1000
            guard ms == ms.rounded() else { return nil }
            return Int64(ms)
        }
        var total: Double = 0
        var rest = Substring(t)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1e-6
            case "us", "µs": scale = 1e-3
            case "ms": scale = 1
            case "s": scale = 1000
            case "m": scale = 60_000
            case "h": scale = 3_600_000
            case "d": scale = 86_400_000
            case "w": scale = 604_800_000
            case "y": scale = 31_536_000_000
            default: return nil
            }
            total += value * scale
        }
        guard total > 0, total < 1e15, total == total.rounded() else { return nil }
        return Int64(total)
    }
}

/// What `GET /loki/api/v1/query_range` asks, with Loki's defaults filled in.
package struct LokiRangeRequest: Sendable {
    package enum Direction: String, Sendable { case backward, forward }

    package var query: LogQLQuery
    /// Inclusive start and (for log queries) exclusive end, nanoseconds since the epoch.
    package var startNs: Int64
    package var endNs: Int64
    package var limit: Int
    package var stepMs: Int64
    package var direction: Direction

    /// Loki's defaults: the last hour, 100 entries, newest first.
    package static let defaultLimit = 100
    package static let defaultSinceNs: Int64 = 3_600 * 1_000_000_000
    /// Loki's bound on points per series (`max resolution`).
    package static let maxPoints: Int64 = 11_000

    /// Reads the parameters (`nowNs`: the time `end` defaults to). `maxEntries` and
    /// `maxLengthNs` are the API's limits (`limits_config`).
    package init(_ q: [String: String], nowNs: Int64, maxEntries: Int, maxLengthNs: Int64) throws(LokiRequestError) {
        guard let text = q["query"], !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw LokiRequestError(400, "query is required: a LogQL query such as {app=\"netobserv-flowcollector\"}")
        }
        do {
            query = try LogQLParser.parse(text)
        } catch {
            throw LokiRequestError(400, error.description)
        }
        (startNs, endNs) = try Self.range(q, nowNs: nowNs, defaultSinceNs: Self.defaultSinceNs)
        guard endNs >= startNs else { throw LokiRequestError(400, "end timestamp must not be before or equal to start time") }
        guard endNs - startNs <= maxLengthNs else {
            throw LokiRequestError(400, "the query time range exceeds the limit (query length: \(Self.hours(endNs - startNs)), limit: \(Self.hours(maxLengthNs)))")
        }
        if let text = q["limit"] {
            guard let value = Int(text), value > 0 else { throw LokiRequestError(400, "invalid limit '\(text)': a positive integer is expected") }
            limit = value
        } else {
            limit = Self.defaultLimit
        }
        if case .logs = query, limit > maxEntries {
            throw LokiRequestError(400, "max entries limit per query exceeded, limit > max_entries_limit (\(limit) > \(maxEntries))")
        }
        if let text = q["step"] {
            guard let ms = LokiTime.durationMs(text) else {
                throw LokiRequestError(400, "invalid step '\(text)': a positive duration of whole milliseconds (15s, 1m) or a number of seconds is expected")
            }
            stepMs = ms
        } else {
            // Loki's default: about 250 points over the range, at least one second.
            stepMs = max((endNs - startNs) / 250 / 1_000_000_000, 1) * 1000
        }
        if case .metric = query, (endNs - startNs) / (stepMs * 1_000_000) > Self.maxPoints {
            throw LokiRequestError(400, "exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of the step parameter")
        }
        switch q["direction"]?.lowercased() {
        case nil, "backward": direction = .backward
        case "forward": direction = .forward
        case let other?: throw LokiRequestError(400, "invalid direction '\(other)': forward or backward")
        }
    }

    /// `start`, `end` and `since` as Loki reads them: `end` defaults to now, `start` to
    /// `end` minus `since` (or `defaultSinceNs`). Shared by query_range and the label
    /// endpoints (whose default is six hours).
    package static func range(_ q: [String: String], nowNs: Int64, defaultSinceNs: Int64) throws(LokiRequestError) -> (startNs: Int64, endNs: Int64) {
        func time(_ name: String) throws(LokiRequestError) -> Int64? {
            guard let value = q[name] else { return nil }
            guard let ns = LokiTime.nanos(value) else {
                throw LokiRequestError(400, "invalid \(name) '\(value)': Unix seconds, nanoseconds or RFC 3339 are accepted")
            }
            return ns
        }
        let end = try time("end") ?? nowNs
        var since = defaultSinceNs
        if let text = q["since"] {
            guard let ms = LokiTime.durationMs(text) else { throw LokiRequestError(400, "invalid since '\(text)': a duration such as 1h is expected") }
            since = ms * 1_000_000
        }
        return (try time("start") ?? end - since, end)
    }

    private static func hours(_ ns: Int64) -> String {
        let hours = Double(ns) / 3.6e12
        return hours == hours.rounded() ? "\(Int64(hours))h" : String(format: "%.1fh", hours)
    }
}
