import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
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
}
