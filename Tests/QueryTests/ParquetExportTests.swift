import FlowGenerator
import FlowModel
import FlowrecTestTraits
import FlowrecTesting
import Foundation
@testable import Query
import ShardStore
import Testing

/// Parquet exports read back, column by column, in the readers analysts use: pyarrow,
/// polars, DuckDB and ClickHouse (chdb). The expected figures are computed here from the
/// flows that went in (decoded by FlowModel, arrays parsed by Foundation), not from the
/// store, so a conversion that loses or bends a value shows as a difference.
@Suite(.ownThread) struct ParquetExportTests {
    /// Records that carry the spellings NetObserv has used over time: base64 and
    /// numeric-string `IfDirections`, `Flags` as a number and as names, UInt64 counters
    /// at and above 2^63, escaped and non-ASCII strings, nulls, an unknown field.
    static let quirks = [
        #"{"Bytes":18446744073709551615,"Flags":["SYN","ACK"],"IfDirections":"AAE=","Interfaces":["eth0","br-ex"],"NewAgentField":{"x":[1,2]},"Packets":1,"SrcK8S_Namespace":"caf\u00e9 \"quoted\"","TimeFlowEndMs":1767225601000,"TimeFlowStartMs":1767225600000}"#,
        #"{"Bytes":9223372036854775808,"Flags":18,"IfDirections":["0","1"],"SrcK8S_Namespace":null,"TimeFlowEndMs":1767225602000}"#,
        #"{"Bytes":0,"IfDirections":[],"Interfaces":[],"TimeFlowEndMs":1767225603000}"#,
    ]

    /// A store of generated flows of every feature and of the legacy shape, the shared
    /// corpus when present, and `quirks`, over one-minute shards (some sealed).
    static func fixture(_ dir: TemporaryDirectory) throws -> (ShardStore, [Flow]) {
        var flows: [Flow] = []
        for (shape, features) in [(GeneratorOptions.Shape.current, Set(GeneratorOptions.Feature.allCases)),
                                  (.legacy, GeneratorOptions.defaultFeatures)] {
            var options = GeneratorOptions()
            options.shape = shape
            options.features = features
            options.flowsPerSecond = 20
            options.seed = 21
            var generator = FlowGenerator(options: options)
            for _ in 0..<3_000 { flows.append(generator.nextFlow()) }
        }
        let decoder = FlowDecoder()
        for line in (try TestEnvironment.sharedCorpusLines() ?? []) + quirks.map({ Array($0.utf8) }) {
            flows.append(try decoder.decode(line))
        }
        var batch = IngestBatch()
        let src = batch.sourceIndex("file:parquet")
        for (i, flow) in flows.enumerated() { batch.append(flow, at: SourcePosition(source: src, partition: 0, position: Int64(i + 1))) }
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try store.append(batch)
        try store.sealClosedWindows(watermarkMs: FlowQueryTests.t0 + 2 * 60_000)
        #expect(try store.shards().contains { $0.state == .sealed })
        return (store, flows)
    }

