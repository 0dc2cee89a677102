import ArgumentParser
import FlowrecConfig
import Foundation
import Query
import ShardStore

/// How values are shown: times as a person reads them, protocol names, humanised
/// totals; `--raw` gives the stored values back (epoch milliseconds, protocol numbers,
/// exact counts), as JSON and CSV do unless asked otherwise.
struct DisplayOptions: ParsableArguments {
    enum TimeFormat: String, ExpressibleByArgument, CaseIterable {
        case epochMs = "epoch-ms", rfc3339, local
    }

    @Option(help: "How times print: rfc3339 (UTC, the default in tables), local (this machine's zone), or epoch-ms (the default in json, jsonl and csv).")
    var timeFormat: TimeFormat?

    @Flag(help: "Print stored values as they are: epoch milliseconds, protocol numbers, exact byte and packet counts.")
    var raw = false

    /// The time format for an output format: the option, else what the format's readers expect.
    func timeFormat(for format: QueryCommand.Format) -> TimeFormat {
        if raw { return .epochMs }
        return timeFormat ?? (format == .table ? .rfc3339 : .epochMs)
    }
}

/// What a cell says, one rule per kind of column, shared by every command that prints rows.
struct CellText {
    let time: DisplayOptions.TimeFormat
    /// Protocol names and humanised totals (tables, unless --raw).
    let friendly: Bool
    /// Humanise the BYTES / PACKETS / FLOWS totals of `top` and `series`.
    let humaniseTotals: Bool

    /// Columns holding an epoch time, and the factor to milliseconds.
    static let timeColumns: [String: Int64] = ["TimeFlowStartMs": 1, "TimeFlowEndMs": 1, "TimeReceived": 1000, "TIME": 1]

    /// The spelling of an absent value in a table (JSON writes null, CSV leaves the field empty).
    static let absent = "-"

    func text(_ value: QueryValue, column: String) -> String {
        if case .null = value { return Self.absent }
        if let factor = Self.timeColumns[column], time != .epochMs, case .integer(let v) = value {
            return Self.format(v &* factor, time)
        }
        if friendly {
            if column == "Proto", case .integer(let v) = value, let name = Self.protocols[v] { return name }
            if humaniseTotals, case .integer(let v) = value {
                switch column {
                case "BYTES": return Self.bytes(v)
                case "PACKETS", "FLOWS": return Self.count(v)
                default: break
                }
            }
        }
        if case .text(let t) = value, t.isEmpty { return Self.absent }
        return value.text
    }

    static func format(_ ms: Int64, _ time: DisplayOptions.TimeFormat) -> String {
        switch time {
        case .epochMs: return String(ms)
        case .rfc3339: return TimeExpression.rfc3339(ms)
        case .local:
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS ZZZZZ"
            formatter.timeZone = .current
            return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
        }
    }

    /// IANA protocol numbers NetObserv flows carry.
    static let protocols: [Int64: String] = [1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP", 51: "AH",
                                             58: "ICMPv6", 89: "OSPF", 112: "VRRP", 132: "SCTP"]

    /// `932 B`, `14.2 KiB`, `7.1 GiB`.
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(n), unit = 0
        while abs(value) >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }

    /// `932`, `14.2k`, `7.1M`, `2.0G`.
    static func count(_ n: Int64) -> String {
        let units = ["", "k", "M", "G", "T"]
        var value = Double(n), unit = 0
        while abs(value) >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(n)" : String(format: value < 10 ? "%.1f%@" : "%.0f%@", value, units[unit])
    }
}

/// What a range that holds nothing says: the range asked and the range the store holds,
/// so "(no flows)" after `--since 1h` on last week's store explains itself.
enum StoreSpan {
    static func noFlows(_ store: ShardStore, fromMs: Int64?, toMs: Int64?) -> String {
        let asked = "between \(fromMs.map(TimeExpression.rfc3339) ?? "the start") and \(toMs.map(TimeExpression.rfc3339) ?? "now")"
        guard let shards = try? store.shards(), let first = shards.compactMap(\.minTimeMs).min(),
              let last = shards.compactMap(\.maxTimeMs).max() else {
            return "(no flows \(asked): the store is empty)"
        }
        return "(no flows \(asked); the store holds flows from \(TimeExpression.rfc3339(first)) to \(TimeExpression.rfc3339(last)))"
    }
}
