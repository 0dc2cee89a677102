import FlowModel
package import ShardStore
import StorageKit
import Synchronization
import Dispatch
import Foundation

/// Where a Loki query is answered: `query_range`'s log and metric queries and the label
/// endpoints, over the shards of a store, as Loki would answer them for the streams
/// `LokiStreamModel` describes.
///
/// Each shard in the range is opened read-only, within `QueryLimits`. The selection is
/// planned per shard (`LogQLPlanner`): what it translates exactly runs in SQLite over
/// the stored columns; the rest is checked on the decoded flows the SQL lets through
/// (`LogQLFlowEvaluator`), so every answer is Loki's whichever path computed it.
/// Metric queries aggregate per group and per time bucket inside SQLite when the plan
/// is exact and the grouping labels are stored columns, and over decoded flows
/// otherwise; windows, steps, `topk` and the rest follow in `LokiSeries`.
package struct LokiQueryEngine {
    package let store: ShardStore
    package let model: LokiStreamModel
    package var limits: QueryLimits
    /// Loki's `max_query_series`: a metric answer with more series is refused.
    package var maxSeries = 10_000
    /// Groups a metric query may hold while it aggregates (memory bound).
    package var maxGroups = 500_000
    /// Rows per part of a shard in metric queries (whole granules; tests cut smaller).
    package var rowsPerPart = ScanPlanner.rowsPerPart
    /// Whether selections are translated to SQL; off, every flow of the range is decoded
    /// and checked by `LogQLFlowEvaluator` (the reference the tests compare with).
    package var translatesToSQL = true
    /// Whether sealed shards' traffic series answer the metric queries they can
    /// (`SeriesAggregation`); off, those read rows too (tests compare both).
    package var readsTrafficSeries = true
    /// Output-and-bucket slots a traffic-series answer sums densely (tests make it 1, so
    /// every output but the first takes the sparse path).
    package var seriesDenseSlots = SeriesAggregation.denseSlots

    package init(store: ShardStore, model: LokiStreamModel, limits: QueryLimits) {
        self.store = store
        self.model = model
        self.limits = limits
    }

    package enum Answer: Sendable {
        case streams([LokiStream])
        case matrix(StepGrid, [LokiSeries])
    }

    /// One stream of a log answer: its labels and entries in the answer's direction.
    package struct LokiStream: Sendable, Equatable {
        package var labels: LokiLabels
        package var entries: [Entry]

        package struct Entry: Sendable, Equatable {
            package var nanos: Int64
            package var line: String
        }
    }

    /// What a query did, for `stats` and for tests of the planner. A metric query's
    /// workers count into it at once.
    package final class Statistics: Sendable {
        private let shardsReadCount = Atomic<Int>(0)
        private let flowsDecodedCount = Atomic<Int>(0)
        private let aggregatedInSQLCount = Atomic<Int>(0)
        private let fromSeriesCount = Atomic<Int>(0)
        package var shardsRead: Int { shardsReadCount.load(ordering: .relaxed) }
        package var flowsDecoded: Int { flowsDecodedCount.load(ordering: .relaxed) }
        /// Shards aggregated by SQLite's GROUP BY (not flow by flow).
        package var aggregatedInSQL: Int { aggregatedInSQLCount.load(ordering: .relaxed) }
        func countShardRead() { shardsReadCount.add(1, ordering: .relaxed) }
        func countDecoded(_ n: Int = 1) { flowsDecodedCount.add(n, ordering: .relaxed) }
        func countAggregatedInSQL() { aggregatedInSQLCount.add(1, ordering: .relaxed) }
        /// Shards whose traffic series answered (`SeriesAggregation`), their rows unread.
        package var fromSeries: Int { fromSeriesCount.load(ordering: .relaxed) }
        func countFromSeries() { fromSeriesCount.add(1, ordering: .relaxed) }
        private let seriesFallbackCount = Atomic<Int>(0)
        /// Shards whose traffic series did not decode, read as rows instead.
        package var seriesFallbacks: Int { seriesFallbackCount.load(ordering: .relaxed) }
        func countSeriesFallback() { seriesFallbackCount.add(1, ordering: .relaxed) }
        /// Damaged shards skipped (the answer's `warnings`).
        package let unreadable = UnreadableShards()
        /// Shards ruled out, granules read.
        package let scan = ScanStatistics()
        package init() {}
    }

    package func run(_ request: LokiRangeRequest, statistics: Statistics = Statistics()) throws -> Answer {
        switch request.query {
        case .logs(let selection):
            return .streams(try logs(selection, request, statistics))
        case .metric(let expression):
            let grid = StepGrid(startNs: request.startNs, endNs: request.endNs, stepMs: request.stepMs)
            let context = MetricContext(engine: self, grid: grid, statistics: statistics)
            var series = try context.evaluate(expression)
            guard series.count <= maxSeries else { throw Self.tooManySeries(maxSeries) }
            series.sort { $0.labels < $1.labels }
            return .matrix(grid, series)
        }
    }

    static func tooManySeries(_ n: Int) -> QueryError {
        QueryError(.invalidArgument, "maximum of series (\(n)) reached for a single query; group by fewer labels or filter more")
    }

    // MARK: Log queries

    /// Candidates kept across shards: the `limit` newest (oldest, forward) entries.
    private struct Candidate {
        var ms: Int64
        var shard: Int
        var rowID: Int64
        var labels: LokiLabels
        var line: String
    }

    private func logs(_ selection: LogSelection, _ request: LokiRangeRequest, _ statistics: Statistics) throws -> [LokiStream] {
        // Entries at or after start and before end, in nanoseconds; flows are at whole ms.
        let fromMs = Self.ceilDiv(request.startNs, 1_000_000)
        let toMs = Self.ceilDiv(request.endNs, 1_000_000)
        guard fromMs < toMs, request.limit > 0 else { return [] }
        let backward = request.direction == .backward
        let planner = ScanPlanner(store: store, statistics: statistics.scan)
        let skip = translatesToSQL ? LogQLPlanner(model: model, encoding: .plain).skipFilter(selection, fromMs: fromMs, toMs: toMs)
            : SkipFilter(fromMs: fromMs, toMs: toMs)
        // Shards in reading order; their skip summaries are consulted as the scan reaches
        // them (a flow table of 100 lines usually stops after the newest few).
        var shards = try planner.shardsInRange(for: skip)
        shards.sort { backward ? ($0.maxTimeMs ?? 0, $0.id) > ($1.maxTimeMs ?? 0, $1.id) : ($0.minTimeMs ?? 0, $0.id) < ($1.minTimeMs ?? 0, $1.id) }
        let guarding = QueryGuard(limits)
        let evaluator = LogQLFlowEvaluator(model: model, selection: selection)
        var kept: [Candidate] = []
        func before(_ a: Candidate, _ b: Candidate) -> Bool {
            if a.ms != b.ms { return backward ? a.ms > b.ms : a.ms < b.ms }
            if a.shard != b.shard { return backward ? a.shard > b.shard : a.shard < b.shard }
            return backward ? a.rowID > b.rowID : a.rowID < b.rowID
        }
        var rank = -1
        var nothingMatches = false
        try planner.forEachCandidateGroup(shards.map { [$0] }, filter: skip) { group in
            let shard = group[0]
            rank += 1
            // Shards come newest (oldest) first: one whose flows all lose to the kept
            // ones cannot contribute, nor can any after it.
            if kept.count == request.limit, let worst = kept.last {
                if backward, let maxT = shard.maxTimeMs, maxT < worst.ms { return false }
                if !backward, let minT = shard.minTimeMs, minT > worst.ms { return false }
            }
            guard let reader = try Self.reader(shard.id, store, guarding, statistics) else { return true }
            guard let granules = try Self.granules(reader, shard.id, skip, statistics) else { return true }
            let functions = LogQLSQLFunctions()
            functions.register(on: reader.db)
            let plan = translatesToSQL ? Self.planner(model, reader).plan(selection) : .untranslated
            if plan.empty {
                nothingMatches = true
                return false
            }
            let conditions = ["r.\"TimeFlowEndMs\" >= \(fromMs)", "r.\"TimeFlowEndMs\" < \(toMs)"] + plan.allConditions
            let direction = backward ? "DESC" : "ASC"
            let order = "r.\"TimeFlowEndMs\" \(direction), r.rowid \(direction)"
            var taken = 0
            let threshold = kept.count == request.limit ? kept.last : nil
            do {
                var selected = conditions.joined(separator: " AND ")
                var rows = granules
                if plan.isExact {
                    // Pick the rows by row id and time first, then read only those whole:
                    // `ORDER BY ... LIMIT` over whole rows builds a 117-column sort record
                    // for every row that passes the filter (the flow table of the Loki
                    // benchmark, by hand over HTTP: 190 ms that way, 55 ms this way).
                    var picked: [Int64] = []
                    try reader.query("SELECT r.rowid FROM \(granules.source(where: [selected])) ORDER BY \(order) LIMIT \(request.limit)") {
                        picked.append($0.integer(0))
                    }
                    if picked.isEmpty { return true }
                    selected = "r.rowid IN (\(picked.map(String.init).joined(separator: ",")))"
                    rows = .all
                }
                try reader.forEachFlow(in: rows, where: selected, orderBy: order, limit: nil) { rowID, flow in
                    statistics.countDecoded()
                    let ms = flow.integer(FlowSchema.requiredField) ?? 0
                    if let threshold, backward ? ms < threshold.ms : ms > threshold.ms { return false }
                    if !plan.isExact, try evaluator.evaluate(flow) == nil { return true }
                    var line: [UInt8] = []
                    model.line(of: flow, into: &line)
                    kept.append(Candidate(ms: ms, shard: rank, rowID: rowID, labels: LokiLabels(model.streamLabels(of: flow)),
                                          line: String(decoding: line, as: UTF8.self)))
                    taken += 1
                    return taken < request.limit
                }
            } catch where functions.failure == nil && guarding.interruption() == nil && statistics.unreadable.skip(shard.id, after: error) {
                return true
            } catch {
                throw guarding.explain(functions.failure ?? error, "the LogQL query could not be run")
            }
            kept.sort(by: before)
            if kept.count > request.limit { kept.removeLast(kept.count - request.limit) }
            return true
        }
        if nothingMatches { return [] }
        var streams: [LokiLabels: [LokiStream.Entry]] = [:]
        for candidate in kept {
            streams[candidate.labels, default: []].append(.init(nanos: candidate.ms * 1_000_000, line: candidate.line))
        }
        return streams.map { LokiStream(labels: $0.key, entries: $0.value) }.sorted { $0.labels < $1.labels }
    }

    /// A reader of `shard` for the query, or nil when its file is damaged: it is skipped
    /// and named in the answer's warnings, and the rest of the range still answers.
    static func reader(_ shard: ShardID, _ store: ShardStore, _ guarding: QueryGuard, _ statistics: Statistics) throws -> ShardReader? {
        try reader(shard, store.directory, guarding, statistics)
    }

    /// `counting` is false for a shard's later parts, so each shard counts once as read.
    static func reader(_ shard: ShardID, _ directory: URL, _ guarding: QueryGuard, _ statistics: Statistics,
                       counting: Bool = true) throws -> ShardReader? {
        do {
            let reader = try guarding.reader(for: shard, in: directory)
            if counting { statistics.countShardRead() }
            return reader
        } catch where statistics.unreadable.skip(shard, after: error) {
            return nil
        }
    }

    /// The planner for one shard: its time encoding, and which fields its rows list as
    /// quoted or null (unknown when the shard does not say, or its `meta` cannot be
    /// read: then every check stays, and a damaged file shows in the query itself).
    static func planner(_ model: LokiStreamModel, _ reader: ShardReader) -> LogQLPlanner {
        LogQLPlanner(model: model, encoding: reader.timeEncoding, bookkeeping: (try? reader.bookkeepingFields()) ?? nil)
    }

    /// The rows of a shard's candidate granules (all of them when it has no skip
    /// index), or nil when none can match or the shard is damaged.
    static func granules(_ reader: ShardReader, _ shard: ShardID, _ skip: SkipFilter, _ statistics: Statistics,
                         within rowids: (above: Int64?, atMost: Int64?) = (nil, nil)) throws -> RowSelection? {
        do {
            let rows = RowSelection(try ScanPlanner.rowRanges(reader, filter: skip, within: rowids, statistics: statistics.scan))
            return rows.isEmpty ? nil : rows
        } catch where statistics.unreadable.skip(shard, after: error) {
            return nil
        }
    }

    static func ceilDiv(_ a: Int64, _ b: Int64) -> Int64 { -StepGrid.floorDiv(-a, b) }

    // MARK: Labels

    /// The values label `name` takes on flows of [startNs, endNs), sorted; empty for a
    /// name that is not a label (as Loki answers).
    package func labelValues(_ name: String, startNs: Int64, endNs: Int64) throws -> [String] {
        let fromMs = Self.ceilDiv(startNs, 1_000_000), toMs = Self.ceilDiv(endNs, 1_000_000)
        let shards = try store.shards(overlappingFromMs: fromMs, toMs: toMs)
        if let value = model.staticLabels[name] { return shards.isEmpty ? [] : [value] }
        guard let field = FlowSchema.id(named: name), model.labelFields.contains(field) else { return [] }
        let guarding = QueryGuard(limits)
        var values = Set<String>()
        for shard in shards {
            let reader = try guarding.reader(for: shard.id, in: store)
            let column = "r.\"\(field.name)\""
            do {
                try reader.query("""
                    SELECT DISTINCT \(column) FROM flow_rows AS r
                    WHERE r."TimeFlowEndMs" >= \(fromMs) AND r."TimeFlowEndMs" < \(toMs) AND \(column) IS NOT NULL
                    """) { row in
                    if let text = try Self.labelText(field, row.integer(0), reader), !text.isEmpty { values.insert(text) }
                }
            } catch {
                throw guarding.explain(error, "label values could not be read")
            }
        }
        return values.sorted()
    }

    /// The label names present on flows of [startNs, endNs), sorted.
    package func labelNames(startNs: Int64, endNs: Int64) throws -> [String] {
        let fromMs = Self.ceilDiv(startNs, 1_000_000), toMs = Self.ceilDiv(endNs, 1_000_000)
        let shards = try store.shards(overlappingFromMs: fromMs, toMs: toMs)
        guard !shards.isEmpty else { return [] }
        let guarding = QueryGuard(limits)
        var names = Set(model.staticLabels.keys)
        for shard in shards where names.count < model.staticLabels.count + model.labelFields.count {
            let reader = try guarding.reader(for: shard.id, in: store)
            for field in model.labelFields where !names.contains(field.name) {
                let column = "r.\"\(field.name)\""
                var found = false
                try reader.query("""
                    SELECT 1 FROM flow_rows AS r WHERE r."TimeFlowEndMs" >= \(fromMs) AND r."TimeFlowEndMs" < \(toMs)
                    AND \(column) IS NOT NULL LIMIT 1
                    """) { _ in found = true }
                if found { names.insert(field.name) }
            }
        }
        return names.sorted()
    }

    /// A stored column value as Loki text: string ids resolved, uint64 counters unsigned,
    /// booleans `true`/`false`.
    static func labelText(_ field: FieldID, _ stored: Int64?, _ reader: ShardReader) throws -> String? {
        guard let stored else { return nil }
        switch field.kind {
        case .string: return try reader.string(id: stored)
        case .bool: return stored != 0 ? "true" : "false"
        case .integer: return stored < 0 && field.spec.isUnsigned64 ? String(UInt64(bitPattern: stored)) : String(stored)
        case .stringArray, .directionArray, .objectArray, .tcpFlags: return nil
        }
    }
}

