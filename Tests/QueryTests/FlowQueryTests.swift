import FlowrecTestTraits
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing

/// Queries over a store spanning 48 one-minute windows (half sealed) give the same
/// answers as a direct computation over the input flows.
@Suite(.ownThread) struct FlowQueryTests {
    static let t0: Int64 = 1_767_225_600_000

    /// The store and the flows that went in, decoded.
    static func fixture(_ dir: TemporaryDirectory) throws -> (ShardStore, [Flow]) {
        var options = GeneratorOptions()
        options.flowsPerSecond = 10
        options.disorderMs = 0
        options.seed = 8
        var generator = FlowGenerator(options: options)
        var batch = IngestBatch()
        let src = batch.sourceIndex("file:q")
        var flows: [Flow] = []
        for i in 0..<(48 * 60 * 10) {
            let flow = generator.nextFlow()
            flows.append(flow)
            batch.append(flow, at: SourcePosition(source: src, partition: 0, position: Int64(i + 1)))
        }
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch)
        try store.sealClosedWindows(watermarkMs: t0 + 24 * 60_000)
        return (store, flows)
    }

    @Test func filteredRangeQueriesMatchADirectComputation() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        let shards = try store.shards()
        #expect(shards.count >= 48)
        #expect(shards.filter { $0.state == .sealed }.count >= 20)

        let ns = FlowSchema.id(of: "SrcK8S_Namespace"), port = FlowSchema.id(of: "DstPort")
        let bytes = FlowSchema.id(of: "Bytes"), end = FlowSchema.requiredField
        // The busiest source namespace, over a range that crosses sealed and active shards.
        var counts: [String: Int] = [:]
        for f in flows { if let n = f.string(ns) { counts[n, default: 0] += 1 } }
        let namespace = try #require(counts.max { $0.value < $1.value }?.key)
        let from = Self.t0 + 10 * 60_000, to = Self.t0 + 40 * 60_000
        let expected = flows.filter {
            guard let t = $0.integer(end) else { return false }
            return t >= from && t < to && $0.string(ns) == namespace && ($0.integer(port) ?? 0) > 1000
        }

        var query = FlowQuery()
        query.fromMs = from
        query.toMs = to
        query.whereSQL = "SrcK8S_Namespace = '\(namespace)' AND DstPort > 1000"
        query.fields = ["Bytes", "TimeFlowEndMs"]
        var rows = 0
        var sum: Int64 = 0
        var lastTime = Int64.min
        try FlowQueryRunner(store: store).run(query) { values in
            rows += 1
            if case .integer(let b) = values[0] { sum += b }
            if case .integer(let t) = values[1] {
                #expect(t >= lastTime, "rows come oldest first")
                lastTime = t
            }
            return true
        }
        #expect(rows == expected.count)
        #expect(sum == expected.reduce(0) { $0 + ($1.integer(bytes) ?? 0) })
        #expect(rows > 100)
    }

    @Test func limitStopsEarly() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try Self.fixture(dir)
        var query = FlowQuery()
        query.limit = 20
        var rows = 0
        try FlowQueryRunner(store: store).run(query) { _ in rows += 1; return true }
        #expect(rows == 20)
    }

    @Test func queriesCannotChangeStoredData() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        for attack in ["1=1; DELETE FROM flow_rows", "1=1) UNION SELECT 1; DROP TABLE strings; --",
                       "(SELECT count(*) FROM flow_rows) > 0); ATTACH DATABASE '/tmp/x' AS x; --"] {
            var query = FlowQuery()
            query.whereSQL = attack
            #expect(throws: QueryError.self) { try FlowQueryRunner(store: store).run(query) { _ in true } }
        }
        var query = FlowQuery()
        query.fields = ["Bytes"]
        var rows = 0
        try FlowQueryRunner(store: store).run(query) { _ in rows += 1; return true }
        #expect(rows == flows.count)
    }

    @Test func unknownFieldsAreNamed() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try Self.fixture(dir)
        var query = FlowQuery()
        query.fields = ["Bytes", "NoSuchField"]
        let error = #expect(throws: QueryError.self) { try FlowQueryRunner(store: store).run(query) { _ in true } }
        #expect(error?.description.contains("NoSuchField") == true)
    }
}

@Suite(.ownThread) struct TopTalkersTests {
    @Test func topNamespacePairsMatchADirectComputation() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try FlowQueryTests.fixture(dir)
        let src = FlowSchema.id(of: "SrcK8S_Namespace"), dst = FlowSchema.id(of: "DstK8S_Namespace")
        let bytes = FlowSchema.id(of: "Bytes")
        var expected: [[String]: Int64] = [:]
        for f in flows { expected[[f.string(src) ?? "", f.string(dst) ?? ""], default: 0] += f.integer(bytes) ?? 0 }
        let top = try TopTalkers(store: store).run(by: ["SrcK8S_Namespace", "DstK8S_Namespace"], metric: .bytes,
                                                   fromMs: nil, toMs: nil, limit: 5)
        let want = expected.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.lexicographicallyPrecedes($1.key) }.prefix(5)
        #expect(top.map(\.group) == want.map(\.key))
        #expect(top.map(\.bytes) == want.map(\.value))
        let flowsTotal = try TopTalkers(store: store).run(by: ["Proto"], metric: .flows, fromMs: nil, toMs: nil, limit: 10)
        #expect(flowsTotal.reduce(0) { $0 + $1.flows } == Int64(flows.count))
    }
}

