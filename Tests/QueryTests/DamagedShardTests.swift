import FlowModel
import FlowrecTesting
import Foundation
@testable import Query
@testable import ShardStore
import StorageKit
import Testing

/// A damaged sealed shard is skipped by `sql`, `query` and Loki's queries with a warning
/// that names it; the rest of the range still answers, exactly.
@Suite struct DamagedShardTests {
    /// The store of the Loki tests (five windows, four sealed), with the bytes of one
    /// sealed shard changed in the middle; returns the damaged shard and the rows the
    /// others hold.
    static func damagedStore(_ dir: TemporaryDirectory) throws -> (ShardStore, ShardRecord, Int64) {
        let (store, _) = try LokiQueryEngineTests.makeStore(dir)
        let shards = try store.shards()
        let damaged = try #require(shards.first { $0.state == .sealed })
        let path = dir.path + "/" + damaged.path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for i in stride(from: bytes.count / 4, to: bytes.count * 3 / 4, by: 97) { bytes[i] ^= 0x5A }
        try bytes.write(to: URL(fileURLWithPath: path))
        let others = shards.filter { $0.id != damaged.id }.reduce(Int64(0)) { $0 + $1.rowCount }
        return (store, damaged, others)
    }

    @Test func sqlSkipsItNamesItAndCountsTheRest() throws {
        let dir = TemporaryDirectory()
        let (store, damaged, others) = try Self.damagedStore(dir)
        let unreadable = UnreadableShards()
        var count: Int64 = -1
        try SQLQuery(store: store).run("SELECT count(*) FROM flows", unreadable: unreadable, columns: { _ in }) { values in
            if case .integer(let n) = values[0] { count = n }
            return true
        }
        #expect(count == others)
        #expect(unreadable.all.map(\.shard) == [damaged.id])
        #expect(unreadable.all.first?.description.contains("flowrec fsck") == true)
    }

    @Test func queryAndLokiSkipItToo() throws {
        let dir = TemporaryDirectory()
        let (store, damaged, others) = try Self.damagedStore(dir)
        let runner = FlowQueryRunner(store: store)
        var rows: Int64 = 0
        var query = FlowQuery()
        query.fields = ["TimeFlowEndMs"]
        try runner.run(query) { _ in rows += 1; return true }
        #expect(rows == others)
        #expect(runner.unreadable.all.map(\.shard) == [damaged.id])

        let engine = try LokiQueryEngineTests.engines(store).sql
        let shards = try store.shards()
        let start = try #require(shards.compactMap(\.minTimeMs).min()), end = try #require(shards.compactMap(\.maxTimeMs).max()) + 1
        let request = try LokiRangeRequest(["query": #"sum(count_over_time({app="netobserv-flowcollector"}[1h]))"#,
                                            "start": "\(start * 1_000_000)", "end": "\(end * 1_000_000 + 3_600_000_000_000)", "step": "3600s"],
                                           nowNs: 0, maxEntries: 5000, maxLengthNs: .max)
        let statistics = LokiQueryEngine.Statistics()
        let answer = try engine.run(request, statistics: statistics)
        #expect(statistics.unreadable.all.map(\.shard) == [damaged.id])
        guard case .matrix(_, let series) = answer else { Issue.record("not a matrix"); return }
        // Every flow of the others falls in some one-hour window; the largest count is at most theirs.
        let largest = series.flatMap { $0.values.compactMap { $0 } }.max() ?? 0
        #expect(largest > 0 && largest <= Double(others))
        let body = String(decoding: LokiResponse.body(answer, statistics: statistics), as: UTF8.self)
        #expect(body.contains(#""warnings":["shard \#(damaged.id)"#), "\(body.suffix(400))")
    }

    /// A sealed shard whose traffic series does not decode (its rows sound) answers from
    /// its rows: the same numbers as a store read by rows alone, and no shard skipped.
    @Test func aMalformedTrafficSeriesFallsBackToTheRows() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try LokiQueryEngineTests.makeStore(dir)
        let shard = try #require(try store.shards().first { $0.state == .sealed })
        let path = dir.path + "/" + shard.path, plain = dir.path + "/plain.sqlite"
        try SeekableZstd.decompress(source: path, destination: plain)
        do {
            let db = try SQLiteDatabase(path: plain)
            try db.execute("UPDATE series_data SET counts = x'80'")  // a varint that never ends
        }
        _ = try SeekableZstd.compress(source: plain, destination: path, level: 3)

        let (first, last) = LokiQueryEngineTests.span(flows)
        let request = try LokiRangeRequest(["query": LokiQueryEngineTests.metricQueries[0], "start": String(first / 1000 + 7),
                                            "end": String(last / 1000 + 1), "step": "15s"], nowNs: 0, maxEntries: 5000, maxLengthNs: .max)
        var (engine, _) = try LokiQueryEngineTests.engines(store)
        let statistics = LokiQueryEngine.Statistics()
        guard case .matrix(_, let got) = try engine.run(request, statistics: statistics) else { Issue.record("not a matrix"); return }
        engine.readsTrafficSeries = false
        guard case .matrix(_, let rows) = try engine.run(request) else { Issue.record("not a matrix"); return }
        #expect(got == rows)
        #expect(statistics.seriesFallbacks == 1 && statistics.fromSeries == 3)
        #expect(statistics.unreadable.all.isEmpty)
    }
}
