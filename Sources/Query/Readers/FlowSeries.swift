import FlowModel
package import ShardStore

/// A time series of flows, bytes and packets for one group (e.g. one namespace pair),
/// bucketed by `stepMs`: from rollups where they cover the range, from raw shards at
/// the edges and for windows not sealed yet.
package struct FlowSeries {
    package struct Point: Sendable, Equatable {
        package let bucketMs: Int64
        package var flows: Int64
        package var bytes: Int64
        package var packets: Int64

        package init(bucketMs: Int64, flows: Int64, bytes: Int64, packets: Int64) {
            self.bucketMs = bucketMs
            self.flows = flows
            self.bytes = bytes
            self.packets = packets
        }
    }

    package let store: ShardStore

    package init(store: ShardStore) { self.store = store }

    /// `group`: field = value pairs (all of them must hold); `stepMs` a multiple of a minute.
    /// Buckets start at `fromMs`; rollups are used when that is a whole minute.
    package func run(group: [(field: String, value: String)], stepMs: Int64, fromMs: Int64, toMs: Int64,
                    allowRollups: Bool = true) throws -> [Point] {
        guard stepMs >= 60_000, stepMs % 60_000 == 0 else { throw QueryError(.invalidArgument, "the step must be a whole number of minutes (1m, 5m, 1h, ...)") }
        guard fromMs < toMs else { throw QueryError(.invalidArgument, "the range is empty: --from must be before --to") }
        for (field, _) in group where !ShardSchemaColumns.fieldNames.contains(field) && !RollupReader.covers([field]) {
            throw QueryError(.unknownField, "unknown field \(field); use NetObserv's names, e.g. SrcK8S_Namespace")
        }
        // Buckets are aligned to the range start.
        var points: [Int64: Point] = [:]
        func add(_ bucket: Int64, _ flows: Int64, _ bytes: Int64, _ packets: Int64) {
            points[bucket, default: Point(bucketMs: bucket, flows: 0, bytes: 0, packets: 0)].flows += flows
            points[bucket]?.bytes += bytes
            points[bucket]?.packets += packets
        }
        // Rollup minutes cannot be split: they serve only buckets on the minute grid.
        let rollups = allowRollups && RollupReader.covers(group.map(\.field)) && fromMs % 60_000 == 0 ? try RollupReader(store: store) : nil
        var rawRanges = [(fromMs, toMs)]
        if let rollups, let span = try rollups.span(of: store, fromMs: fromMs, toMs: toMs) {
            // Rollup buckets must not straddle the raw edges: trim the span to whole steps.
            let aligned = fromMs + ((span.fromMs - fromMs + stepMs - 1) / stepMs) * stepMs
            // The tier the steps read must not have been pruned there.
            let start = try rollups.seriesStart(stepMs: stepMs, startMs: aligned, gridMs: fromMs)
            let end = fromMs + ((span.toMs - fromMs) / stepMs) * stepMs
            if end > start {
                for p in try rollups.series(stepMs: stepMs, fromMs: start, toMs: end, filter: group) {
                    add(p.bucketMs, p.flows, p.bytes, p.packets)
                }
                rawRanges = [(fromMs, start), (end, toMs)].filter { $0.0 < $0.1 }
            }
        }
        let conditions = ["TimeFlowEndMs >= ?1", "TimeFlowEndMs < ?2"] + group.indices.map { "CAST(\(RollupSchema.flowsExpression(group[$0].field)) AS TEXT) = ?\($0 + 4)" }
        let sql = """
            SELECT ((TimeFlowEndMs - ?1) / ?3) * ?3 + ?1, count(*), coalesce(sum(Bytes), 0), coalesce(sum(Packets), 0)
            FROM flows WHERE \(conditions.joined(separator: " AND ")) GROUP BY 1
            """
        let planner = ScanPlanner(store: store)
        for (from, to) in rawRanges {
            // The group's fields, where they are plain fields, prune shards and granules.
            var skip = SkipFilter(fromMs: from, toMs: to)
            for (name, value) in group {
                guard let field = FlowSchema.id(named: name) else { continue }
                if field.kind == .string { skip.require(field, equals: .text(value)) }
                if field.kind == .integer, let number = Int64(value) { skip.require(field, equals: .integer(number)) }
            }
            try planner.forEachShard(skip, guarding: QueryGuard(.commandLine)) { _, reader, source in
                try reader.query(sql.replacingOccurrences(of: "FROM flows WHERE", with: "FROM \(source) WHERE"), bind: { s in
                    s.bind(1, from)
                    s.bind(2, to)
                    s.bind(3, stepMs)
                    for (i, g) in group.enumerated() { s.bind(Int32(i + 4), g.value) }
                }) { s in
                    // Raw buckets are aligned to `from`; re-align to the range start.
                    let bucket = fromMs + ((s.integer(0) - fromMs) / stepMs) * stepMs
                    add(bucket, s.integer(1), s.integer(2), s.integer(3))
                }
                return true
            }
        }
        return points.values.sorted { $0.bucketMs < $1.bucketMs }
    }
}
