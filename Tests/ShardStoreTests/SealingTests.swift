import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import StorageKit
import Testing

@Suite struct SealingTests {
    /// Who puts a batch's flows in the seal order before they are written.
    enum Ranking: Sendable { case byWriter, byProducer, staleByProducer }
    let options = ShardStore.Options(windowMs: 60_000, graceMs: 0)

    func sealedStore(_ dir: TemporaryDirectory, lines: [[UInt8]]) throws -> ShardStore {
        let store = try ShardStore(directory: dir.path, options: options)
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealClosedWindows()
        return store
    }

    @Test func sealedShardsGiveBackEveryFlow() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(6000, features: Set(GeneratorOptions.Feature.allCases))
        let store = try sealedStore(dir, lines: lines)
        let states = try store.shards().map(\.state)
        #expect(states.filter { $0 == .sealed }.count >= 1)
        #expect(states.last == .active, "the newest window is still open")
        #expect(Set(try storedFlows(store)) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
        #expect(try storedFlows(store).count == 6000)
    }

    @Test func plainZstdRestoresADatabaseTheShellOpens() throws {
        let dir = TemporaryDirectory()
        let store = try sealedStore(dir, lines: generatedLines(3000))
        let shard = try #require(try store.shards().first { $0.state == .sealed })
        #expect(shard.path.hasSuffix(".sqlite.zst"))
        let restored = dir.path + "/restored.sqlite"
        try ChildProcess.output("/usr/bin/zstd", ["-d", "-q", dir.path + "/" + shard.path, "-o", restored])
        let out = try ChildProcess.output("/usr/bin/sqlite3", [restored,
            "SELECT (SELECT value FROM meta WHERE key = 'row_count') = count(*), count(*) FROM flows; PRAGMA quick_check;"])
        #expect(out == "1|\(shard.rowCount)\nok\n")
    }

    /// The seal order is the modern ClickHouse table's: source and destination namespace
    /// and owner, by value (NULL first), then time. Checked with the stock tools: the
    /// restored sealed file read in row order equals the active rows sorted by SQLite.
    @Test func sealedRowsAreOrderedByNamespacesOwnersThenTime() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0))
        try store.append(batch(generatedLines(5000)[...], firstLine: 1))
        let keys = ["SrcK8S_Namespace", "DstK8S_Namespace", "SrcK8S_OwnerName", "DstK8S_OwnerName"]
        let values = keys.map { "(SELECT value FROM strings WHERE id = r.\($0))" }.joined(separator: ", ")
        let select = "SELECT \(values), r.TimeFlowEndMs FROM flow_rows AS r ORDER BY "
        var expected: [ShardID: String] = [:]
        for shard in try store.shards() {
            expected[shard.id] = try ChildProcess.output("/usr/bin/sqlite3", [dir.path + "/" + shard.path,
                select + (1...5).map(String.init).joined(separator: ", ") + ", r.rowid"])
        }
        try store.sealClosedWindows(watermarkMs: .max)
        var rows = 0
        for shard in try store.shards() {
            #expect(shard.state == .sealed)
            let restored = dir.path + "/restored-\(shard.id).sqlite"
            try ChildProcess.output("/usr/bin/zstd", ["-d", "-q", dir.path + "/" + shard.path, "-o", restored])
            let stored = try ChildProcess.output("/usr/bin/sqlite3", [restored, select + "r.rowid"])
            rows += stored.split(separator: "\n").count
            #expect(stored == expected[shard.id], "\(shard.id): rows in file order equal the active rows sorted by namespaces, owners, time")
        }
        #expect(rows == 5000)
    }

    /// The active shard writes each batch as a sorted run in the seal order (`SealRun`),
    /// so that the seal's ordered copy reads each run front to back: every batch's rows,
    /// in row id order, equal the same rows sorted by SQLite (NULL first, then by value),
    /// and what is stored is exactly what came in. Whoever sorts: the writer, or the
    /// batch's producer (`IngestBatch.rankInSealOrder()`, as the file reader does), also
    /// when flows were added after the ranks (then the writer sorts).
    @Test(arguments: [Ranking.byWriter, .byProducer, .staleByProducer])
    func eachBatchIsWrittenAsASortedRun(_ ranking: Ranking) throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0))
        let lines = generatedLines(5000, rate: 5000, features: Set(GeneratorOptions.Feature.allCases))
        let runs = [1...1, 2...1500, 1501...1502, 1503...5000].map { range in
            switch ranking {
            case .byWriter:
                return batch(lines[(range.lowerBound - 1)..<range.upperBound], firstLine: Int64(range.lowerBound))
            case .byProducer:
                var ranked = batch(lines[(range.lowerBound - 1)..<range.upperBound], firstLine: Int64(range.lowerBound))
                ranked.rankInSealOrder()
                #expect(ranked.sealRanks.count == ranked.flowCount)
                return ranked
            case .staleByProducer:
                var ranked = batch(lines[(range.lowerBound - 1)..<(range.upperBound - 1)], firstLine: Int64(range.lowerBound))
                ranked.rankInSealOrder()
                let last = batch(lines[(range.upperBound - 1)..<range.upperBound], firstLine: Int64(range.upperBound))
                ranked.append(last.flows[0], at: last.positions[0])
                #expect(ranked.sealRanks.isEmpty, "adding a flow drops the ranks")
                return ranked
            }
        }
        for run in runs { try store.append(run) }
        let keys = ["SrcK8S_Namespace", "DstK8S_Namespace", "SrcK8S_OwnerName", "DstK8S_OwnerName"]
        let values = keys.map { "(SELECT value FROM strings WHERE id = r.\($0))" }.joined(separator: ", ")
        var nullKeys = 0, checked = 0
        // The generated flows begin a few seconds before an hour: a batch's flows of each
        // window are its run in that window's shard.
        for shard in try store.shards() {
            var firstRow = 1
            for run in runs {
                let rows = run.flows.filter { (shard.id.windowStartMs..<shard.id.windowEndMs).contains($0.integer(FlowSchema.requiredField) ?? 0) }.count
                guard rows > 0 else { continue }
                let select = "SELECT \(values), r.TimeFlowEndMs FROM flow_rows AS r WHERE r.rowid BETWEEN \(firstRow) AND \(firstRow + rows - 1) ORDER BY "
                let stored = try ChildProcess.output("/usr/bin/sqlite3", [dir.path + "/" + shard.path, select + "r.rowid"])
                let sorted = try ChildProcess.output("/usr/bin/sqlite3", [dir.path + "/" + shard.path, select + "1, 2, 3, 4, 5, r.rowid"])
                #expect(stored.split(separator: "\n").count == rows)
                #expect(stored == sorted, "rows \(firstRow)... of \(shard.id) are one batch, stored in the seal order")
                nullKeys += stored.split(separator: "\n").filter { $0.hasPrefix("|") }.count
                firstRow += rows
                checked += rows
            }
        }
        #expect(checked == 5000)
        #expect(nullKeys > 0, "some flows have no source namespace: they sort first")
        #expect(try storedFlows(store).sorted() == lines.map { String(decoding: $0, as: UTF8.self) }.sorted())
    }

    /// The forwarder's chunks, read in the ClickHouse table's key order (the seal order),
    /// come straight in row id order from a sealed shard: the same sequence as sorting
    /// them (here forced by naming the end time twice, which the shortcut does not
    /// recognise), chunk by chunk, and from an active shard, which must be sorted (its
    /// batches are sorted runs, not one).
    @Test func chunksInTheSealOrderNeedNoSort() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0))
        let lines = generatedLines(5000)
        for first in stride(from: 0, to: 5000, by: 1000) {
            try store.append(batch(lines[first..<(first + 1000)], firstLine: Int64(first + 1)))
        }
        let keys = ["SrcK8S_Namespace", "DstK8S_Namespace", "SrcK8S_OwnerName", "DstK8S_OwnerName", "TimeFlowEndMs"].map(FlowSchema.id(of:))
        func sequences(_ shard: ShardRecord) throws -> (direct: [Flow], sorted: [Flow], stored: [Flow]) {
            let reader = try store.reader(for: shard.id)
            let rows = try #require(try reader.rowIDRange())
            var direct: [Flow] = [], sorted: [Flow] = [], stored: [Flow] = []
            for low in stride(from: rows.lowerBound, through: rows.upperBound, by: 700) {
                let chunk = low...min(rows.upperBound, low + 699)
                try reader.forEachFlow(rowIDs: chunk, orderedBy: keys) { direct.append($0) }
                try reader.forEachFlow(rowIDs: chunk, orderedBy: keys + [FlowSchema.requiredField]) { sorted.append($0) }
                try reader.forEachFlow(rowIDs: chunk, orderedBy: []) { stored.append($0) }
            }
            return (direct, sorted, stored)
        }
        let active = try #require(try store.shards().max { $0.rowCount < $1.rowCount })
        let unsealed = try sequences(active)
        #expect(unsealed.direct == unsealed.sorted && unsealed.direct.count == Int(active.rowCount))
        #expect(unsealed.direct != unsealed.stored, "an active shard's rows are in sorted runs (one per batch), and are sorted")
        try store.sealClosedWindows(watermarkMs: .max)
        var rows = 0
        for shard in try store.shards() {
            let (direct, sorted, stored) = try sequences(shard)
            #expect(direct == sorted && direct == stored, "\(shard.id)")
            rows += direct.count
        }
        #expect(rows == 5000)
    }

    /// Every row of a sealed shard lies in exactly one granule, within that granule's
    /// time range and zone-map bounds; the skip summaries hold exactly the shard's
    /// distinct values (the value lists) or admit every one of them (the Bloom filters),
    /// in the shard and in the catalog alike.
    @Test func granulesAndSummariesDescribeTheRows() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0))
        try store.append(batch(generatedLines(20_000)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let catalogSummaries = try store.skipSummaries()
        for shard in try store.shards() {
            let reader = try store.reader(for: shard.id)
            let granules = try #require(try reader.granules())
            #expect(granules.first?.firstRowID == 1)
            #expect(granules.last?.lastRowID == shard.rowCount)
            for (a, b) in zip(granules, granules.dropFirst()) { #expect(a.lastRowID + 1 == b.firstRowID) }
            #expect(granules.dropLast().allSatisfy { $0.rowCount == SkipIndex.granuleRows })
            let view = ShardSchema.viewColumnExpressions(timeEncoding: reader.timeEncoding)
            let fields = [FlowSchema.requiredField] + SkipIndex.fields
            var checked = 0
            try reader.query("SELECT r.rowid, \(fields.map { view[$0.index] }.joined(separator: ", ")) FROM flow_rows AS r") { row in
                checked += 1
                let rowid = row.integer(0)
                let granule = try #require(granules.first { $0.firstRowID <= rowid && rowid <= $0.lastRowID })
                let end = row.integer(1)
                #expect(granule.minTimeMs! <= end && end <= granule.maxTimeMs!)
                for (i, field) in SkipIndex.fields.enumerated() {
                    guard let value = Self.indexValue(row, Int32(i + 2)) else { continue }
                    let bounds = try #require(granule.bounds[i], "\(field) has a value in granule \(granule.firstRowID)")
                    #expect(bounds.contains(value), "\(field) = \(value) in granule \(granule.firstRowID) bounded by \(bounds)")
                    if i >= SkipIndex.sortFields.count {
                        #expect(granule.bloom?.mightContain(value, field: i) == true, "\(field) = \(value) is in granule \(granule.firstRowID)'s Bloom filter")
                    }
                }
            }
            #expect(Int64(checked) == shard.rowCount)
            let summaries = try #require(try reader.skipSummaries())
            #expect(summaries == catalogSummaries[shard.id], "the catalog holds the shard's own summaries")
            for summary in summaries {
                var distinct: [IndexValue] = []
                try reader.query("SELECT DISTINCT \"\(summary.field.name)\" FROM flows WHERE \"\(summary.field.name)\" IS NOT NULL") { row in
                    if let value = Self.indexValue(row, 0) { distinct.append(value) }
                }
                #expect(summary.distinctCount == distinct.count, "\(summary.field)")
                #expect(distinct.allSatisfy(summary.mayContain), "\(summary.field): every stored value is admitted")
                if case .values(let listed) = summary.members { #expect(Set(listed) == Set(distinct), "\(summary.field)") }
                #expect(!summary.mayContain(.text("no-such-value-\(summary.field)")) || summary.field.kind == .integer)
            }
        }
    }

    private static func indexValue(_ row: SQLiteStatement, _ column: Int32) -> IndexValue? {
        if row.isNull(column) { return nil }
        return row.isInteger(column) ? .integer(row.integer(column)) : row.text(column).map { .text($0) }
    }

    /// Sealed shards store start and receive times relative to the end time; the `flows`
    /// view (read by stock sqlite3) and flowrec's own readers give back the originals.
    /// A shard with times outside plain epoch values stays plain and still round-trips.
    @Test(arguments: [false, true])
    func sealedTimesReadBackAsReceived(withExtremeTime: Bool) throws {
        let dir = TemporaryDirectory()
        var lines = generatedLines(6000)  // two minutes: the first is sealed
        let end: Int64 = 1_767_225_600_500  // in the generator's first minute
        if withExtremeTime {
            lines.insert(Array(#"{"Bytes":7,"TimeFlowEndMs":\#(end),"TimeFlowStartMs":-9223372036854775808,"TimeReceived":9223372036854775807}"#.utf8), at: 0)
        }
        let store = try sealedStore(dir, lines: lines)
        let shard = try #require(try store.shards().first {
            $0.state == .sealed && $0.id.windowStartMs <= end && end < $0.id.windowEndMs
        })
        let restored = dir.path + "/restored.sqlite"
        try ChildProcess.output("/usr/bin/zstd", ["-d", "-q", dir.path + "/" + shard.path, "-o", restored])
        let encoding = try ChildProcess.output("/usr/bin/sqlite3", [restored, "SELECT value FROM meta WHERE key = 'time_encoding'"])
        #expect(encoding == (withExtremeTime ? "" : "end-relative\n"))

        // The view's times, as the shell prints them, against the input's.
        let viewTimes = try ChildProcess.output("/usr/bin/sqlite3", [restored,
            "SELECT TimeFlowStartMs, TimeFlowEndMs, TimeReceived FROM flows ORDER BY TimeFlowEndMs, TimeFlowStartMs, TimeReceived"])
        var expected: [(Int64, Int64, Int64)] = []
        let decoder = FlowDecoder()
        var flow = Flow()
        let start = FlowSchema.id(of: "TimeFlowStartMs"), endField = FlowSchema.requiredField, received = FlowSchema.id(of: "TimeReceived")
        for line in lines {
            try decoder.decode(line[...], into: &flow)
            guard let e = flow.integer(endField), e >= shard.id.windowStartMs, e < shard.id.windowEndMs else { continue }
            expected.append((flow.integer(start) ?? 0, e, flow.integer(received) ?? 0))
        }
        let expectedText = expected.sorted { ($0.1, $0.0, $0.2) < ($1.1, $1.0, $1.2) }
            .map { "\($0.0)|\($0.1)|\($0.2)\n" }.joined()
        #expect(viewTimes == expectedText, "the flows view gives back the original times")
        #expect(Set(try storedFlows(store)) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
    }

    @Test func corruptOrTruncatedSealedShardsFailClearly() throws {
        let dir = TemporaryDirectory()
        let store = try sealedStore(dir, lines: generatedLines(3000))
        let shard = try #require(try store.shards().first { $0.state == .sealed })
        let path = dir.path + "/" + shard.path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))

        var flipped = bytes
        flipped[flipped.count / 3] ^= 0xFF
        try flipped.write(to: URL(fileURLWithPath: path))
        let corrupt = #expect(throws: (any Error).self) { try store.forEachFlow(in: shard.id) { _ in } }
        #expect("\(corrupt.map { "\($0)" } ?? "")".contains(shard.id.description))

        bytes.removeLast(5)
        try bytes.write(to: URL(fileURLWithPath: path))
        let truncated = #expect(throws: (any Error).self) { try store.forEachFlow(in: shard.id) { _ in } }
        #expect("\(truncated.map { "\($0)" } ?? "")".contains("seek table"))
    }

    @Test func aLateFlowOpensANewPartAndReplaysStayDeduplicated() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(3000)
        let store = try sealedStore(dir, lines: lines)
        let sealedWindow = try #require(try store.shards().first { $0.state == .sealed }).id
        // Replaying everything after sealing stores nothing, sealed windows included.
        let replay = try store.append(batch(lines[...], firstLine: 1))
        #expect(replay.stored == 0)
        // A new flow for the sealed window goes to part 1.
        let late = #"{"Bytes":1,"TimeFlowEndMs":\#(sealedWindow.windowStartMs + 5)}"#
        try store.append(batch([Array(late.utf8)][...], source: "file:late", firstLine: 1))
        let parts = try store.shards().filter { $0.id.windowStartMs == sealedWindow.windowStartMs }.map(\.id.part)
        #expect(parts == [0, 1])
    }

    @Test func restartCleansUpAnInterruptedSeal() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(3000)
        var activePath = ""
        do {
            let store = try ShardStore(directory: dir.path, options: options)
            try store.append(batch(lines[...], firstLine: 1))
            activePath = dir.path + "/" + (try #require(try store.shards().first).path)
        }
        // A crash mid-seal leaves temporary files beside the complete active shard.
        for suffix in [".compact.tmp", ".zst.tmp", ".zst.verify.tmp"] {
            #expect(FileManager.default.createFile(atPath: activePath + suffix, contents: Data("partial".utf8)))
        }
        let store = try ShardStore(directory: dir.path, options: options)
        for suffix in [".compact.tmp", ".zst.tmp", ".zst.verify.tmp"] {
            #expect(!FileManager.default.fileExists(atPath: activePath + suffix))
        }
        try store.sealClosedWindows()
        #expect(try storedFlows(store).count == 3000)
    }

    @Test func aCrashAfterTheRenameKeepsTheSealedShard() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(3000)
        var activePath = "", copy = Data()
        do {
            let store = try ShardStore(directory: dir.path, options: options)
            try store.append(batch(lines[...], firstLine: 1))
            let first = try #require(try store.shards().first)
            activePath = dir.path + "/" + first.path
            copy = try Data(contentsOf: URL(fileURLWithPath: activePath))
            try store.sealClosedWindows()
        }
        // As if the process died between the rename and deleting the active shard.
        try copy.write(to: URL(fileURLWithPath: activePath))
        let store = try ShardStore(directory: dir.path, options: options)
        #expect(!FileManager.default.fileExists(atPath: activePath))
        #expect(try storedFlows(store).count == 3000)
    }
}


