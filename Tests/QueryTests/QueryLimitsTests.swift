import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing

/// Hostile input a fault probe found: `where` pasted into SQL, functions that leak or
/// allocate, statements that never end. Each is refused or stopped with a reason.
@Suite(.serialized) struct QueryLimitsTests {
    @Test func aFilterIsOneExpressionAndNeverAStatement() throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 1_000)
        for hostile in ["1=0) UNION ALL SELECT name, sql FROM sqlite_master --", "1=1; DROP TABLE flows",
                        "DstPort IN (SELECT 443)", "1 /* comment */ = 1", "(DstPort = 443", "DstPort = 443)",
                        "'unterminated = 1"] {
            var query = FlowQuery()
            query.whereSQL = hostile
            let error = #expect(throws: QueryError.self, "\(hostile)") { try FlowQueryRunner(store: store).run(query) { _ in true } }
            #expect(error?.kind == .invalidStatement, "\(hostile): \(String(describing: error))")
            #expect(error?.message.contains("one SQL expression") == true)
        }
        // A function off the allow-list is refused by the authorizer, with SQLite's reason.
        var leak = FlowQuery()
        leak.whereSQL = "fts3_tokenizer('simple') IS NOT NULL"
        let refused = #expect(throws: QueryError.self) { try FlowQueryRunner(store: store).run(leak) { _ in true } }
        #expect(refused?.kind == .notAllowed, "\(String(describing: refused))")
        // Ordinary filters, quotes included, still work.
        var fine = FlowQuery()
        fine.whereSQL = "DstPort = 443 AND SrcK8S_Namespace <> 'it''s' AND \"Proto\" = 6"
        var rows = 0
        try FlowQueryRunner(store: store).run(fine) { _ in rows += 1; return true }
        #expect(rows > 0)
    }

    @Test func runawayStatementsAreStoppedByTheirBounds() throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 1_000)
        var limits = QueryLimits(deadlineSeconds: 1)
        let started = Date()
        let endless = #expect(throws: QueryError.self) {
            try SQLQuery(store: store).run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                                           limits: limits, columns: { _ in }) { _ in true }
        }
        #expect(Date().timeIntervalSince(started) < 10, "stopped near its 1 s deadline")
        #expect(endless?.kind == .cancelled && endless?.message.contains("deadline") == true, "\(String(describing: endless))")

        limits.deadlineSeconds = nil
        // A gigabyte string is never built: past SQLITE_LIMIT_LENGTH printf gives NULL at once.
        var value: QueryValue?
        let printfStarted = Date()
        try SQLQuery(store: store).run("SELECT length(printf('%.*c', 999999999, 'x'))", limits: limits, columns: { _ in }) { row in
            value = row.first
            return true
        }
        #expect(value == .null, "\(String(describing: value))")
        #expect(Date().timeIntervalSince(printfStarted) < 60)

        limits.maxMemoryBytes = 64 << 20
        let hungry = #expect(throws: QueryError.self) {
            try SQLQuery(store: store).run("""
                WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000)
                SELECT count(*) FROM (SELECT DISTINCT x FROM c)
                """, limits: limits, columns: { _ in }) { _ in true }
        }
        #expect(hungry?.kind == .cancelled && hungry?.message.contains("memory") == true, "\(String(describing: hungry))")
        let leak = #expect(throws: QueryError.self) {
            try SQLQuery(store: store).run("SELECT hex(fts3_tokenizer('simple'))", columns: { _ in }) { _ in true }
        }
        #expect(leak?.kind == .notAllowed, "\(String(describing: leak))")
    }
}