/// How each grouping label of a metric query is read in SQL: a constant, or a stored
/// column (`MetricContext.groupColumns`: nil when one can only be found in decoded flows,
/// an unknown field after `| json`, a renamed `_extracted` label, flags).
enum MetricGroupColumn {
    case constant(String)
    case field(FieldID)
}

/// The label sets of a grouped SQL answer over one shard: the grouping columns' stored
/// values (from `firstColumn` on, in the order of the `.field` columns) resolved to Loki
/// text, with a cache of the shard's string ids (one id is the same text on every row).
struct MetricGroupLabels {
    let names: [String]
    /// The `.field` columns: their position among the labels, and the field.
    let fields: [(index: Int, field: FieldID)]
    private var texts: [String?]
    private var resolved: [FieldID: [Int64: String]] = [:]

    init(names: [String], columns: [MetricGroupColumn]) {
        self.names = names
        var fields: [(index: Int, field: FieldID)] = []
        for (i, column) in columns.enumerated() { if case .field(let f) = column { fields.append((i, f)) } }
        self.fields = fields
        texts = columns.map { if case .constant(let v) = $0 { v } else { nil } }
    }

    mutating func labels(of row: SQLiteStatement, from firstColumn: Int32, in reader: ShardReader) throws -> LokiLabels {
        for (position, (index, field)) in fields.enumerated() {
            let column = firstColumn + Int32(position)
            guard !row.isNull(column) else { texts[index] = ""; continue }
            let stored = row.integer(column)
            if let known = resolved[field]?[stored] { texts[index] = known; continue }
            let text = try LokiQueryEngine.labelText(field, stored, reader) ?? ""
            resolved[field, default: [:]][stored] = text
            texts[index] = text
        }
        return LokiLabels(zip(names, texts).map { ($0, $1 ?? "") })
    }
}