@Suite struct BackgroundSealingTests {
    @Test func windowsAreSealedInTheBackgroundAsTheyClose() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(8000)  // 50 flows/s: 160 s of event time
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0, sealInBackground: true))
        for start in stride(from: 0, to: lines.count, by: 1000) {
            try store.append(batch(lines[start..<(start + 1000)], firstLine: Int64(start + 1)))
        }
        try store.close()
        let states = try store.shards().map(\.state)
        #expect(states.filter { $0 == .sealed }.count >= 2, "closed windows were sealed while appending: \(states)")
        #expect(states.last == .active)
        #expect(try storedFlows(store).count == 8000)
        let reopened = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        #expect(try reopened.shards().map(\.state) == states)
        #expect(try reopened.append(batch(lines[...], firstLine: 1)).stored == 0)
    }

    @Test func aSupersededActivePartIsSealedLater() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(2000)
        var firstWindowPath = ""
        do {
            let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
            try store.append(batch(lines[...], firstLine: 1))
            let first = try #require(try store.shards().first)
            firstWindowPath = dir.path + "/" + first.path
            // A second part of the same window appears (as after a failed seal and a late flow).
            let copy = firstWindowPath.replacingOccurrences(of: ".0.sqlite", with: ".1.sqlite")
            try FileManager.default.copyItem(atPath: firstWindowPath, toPath: copy)
        }
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        let sealed = try store.sealClosedWindows()
        #expect(sealed.contains { $0.id.part == 0 }, "the superseded part 0 is sealed")
        #expect(!FileManager.default.fileExists(atPath: firstWindowPath))
    }
}

