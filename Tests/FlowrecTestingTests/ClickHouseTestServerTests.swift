import FlowrecTestTraits
import FlowrecTesting
import Foundation
import Testing

/// The ClickHouse test server answers over HTTP with the password-protected user.
@Suite(.ownThread) struct ClickHouseTestServerTests {
    func server() throws -> ClickHouseTestServer? {
        if let server = ClickHouseTestServer.fromEnvironment() { return server }
        if TestEnvironment.requireServers {
            throw TestServerUnavailable("FLOWREC_CLICKHOUSE_URL is not set: start it with scripts/clickhouse-test-server start")
        }
        return nil
    }

    @Test func createInsertAndReadWithThePasswordUser() throws {
        guard let ch = try server() else { return }
        #expect(ch.user == "flowrec")
        let table = "t_\(UInt32.random(in: 0...UInt32.max))"
        _ = try ch.query("CREATE TABLE default.\(table) (id UInt64, name String, bytes UInt64) ENGINE = MergeTree ORDER BY id")
        _ = try ch.query("INSERT INTO default.\(table) FORMAT JSONEachRow",
                               body: Data(#"{"id":1,"name":"a","bytes":18446744073709551615}\#n{"id":2,"name":"b","bytes":5}"#.utf8))
        let rows = try ch.query("SELECT id, name, bytes FROM default.\(table) ORDER BY id FORMAT TabSeparated")
        #expect(rows == "1\ta\t18446744073709551615\n2\tb\t5\n")
        _ = try ch.query("DROP TABLE default.\(table)")
    }

    @Test func wrongPasswordGivesAClearError() throws {
        guard let ch = try server() else { return }
        do {
            _ = try ch.query("SELECT 1", password: "wrong")
            Issue.record("a wrong password was accepted")
        } catch let error as ClickHouseTestServer.QueryFailed {
            #expect(error.description.contains("Wrong password for user flowrec"))
        }
    }
}
