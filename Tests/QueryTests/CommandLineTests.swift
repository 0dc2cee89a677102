import FlowrecTestTraits
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// What a person typing `flowrec` sees: times read in every usual form, tables they can
/// read, errors that say what to do and exit with their class's code.
@Suite(.ownThread) struct CommandLineTests {
    /// Two hours of flows at 2 per second, hourly shards, sealed.
    static func store(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.path + "/data"
        let store = try ShardStore(directory: path, options: .init(windowMs: 3_600_000, graceMs: 0))
        try store.append(batch(generatedLines(14_400, seed: 3, rate: 2)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        try store.close()
        return path
    }

    func flowrec(_ arguments: [String]) throws -> ChildProcess.Captured {
        try ChildProcess.capture(try ChildProcess.flowrec(), arguments)
    }

    @Test func timesAreReadInEveryUsualForm() throws {
        let dir = TemporaryDirectory()
        let data = try Self.store(dir)
        func rows(_ arguments: [String]) throws -> (String, String) {
            let run = try flowrec(["query", "--data", data, "--fields", "TimeFlowEndMs", "--format", "csv", "--limit", "100000"] + arguments)
            #expect(run.status == 0, "\(arguments): \(run.stderr)")
            return (run.stdout, run.stderr)
        }
        // 2026-01-01T00:30:00Z in every form: the same rows.
        let reference = try rows(["--from", "2026-01-01T00:30:00Z", "--to", "2026-01-01T01:00:00Z"]).0
        #expect(reference.split(separator: "\n").count > 3000)
        for (from, to) in [("2026-01-01T00:30Z", "2026-01-01T01:00Z"), ("2026-01-01T00:30", "2026-01-01 01:00"),
                           ("2026-01-01T01:30+01:00", "2026-01-01T02:00:00+01:00"), ("1767227400000", "1767229200000")] {
            #expect(try rows(["--from", from, "--to", to]).0 == reference, "\(from) .. \(to)")
        }
        // Epoch seconds are read as seconds, and the reading is said.
        let (seconds, note) = try rows(["--from", "1767227400", "--to", "1767229200"])
        #expect(seconds == reference)
        #expect(note.contains("read as epoch seconds: 2026-01-01T00:30:00Z"), "\(note)")
        // A date is its midnight.
        let day = try rows(["--from", "2026-01-01", "--to", "2026-01-01T00:00:10Z"]).0
        #expect(day.split(separator: "\n").count > 5)
        // An empty or backwards range is refused, with the reason.
        let backwards = try flowrec(["query", "--data", data, "--from", "2026-01-02", "--to", "2026-01-01"])
        #expect(backwards.status == 64 && backwards.stderr.contains("is not after --from"), "\(backwards.stderr)")
        let unreadable = try flowrec(["query", "--data", data, "--from", "yesterday"])
        #expect(unreadable.status == 64 && unreadable.stderr.contains("2026-01-01T00:05"), "examples are given: \(unreadable.stderr)")
        // Nothing in the range: the store's own range is named.
        let nothing = try flowrec(["query", "--data", data, "--since", "1h"])
        #expect(nothing.status == 0 && nothing.stderr.contains("the store holds flows from 2025-12-31T23:59") || nothing.stderr.contains("the store holds flows from 2026-01-01T00:00"),
                "\(nothing.stderr)")
    }

    @Test func tablesShowTimesProtocolsAndAbsentValuesOneWay() throws {
        let dir = TemporaryDirectory()
        let data = try Self.store(dir)
        let table = try flowrec(["query", "--data", data, "--from", "2026-01-01T00:10Z", "--limit", "20", "--fields", "TimeFlowEndMs,Proto,SrcK8S_Namespace"])
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count == 21)
        #expect(lines[1].hasPrefix("2026-01-01T00:10:"), "\(lines[1])")
        #expect(lines.dropFirst().contains { $0.contains("TCP") || $0.contains("UDP") }, "protocol names")
        #expect(table.stderr.contains("--limit"), "a cut answer says so: \(table.stderr)")
        let raw = try flowrec(["query", "--data", data, "--from", "2026-01-01T00:10Z", "--limit", "20", "--fields", "TimeFlowEndMs,Proto", "--raw"])
        #expect(raw.stdout.split(separator: "\n")[1].hasPrefix("1767226"), "\(raw.stdout)")
        // top: an absent namespace is `-` in a table and null in JSON, totals humanised.
        let top = try flowrec(["top", "--data", data, "--by", "SrcK8S_Namespace", "--limit", "30"])
        #expect(top.status == 0 && top.stdout.contains("\n-  ") && top.stdout.contains("iB"), "\(top.stdout)")
        let json = try flowrec(["top", "--data", data, "--by", "SrcK8S_Namespace", "--limit", "30", "--format", "json"])
        #expect(json.stdout.contains("\"SrcK8S_Namespace\":null"), "\(json.stdout)")
        // series: every bucket, empty ones as zeros; one series per value with --by.
        let series = try flowrec(["series", "--data", data, "--from", "2026-01-01T01:40Z", "--to", "2026-01-01T02:40Z", "--step", "10m",
                                  "--format", "csv", "--raw"])
        let buckets = series.stdout.split(separator: "\n").dropFirst()
        #expect(buckets.count == 6, "\(series.stdout)")
        #expect(buckets.last?.hasSuffix(",0,0,0") == true, "a bucket after the data is zero: \(series.stdout)")
        let split = try flowrec(["series", "--data", data, "--from", "2026-01-01T00:00Z", "--to", "2026-01-01T01:00Z", "--step", "30m",
                                 "--by", "SrcK8S_Namespace", "--limit", "3", "--format", "csv"])
        #expect(split.stdout.split(separator: "\n").count == 1 + 3 * 2, "\(split.stdout)")
    }

