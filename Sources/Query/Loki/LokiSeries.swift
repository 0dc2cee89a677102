import Foundation

/// A Loki label set: name/value pairs sorted by name, empty values left out (in Loki's
/// model an empty value is no label).
package struct LokiLabels: Hashable, Sendable, Comparable, CustomStringConvertible {
    package private(set) var pairs: [Pair]

    package struct Pair: Hashable, Sendable {
        package let name: String
        package let value: String
    }

    package init(_ pairs: [(String, String)]) {
        var seen = Set<String>()
        self.pairs = pairs.filter { !$0.1.isEmpty && seen.insert($0.0).inserted }.map { Pair(name: $0.0, value: $0.1) }
            .sorted { $0.name < $1.name }
    }

    package subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    /// Only the labels named in `names`.
    func keeping(_ names: [String]) -> LokiLabels {
        LokiLabels(names.compactMap { name in self[name].map { (name, $0) } })
    }

    package static func < (a: LokiLabels, b: LokiLabels) -> Bool {
        for (x, y) in zip(a.pairs, b.pairs) where x != y {
            return x.name != y.name ? x.name < y.name : x.value < y.value
        }
        return a.pairs.count < b.pairs.count
    }

    /// `{a="x", b="y"}`, as Prometheus prints a label set.
    package var description: String {
        "{" + pairs.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ", ") + "}"
    }
}

/// The evaluation instants of a range query: `startMs + k * stepMs` for k in
/// `0..<count`, every instant at most the request's end (Loki steps the same way).
package struct StepGrid: Sendable, Equatable {
    package let startMs: Int64
    package let stepMs: Int64
    package let count: Int

    package init(startMs: Int64, stepMs: Int64, count: Int) {
        self.startMs = startMs
        self.stepMs = stepMs
        self.count = count
    }

    /// From a request's nanosecond bounds. A flow at `ms` is at or before an instant
    /// `T` (ns) exactly when `ms <= floor(T / 1e6)`, and steps are whole milliseconds,
    /// so the grid is exact in milliseconds.
    init(startNs: Int64, endNs: Int64, stepMs: Int64) {
        startMs = Self.floorDiv(startNs, 1_000_000)
        self.stepMs = stepMs
        count = Int((endNs - startNs) / (stepMs * 1_000_000)) + 1
    }

    package func instant(_ k: Int) -> Int64 { startMs + Int64(k) * stepMs }
    var lastMs: Int64 { instant(count - 1) }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
    static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }
}

/// One series of a range query's answer: its labels and a value (or none) per step.
package struct LokiSeries: Sendable, Equatable {
    package var labels: LokiLabels
    package var values: [Double?]

    package init(labels: LokiLabels, values: [Double?]) {
        self.labels = labels
        self.values = values
    }
}

/// Samples of a range aggregation, summed per group and per bucket of time: a bucket
/// is `((b-1)·w + o, b·w + o]` in milliseconds, where `w` divides both the step and the
/// range and `o` is the grid's offset, so every window `(T - range, T]` is a whole run of
/// buckets and the per-bucket partials give each window's value exactly.
struct BucketedSamples {
    struct Partial {
        var count: Int64 = 0
        var sum: Double = 0
        var min = Double.infinity
        var max = -Double.infinity
        /// Every value, for quantiles only.
        var values: [Double] = []

        mutating func add(_ value: Double, keep: Bool) {
            count += 1
            sum += value
            min = Swift.min(min, value)
            max = Swift.max(max, value)
            if keep { values.append(value) }
        }

        mutating func merge(_ other: Partial) {
            merge(count: other.count, sum: other.sum, min: other.min, max: other.max)
            values += other.values
        }

        mutating func merge(count: Int64, sum: Double, min: Double, max: Double) {
            self.count += count
            self.sum += sum
            self.min = Swift.min(self.min, min)
            self.max = Swift.max(self.max, max)
        }
    }

    let grid: StepGrid
    let rangeMs: Int64
    let widthMs: Int64
    let offsetMs: Int64
    let keepValues: Bool
    private(set) var groups: [LokiLabels: [Int64: Partial]] = [:]

    init(grid: StepGrid, rangeMs: Int64, keepValues: Bool) {
        self.grid = grid
        self.rangeMs = rangeMs
        widthMs = Self.gcd(grid.stepMs, rangeMs)
        offsetMs = StepGrid.floorMod(grid.startMs, widthMs)
        self.keepValues = keepValues
    }

