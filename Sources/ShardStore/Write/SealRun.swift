import FlowModel

/// The order in which the active shard writes one batch's flows of a window: the seal
/// order (`SealOrder`: the sort fields by value, absent first, then end time) within the
/// batch, so that every batch is a sorted run.
///
/// The sealer copies an active shard's rows in the seal order. Rows written as they
/// arrived put the flows of one conversation all over the file, and the copy read the
/// source's pages out of order, each many times, through SQLite's page reads (one
/// `pread` each: the source is not memory-mapped, see `ShardSealer`). Written in sorted
/// runs, the ordered copy is a merge of the runs: it reads each run front to back, and
/// each run's current page stays in SQLite's page cache. By hand, on one hourly window
/// of 3.6M generated flows in batches of 20,000: the copy 25.9 s → 19.0 s, the whole
/// seal 80k → 95k flows/s. Sorting by a hash of the values instead (grouping a
/// conversation's flows, but not in the seal's order) gained nothing: the merge then
/// still jumps around inside each run.
///
/// Only the order of rows inside one transaction changes: what a batch stores, its
/// positions and its checksum are the same in any order.
enum SealRun {
    /// `flows` (indices into `batch`) in the seal order; ties keep their batch order.
    /// `endTimesMs` are the batch's (`IngestBatch.endTimesMs`).
    static func order(_ flows: [Int], of batch: UnsafeBufferPointer<Flow>, endTimesMs: [Int64?]) -> [Int] {
        guard flows.count > 1 else { return flows }
        let fields = SkipIndex.sortFields  // four: two words of two ranks in `SealKey`
        // The batch's distinct values of the sort fields, numbered as first met (0:
        // absent or null), then ranked by value: a batch holds a few hundred of them.
        var values = StringDictionary(capacity: 1 << 10)
        var ids = [Int32](repeating: 0, count: flows.count * fields.count)
        var times = [Int64](repeating: 0, count: flows.count)
        for (n, i) in flows.enumerated() {
            readKey(of: batch[i], fields: fields, into: &ids, at: n * fields.count, values: &values)
            times[n] = endTimesMs[i] ?? 0
        }
        let rank = values.withStorage { bytes, starts in
            StringRanks.byValue(ids: values.count) { id in
                UnsafeBufferPointer(rebasing: bytes[starts[Int(id) - 1]..<starts[Int(id)]])
            }.rankOfID.map(UInt64.init)
        }
        var keys: [SealKey] = []
        keys.reserveCapacity(flows.count)
        for n in flows.indices {
            let r = n * fields.count
            keys.append(SealKey(namespaces: rank[Int(ids[r])] << 32 | rank[Int(ids[r + 1])],
                            owners: rank[Int(ids[r + 2])] << 32 | rank[Int(ids[r + 3])],
                            time: times[n], tiebreak: Int64(n)))
        }
        keys.sort()
        return keys.map { flows[Int($0.tiebreak)] }
    }

    /// `flows` (indices into a batch) in the order of `ranks`, the batch's flows ranked in
    /// the seal order by `order(_:of:)` (`IngestBatch.rankInSealOrder()`): a linear pass,
    /// no comparisons.
    static func order(_ flows: [Int], ranks: [Int32]) -> [Int] {
        var byRank = [Int](repeating: -1, count: ranks.count)
        for i in flows { byRank[Int(ranks[i])] = i }
        return flows.count == ranks.count ? byRank : byRank.filter { $0 >= 0 }
    }

    /// One flow's sort values into `ids` (from `at`), numbered by `values`. A function of
    /// its own because calling `withUTF8` on `batch[i]` with a closure that changes
    /// `values` copied the flow (retaining its buffers) on every call, five times per
    /// flow; passed as an argument it is copied at most once (`perf`: the copies went
    /// from 1.4% to 0.75% of the ingest benchmark's samples).
    private static func readKey(of flow: Flow, fields: [FieldID], into ids: inout [Int32], at base: Int,
                                values: inout StringDictionary) {
        for (k, field) in fields.enumerated() {
            ids[base + k] = flow.withUTF8(field) { values.id(for: $0).id } ?? 0
        }
    }
}