@Suite struct CompactionTests {
    @Test func compactionShrinksShardsAndKeepsEveryFlow() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(20_000, rate: 200)
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0, sealLevel: 1))
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let before = try store.shards().reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        let compacted = try store.compact(level: 19)
        #expect(compacted.count == (try store.shards().count))
        let after = try store.shards().reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        #expect(after < before)
        #expect(Set(try storedFlows(store)) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
        // A second pass finds nothing left below the level.
        #expect(try store.compact(level: 19).isEmpty)
    }
}

@Suite struct StoreCheckerTests {
    @Test func fsckRebuildsTheCatalogAndQuarantinesADamagedShard() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(6000)
        var damaged = ""
        var expected: [String: Int64] = [:]
        do {
            let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
            try store.append(batch(lines[...], firstLine: 1))
            try store.sealClosedWindows()
            for s in try store.shards() { expected[s.id.description] = s.rowCount }
            damaged = dir.path + "/" + (try #require(try store.shards().first { $0.state == .sealed }).path)
        }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: damaged))
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: damaged))
        try FileManager.default.removeItem(atPath: dir.path + "/catalog.sqlite")

        let report = try StoreChecker.check(directory: dir.path)
        #expect(report.quarantined.count == 1)
        #expect(!FileManager.default.fileExists(atPath: damaged))
        #expect(FileManager.default.fileExists(atPath: damaged.replacingOccurrences(of: "/shards/", with: "/quarantine/")))

        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        let shards = try store.shards()
        #expect(shards.filter { $0.state == .quarantined }.count == 1)
        for s in shards where s.state != .quarantined { #expect(expected[s.id.description] == s.rowCount) }
        // The rebuilt catalog still knows where ingest resumes.
        #expect(try store.resumePositions()[SourcePartition(source: "file:test", partition: 0)] == 6001)
    }
}