    /// Per column: non-null values, then two figures by type (integers: the sum mod 2^64
    /// of their bit patterns; bools: trues; strings: UTF-8 bytes; lists of strings:
    /// elements and their bytes; lists of integers: elements and their sum).
    static func expectedSummary(_ flows: [Flow], columns: [String]) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for name in columns {
            var nonNull = 0, a: UInt64 = 0, b: UInt64 = 0
            if name == "_extras" {
                for flow in flows { if let extras = flow.extrasJSON { nonNull += 1; a &+= UInt64(extras.utf8.count) } }
                out[name] = ["\(nonNull)", "\(a)", "0"]
                continue
            }
            let id = FlowSchema.id(of: name)
            for flow in flows {
                switch id.spec.kind {
                case .integer, .bool:
                    guard let v = flow.integer(id) else { continue }
                    nonNull += 1
                    a &+= id.spec.kind == .bool ? (v != 0 ? 1 : 0) : UInt64(bitPattern: v)
                case .string, .objectArray:
                    guard let s = flow.string(id) else { continue }
                    nonNull += 1
                    a &+= UInt64(s.utf8.count)
                case .stringArray, .tcpFlags:
                    guard let s = flow.string(id) else { continue }
                    let names = Int64(s).map(TCPFlagNames.names) ?? (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String]
                    guard let names else { Issue.record("\(name) \(s) is neither a number nor an array of strings"); continue }
                    nonNull += 1
                    a &+= UInt64(names.count)
                    b &+= UInt64(names.reduce(0) { $0 + $1.utf8.count })
                case .directionArray:
                    guard let s = flow.string(id) else { continue }
                    let parsed = try? JSONSerialization.jsonObject(with: Data(s.utf8), options: .fragmentsAllowed)
                    let values: [Int64]
                    if let base64 = parsed as? String, let bytes = Data(base64Encoded: base64) {
                        values = bytes.map { Int64($0) }
                    } else if let items = parsed as? [Any] {
                        values = items.compactMap { ($0 as? NSNumber)?.int64Value ?? ($0 as? String).flatMap { Int64($0) } }
                    } else {
                        Issue.record("\(name) \(s) is not directions"); continue
                    }
                    nonNull += 1
                    a &+= UInt64(values.count)
                    b = values.reduce(b) { $0 &+ UInt64(bitPattern: $1) }
                }
            }
            out[name] = ["\(nonNull)", "\(a)", "\(b)"]
        }
        return out
    }

    /// The figures of `expectedSummary` as pyarrow reads them, plus a few column types,
    /// whether `TimeFlowEndMs` is in order, and the footer's key-value metadata.
    static let pyarrowSummary = """
    import sys, pyarrow as pa, pyarrow.parquet as pq
    t = pq.read_table(sys.argv[1]); M = 1 << 64
    print("rows", t.num_rows)
    for name in t.column_names:
        col = t.column(name); typ = col.type
        vals = col.cast(pa.int64()).to_pylist() if pa.types.is_timestamp(typ) else col.to_pylist()
        nn = [v for v in vals if v is not None]
        if pa.types.is_list(typ):
            items = [x for v in nn for x in v]
            if pa.types.is_string(typ.value_type): f = (len(items), sum(len(x.encode()) for x in items if x is not None))
            else: f = (len(items), sum(items) % M)
        elif pa.types.is_string(typ): f = (sum(len(v.encode()) for v in nn), 0)
        elif pa.types.is_boolean(typ): f = (sum(1 for v in nn if v), 0)
        else: f = (sum(nn) % M, 0)
        print("col", name, len(nn), f[0], f[1])
        print("type", name, str(typ).replace(" ", ""))
    ends = t.column("TimeFlowEndMs").cast(pa.int64()).to_pylist()
    print("ordered", all(x <= y for x, y in zip(ends, ends[1:])))
    for k, v in (pq.read_metadata(sys.argv[1]).metadata or {}).items(): print("meta", k.decode(), v.decode().replace(" ", "_"))
    """

    /// Lines of `script`'s output split into words; nil (after checking that this is
    /// not CI) when a Python module it imports is not installed.
    static func python(_ script: String, _ path: String) throws -> [[String]]? {
        let out = try ChildProcess.output("/usr/bin/env", ["python3", "-c", script, path])
        if out.contains("No module named") {
            #expect(!TestEnvironment.requireServers, "a Python module is missing: run scripts/setup-deps (\(out))")
            return nil
        }
        return out.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    }

    @Test func everyColumnReadsBackInPyarrowAsItWentIn() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        let path = dir.path + "/all.parquet"
        let written = try FlowExporter(store: store).exportParquet(to: path, fromMs: nil, toMs: nil, rowGroupRows: 1000)
        #expect(written.rows == flows.count)
        #expect(written.unconverted.isEmpty, "\(written.unconverted)")
        // Whole flows are read ahead in blocks; blocks of a few rows write the same file.
        var smallBlocks = FlowExporter(store: store)
        smallBlocks.parquetBlockRows = 5
        try smallBlocks.exportParquet(to: dir.path + "/small-blocks.parquet", fromMs: nil, toMs: nil, rowGroupRows: 1000)
        #expect(FileManager.default.contents(atPath: dir.path + "/small-blocks.parquet") == FileManager.default.contents(atPath: path))
        guard let lines = try Self.python(Self.pyarrowSummary, path) else { return }
        #expect(lines.first == ["rows", "\(flows.count)"], "\(lines.prefix(3))")
        var got: [String: [String]] = [:], types: [String: String] = [:], meta: [String: String] = [:]
        for words in lines where words.count >= 3 {
            switch words[0] {
            case "col" where words.count == 5: got[words[1]] = Array(words[2...])
            case "type": types[words[1]] = words[2]
            case "meta": meta[words[1]] = words[2]
            default: break
            }
        }
        let expected = Self.expectedSummary(flows, columns: FlowExporter.parquetDefaultFields)
        #expect(Set(got.keys) == Set(expected.keys), "every field and _extras is a column")
        for (name, figures) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(got[name] == figures, "\(name): pyarrow read \(got[name] ?? []), the input has \(figures)")
        }
        #expect(types["TimeFlowEndMs"] == "timestamp[ms,tz=UTC]")
        #expect(types["Bytes"] == "uint64" && types["Proto"] == "int64")
        #expect(types["Interfaces"]?.hasPrefix("list<") == true && types["Interfaces"]?.hasSuffix("string>") == true)
        #expect(types["IfDirections"]?.hasSuffix("int64>") == true)
        #expect(lines.contains(["ordered", "True"]), "rows are in TimeFlowEndMs order across shards")
        #expect(meta["flowrec.shard_schema_version"] == String(ShardSchema.version))
    }

    /// polars, DuckDB and ClickHouse read the same file: row count, null counts of every
    /// column, UInt64 sums (mod 2^64) and list lengths.
    @Test func polarsDuckDBAndClickHouseReadTheSameFigures() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        let path = dir.path + "/all.parquet"
        try FlowExporter(store: store).exportParquet(to: path, fromMs: nil, toMs: nil, rowGroupRows: 1000)
        let expected = Self.expectedSummary(flows, columns: FlowExporter.parquetDefaultFields)
        let bytes = expected["Bytes"]![1], interfaces = expected["Interfaces"]![1]

        let polars = """
        import sys, polars as pl
        df = pl.read_parquet(sys.argv[1])
        print("rows", df.height)
        nulls = df.null_count().row(0, named=True)
        for name in df.columns: print("nonnull", name, df.height - nulls[name])
        print("interfaces", df["Interfaces"].list.len().sum())
        """
        if let lines = try Self.python(polars, path) {
            #expect(lines.first == ["rows", "\(flows.count)"], "\(lines.prefix(3))")
            for words in lines where words.first == "nonnull" && words.count == 3 {
                #expect(words[2] == expected[words[1]]?[0], "polars: \(words[1]) has \(words[2]) non-null values")
            }
            #expect(lines.filter { $0.first == "nonnull" }.count == expected.count)
            #expect(lines.contains(["interfaces", interfaces]))
        }

        let duckdb = """
        import sys, duckdb
        c, b, i = duckdb.execute("SELECT count(*), sum(Bytes), sum(len(Interfaces)) FROM read_parquet(?)", [sys.argv[1]]).fetchone()
        print(c, int(b) % (1 << 64), i)
        """
        if let lines = try Self.python(duckdb, path) {
            #expect(lines.first == ["\(flows.count)", bytes, interfaces], "DuckDB read \(lines)")
        }

        let clickhouse = """
        import sys, chdb
        print(chdb.query("SELECT count(), sum(Bytes), sum(length(Interfaces)) FROM file('" + sys.argv[1] + "', Parquet)", "TSV"), end="")
        """
        if let lines = try Self.python(clickhouse, path) {
            #expect(lines.first?.joined(separator: " ").split(separator: "\t").map(String.init) == ["\(flows.count)", bytes, interfaces],
                    "chdb read \(lines)")
        }
    }

    /// `flowrec export --format parquet` with `--where` and `--fields` writes just those
    /// columns and rows; `--split` one file per shard, each with its shard's rows.
    @Test func theCommandFiltersPicksFieldsAndSplits() throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        let flowrec = try ChildProcess.flowrec()
        let proto = FlowSchema.id(of: "Proto"), port = FlowSchema.id(of: "DstPort")
        let tcp443 = flows.filter { $0.integer(proto) == 6 && $0.integer(port) == 443 }
        #expect(!tcp443.isEmpty)
        let picked = dir.path + "/picked.parquet"
        let run = try ChildProcess.capture(flowrec, ["export", "--data", dir.path, "--format", "parquet", "--output", picked,
                                                     "--where", "Proto = 6 AND DstPort = 443", "--fields", "TimeFlowEndMs,SrcAddr,Bytes"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("exported \(tcp443.count) flows"), "\(run.stderr)")
        let columns = """
        import sys, pyarrow.parquet as pq
        t = pq.read_table(sys.argv[1]); print(t.num_rows, ",".join(t.column_names))
        """
        if let lines = try Self.python(columns, picked) {
            #expect(lines.first == ["\(tcp443.count)", "TimeFlowEndMs,SrcAddr,Bytes"])
        }

        let split = dir.path + "/split"
        let splitRun = try ChildProcess.capture(flowrec, ["export", "--data", dir.path, "--format", "parquet", "--output", split, "--split"])
        #expect(splitRun.status == 0, "\(splitRun.stderr)")
        let shards = try store.shards().filter { $0.rowCount > 0 }
        let files = try FileManager.default.contentsOfDirectory(atPath: split).sorted()
        #expect(files == shards.map { "\($0.id).parquet" }.sorted())
        let counts = """
        import sys, os, pyarrow.parquet as pq
        for f in sorted(os.listdir(sys.argv[1])): print(f, pq.read_metadata(os.path.join(sys.argv[1], f)).num_rows)
        """
        if let lines = try Self.python(counts, split) {
            let byFile = Dictionary(uniqueKeysWithValues: lines.filter { $0.count == 2 }.map { ($0[0], Int64($0[1]) ?? -1) })
            for shard in shards { #expect(byFile["\(shard.id).parquet"] == shard.rowCount, "\(shard.id)") }
            #expect(byFile.values.reduce(0, +) == Int64(flows.count))
        }

        let unknown = try ChildProcess.capture(flowrec, ["export", "--data", dir.path, "--format", "parquet", "--output", dir.path + "/x.parquet",
                                                         "--fields", "Bytes,NoSuchField"])
        #expect(unknown.status != 0 && unknown.stderr.contains("NoSuchField"), "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/x.parquet"), "a failed export leaves no partial file")
    }

    /// JSON lines come in `TimeFlowEndMs` order across shards (a window's late part
    /// included), and `--where` keeps exactly the matching records, whole.
    /// Exports read whole flows a block at a time, in storage order, and hand them over
    /// in time order: blocks far smaller than a shard give the same lines.
    @Test(arguments: [32_768, 7])
    func jsonLinesAreInTimeOrderAndFiltered(blockRows: Int) throws {
        let dir = TemporaryDirectory()
        let (store, flows) = try Self.fixture(dir)
        let end = FlowSchema.requiredField, ns = FlowSchema.id(of: "SrcK8S_Namespace")
        var counts: [String: Int] = [:]
        for f in flows { if let n = f.string(ns) { counts[n, default: 0] += 1 } }
        let namespace = try #require(counts.max { $0.value < $1.value }?.key)
        let decoder = FlowDecoder(), encoder = FlowEncoder()
        var times: [Int64] = [], lines: [String] = []
        var exporter = FlowExporter(store: store)
        exporter.jsonLinesBlockRows = blockRows
        try exporter.exportJSONLines(fromMs: nil, toMs: nil, whereSQL: "SrcK8S_Namespace = '\(namespace)'") { line in
            let flow = try decoder.decode(Array(line.dropLast()))
            times.append(flow.integer(end) ?? .min)
            lines.append(String(decoding: line.dropLast(), as: UTF8.self))
        }
        #expect(times == times.sorted(), "time order")
        let matching = flows.filter { $0.string(ns) == namespace }.map { encoder.encode($0) }
        #expect(lines.sorted() == matching.sorted())
    }

    /// Values without a faithful typed form are reported, not bent (pure conversion logic).
    @Test func valuesWithoutATypedFormAreReported() {
        let directions = ParquetFlows.column(for: FlowSchema.id(of: "IfDirections"))
        #expect(ParquetFlows.value(.text(#"["18446744073709551616"]"#), for: directions) == nil, "too large for Int64")
        #expect(ParquetFlows.value(.text(#"[0,1]"#), for: directions) == .int64s([0, 1]))
        #expect(ParquetFlows.value(.text(#""AAE=""#), for: directions) == .int64s([0, 1]))
        let flags = ParquetFlows.column(for: FlowSchema.id(of: "Flags"))
        #expect(ParquetFlows.value(.text("not flags"), for: flags) == nil)
        #expect(ParquetFlows.value(.text(#"["SYN"]"#), for: flags) == .strings(["SYN"]))
        #expect(ParquetFlows.value(.null, for: flags) == .null)
    }
}