@Suite(.ownThread) struct ExportTests {
    @Test func jsonLinesExportEqualsTheInput() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try FlowQueryTests.fixture(dir)
        var lines: [String] = []
        let count = try FlowExporter(store: store).exportJSONLines(fromMs: nil, toMs: nil) { bytes in
            lines.append(String(decoding: bytes.dropLast(), as: UTF8.self))
        }
        #expect(count == flows.count)
        let encoder = FlowEncoder()
        #expect(Set(lines) == Set(flows.map { encoder.encode($0) }), "every exported line is an input record, unchanged")
    }

    @Test func sqliteExportOpensInSqlite3AndInChdb() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try FlowQueryTests.fixture(dir)
        let path = dir.path + "/export.sqlite"
        let count = try FlowExporter(store: store).exportSQLite(to: path, fromMs: nil, toMs: nil)
        #expect(count == flows.count)
        let bytes = flows.reduce(Int64(0)) { $0 + ($1.integer(FlowSchema.id(of: "Bytes")) ?? 0) }
        let shell = try ChildProcess.output("/usr/bin/sqlite3", [path, "SELECT count(*) || '|' || sum(Bytes) || '|' || typeof(Bytes) FROM flows"])
        #expect(shell.trimmingCharacters(in: .whitespacesAndNewlines) == "\(flows.count)|\(bytes)|integer")
        let script = "import sys, chdb; print(chdb.query(\"SELECT count(), sum(Bytes), toTypeName(sum(Bytes)) FROM sqlite('\" + sys.argv[1] + \"', 'flows')\", 'CSV'), end='')"
        let ch = try ChildProcess.output("/usr/bin/env", ["python3", "-c", script, path])
        if ch.contains("No module named") {
            #expect(!TestEnvironment.requireServers, "chdb is not installed: run scripts/setup-deps")
            return
        }
        #expect(ch.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("\(flows.count),\(bytes),"), "chdb read: \(ch)")
        #expect(ch.contains("Int64") || ch.contains("UInt64"), "64-bit sum in ClickHouse: \(ch)")
    }

    /// `flowrec export --format csv` loads back (Python's csv module, quoted fields with
    /// commas and newlines included) with one row per flow and every field as a column.
    @Test func csvExportLoadsBackWithTheSameCount() throws {
        let dir = TemporaryDirectory()
        let (_, flows) = try FlowQueryTests.fixture(dir)
        let path = dir.path + "/export.csv"
        #expect(try ChildProcess.run(try ChildProcess.flowrec(), ["export", "--data", dir.path, "--format", "csv", "--output", path]) == 0)
        let script = "import csv, sys; rows = list(csv.reader(open(sys.argv[1], newline=''))); print(len(rows) - 1, len(rows[0]), len(set(len(r) for r in rows)))"
        let loaded = try ChildProcess.output("/usr/bin/env", ["python3", "-c", script, path]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(loaded == "\(flows.count) \(FlowSchema.count) 1", "rows, columns, distinct row widths: \(loaded)")
    }

    /// CSV and Parquet read many fields from whole flows (`forEachRow`): the values and
    /// their order equal what the `flows` view gives for the same query.
    @Test func rowsFromWholeFlowsEqualTheViewsRows() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try FlowQueryTests.fixture(dir)
        var query = FlowQuery()
        query.fields = ShardSchemaColumns.fieldNames + ["_extras"]
        query.fromMs = flows[1_000].integer(FlowSchema.requiredField)
        var fromFlows: [[QueryValue]] = []
        try FlowExporter(store: store).forEachRow(query) { fromFlows.append($0); return true }
        var fromView: [[QueryValue]] = []
        try FlowQueryRunner(store: store, limits: .export).run(query) { fromView.append($0); return true }
        #expect(fromFlows.count > 20_000 && fromFlows.count == fromView.count, "\(fromFlows.count) and \(fromView.count) rows")
        for (i, (a, b)) in zip(fromFlows, fromView).enumerated() where a != b {
            Issue.record("row \(i) differs: \(zip(query.fields, zip(a, b)).filter { $1.0 != $1.1 }.prefix(3))")
            break
        }
    }

    @Test func refusesToOverwriteAnExistingFile() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try FlowQueryTests.fixture(dir)
        #expect(FileManager.default.createFile(atPath: dir.path + "/x.sqlite", contents: Data()))
        #expect(throws: QueryError.self) { try FlowExporter(store: store).exportSQLite(to: dir.path + "/x.sqlite", fromMs: nil, toMs: nil) }
    }
}

/// Time and duration arguments that trapped the CLI are refused as usage errors.
@Suite(.ownThread) struct HostileArgumentTests {
    @Test func infiniteOrOverflowingTimesAreUsageErrors() throws {
        let dir = TemporaryDirectory()
        _ = try sealedGeneratedStore(at: dir.path, count: 500)
        let flowrec = try ChildProcess.flowrec()
        for arguments in [["--since", "inf"], ["--since", "1e300d"], ["--since", "nan"], ["--from", "-9223372036854775808"],
                          ["--to", "9223372036854775807"]] {
            let status = try ChildProcess.run(flowrec, ["query", "--data", dir.path, "--limit", "1"] + arguments)
            #expect(status == 64, "\(arguments): exit \(status)")
        }
        #expect(try ChildProcess.run(flowrec, ["query", "--data", dir.path, "--limit", "1", "--since", "3650d"]) == 0)
    }
}
