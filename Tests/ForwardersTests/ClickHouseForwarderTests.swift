import FlowrecTestTraits
import FlowModel
import FlowrecTesting
@testable import Forwarders
import Foundation
import ShardStore
import Testing

/// The ClickHouse forwarder against the real test server (Debian's 18.16, started by
/// scripts/test): totals, resumption, kills, a server that goes away, bad credentials.
@Suite(.serialized, .ownThread) struct ClickHouseForwarderTests {
    func server() -> ClickHouseTestServer? {
        let server = ClickHouseTestServer.fromEnvironment()
        if server == nil { #expect(!TestEnvironment.requireServers, "FLOWREC_CLICKHOUSE_URL is not set") }
        return server
    }

    /// 48,000 flows in 1-minute windows: three sealed shards and an active one.
    func store(_ dir: TemporaryDirectory) throws -> ShardStore {
        try sealedGeneratedStore(at: dir.path, count: 48_000)
    }

    @Test(arguments: ClickHouseBlockEncoder.Format.allCases)
    func syncStoresEveryRowOnceWithEqualTotals(format: ClickHouseBlockEncoder.Format) async throws {
        guard let ch = server() else { return }
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let expected = try ReplicationTotals(sealedShardsOf: store)
        #expect(expected.rowsByShard.count >= 3)
        let database = ClickHouseTestServer.uniqueDatabase("sync")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }

        let forwarder = try ClickHouseForwarder(options: ch.forwarderOptions(database: database, format: format, chunkRows: 5_000))
        let summary = try await ShardReplicator(store: store, forwarder: forwarder).run()
        #expect(summary.rowsDelivered == expected.rows)
        #expect(forwarder.serverFacts?.dialect == .compatible, "18.16 gets the compatible table")
        #expect(forwarder.serverFacts?.deduplicationTokens == false)
        let replica = try ReplicationTotals(table: "\(database).flows", on: ch)
        #expect(replica == expected)

        // Every shard is marked delivered; a second run sends nothing.
        let states = try store.deliveries(forwarder: "clickhouse")
        #expect(states.count == expected.rowsByShard.count && states.values.allSatisfy(\.complete))
        let again = try await ShardReplicator(store: store, forwarder: forwarder).run()
        #expect(again.rowsDelivered == 0)
        #expect(try ReplicationTotals(table: "\(database).flows", on: ch) == expected)
    }