/// The evaluation of one metric expression over the engine's store.
private struct MetricContext {
    let engine: LokiQueryEngine
    let grid: StepGrid
    let statistics: LokiQueryEngine.Statistics

    func evaluate(_ expression: MetricExpression) throws -> [LokiSeries] {
        switch expression {
        case .range(let range):
            return try rangeSeries(range, groupBy: range.by)
        case .aggregate(let op, let by, let inner):
            // sum of sums (rates, counts) and max of maxima (min of minima) group the
            // samples directly: the same numbers without one series per label set.
            if case .range(let range) = inner, range.by == nil, Self.composes(op, range.function) {
                return try rangeSeries(range, groupBy: by ?? [])
            }
            return SeriesMath.aggregate(op, by: by, try evaluate(inner), steps: grid.count)
        case .rank(let k, let bottom, let inner):
            return SeriesMath.rank(k, bottom: bottom, try evaluate(inner), steps: grid.count)
        case .divide(let inner, let divisor):
            return try evaluate(inner).map { series in
                LokiSeries(labels: series.labels, values: series.values.map { $0.map { $0 / divisor } })
            }
        }
    }

    /// `by (a, a)` is `by (a)`.
    static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    static func composes(_ op: VectorAggregation.Operator, _ function: RangeAggregation.Function) -> Bool {
        switch (op, function) {
        case (.sum, .rate), (.sum, .countOverTime), (.sum, .sumOverTime), (.max, .maxOverTime), (.min, .minOverTime): true
        default: false
        }
    }

