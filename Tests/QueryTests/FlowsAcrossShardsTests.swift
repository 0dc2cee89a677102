import StorageKit
import FlowrecTesting
import Foundation
@testable import Query
@testable import ShardStore
import Testing

/// The `flows` virtual table read by workers in parts (whole shards, or rowid ranges of
/// big ones) gives back exactly what each shard's own `flows` view holds, in order.
@Suite struct FlowsAcrossShardsTests {
    /// 12,000 flows at 20/s: ten one-minute windows, nine sealed and one active.
    func store(_ dir: TemporaryDirectory) throws -> ShardStore {
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch(generatedLines(12_000, seed: 9, rate: 20)[...], firstLine: 1))
        try store.sealClosedWindows()
        return store
    }

    /// Every row of every shard through its own view (the same columns), shard after
    /// shard: the reference.
    func direct(_ store: ShardStore) throws -> [[String]] {
        var rows: [[String]] = []
        let columns = FlowsAcrossShards.columns.map { "\"\($0)\"" }.joined(separator: ", ")
        for shard in try store.shards() {
            let reader = try store.reader(for: shard.id)
            let statement = try reader.db.prepare("SELECT \(columns) FROM flows")
            while try statement.step() { rows.append(Self.texts(statement)) }
        }
        return rows
    }

    func throughTable(_ store: ShardStore, rowsPerPart: Int64, _ sql: String = "SELECT * FROM flows") throws -> [[String]] {
        let connection = try FlowsAcrossShards(store: store, fromMs: nil, toMs: nil, rowsPerPart: rowsPerPart)
        var rows: [[String]] = []
        try connection.query(sql) { statement in
            rows.append(Self.texts(statement))
            return true
        }
        return rows
    }

    /// Each value with its SQLite type, so an integer and its text never compare equal.
    static func texts(_ statement: SQLiteStatement) -> [String] {
        (0..<statement.columnCount).map { i in
            switch statement.columnType(i) {
            case .null: "null"
            case .integer: "i\(statement.integer(i))"
            case .real: "f\(statement.double(i))"
            case .text: "t\(statement.text(i) ?? "")"
            case .blob: "b\(statement.blob(i))"
            }
        }
    }

    @Test func everyRowOfEveryShardInOrderWholeOrCutIntoRanges() throws {
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let shards = try store.shards()
        #expect(shards.count >= 10 && shards.contains { $0.state == .active })
        let reference = try direct(store)
        #expect(reference.count == 12_000)
        // Whole shards, then ranges of 997 rows (several per shard, ragged ends).
        #expect(try throughTable(store, rowsPerPart: 250_000) == reference)
        #expect(try throughTable(store, rowsPerPart: 997) == reference)
    }

    /// The workers' shard readers give their connections back to the pool when their part
    /// is done, so the next query over the same sealed shards does not open and parse
    /// them again: each sealed file still has its one descriptor after the query. (A
    /// second binding of a part's statement once kept it alive past its reader, and every
    /// connection was closed: a namespace-pair count over 30 merged days went from 17 to
    /// 30 ms.)
    @Test func aScanKeepsItsSealedShardsConnectionsForTheNextQuery() throws {
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let sealed = try store.shards().filter { $0.state == .sealed }.prefix(4)
        for shard in sealed { ReadConnectionPool.shared.forget(path: store.filePath(of: shard.id)) }
        let connection = try FlowsAcrossShards(store: store, fromMs: sealed.first?.id.windowStartMs, toMs: sealed.last?.id.windowEndMs)
        var count: Int64 = 0
        try connection.query("SELECT count(*) FROM flows WHERE Proto = 6") { count = $0.integer(0); return false }
        #expect(count > 0)
        for shard in sealed {
            let path = store.filePath(of: shard.id)
            let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).filter {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path
            }
            #expect(open.count == 1, "\(shard.id): its connection is kept for the next query")
        }
    }

    @Test func aLimitStopsTheWorkersEarly() throws {
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let reference = try direct(store)
        let first = try throughTable(store, rowsPerPart: 500, "SELECT * FROM flows LIMIT 7")
        #expect(first == Array(reference.prefix(7)))
    }
}