    /// The forwarder prepares chunks ahead across shard boundaries; a graceful stop
    /// between two chunks (within a shard or between shards) still leaves the saved
    /// progress equal to what the table holds, the progress reports follow the shards
    /// in order, and the next run sends the rest once.
    @Test func aStopBetweenChunksAcrossShardsSavesExactlyWhatWasSent() async throws {
        guard let ch = server() else { return }
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let expected = try ReplicationTotals(sealedShardsOf: store)
        let database = ClickHouseTestServer.uniqueDatabase("stop")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        let forwarder = try ClickHouseForwarder(options: ch.forwarderOptions(database: database, chunkRows: 5_000))
        let replicator = try ShardReplicator(store: store, forwarder: forwarder)
        let order = try replicator.pending().map(\.shard.id)
        #expect(order.count >= 3)

        var reports: [ReplicationProgress] = []
        let summary = try await replicator.run(shouldStop: { (reports.last?.rowsDone ?? 0) * 2 > expected.rows },
                                               progress: { reports.append($0) })
        #expect(summary.rowsDelivered * 2 > expected.rows && summary.rowsDelivered < expected.rows)
        #expect(try ReplicationTotals(table: "\(database).flows", on: ch).rows == summary.rowsDelivered)
        let states = try store.deliveries(forwarder: "clickhouse")
        let saved = states.reduce(Int64(0)) { total, entry in
            total + (entry.value.complete ? expected.rowsByShard[entry.key.description] ?? 0 : entry.value.chunksDelivered * 5_000)
        }
        #expect(saved == summary.rowsDelivered, "saved progress \(saved) against \(summary.rowsDelivered) rows sent")
        #expect(summary.shardsDelivered >= 1 && states.values.contains { !$0.complete })
        // Reports name the shards in delivery order, and count the completed ones.
        var seen: [ShardID] = []
        for report in reports where seen.last != report.current { seen.append(try #require(report.current)) }
        #expect(seen == Array(order.prefix(seen.count)))
        #expect(reports.last?.shardsDone == summary.shardsDelivered)

        let rest = try await ShardReplicator(store: store, forwarder: forwarder).run()
        #expect(summary.rowsDelivered + rest.rowsDelivered == expected.rows)
        #expect(try ReplicationTotals(table: "\(database).flows", on: ch) == expected)
    }

    /// Values ClickHouse's column cannot hold (a negative port, a count past UInt8) are
    /// NULL there and kept in `_extras`, with the flow's unknown fields.
    @Test func valuesThatDoNotFitTheirColumnAreKeptInExtras() async throws {
        guard let ch = server() else { return }
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        let lines: [[UInt8]] = [
            #"{"Bytes":10,"DstPort":70000,"Interfaces":["eth0","br\"ex"],"Proto":300,"SrcK8S_Namespace":"a","TimeFlowEndMs":1000,"custom":{"k":1}}"#,
            #"{"Bytes":20,"DstPort":443,"SrcK8S_Namespace":"b","TimeFlowEndMs":2000}"#,
            #"{"Bytes":1,"SrcK8S_Namespace":"c","TimeFlowEndMs":200000}"#,
        ].map { Array($0.utf8) }
        try store.append(batch(lines[...], firstLine: 1))
        _ = try store.sealClosedWindows()
        let database = ClickHouseTestServer.uniqueDatabase("misfit")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        for format in ClickHouseBlockEncoder.Format.allCases {
            var options = ch.forwarderOptions(database: database, format: format)
            options.name = "clickhouse-\(format.rawValue)"
            options.table = "flows_\(format.rawValue)"
            try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: options)).run()
            let rows = try ch.query("""
                SELECT SrcK8S_Namespace, DstPort, Proto, Interfaces, _extras FROM \(database).flows_\(format.rawValue)
                ORDER BY SrcK8S_Namespace FORMAT TabSeparated
                """)
            #expect(rows == #"""
                a	\N	\N	['eth0','br"ex']	{"custom":{"k":1},"Proto":300,"DstPort":70000}
                b	443	\N	[]	\N

                """#, "\(format)")
        }
    }

    @Test func wrongPasswordStopsWithTheServersMessageAndMarksNothing() async throws {
        guard let ch = server() else { return }
        let dir = TemporaryDirectory()
        let store = try store(dir)
        var options = ch.forwarderOptions(database: ClickHouseTestServer.uniqueDatabase("auth"))
        options.endpoint.password = "not-the-password"
        let error = await #expect(throws: ForwarderError.self) {
            try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: options)).run()
        }
        #expect(error?.kind == .rejected)
        #expect(error?.message.contains("Wrong password") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("Check the ClickHouse user and password") == true)
        #expect(try store.deliveries(forwarder: "clickhouse").isEmpty)
    }

    @Test func aMismatchedTableIsReportedColumnByColumn() async throws {
        guard let ch = server() else { return }
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let database = ClickHouseTestServer.uniqueDatabase("mismatch")
        _ = try ch.query("CREATE DATABASE \(database)")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        _ = try ch.query(ClickHouseSchema.createTable(database: database, table: "flows", dialect: .compatible))
        _ = try ch.query("ALTER TABLE \(database).flows DROP COLUMN DnsName")
        _ = try ch.query("ALTER TABLE \(database).flows MODIFY COLUMN Bytes Nullable(UInt32)")
        var options = ch.forwarderOptions(database: database)
        options.createTable = false
        let error = await #expect(throws: ForwarderError.self) {
            try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: options)).run()
        }
        #expect(error?.message.contains("column `DnsName` is missing (flowrec sends Nullable(String))") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("column `Bytes` is Nullable(UInt32), flowrec sends Nullable(UInt64)") == true)
        #expect(try ch.query("SELECT count() FROM \(database).flows").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    /// `flowrec sync` killed with SIGKILL while chunks are in flight, then run again: the
    /// table ends with every row, and at most the one chunk in flight twice (18.16 has
    /// no deduplication tokens).
    @Test func syncKilledMidwayCompletesWithAtMostOneChunkRepeated() async throws {
        guard let ch = server() else { return }
        let dir = TemporaryDirectory()
        let expected = try ReplicationTotals(sealedShardsOf: store(dir))
        let database = ClickHouseTestServer.uniqueDatabase("kill")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        let chunkRows: Int64 = 700
        let arguments = ["sync", "clickhouse", "--data", dir.path, "--clickhouse-url", ch.endpoint.absoluteString,
                         "--clickhouse-user", ch.user, "--clickhouse-database", database, "--create-table",
                         "--clickhouse-chunk-rows", String(chunkRows)]
        let environment = ["FLOWREC_CLICKHOUSE_PASSWORD": ch.password]
        let flowrec = try ChildProcess.flowrec()
        var kills = 0
        for round in 0..<3 {
            let child = try ChildProcess.start(flowrec, arguments, environment: environment)
            // Kill once some rows have arrived, at a different point each round.
            let target = Int64(round + 1) * expected.rows / 5
            var watch = ProgressWatch(stallSeconds: 120)
            while child.isRunning {
                let rows = rowCount(of: "\(database).flows", on: ch)
                guard rows < target, !watch.stalled(progress: Int(rows)) else { break }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            if child.isRunning {
                kill(child.processIdentifier, SIGKILL)
                kills += 1
            }
            child.waitUntilExit()
        }
        #expect(kills >= 2, "the sync finished before it could be killed; use smaller chunks")
        #expect(try ChildProcess.run(flowrec, arguments, environment: environment) == 0)

        let replica = try ReplicationTotals(table: "\(database).flows", on: ch)
        #expect(Set(replica.rowsByShard.keys) == Set(expected.rowsByShard.keys))
        // Each kill may have repeated its one chunk in flight, and nothing else.
        var repeatedChunks: Int64 = 0
        for (shard, rows) in expected.rowsByShard {
            let extra = (replica.rowsByShard[shard] ?? 0) - rows
            #expect(extra >= 0, "shard \(shard) lost \(-extra) rows")
            let lastChunk = rows % chunkRows
            let wholeChunks = extra % chunkRows == 0 ? extra / chunkRows
                : (lastChunk > 0 && (extra - lastChunk) % chunkRows == 0 ? (extra - lastChunk) / chunkRows + 1 : -1)
            #expect(wholeChunks >= 0, "shard \(shard): \(extra) extra rows are not whole chunks")
            repeatedChunks += max(wholeChunks, 0)
        }
        #expect(repeatedChunks <= Int64(kills), "\(repeatedChunks) chunks repeated by \(kills) kills")
        let distinct = try ch.query("""
            SELECT count() FROM (SELECT DISTINCT _shard, TimeFlowEndMs, TimeFlowStartMs, SrcAddr, DstAddr, SrcPort, DstPort, Bytes, Packets FROM \(database).flows)
            """).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(distinct == String(try distinctFlows(in: dir.path)), "every stored flow reached the table")
    }

    /// Rows in `table`, 0 while it does not exist yet.
    func rowCount(of table: String, on ch: ClickHouseTestServer) -> Int64 {
        (try? ch.query("SELECT count() FROM \(table)")).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
    }

    /// Distinct flows by the key the kill test compares on, counted from the store.
    func distinctFlows(in path: String) throws -> Int {
        let store = try ShardStore.openExisting(directory: path)
        var keys = Set<String>()
        let names = ["TimeFlowEndMs", "TimeFlowStartMs", "SrcAddr", "DstAddr", "SrcPort", "DstPort", "Bytes", "Packets"]
        let fields = names.map { FlowSchema.id(of: $0) }
        for shard in try store.shards() where shard.state == .sealed {
            try store.forEachFlow(in: shard.id) { flow in
                keys.insert(shard.id.description + "|" + fields.map { flow.integer($0).map(String.init) ?? flow.string($0) ?? "" }.joined(separator: "|"))
            }
        }
        return keys.count
    }

    /// A private ClickHouse server killed for a few seconds in the middle of a sync:
    /// the forwarder retries until it is back, then completes.
    @Test func serverStoppedDuringSyncIsRetriedUntilItReturns() async throws {
        guard server() != nil else { return }
        let scratch = TemporaryDirectory()
        let instance = try PrivateClickHouse(directory: scratch.path + "/ch", httpPort: 18_200 + Int.random(in: 0..<300))
        defer { instance.stop() }
        let ch = try instance.start()
        let dir = TemporaryDirectory()
        let expected = try ReplicationTotals(sealedShardsOf: store(dir))
        let database = "restart"
        var options = ch.forwarderOptions(database: database, chunkRows: 1_000)
        options.retry = RetryPolicy(maxAttempts: 100, initialDelaySeconds: 0.2, maxDelaySeconds: 1)
        let path = dir.path
        let sync = Task {
            let store = try ShardStore.openExisting(directory: path)
            return try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: options)).run()
        }
        // Wait for the first rows, then take the server away for 4 s.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, rowCount(of: "\(database).flows", on: ch) == 0 {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        instance.kill()
        try await Task.sleep(nanoseconds: 4_000_000_000)
        _ = try instance.start()
        let summary = try await sync.value
        #expect(summary.rowsDelivered == expected.rows)
        let replica = try ReplicationTotals(table: "\(database).flows", on: ch)
        #expect(expected.duplicationProblem(in: replica, chunkRows: 1_000) == nil)
    }
}

/// A ClickHouse server of this test's own (scripts/clickhouse-test-server with its own
/// directory and ports), which the test may kill and start again.
struct PrivateClickHouse {
    let directory: String
    let httpPort: Int
    /// More settings for the script (HTTPS: FLOWREC_CH_HTTPS_PORT, FLOWREC_CH_TLS_DIR, ...).
    let extraEnvironment: [String: String]
    let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/clickhouse-test-server").path

    init(directory: String, httpPort: Int, extraEnvironment: [String: String] = [:]) throws {
        self.directory = directory
        self.httpPort = httpPort
        self.extraEnvironment = extraEnvironment
    }

    private var environment: [String: String] {
        ["FLOWREC_CH_DIR": directory, "FLOWREC_CH_HTTP_PORT": String(httpPort), "FLOWREC_CH_TCP_PORT": String(httpPort + 1000)]
            .merging(extraEnvironment) { _, new in new }
    }

    /// Starts it (keeping its data) and waits until it answers.
    func start() throws -> ClickHouseTestServer {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "start"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let url = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let parts = URLComponents(string: url), let endpoint = URL(string: "http://127.0.0.1:\(httpPort)") else {
            throw TestServerUnavailable("scripts/clickhouse-test-server start failed for \(directory)")
        }
        return ClickHouseTestServer(endpoint: endpoint, user: parts.user ?? "default", password: parts.password ?? "")
    }

    /// SIGKILL, as a crash: the data stays for the next start.
    func kill() {
        if let pid = try? String(contentsOfFile: directory + "/pid", encoding: .utf8), let id = Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) {
            Foundation.kill(id, SIGKILL)
            while Foundation.kill(id, 0) == 0 { usleep(10_000) }
        }
    }

    func stop() {
        kill()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// uint64 counters at 2^63-1, 2^63 and 2^64-1 survive the whole way: stored, sealed,
/// read back by query, sql and every export, and replicated to ClickHouse's UInt64.
@Suite(.serialized, .ownThread) struct UInt64CounterTests {
    static let values: [UInt64] = [9_223_372_036_854_775_807, 9_223_372_036_854_775_808, 18_446_744_073_709_551_615]

    func store(_ dir: TemporaryDirectory) throws -> ShardStore {
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        let lines = Self.values.enumerated().map { i, v in
            Array(#"{"Bytes":\#(v),"Packets":\#(v),"SrcK8S_Namespace":"n\#(i)","TimeFlowEndMs":\#(1_767_225_600_000 + Int64(i))}"#.utf8)
        } + [Array(#"{"Bytes":1,"SrcK8S_Namespace":"later","TimeFlowEndMs":1767225700000}"#.utf8)]
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealClosedWindows()
        return store
    }

    @Test func storedSealedQueriedAndExportedExactly() throws {
        let dir = TemporaryDirectory()
        do { _ = try store(dir) }
        let flowrec = try ChildProcess.flowrec().path
        let expected = Self.values.map(String.init)
        let json = try ChildProcess.output(flowrec, ["query", "--data", dir.path, "--fields", "Bytes,Packets", "--format", "jsonl",
                                                     "--where", "SrcK8S_Namespace <> 'later'"])
        #expect(json == expected.map { "{\"Bytes\":\($0),\"Packets\":\($0)}\n" }.joined(), "\(json)")
        let sql = try ChildProcess.output(flowrec, ["sql", "--data", dir.path, "--format", "csv",
                                                    "SELECT Bytes FROM flows WHERE SrcK8S_Namespace <> 'later' ORDER BY TimeFlowEndMs"])
        #expect(sql == "Bytes\n" + expected.map { $0 + "\n" }.joined(), "\(sql)")
        let exported = dir.path + "/out.jsonl"
        #expect(try ChildProcess.run(try ChildProcess.flowrec(), ["export", "--data", dir.path, "--format", "jsonl", "--output", exported]) == 0)
        let lines = try String(contentsOfFile: exported, encoding: .utf8)
        for v in expected { #expect(lines.contains("\"Bytes\":\(v),"), "\(v) in \(lines)") }
        let csv = dir.path + "/out.csv"
        #expect(try ChildProcess.run(try ChildProcess.flowrec(), ["export", "--data", dir.path, "--format", "csv", "--output", csv]) == 0)
        let csvText = try String(contentsOfFile: csv, encoding: .utf8)
        for v in expected { #expect(csvText.contains(",\(v),"), "\(v) in the CSV export") }
    }

    @Test(arguments: ClickHouseBlockEncoder.Format.allCases)
    func replicatedToClickHouseExactly(format: ClickHouseBlockEncoder.Format) async throws {
        guard let ch = ClickHouseTestServer.fromEnvironment() else {
            #expect(!TestEnvironment.requireServers, "FLOWREC_CLICKHOUSE_URL is not set")
            return
        }
        let dir = TemporaryDirectory()
        let store = try store(dir)
        let database = ClickHouseTestServer.uniqueDatabase("u64")
        defer { _ = try? ch.query("DROP DATABASE IF EXISTS \(database)") }
        try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: ch.forwarderOptions(database: database, format: format))).run()
        let rows = try ch.query("SELECT toString(Bytes), toString(Packets) FROM \(database).flows WHERE SrcK8S_Namespace != 'later' ORDER BY TimeFlowEndMs FORMAT TabSeparated")
        #expect(rows == Self.values.map { "\($0)\t\($0)\n" }.joined(), "\(format): \(rows)")
    }
}
