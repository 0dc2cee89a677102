import ArgumentParser
import Foundation
import ShardStore

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

/// `--from`, `--to` and `--since`: the time range of `query`, `top` and `export`, on `TimeFlowEndMs`.
struct TimeRangeOptions: ParsableArguments {
    @Option(help: "Start of the range (RFC 3339 or epoch ms), on TimeFlowEndMs.")
    var from: TimeArgument?

    @Option(help: "End of the range, exclusive (RFC 3339 or epoch ms).")
    var to: TimeArgument?

    @Option(help: "Only the last D before now (e.g. 15m, 1h, 7d); instead of --from.")
    var since: DurationArgument?

    func validate() throws {
        if since != nil && from != nil { throw ValidationError("use --since or --from, not both") }
    }

    var fromMs: Int64? {
        from?.epochMilliseconds ?? since.map { Int64(Date().timeIntervalSince1970 * 1000) - Int64($0.seconds * 1000) }
    }

    var toMs: Int64? { to?.epochMilliseconds }
}

/// Opens the store in `data` with the window it was written with, or says how to point at one.
func openExistingStore(_ data: String) throws -> ShardStore {
    guard FileManager.default.fileExists(atPath: data + "/catalog.sqlite") else {
        throw ValidationError("\(data) is not a flowrec data directory (no catalog.sqlite); pass --data")
    }
    return try ShardStore.openExisting(directory: data)
}

/// A CSV field: quoted when it holds a comma, a quote or a newline (quotes doubled).
func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

/// A size in bytes: `500MB`, `20GiB`, `1.5TB`, or a plain number of bytes. Decimal
/// (KB, MB, GB, TB) and binary (KiB, MiB, GiB, TiB) units, as `df -H` and `df -h` print.
struct ByteSizeArgument: ExpressibleByArgument, Sendable {
    let bytes: Int64

    init?(argument: String) {
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
            ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
        ]
        let text = argument.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let v = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v >= 0 else { return nil }
            bytes = Int64(v * factor)
            return
        }
        guard let v = Int64(text), v >= 0 else { return nil }
        bytes = v
    }
}

/// Free space to keep: a size (`20GiB`) or a share of the volume (`10%`).
struct FreeSpaceArgument: ExpressibleByArgument, Sendable {
    var bytes: Int64?
    var fraction: Double?

    init?(argument: String) {
        if argument.hasSuffix("%") {
            guard let percent = Double(argument.dropLast()), (0..<100).contains(percent) else { return nil }
            fraction = percent / 100
        } else {
            guard let size = ByteSizeArgument(argument: argument) else { return nil }
            bytes = size.bytes
        }
    }
}

/// Retention limits, shared by `record` (applied on a schedule) and `prune`.
struct RetentionOptions: ParsableArguments {
    @Option(help: "Delete sealed shards whose window ended longer ago than this (e.g. 30d, 12h).")
    var maxAge: DurationArgument?

    @Option(help: "Keep the shards' total size under this (e.g. 200GiB); pruned to the low watermark of it.")
    var maxSize: ByteSizeArgument?

    @Option(help: "Keep this much free on the data volume (e.g. 20GiB or 10%). The hard limit: undelivered shards go too when it is reached.")
    var minFree: FreeSpaceArgument?

    @Option(help: "A limit that is exceeded is brought down to this share of it (0.5-1).")
    var lowWatermark: Double = 0.9

    @Option(name: .customLong("require-forwarder"), help: "Keep shards this forwarder has not delivered yet (repeatable), unless free space runs out.")
    var requiredForwarders: [String] = []

    @Option(help: "Delete rollups of windows that ended longer ago than this (e.g. 400d); they outlive raw shards.")
    var rollupMaxAge: DurationArgument?

    @Option(help: "Longest time one retention run spends deleting; the next run continues.")
    var maxRunTime: DurationArgument = DurationArgument(argument: "30s")!

    var policy: RetentionPolicy {
        var policy = RetentionPolicy(maxAgeMs: maxAge.map { Int64($0.seconds * 1000) }, maxTotalBytes: maxSize?.bytes,
                                     minFreeBytes: minFree?.bytes, minFreeFraction: minFree?.fraction,
                                     lowWatermark: lowWatermark, requiredForwarders: requiredForwarders)
        policy.maxRunSeconds = maxRunTime.seconds
        policy.rollupMaxAgeMs = rollupMaxAge.map { Int64($0.seconds * 1000) }
        return policy
    }

    func validate() throws {
        do { try policy.validate() } catch { throw ValidationError(error.description) }
    }
}