    /// The series of a range aggregation, grouped by `groupBy` (nil: by every label).
    ///
    /// The shards are cut into parts of whole granules (`ScanPlanner.parts`) and
    /// aggregated by up to `ParallelShardScan.workerLimit` threads, each into its own
    /// samples, merged at the end: one hour of a busy cluster is one shard, and one
    /// thread left the other core idle. Sums are of integers, so the order parts are
    /// added in does not change them.
    func rangeSeries(_ range: RangeAggregation, groupBy: [String]?) throws -> [LokiSeries] {
        let rangeMs = range.rangeSeconds * 1000
        let empty = BucketedSamples(grid: grid, rangeMs: rangeMs, keepValues: range.function == .quantileOverTime)
        let selection = range.selection
        let planner = ScanPlanner(store: engine.store, statistics: statistics.scan)
        let skip = engine.translatesToSQL
            ? LogQLPlanner(model: engine.model, encoding: .plain).skipFilter(selection, fromMs: empty.lowMs + 1, toMs: empty.highMs + 1)
            : SkipFilter(fromMs: empty.lowMs + 1, toMs: empty.highMs + 1)
        let shards = try planner.shards(for: skip)
        let parts = ScanPlanner.parts(of: shards, rowsPerPart: engine.rowsPerPart)
        let guarding = QueryGuard(engine.limits)
        let work = RangeWork(directory: engine.store.directory, model: engine.model, translatesToSQL: engine.translatesToSQL,
                             readsTrafficSeries: engine.readsTrafficSeries, seriesDenseSlots: engine.seriesDenseSlots,
                             maxGroups: engine.maxGroups, statistics: statistics, range: range, names: groupBy.map(Self.unique),
                             skip: skip, guarding: guarding, shards: shards)
        let next = Atomic<Int>(0)
        // Per worker: its samples, or the first error it met with the part it met it in.
        let outcomes = Mutex<[(samples: BucketedSamples, failure: (part: Int, error: any Error)?, nothingMatches: Bool)]>([])
        DispatchQueue.concurrentPerform(iterations: max(1, min(parts.count, ParallelShardScan.workerLimit))) { _ in
            var samples = empty
            var failure: (part: Int, error: any Error)?
            var nothingMatches = false
            while failure == nil, !nothingMatches {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < parts.count else { break }
                do {
                    nothingMatches = try !work.aggregate(parts[index], into: &samples)
                } catch {
                    failure = (index, error)
                    next.store(parts.count, ordering: .relaxed)  // the others stop after their part
                }
            }
            outcomes.withLock { $0.append((samples, failure, nothingMatches)) }
        }
        let finished = outcomes.withLock { $0 }
        if let first = finished.compactMap(\.failure).min(by: { $0.part < $1.part }) { throw first.error }
        if finished.contains(where: \.nothingMatches) { return [] }
        var samples = empty
        for outcome in finished {
            samples.merge(outcome.samples)
            if samples.groupCount > engine.maxGroups { throw LokiQueryEngine.tooManySeries(engine.maxGroups) }
        }
        return samples.evaluate(range.function, quantile: range.quantile, unwrapped: selection.unwrapped != nil)
    }