    /// Samples in `(lowMs, highMs]` can fall in some window; nothing else is read.
    var lowMs: Int64 { grid.startMs - rangeMs }
    var highMs: Int64 { grid.lastMs }

    /// The bucket of a sample at `ms` (`ceil((ms - o) / w)`).
    func bucket(_ ms: Int64) -> Int64 { Self.bucket(ms, widthMs: widthMs, offsetMs: offsetMs) }

    static func bucket(_ ms: Int64, widthMs: Int64, offsetMs: Int64) -> Int64 { StepGrid.floorDiv(ms - offsetMs + widthMs - 1, widthMs) }

    /// SQL for the bucket of `r."TimeFlowEndMs"` (non-negative: stored times are).
    var bucketSQL: String { "((r.\"TimeFlowEndMs\" - \(offsetMs) + \(widthMs - 1)) / \(widthMs))" }

    var groupCount: Int { groups.count }

    mutating func add(_ labels: LokiLabels, ms: Int64, value: Double) {
        groups[labels, default: [:]][bucket(ms), default: Partial()].add(value, keep: keepValues)
    }

    /// Adds the samples another part of the same range gathered (same grid and range).
    mutating func merge(_ other: BucketedSamples) {
        for (labels, buckets) in other.groups {
            for (bucket, partial) in buckets {
                groups[labels, default: [:]][bucket, default: Partial()].merge(partial)
            }
        }
    }

    mutating func add(_ labels: LokiLabels, bucket: Int64, count: Int64, sum: Double, min: Double, max: Double) {
        groups[labels, default: [:]][bucket, default: Partial()].merge(count: count, sum: sum, min: min, max: max)
    }

    /// Each group's value at every step under `function` (nil where its window is empty).
    func evaluate(_ function: RangeAggregation.Function, quantile: Double?, unwrapped: Bool) -> [LokiSeries] {
        let seconds = Double(rangeMs) / 1000
        let perWindow = rangeMs / widthMs
        var out: [LokiSeries] = []
        out.reserveCapacity(groups.count)
        for (labels, buckets) in groups {
            let sorted = buckets.keys.sorted()
            var values = [Double?](repeating: nil, count: grid.count)
            var any = false
            var first = 0
            for k in 0..<grid.count {
                // Buckets (T - range, T]: from (T - o) / w - range / w + 1 through (T - o) / w.
                let last = StepGrid.floorDiv(grid.instant(k) - offsetMs, widthMs)
                let lowest = last - perWindow + 1
                while first < sorted.count && sorted[first] < lowest { first += 1 }
                var window = Partial()
                var i = first
                var gathered: [Double] = []
                while i < sorted.count && sorted[i] <= last {
                    let p = buckets[sorted[i]]!
                    window.merge(count: p.count, sum: p.sum, min: p.min, max: p.max)
                    if function == .quantileOverTime { gathered += p.values }
                    i += 1
                }
                guard window.count > 0 else { continue }
                let value: Double
                switch function {
                case .rate: value = (unwrapped ? window.sum : Double(window.count)) / seconds
                case .countOverTime: value = Double(window.count)
                case .sumOverTime: value = window.sum
                case .avgOverTime: value = window.sum / Double(window.count)
                case .minOverTime: value = window.min
                case .maxOverTime: value = window.max
                case .quantileOverTime: value = Self.quantile(quantile ?? 0.5, of: &gathered)
                }
                values[k] = value
                any = true
            }
            if any { out.append(LokiSeries(labels: labels, values: values)) }
        }
        return out
    }