@Suite struct WatermarkTests {
    /// Two partitions, one far ahead: the window closes only when the slow one passes it.
    @Test func aWindowClosesOnlyWhenEveryPartitionHasPassedIt() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        func flow(_ t: Int64, partition: Int32, offset: Int64) -> IngestBatch {
            var b = IngestBatch()
            let src = b.sourceIndex("flows-export")
            b.append(try! FlowDecoder().decode(Array(#"{"TimeFlowEndMs":\#(t)}"#.utf8)),
                     at: SourcePosition(source: src, partition: partition, position: offset))
            return b
        }
        let t0: Int64 = 1_767_225_600_000
        try store.append(flow(t0 + 1000, partition: 0, offset: 1))
        try store.append(flow(t0 + 10_000, partition: 1, offset: 1))
        try store.append(flow(t0 + 600_000, partition: 1, offset: 2))  // partition 1 races 10 minutes ahead
        #expect(store.watermarkMs == t0 + 1000)
        #expect(try store.sealClosedWindows().isEmpty, "partition 0 has not left the first window")
        try store.append(flow(t0 + 30_000, partition: 0, offset: 2))  // a late-looking but in-order flow
        try store.append(flow(t0 + 120_000, partition: 0, offset: 3))
        let sealed = try store.sealClosedWindows()
        #expect(sealed.map(\.id.part) == [0], "one part, with every flow of the window")
        #expect(sealed.first?.rows == 3)
    }
}