    /// What every worker of one range aggregation shares: values, and the thread-safe
    /// guard and statistics (workers open shards by path, not through the store).
    private struct RangeWork: Sendable {
        let directory: URL
        let model: LokiStreamModel
        let translatesToSQL: Bool
        let readsTrafficSeries: Bool
        let seriesDenseSlots: Int
        let maxGroups: Int
        let statistics: LokiQueryEngine.Statistics
        let range: RangeAggregation
        let names: [String]?
        let skip: SkipFilter
        let guarding: QueryGuard
        let shards: [ShardRecord]

        /// Adds one part's samples; false when the selection can match nothing at all.
        /// `series` false: read the rows even where a traffic series could answer.
        func aggregate(_ part: ScanPlanner.Part, into samples: inout BucketedSamples, series: Bool = true) throws -> Bool {
            let shard = shards[part.shard]
            let selection = range.selection
            guard let reader = try LokiQueryEngine.reader(shard.id, directory, guarding, statistics, counting: part.rowids.above == nil && series)
            else { return true }
            let functions = LogQLSQLFunctions()
            functions.register(on: reader.db)
            let plan = translatesToSQL ? LokiQueryEngine.planner(model, reader).plan(selection) : .untranslated
            if plan.empty { return false }
            let groupColumns = names.flatMap { MetricContext.groupColumns($0, model: model, extracting: selection.stages.contains(.json)) }
            if series, readsTrafficSeries, let names, let groupColumns, SeriesAggregation.applies(range.function, plan: plan, columns: groupColumns, samples: samples),
               let buckets = SeriesAggregation.buckets(of: shard, samples) {
                do {
                    if try SeriesAggregation.available(in: reader) {
                        // The whole shard at once, by its first part; the others have nothing to add.
                        guard part.rowids.above == nil else { return true }
                        do {
                            try SeriesAggregation.aggregate(reader, plan: plan, names: names, columns: groupColumns, buckets: buckets,
                                                            denseSlots: seriesDenseSlots, into: &samples)
                            statistics.countFromSeries()
                            return true
                        } catch is SeriesAggregation.MalformedSeries {
                            // The other parts left their rows to this one: read the whole shard.
                            statistics.countSeriesFallback()
                            return try aggregate(ScanPlanner.Part(shard: part.shard, rowids: (nil, nil)), into: &samples, series: false)
                        }
                    }
                } catch where functions.failure == nil && guarding.interruption() == nil && statistics.unreadable.skip(shard.id, after: error) {
                    return true
                } catch {
                    throw guarding.explain(functions.failure ?? error, "the LogQL query could not be run")
                }
            }
            // The rows: only the part's granules that can hold matching flows.
            guard let granules = try LokiQueryEngine.granules(reader, shard.id, skip, statistics, within: part.rowids) else { return true }
            let conditions = (["r.\"TimeFlowEndMs\" > \(samples.lowMs)", "r.\"TimeFlowEndMs\" <= \(samples.highMs)"]
                + part.conditions(table: "r.") + plan.allConditions).joined(separator: " AND ")
            do {
                if plan.isExact, let names, let columns = groupColumns, range.function != .quantileOverTime {
                    try MetricContext.aggregateInSQL(reader, rows: granules, conditions: conditions, plan: plan, names: names, columns: columns, into: &samples)
                    // Once per shard, as `shardsRead`: every part of a shard takes the same path.
                    if part.rowids.above == nil { statistics.countAggregatedInSQL() }
                } else {
                    let evaluator = LogQLFlowEvaluator(model: model, selection: selection)
                    var decoded = 0
                    defer { statistics.countDecoded(decoded) }
                    try reader.forEachFlow(in: granules, where: conditions, orderBy: nil, limit: nil) { _, flow in
                        decoded += 1
                        guard let outcome = try evaluator.evaluate(flow) else { return true }
                        let labels = LokiLabels(outcome.labels.map { ($0.key, $0.value) })
                        samples.add(names.map { labels.keeping($0) } ?? labels,
                                    ms: flow.integer(FlowSchema.requiredField) ?? 0, value: outcome.value ?? 1)
                        if samples.groupCount > maxGroups { throw LokiQueryEngine.tooManySeries(maxGroups) }
                        return true
                    }
                }
            } catch where functions.failure == nil && guarding.interruption() == nil && statistics.unreadable.skip(shard.id, after: error) {
                return true
            } catch {
                throw guarding.explain(functions.failure ?? error, "the LogQL query could not be run")
            }
            if samples.groupCount > maxGroups { throw LokiQueryEngine.tooManySeries(maxGroups) }
            return true
        }
    }