    @Test func errorsSayWhatToDoAndExitByClass() throws {
        let dir = TemporaryDirectory()
        let data = try Self.store(dir)
        let typo = try flowrec(["qurey"])
        #expect(typo.status == 64 && typo.stderr.contains("Did you mean 'query'"), "\(typo.stderr)")
        let missing = try flowrec(["query", "--data", dir.path + "/nowhere"])
        #expect(missing.status == 66 && missing.stderr.contains("does not exist") && !missing.stderr.contains("Usage"), "\(missing.stderr)")
        #expect(FileManager.default.createFile(atPath: dir.path + "/file", contents: Data("x".utf8)))
        let file = try flowrec(["query", "--data", dir.path + "/file"])
        #expect(file.status == 66 && file.stderr.contains("is a file, not a data directory"), "\(file.stderr)")
        let column = try flowrec(["sql", "--data", data, "SELECT DstNamespace, count(*) FROM flows GROUP BY 1"])
        #expect(column.status == 65 && column.stderr.contains("did you mean DstK8S_Namespace"), "\(column.stderr)")
        let version = try flowrec(["--version"])
        #expect(version.status == 0 && version.stdout.contains("librdkafka") && version.stdout.contains("SQLite") && version.stdout.contains("zstd"))
    }

    /// Each reading command, and merge and compact, ends cleanly when glibc overwrites
    /// freed memory at once (no per-thread cache to hide it). `flowrec sql` crashed on
    /// every such run when its virtual table's functions were freed before the
    /// connection that calls through them at close (`VirtualTableSupport.register`); the
    /// console plugin's test hit it once under load, where other threads reused the
    /// memory.
    @Test func commandsEndCleanlyWhenFreedMemoryIsOverwritten() throws {
        let dir = TemporaryDirectory()
        let data = try Self.store(dir)
        let scribbling = ["MALLOC_PERTURB_": "165", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"]
        let commands: [[String]] = [
            ["sql", "--data", data, "SELECT count(*) FROM flows"],
            ["sql", "--data", data, "SELECT DstPort, count(*), sum(Bytes) FROM flows WHERE SrcK8S_Namespace IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 3"],
            ["query", "--data", data, "--limit", "5"],
            ["top", "--data", data],
            ["tail", "--data", data, "-n", "3"],
            ["export", "--data", data, "--format", "jsonl", "--output", dir.path + "/export.jsonl"],
            ["fsck", "--data", data],
            ["merge", "--data", data],
            ["compact", "--data", data],
            ["sql", "--data", data, "SELECT count(*) FROM flows"],
        ]
        for arguments in commands {
            let run = try ChildProcess.capture(try ChildProcess.flowrec(), arguments, environment: scribbling)
            #expect(run.status == 0, "\(arguments.prefix(1)): exit \(run.status): \(run.stderr.suffix(2000))")
            if arguments[0] == "sql" && arguments[3] == "SELECT count(*) FROM flows" {
                #expect(run.stdout.contains("14400"), "\(run.stdout)")
            }
        }
    }
}