    /// Prometheus's `quantile`: linear interpolation between the closest ranks.
    static func quantile(_ q: Double, of values: inout [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        values.sort()
        let rank = q * Double(values.count - 1)
        let lower = Int(rank.rounded(.down))
        let upper = min(lower + 1, values.count - 1)
        let weight = rank - Double(lower)
        return values[lower] * (1 - weight) + values[upper] * weight
    }

    static func gcd(_ a: Int64, _ b: Int64) -> Int64 {
        var (x, y) = (abs(a), abs(b))
        while y != 0 { (x, y) = (y, x % y) }
        return max(x, 1)
    }
}

/// Vector operations over the series of a range query, step by step.
enum SeriesMath {
    /// `op by (labels) (series)`: at every step, the present values of the series that
    /// share the listed labels (all series when `by` is nil) combined by `op`.
    static func aggregate(_ op: VectorAggregation.Operator, by names: [String]?, _ series: [LokiSeries], steps: Int) -> [LokiSeries] {
        var groups: [LokiLabels: (sum: [Double], count: [Int], min: [Double], max: [Double])] = [:]
        // In label order: floating-point sums then come out the same however the series
        // were found.
        for s in series.sorted(by: { $0.labels < $1.labels }) {
            let key = s.labels.keeping(names ?? [])
            var g = groups[key] ?? ([Double](repeating: 0, count: steps), [Int](repeating: 0, count: steps),
                                    [Double](repeating: .infinity, count: steps), [Double](repeating: -.infinity, count: steps))
            for (k, v) in s.values.enumerated() {
                guard let v else { continue }
                g.sum[k] += v
                g.count[k] += 1
                g.min[k] = min(g.min[k], v)
                g.max[k] = max(g.max[k], v)
            }
            groups[key] = g
        }
        return groups.map { labels, g in
            LokiSeries(labels: labels, values: (0..<steps).map { k -> Double? in
                guard g.count[k] > 0 else { return nil }
                switch op {
                case .sum: return g.sum[k]
                case .avg: return g.sum[k] / Double(g.count[k])
                case .min: return g.min[k]
                case .max: return g.max[k]
                case .count: return Double(g.count[k])
                }
            })
        }
    }

    /// `topk`/`bottomk`: at every step the `k` largest (smallest) present values; a series
    /// keeps the points where it was among them, and goes when it never was.
    static func rank(_ k: Int, bottom: Bool, _ series: [LokiSeries], steps: Int) -> [LokiSeries] {
        var kept = series.map { LokiSeries(labels: $0.labels, values: [Double?](repeating: nil, count: steps)) }
        for step in 0..<steps {
            var present: [(index: Int, value: Double)] = []
            for (i, s) in series.enumerated() { if let v = s.values[step] { present.append((i, v)) } }
            guard !present.isEmpty else { continue }
            // Ties by labels, so the same data gives the same answer every time.
            present.sort { a, b in
                if a.value != b.value { return bottom ? a.value < b.value : a.value > b.value }
                return series[a.index].labels < series[b.index].labels
            }
            for entry in present.prefix(k) { kept[entry.index].values[step] = entry.value }
        }
        return kept.filter { $0.values.contains { $0 != nil } }
    }
}

/// Numbers as Prometheus and Loki print them in JSON.
enum LokiNumber {
    /// A sample value: Go's `strconv.FormatFloat(v, 'f', -1, 64)` (shortest digits that
    /// read back the same, never an exponent); `NaN`, `+Inf`, `-Inf`.
    static func sample(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        let shortest = "\(v)"
        guard let e = shortest.firstIndex(where: { $0 == "e" || $0 == "E" }) else {
            return shortest.hasSuffix(".0") ? String(shortest.dropLast(2)) : shortest
        }
        // Expand d.ddde±x into plain decimal digits.
        let mantissa = shortest[..<e]
        let exponent = Int(shortest[shortest.index(after: e)...]) ?? 0
        let negative = mantissa.hasPrefix("-")
        let unsigned = negative ? mantissa.dropFirst() : mantissa
        let parts = unsigned.split(separator: ".", omittingEmptySubsequences: false)
        let whole = String(parts[0])
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        let digits = whole + fraction
        let point = whole.count + exponent
        var text: String
        if point <= 0 {
            text = "0." + String(repeating: "0", count: -point) + digits
        } else if point >= digits.count {
            text = digits + String(repeating: "0", count: point - digits.count)
        } else {
            let i = digits.index(digits.startIndex, offsetBy: point)
            text = digits[..<i] + "." + digits[i...]
        }
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return (negative ? "-" : "") + text
    }

    /// A sample time in seconds (`model.Time`: milliseconds, printed as seconds).
    static func seconds(ms: Int64) -> String {
        let whole = StepGrid.floorDiv(ms, 1000)
        let fraction = StepGrid.floorMod(ms, 1000)
        guard fraction != 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
