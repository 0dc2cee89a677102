import FlowrecTestTraits
import FlowModel
import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing

/// `flowrec sql`, `query` and `top` over a store of 48 one-minute windows (47 sealed,
/// one active), against the same answers computed straight from the input JSON.
@Suite(.serialized, .ownThread) struct SQLQueryTests {
    /// 57,600 flows at 20/s: 48 windows.
    static let lines = generatedLines(57_600, seed: 5, rate: 20)
    static let flows: [Flow] = lines.map { line in
        var flow = Flow()
        try? FlowDecoder().decode(line, into: &flow)
        return flow
    }

    func store(_ dir: TemporaryDirectory) throws -> ShardStore {
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch(Self.lines[...], firstLine: 1))
        try store.sealClosedWindows()
        return store
    }

    static let end = FlowSchema.id(of: "TimeFlowEndMs")
    static let bytes = FlowSchema.id(of: "Bytes")
    static let namespace = FlowSchema.id(of: "SrcK8S_Namespace")
    static let port = FlowSchema.id(of: "DstPort")

    func sql(_ store: ShardStore, _ statement: String, fromMs: Int64? = nil, toMs: Int64? = nil) throws -> (rows: [[QueryValue]], shards: Int) {
        var rows: [[QueryValue]] = []
        let shards = try SQLQuery(store: store, fromMs: fromMs, toMs: toMs).run(statement, columns: { _ in }) {
            rows.append($0)
            return true
        }
        return (rows, shards)
    }

    @Test func sqlQueryAndTopAgreeWithTheInputOver48Windows() throws {
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let shards = try store.shards()
        #expect(shards.count >= 48 && shards.filter { $0.state == .sealed }.count == shards.count - 1)

        // GROUP BY over every shard.
        var expected: [String: (count: Int64, bytes: Int64)] = [:]
        for flow in Self.flows {
            let key = flow.string(Self.namespace) ?? ""
            expected[key, default: (0, 0)].count += 1
            expected[key, default: (0, 0)].bytes += flow.integer(Self.bytes) ?? 0
        }
        let grouped = try sql(store, "SELECT coalesce(SrcK8S_Namespace, ''), count(*), sum(Bytes) FROM flows GROUP BY 1")
        #expect(grouped.shards == shards.count)
        var answered: [String: (count: Int64, bytes: Int64)] = [:]
        for row in grouped.rows {
            guard case .text(let key) = row[0], case .integer(let count) = row[1], case .integer(let bytes) = row[2] else { continue }
            answered[key] = (count, bytes)
        }
        #expect(answered.count == expected.count)
        for (key, value) in expected { #expect(answered[key]?.count == value.count && answered[key]?.bytes == value.bytes, "\(key)") }

        // A time range in the statement opens only the shards it overlaps.
        let times = Self.flows.compactMap { $0.integer(Self.end) }.sorted()
        let from = times[10_000], to = times[14_000]
        let inRange = Int64(times.filter { $0 >= from && $0 < to }.count)
        let ranged = try sql(store, "SELECT count(*) FROM flows WHERE TimeFlowEndMs >= \(from) AND TimeFlowEndMs < \(to)")
        #expect(ranged.rows.first?.first == .integer(inRange))
        let overlapping = try store.shards(overlappingFromMs: from, toMs: to).count
        #expect(ranged.shards == overlapping && overlapping <= 6, "only the overlapping shards are opened (\(ranged.shards))")
        // The command's own range narrows it the same way.
        let commandRange = try sql(store, "SELECT count(*) FROM flows", fromMs: from, toMs: to)
        #expect(commandRange.rows.first?.first == .integer(inRange) && commandRange.shards == overlapping)

        // query: a filter over the whole store.
        var query = FlowQuery()
        query.whereSQL = "DstPort = 53"
        query.fields = ["DstPort"]
        var matched = 0
        try FlowQueryRunner(store: store).run(query) { _ in
            matched += 1
            return true
        }
        #expect(matched == Self.flows.filter { $0.integer(Self.port) == 53 }.count)

        // top: namespaces by bytes, the same ten as a direct sort.
        let top = try TopTalkers(store: store).run(by: ["SrcK8S_Namespace"], metric: .bytes, fromMs: nil, toMs: nil, limit: 10)
        let direct = expected.sorted { $0.value.bytes > $1.value.bytes }.prefix(10)
        #expect(top.map(\.bytes) == direct.map(\.value.bytes))
    }

    @Test func statementsThatWouldChangeDataAreRefused() throws {
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let before = try store.shards().reduce(Int64(0)) { $0 + $1.rowCount }
        for statement in [
            "INSERT INTO flows (Bytes) VALUES (1)", "DELETE FROM flows", "UPDATE flows SET Bytes = 0",
            "ATTACH DATABASE '\(dir.path)/other.sqlite' AS other", "CREATE TABLE t (x)", "DROP TABLE flows",
            "PRAGMA query_only = 0", "CREATE TEMP VIEW v AS SELECT 1",
        ] {
            #expect {
                try sql(store, statement)
            } throws: { error in
                "\(error)".contains("read-only")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/other.sqlite"), "ATTACH created nothing")
        #expect(try store.shards().reduce(Int64(0)) { $0 + $1.rowCount } == before)
        #expect(try sql(store, "SELECT count(*) FROM flows").rows.first?.first == .integer(before))
    }
}

/// `flowrec sql`'s table keeps every cell in its column when a value is NULL, and its
/// JSON writes `null` instead of leaving the member out.
@Suite(.ownThread) struct SQLOutputTests {
    @Test func nullCellsKeepTheirPlaceAndJSONSaysNull() throws {
        let dir = TemporaryDirectory()
        _ = try sealedGeneratedStore(at: dir.path, count: 200)
        let flowrec = try ChildProcess.flowrec().path
        let sql = "SELECT NULL AS a, 1 AS b, 'x' AS c UNION ALL SELECT 'long', 22, NULL"
        let table = try ChildProcess.output(flowrec, ["sql", "--data", dir.path, sql]).split(separator: "\n").map(String.init)
        #expect(table.count == 3, "\(table)")
        let header = table[0]
        let bColumn = try #require(header.range(of: "b")).lowerBound.utf16Offset(in: header)
        let cColumn = try #require(header.range(of: "c")).lowerBound.utf16Offset(in: header)
        #expect(Array(table[1].utf8)[bColumn] == UInt8(ascii: "1"), "the value after a NULL stays in its column: \(table)")
        #expect(Array(table[1].utf8)[cColumn] == UInt8(ascii: "x"), "\(table)")
        #expect(table[2].hasPrefix("long  22"), "\(table)")
        let json = try ChildProcess.output(flowrec, ["sql", "--data", dir.path, "--format", "jsonl", sql])
        #expect(json == "{\"a\":null,\"b\":1,\"c\":\"x\"}\n{\"a\":\"long\",\"b\":22,\"c\":null}\n", "\(json)")
    }
}
