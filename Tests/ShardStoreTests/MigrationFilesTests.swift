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

    @Test func shardColumnsAreTheFieldList() {
        for spec in FlowSchema.fields {
            #expect(ShardSchema.createSQL.contains("\"\(spec.name)\" \(ShardSchema.sqlType(spec.kind))"), "\(spec.name)")
        }
    }
}
