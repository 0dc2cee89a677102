import FlowModel
import ShardStore
import StorageKit

/// Where a metric query reads a sealed shard's per-second traffic series
/// (`TrafficSeries`) instead of its rows: the console's topology (`rate` of Bytes or
/// Packets, `count_over_time`, summed by resource labels) over whole-second windows.
///
/// The answer is the rows' answer, not an approximation: the selection's conditions run
/// in SQLite over `series_groups AS r`, whose columns are `flow_rows`' own and identical
/// for every flow of a group, so they pick exactly the groups whose flows match; a second
/// `(s − 1000, s]` in milliseconds lies inside one window bucket when the buckets' width
/// and offset are whole seconds; sums are of integers. `applies` says when all of that
/// holds; anything else (a filter on a port, `max_over_time`, a grid off whole seconds,
/// a shard without a series) reads the rows as before.
enum SeriesAggregation {
    /// Whether a range aggregation with `plan` and grouping `columns` over `samples`' grid
    /// can read traffic series.
    static func applies(_ function: RangeAggregation.Function, plan: LogQLPlanner.Plan, columns: [MetricGroupColumn],
                        samples: BucketedSamples) -> Bool {
        switch function {
        case .rate, .countOverTime, .sumOverTime: break
        default: return false
        }
        guard plan.isExact, !plan.empty, samples.widthMs % 1000 == 0, samples.offsetMs % 1000 == 0 else { return false }
        if let field = plan.unwrappedField, !TrafficSeries.values.contains(field) { return false }
        if function == .sumOverTime && plan.unwrappedField == nil { return false }
        for column in columns {
            if case .field(let field) = column, !TrafficSeries.fields.contains(field) { return false }
        }
        return Self.columns(in: plan.conditions.joined(separator: " ")).isSubset(of: TrafficSeries.groupColumns)
    }

