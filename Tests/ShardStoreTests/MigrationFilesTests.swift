import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import StorageKit
import Testing

@Suite struct MigrationFilesTests {
    /// migrations/ must say what the binary does: regenerate with
    /// `swift run flowrec schema --write-migrations` after changing the field list.
    @Test func migrationFilesMatchTheBinary() throws {
        for (path, text) in MigrationFiles.all {
            let url = TestEnvironment.packageRoot.appendingPathComponent(path)
            let onDisk = try String(contentsOf: url, encoding: .utf8)
            #expect(onDisk == text, "\(path) is stale: run `swift run flowrec schema --write-migrations`")
        }
    }

    /// Every field has a `flow_rows` column and a `flows` view column of its own name.
    @Test func shardColumnsAreTheFieldList() {
        let sql = ShardSchema.createSQL
        for spec in FlowSchema.fields {
            let hasColumn = sql.contains("\n    \"\(spec.name)\" INTEGER")
            let inView = sql.contains(" AS \"\(spec.name)\"")
            #expect(hasColumn && inView, "\(spec.name) is missing from the shard schema")
        }
    }

    /// A `deadletters.sqlite` written before the migrator (the WITHOUT ROWID table of
    /// 0001, no `schema_migrations`) is converted when a writer opens the store: every
    /// letter and high-water mark is kept, a replayed letter is still stored once, and the
    /// file takes less than half the space.
    @Test func anOldDeadLettersFileIsConvertedAndKeepsEverything() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/deadletters.sqlite"
        let original = try #require(MigrationFiles.all.first { $0.path.hasSuffix("0001_deadletters.sql") }).text
        #expect(original.contains("WITHOUT ROWID"))
        do {
            let old = try SQLiteDatabase(path: path)
            try old.execute("PRAGMA journal_mode=WAL;")
            try old.execute(original)
            try old.execute("""
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                INSERT INTO dead_letters SELECT 'file:garbage', 0, i, 1000 + i / 500, 'invalid JSON', 3, randomblob(1000) FROM n;
                INSERT INTO high_water VALUES ('file:garbage', 0, 2000), ('flows-export', 3, 77);
                PRAGMA wal_checkpoint(TRUNCATE);
                """)
        }
        let before = fileSize(path)
        var sums: [Int64] = []
        do {
            let old = try SQLiteDatabase(path: path, mode: .readOnly)
            let rows = try old.prepare("SELECT position, received_ms, hex(payload) FROM dead_letters ORDER BY position")
            while try rows.step() { sums.append(rows.integer(0) &* 31 &+ rows.integer(1) &+ Int64(rows.text(2)?.hashValue ?? 0)) }
        }

        let store = try ShardStore(directory: dir.path)
        #expect(try store.deadLetterCount() == 2_000)
        #expect(try store.resumePositions()[SourcePartition(source: "flows-export", partition: 3)] == 78)
        // A replay of letters already kept stores nothing (the key is still unique).
        let replay = (0..<10).map { _ in Array("not a flow".utf8) }
        #expect(try store.append(batch(replay[...], source: "file:garbage", firstLine: 1)).deadLetters == 0)
        try store.close()

        let db = try SQLiteDatabase(path: path, mode: .readOnly)
        let sql = try db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'dead_letters'")
        #expect(try sql.step() && !(sql.text(0) ?? "").contains("WITHOUT ROWID"))
        var after: [Int64] = []
        let rows = try db.prepare("SELECT position, received_ms, hex(payload) FROM dead_letters ORDER BY position")
        while try rows.step() { after.append(rows.integer(0) &* 31 &+ rows.integer(1) &+ Int64(rows.text(2)?.hashValue ?? 0)) }
        #expect(after == sums, "every letter kept as it was")
        let converted = fileSize(path) + fileSize(path + "-wal")
        #expect(converted * 2 < before, "\(before) bytes before, \(converted) after")
    }
}
