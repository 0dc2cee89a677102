import FlowModel
import FlowrecTesting
import Forwarders
import Foundation
import Testing

@Suite struct ClickHouseSchemaTests {
    @Test func migrationFilesMatchTheBinary() throws {
        for (path, text) in ClickHouseMigrationFiles.all {
            let onDisk = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent(path), encoding: .utf8)
            #expect(onDisk == text, "\(path) is stale: run `swift run flowrec schema --write-migrations`")
        }
    }

    @Test func everyFieldIsAColumn() {
        for dialect in ClickHouseSchema.Dialect.allCases {
            let sql = ClickHouseSchema.createTable(database: "d", table: "t", dialect: dialect)
            for spec in FlowSchema.fields { #expect(sql.contains("`\(spec.name)` "), "\(spec.name) in \(dialect)") }
        }
    }

    @Test func compatibleDialectAvoidsFeaturesOldServersLack() {
        let sql = ClickHouseSchema.createTable(database: "d", table: "t", dialect: .compatible)
        #expect(!sql.contains("LowCardinality"))
        #expect(!sql.contains("CODEC"))
        #expect(!sql.contains("TTL"))
    }

    /// The compatible DDL runs on the real 18.16 test server.
    @Test func compatibleDDLRunsOnTheTestServer() throws {
        guard let ch = ClickHouseTestServer.fromEnvironment() else {
            #expect(!TestEnvironment.requireServers, "FLOWREC_CLICKHOUSE_URL is not set")
            return
        }
        let db = "ddl_\(UInt32.random(in: 0...UInt32.max))"
        _ = try ch.query("CREATE DATABASE \(db)")
        defer { _ = try? ch.query("DROP DATABASE \(db)") }
        _ = try ch.query(ClickHouseSchema.createTable(database: db, table: "flows", dialect: .compatible))
        let columns = try ch.query("SELECT count() FROM system.columns WHERE database = '\(db)' AND table = 'flows'")
        #expect(Int(columns.trimmingCharacters(in: .whitespacesAndNewlines)) == FlowSchema.count + 2)
    }

    /// The modern DDL runs in chdb (ClickHouse 26.x, installed by scripts/setup-deps).
    @Test func modernDDLRunsInChdb() throws {
        let ddl = ClickHouseSchema.createTable(database: "d", table: "flows", dialect: .modern, ttlDays: 30)
        let script = """
            import sys, chdb.session as cs
            s = cs.Session()
            s.query("CREATE DATABASE d")
            s.query(sys.stdin.read())
            print(s.query("SELECT count() FROM system.columns WHERE database='d' AND table='flows'", "CSV"), end="")
            """
        let result = try Chdb.run(script, input: Data(ddl.utf8))
        if result.isMissing {
            #expect(!TestEnvironment.requireServers, "chdb is not installed: run scripts/setup-deps")
            return
        }
        #expect(result.status == 0, "chdb rejected the modern DDL: \(result.errors.suffix(600))")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == String(FlowSchema.count + 2))
    }
}