    /// The columns of `r` an SQL text names. The planner writes every column it reads as
    /// `r."Name"` (`LogQLPlanner.column`, `text`, the bookkeeping checks), so this finds
    /// them all; a quoted literal that happens to contain that shape only adds a name,
    /// which can only send the query to the rows.
    static func columns(in sql: String) -> Set<String> {
        var names = Set<String>()
        var rest = Substring(sql)
        while let start = rest.range(of: "r.\"") {
            rest = rest[start.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { break }
            names.insert(String(rest[..<end]))
            rest = rest[rest.index(after: end)...]
        }
        return names
    }

    /// Buckets a shard's series is summed into at most (a daily shard in 15-second buckets
    /// is 5,760); a finer grid reads the rows, whose groups keep only the buckets they have.
    static let maximumBuckets: Int64 = 20_000

    /// The buckets of `samples` that `shard`'s flows can fall in; nil when there are more
    /// than `maximumBuckets` (or none).
    static func buckets(of shard: ShardRecord, _ samples: BucketedSamples) -> ClosedRange<Int64>? {
        let first = max(samples.bucket(samples.lowMs + 1), shard.minTimeMs.map(samples.bucket) ?? .min)
        let last = min(samples.bucket(samples.highMs), shard.maxTimeMs.map(samples.bucket) ?? .max)
        guard first <= last, last - first < maximumBuckets else { return nil }
        return first...last
    }

    /// Output-and-bucket slots summed in dense arrays (16 bytes each: 64 MiB at most).
    static let denseSlots = 1 << 22

    /// A shard's series could not be decoded (its rows may still be sound).
    struct MalformedSeries: Error, CustomStringConvertible {
        let path: String
        var description: String { "the traffic series (series_data) of \(path) is malformed" }
    }

    /// Whether the shard at `reader` holds a complete traffic series.
    static func available(in reader: ShardReader) throws -> Bool {
        try reader.meta(TrafficSeries.metaKey) == TrafficSeries.version
    }

    /// Adds the shard's series to `samples`: per output label set and bucket, the flows
    /// and the unwrapped value's sum, in `buckets` (`buckets(of:_:)`). Throws
    /// `MalformedSeries`, having added nothing, for blobs that do not decode or seconds
    /// outside the shard's time range: the caller reads the shard's rows instead.
    static func aggregate(_ reader: ShardReader, plan: LogQLPlanner.Plan, names: [String], columns: [MetricGroupColumn],
                          buckets span: ClosedRange<Int64>, denseSlots: Int = denseSlots, into samples: inout BucketedSamples) throws {
        var groupLabels = MetricGroupLabels(names: names, columns: columns)
        let fields = groupLabels.fields
        var conditions = plan.conditions
        if let field = plan.unwrappedField { conditions.append("r.\"\(TrafficSeries.presenceColumn(field))\" = 1") }
        let value = plan.unwrappedField.map { ", d.\"\($0.name)\"" } ?? ""
        let select = (["r.group_id"] + fields.map { "r.\"\($0.field.name)\"" }).joined(separator: ", ")
        let sql = """
            SELECT \(select), d.seconds, d.counts\(value) FROM series_groups AS r JOIN series_data AS d ON d.group_id = r.group_id
            WHERE \(conditions.isEmpty ? "1" : conditions.joined(separator: " AND "))
            """
        let firstBucket = span.lowerBound, buckets = span.count
        var outputs: [LokiLabels] = []
        var outputIndex: [LokiLabels: Int] = [:]
        var outputOfGroup: [Int64: Int] = [:]
        // Per output and bucket, flows and sum: dense arrays for the first outputs (a
        // console query has tens of buckets and at most thousands of outputs), a
        // dictionary of the slots that have flows beyond `denseSlots`.
        var flows: [Int64] = []
        var sums: [Double] = []
        let denseOutputs = max(1, denseSlots / max(1, buckets))
        var sparse: [Int: (flows: Int64, sum: Double)] = [:]
        let secondsColumn = Int32(1 + fields.count)
        let lowMs = samples.lowMs, highMs = samples.highMs, widthMs = samples.widthMs, offsetMs = samples.offsetMs
        var malformed = false
        try reader.query(sql) { row in
            let group = row.integer(0)
            let output: Int
            if let known = outputOfGroup[group] {
                output = known
            } else {
                let labels = try groupLabels.labels(of: row, from: 1, in: reader)
                if let known = outputIndex[labels] {
                    output = known
                } else {
                    output = outputs.count
                    outputs.append(labels)
                    outputIndex[labels] = output
                    if output < denseOutputs {
                        flows += repeatElement(0, count: buckets)
                        sums += repeatElement(0, count: buckets)
                    }
                }
                outputOfGroup[group] = output
            }
            let base = output * buckets
            let ok = row.withBlob(secondsColumn) { seconds in
                row.withBlob(secondsColumn + 1) { counts in
                    let body = { (second: Int64, n: Int64, sum: UInt64) in
                        let ms = second * 1000
                        guard ms > lowMs, ms <= highMs else { return }
                        let bucket = BucketedSamples.bucket(ms, widthMs: widthMs, offsetMs: offsetMs)
                        // The catalog's time range of the shard bounds its seconds.
                        guard span.contains(bucket) else { malformed = true; return }
                        let slot = base + Int(bucket - firstBucket)
                        if output < denseOutputs {
                            flows[slot] += n
                            sums[slot] += Double(sum)
                        } else {
                            sparse[slot, default: (0, 0)].flows += n
                            sparse[slot, default: (0, 0)].sum += Double(sum)
                        }
                    }
                    if value.isEmpty {
                        return TrafficSeries.forEachSecond(seconds: seconds, counts: counts, value: nil, body)
                    }
                    return row.withBlob(secondsColumn + 2) { TrafficSeries.forEachSecond(seconds: seconds, counts: counts, value: $0, body) }
                }
            }
            if !ok { malformed = true }
        }
        if malformed { throw MalformedSeries(path: reader.path) }
        let unwrapped = plan.unwrappedField != nil
        func add(_ labels: LokiLabels, bucket: Int, flows n: Int64, sum: Double) {
            // As the rows' SQL: without a value each flow counts 1 (sum = count, min = max = 1).
            samples.add(labels, bucket: firstBucket + Int64(bucket), count: n, sum: unwrapped ? sum : Double(n),
                        min: unwrapped ? .infinity : 1, max: unwrapped ? -.infinity : 1)
        }
        for (output, labels) in outputs.enumerated().prefix(denseOutputs) {
            for b in 0..<buckets where flows[output * buckets + b] > 0 {
                add(labels, bucket: b, flows: flows[output * buckets + b], sum: sums[output * buckets + b])
            }
        }
        for (slot, total) in sparse { add(outputs[slot / buckets], bucket: slot % buckets, flows: total.flows, sum: total.sum) }
    }
}