    static func groupColumns(_ names: [String], model: LokiStreamModel, extracting: Bool) -> [MetricGroupColumn]? {
        var columns: [MetricGroupColumn] = []
        for name in names {
            if let value = model.staticLabels[name] {
                columns.append(.constant(value))
            } else if let field = FlowSchema.id(named: name) {
                let visible = model.labelFields.contains(field) || extracting
                if !visible {
                    columns.append(.constant(""))
                } else if field.kind.isJSONText {
                    // `| json` skips arrays; flags may be a plain number on old agents.
                    if field.kind == .tcpFlags { return nil }
                    columns.append(.constant(""))
                } else {
                    columns.append(.field(field))
                }
            } else if extracting || name.hasSuffix("_extracted") {
                return nil
            } else {
                columns.append(.constant(""))
            }
        }
        return columns
    }

    /// One grouped statement per shard part: count, sum, min and max per group and bucket.
    static func aggregateInSQL(_ reader: ShardReader, rows: RowSelection, conditions: String, plan: LogQLPlanner.Plan, names: [String],
                                columns: [MetricGroupColumn], into samples: inout BucketedSamples) throws {
        var groupLabels = MetricGroupLabels(names: names, columns: columns)
        let value = plan.unwrapped ?? "1.0"
        let keys = groupLabels.fields.map { "r.\"\($0.field.name)\"" }
        let select = keys + [samples.bucketSQL, "count(*)", "sum(\(value))", "min(\(value))", "max(\(value))"]
        let groupBy = (1...(keys.count + 1)).map(String.init).joined(separator: ", ")
        let sql = "SELECT \(select.joined(separator: ", ")) FROM \(rows.source(where: [conditions])) GROUP BY \(groupBy)"
        try reader.query(sql) { row in
            let base = Int32(keys.count)
            let labels = try groupLabels.labels(of: row, from: 0, in: reader)
            samples.add(labels, bucket: row.integer(base), count: row.integer(base + 1), sum: row.double(base + 2),
                        min: row.double(base + 3), max: row.double(base + 4))
        }
    }
}

