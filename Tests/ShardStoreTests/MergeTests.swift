import FlowModel
import FlowrecTestTraits
import FlowrecTesting
import Foundation
import ShardStore
import StorageKit
import Testing

/// Merging sealed shards keeps every guarantee: the same flows once, replays skipped,
/// ids never reused, retention by the merged shard's whole span, deliveries carried
/// over (or the merge waits), `fsck` rebuilding the catalog, and a crash at any step.
@Suite(.ownThread) struct MergeTests {
    /// Fourteen hours of flows at 1 per second of event time in 15-minute windows, every
    /// window sealed: two whole 6-hour merge windows of 24 shards, and a part of a third.
    static let lines = generatedLines(14 * 3600, seed: 5, rate: 1)
    static let start: Int64 = 1_767_225_600_000  // the generator's first flow, 2026-01-01T00:00Z
    static let mergeWindowMs: Int64 = 6 * 3_600_000

    static func store(_ dir: TemporaryDirectory, hours: Int = 14) throws -> ShardStore {
        try mergeableStore(at: dir.path, hours: hours).0
    }

    static let daily = { () -> MergePolicy in
        var policy = MergePolicy(windowMs: mergeWindowMs, maxRows: 10_000_000, level: 3)
        policy.sourceGraceMs = 0
        return policy
    }()

    @Test func mergedShardsHoldTheSameFlowsOnceAndReplaysStoreNothing() throws {
        let dir = TemporaryDirectory()
        let store = try Self.store(dir)
        let before = try store.shards()
        let expected = Set(Self.lines.map { String(decoding: $0, as: UTF8.self) })
        let done = try store.mergeSealedShards(Self.daily)
        // 00:00-06:00, 06:00-12:00 and 12:00-14:00 (over by the wall clock); the one shard
        // of 2025-12-31 (a few flows that ended before the first second) has nothing to merge with.
        #expect(done.count == 3)
        #expect(done.map(\.sources.count) == [24, 24, 8])
        let after = try store.shards()
        #expect(after.count == before.count - 56 + 3)
        let merged = try #require(after.first { $0.id.windowEndMs - $0.id.windowStartMs == Self.mergeWindowMs })
        #expect(merged.state == .sealed)
        let stored = try storedFlows(store)
        #expect(stored.count == Self.lines.count, "each flow exactly once")
        #expect(Set(stored) == expected)
        // The merged shard has a skip index and summaries like any sealed shard.
        let reader = try store.reader(for: merged.id)
        #expect(try reader.granules()?.last?.lastRowID == merged.rowCount)
        #expect(try store.skipSummaries()[merged.id] != nil)
        // Sources' files are removed (no grace here), and their ids are never used again.
        for source in done.flatMap(\.sources) {
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + source.sealedRelativePath))
        }
        try store.mergeSealedShards(Self.daily)  // removes the sources' files after the grace
        for source in done.flatMap(\.sources) {
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + source.sealedRelativePath), "\(source)")
        }

        // Replaying the whole input stores nothing: the positions moved with the flows.
        let replay = try store.append(batch(Self.lines[...], firstLine: 1))
        #expect(replay.stored == 0 && replay.skippedAsReplayed == Self.lines.count)

        // A late flow for a merged hour opens a new part whose id was never used.
        let firstHour = try #require(done.first?.sources.first)
        var late = Self.lines[0]
        late = Array(String(decoding: late, as: UTF8.self).replacingOccurrences(
            of: #""TimeFlowEndMs":\d+"#, with: "\"TimeFlowEndMs\":\(firstHour.windowStartMs + 5)", options: .regularExpression).utf8)
        let appended = try store.append(batch([late][...], source: "file:late", firstLine: 1))
        #expect(appended.stored == 1)
        let newPart = try #require(try store.shards().first { $0.state == .active })
        #expect(newPart.id.windowStartMs == firstHour.windowStartMs && newPart.id.part > firstHour.part, "\(newPart.id) after \(firstHour)")
        #expect(try storedFlows(store).count == Self.lines.count + 1)
    }

    /// A merged shard's string ids follow the values' order and say so, so a filter's text
    /// is found by binary search: every stored string at its own id, texts between them
    /// and beyond both ends absent. A shard as sealed keeps arrival order: unknown.
    @Test func aMergedShardFindsAStringIDByBinarySearch() throws {
        let dir = TemporaryDirectory()
        let store = try Self.store(dir, hours: 6)
        let sealed = try #require(try store.shards().first { $0.state == .sealed && $0.rowCount > 0 })
        #expect(try store.reader(for: sealed.id).stringID(of: "anything") == .unknown)
        try store.mergeSealedShards(Self.daily)
        let merged = try #require(try store.shards().first { $0.id.windowEndMs - $0.id.windowStartMs == Self.mergeWindowMs })
        let reader = try store.reader(for: merged.id)
        var strings: [(Int64, String)] = []
        try reader.query("SELECT id, value FROM strings ORDER BY id") { strings.append(($0.integer(0), $0.text(1) ?? "")) }
        #expect(strings.count > 100)
        for (id, value) in strings {
            #expect(try reader.stringID(of: value) == .id(id), "\(value)")
            #expect(try reader.stringID(of: value + "\u{0}") == .absent)
        }
        for outside in ["", "\u{0}", "\u{10FFFF}", "zzzz-no-such-value"] where !strings.contains(where: { $0.1 == outside }) {
            #expect(try reader.stringID(of: outside) == .absent, "\(outside.unicodeScalars.map(\.value))")
        }
    }

    @Test func aMergeWaitsForAForwarderThatHasPartOfTheDayAndCarriesCompleteDeliveries() throws {
        let dir = TemporaryDirectory()
        let store = try Self.store(dir)
        let day = try store.shards().filter { $0.id.windowStartMs >= Self.start && $0.id.windowEndMs <= Self.start + Self.mergeWindowMs }
        #expect(day.count == 24)
        // "all" delivered the whole first day; "half" only its first hours.
        for shard in day { try store.recordDelivery(forwarder: "all", shard: shard.id, chunksDelivered: 1, complete: true) }
        for shard in day.prefix(5) { try store.recordDelivery(forwarder: "half", shard: shard.id, chunksDelivered: 1, complete: true) }
        #expect(try store.mergePlan(Self.daily).allSatisfy { group in !group.contains { $0.id == day[0].id } },
                "the first day waits while 'half' has only part of it")
        for shard in day.dropFirst(5) { try store.recordDelivery(forwarder: "half", shard: shard.id, chunksDelivered: 1, complete: true) }
        let done = try store.mergeSealedShards(Self.daily)
        let first = try #require(done.first { $0.sources.contains(day[0].id) })
        #expect(try store.deliveries(forwarder: "all")[first.merged]?.complete == true)
        #expect(try store.deliveries(forwarder: "half")[first.merged]?.complete == true)
        // A forwarder that delivered none of a day gets the merged shard as new.
        let second = try #require(done.first { !$0.sources.contains(day[0].id) })
        #expect(try store.deliveries(forwarder: "all")[second.merged] == nil)
    }

    @Test func retentionDeletesAMergedShardOnlyWhenAllOfItIsOld() throws {
        let dir = TemporaryDirectory()
        let store = try Self.store(dir)
        let done = try store.mergeSealedShards(Self.daily)
        let merged = try #require(done.first).merged
        // Half of the merged span is past a 3-hour limit: it stays.
        let policy = RetentionPolicy(maxAgeMs: 3 * 3_600_000)
        let halfway = try store.prune(policy, nowMs: merged.windowStartMs + 6 * 3_600_000, volume: nil)
        #expect(!halfway.deleted.contains { $0.shard == merged })
        let after = try store.prune(policy, nowMs: merged.windowEndMs + 3 * 3_600_000, volume: nil)
        #expect(after.deleted.contains { $0.shard == merged })
        // What it held is never stored again.
        let replay = try store.append(batch(Self.lines[...], firstLine: 1))
        #expect(replay.stored == 0)
    }

    @Test func fsckRebuildsTheCatalogOfAMergedStoreAndDropsLeftoverSources() throws {
        let dir = TemporaryDirectory()
        var grace = Self.daily
        grace.sourceGraceMs = 3_600_000  // the sources' files are still there
        let expectedCount: Int
        do {
            let store = try Self.store(dir)
            let done = try store.mergeSealedShards(grace)
            #expect(!done.isEmpty)
            expectedCount = try storedFlows(store).count
            #expect(FileManager.default.fileExists(atPath: dir.path + "/" + done[0].sources[0].sealedRelativePath))
        }
        let report = try StoreChecker.check(directory: dir.path)
        #expect(report.quarantined.isEmpty)
        #expect(report.mergedLeftovers >= 24)
        let store = try ShardStore.openExisting(directory: dir.path)
        #expect(try storedFlows(store).count == expectedCount, "no flow twice after the rebuild")
        #expect(store.options.windowMs == 900_000, "the store's window is still known")
    }

    /// A merged shard carries column blocks of its rows' values (`ColumnBlocks`); `fsck`
    /// holds them to the rows and quarantines a shard whose blocks were changed, even
    /// though its rows (and so its content checksum) are intact.
    @Test func fsckQuarantinesAMergedShardWhoseColumnBlocksDisagreeWithItsRows() throws {
        let dir = TemporaryDirectory()
        let merged: ShardID
        do {
            let store = try Self.store(dir, hours: 7)
            merged = try #require(store.mergeSealedShards(Self.daily).first?.merged)
        }
        let relative = merged.sealedRelativePath
        let path = dir.path + "/" + relative
        #expect(try ShardReader(path: path).hasColumnBlocks())
        #expect(try StoreChecker.check(directory: dir.path).quarantined.isEmpty, "the merge's blocks hold its rows")

        // One value of one block changed: the first DstPort's code flipped in its lowest bit.
        try Self.rewriteSealed(path) { db in
            let select = try db.prepare("SELECT data FROM column_blocks WHERE field = 'DstPort' AND first_rowid = 1")
            try #require(try select.step())
            var data = select.blob(0)
            data[0] ^= 1
            let update = try db.prepare("UPDATE column_blocks SET data = ?1 WHERE field = 'DstPort' AND first_rowid = 1")
            data.withUnsafeBytes { update.bind(1, blob: $0) }
            try update.step()
        }
        try Self.expectOnlyQuarantined(relative, because: "column blocks", in: dir)
    }

    /// Rewrites the sealed shard at `path` as `edit` changes its plain SQLite copy.
    static func rewriteSealed(_ path: String, _ edit: (SQLiteDatabase) throws -> Void) throws {
        let plain = path + ".plain"
        try SeekableZstd.decompress(source: path, destination: plain)
        do {
            let db = try SQLiteDatabase(path: plain)
            try edit(db)
        }
        try FileManager.default.removeItem(atPath: path)
        _ = try SeekableZstd.compress(source: plain, destination: path, level: 3)
        try FileManager.default.removeItem(atPath: plain)
    }

    /// `fsck` quarantines the shard at `relative` alone, for a reason naming `reason`.
    static func expectOnlyQuarantined(_ relative: String, because reason: String, in dir: TemporaryDirectory) throws {
        let report = try StoreChecker.check(directory: dir.path)
        #expect(report.quarantined.count == 1 && relative.hasSuffix(report.quarantined[0].path), "\(report.quarantined)")
        #expect(report.quarantined.first?.reason.contains(reason) == true, "\(report.quarantined)")
    }

    /// A sealed shard's traffic series (`TrafficSeries`) answers the console's topology
    /// without its rows; `fsck` rebuilds it from the rows of merged and of merely sealed
    /// shards alike, finds them equal, and quarantines a shard whose series still decodes
    /// but no longer holds its rows' counts.
    @Test func fsckQuarantinesAShardWhoseTrafficSeriesDisagreesWithItsRows() throws {
        let dir = TemporaryDirectory()
        let merged: ShardID
        let unmerged: Int
        do {
            let store = try Self.store(dir, hours: 7)
            merged = try #require(store.mergeSealedShards(Self.daily).first?.merged)
            unmerged = try store.shards().filter { $0.state == .sealed && $0.id != merged }.count
        }
        #expect(unmerged >= 1, "the last hour's shards stay as sealed")
        let relative = merged.sealedRelativePath
        let path = dir.path + "/" + relative
        #expect(try ShardReader(path: path).meta(TrafficSeries.metaKey) == TrafficSeries.version)
        #expect(try StoreChecker.check(directory: dir.path).quarantined.isEmpty, "every series, merged or sealed, holds its rows")

        // One second's flow count changed by one, the varint still well formed.
        try Self.rewriteSealed(path) { db in
            let select = try db.prepare("SELECT rowid, counts FROM series_data WHERE substr(counts, 1, 1) BETWEEN x'01' AND x'7e' LIMIT 1")
            try #require(try select.step())
            var counts = select.blob(1)
            counts[0] += 1
            let update = try db.prepare("UPDATE series_data SET counts = ?1 WHERE rowid = ?2")
            counts.withUnsafeBytes { update.bind(1, blob: $0) }
            update.bind(2, select.integer(0))
            try update.step()
        }
        try Self.expectOnlyQuarantined(relative, because: "traffic series", in: dir)
    }

    /// `store.mergeColumnBlocks` (`--merge-column-blocks=false`) leaves the blocks out;
    /// by default a merged shard has them.
    @Test func theColumnBlocksSettingDecidesWhetherAMergeWritesThem() throws {
        let flowrec = try ChildProcess.flowrec()
        for blocks in [false, true] {
            let dir = TemporaryDirectory()
            let lines = try mergeableStore(at: dir.path, hours: 7, seed: 9).1
            let args = ["merge", "--data", dir.path, "--merge-window", "6h", "--compact-level", "3"] + (blocks ? [] : ["--merge-column-blocks=false"])
            #expect(try ChildProcess.run(flowrec, args) == 0)
            let store = try ShardStore.openExisting(directory: dir.path)
            let merged = try #require(store.shards().first { $0.id.windowEndMs - $0.id.windowStartMs == Self.mergeWindowMs })
            #expect(try ShardReader(path: dir.path + "/" + merged.path).hasColumnBlocks() == blocks)
            #expect(try storedFlows(store).count == lines.count)
        }
    }
}

/// `flowrec merge` dies between each two steps of a merge and is run again: every flow
/// stored once, no temporary file, no source listed beside its merged shard.
@Suite(.serialized, .ownThread) struct MergeCrashTests {
    @Test(arguments: ["merge.compacted", "merge.compressed", "merge.verified", "merge.journaled", "merge.renamed", "merge.cataloged"])
    func aCrashAtEachMergeStepIsRepairedByTheNextRun(_ point: String) throws {
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        // One 6-hour merge window and a bit.
        let lines = try { () throws -> [[UInt8]] in try mergeableStore(at: dir.path, hours: 7, seed: 8).1 }()
        let args = ["merge", "--data", dir.path, "--merge-window", "6h", "--compact-level", "3"]
        #expect(try ChildProcess.run(flowrec, args, environment: ["FLOWREC_TEST_CRASH_AT": point]) == 137, "the run should die at \(point)")
        #expect(try ChildProcess.run(flowrec, args, environment: ["FLOWREC_TEST_CRASH_AT": nil]) == 0)

        let store = try ShardStore.openExisting(directory: dir.path)
        let shards = try store.shards()
        #expect(shards.contains { $0.id.windowEndMs - $0.id.windowStartMs == MergeTests.mergeWindowMs }, "the window ends merged: \(shards.map(\.id))")
        let stored = try storedFlows(store)
        #expect(stored.count == lines.count, "each flow exactly once")
        #expect(Set(stored) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
        let files = FileManager.default.enumerator(atPath: dir.path + "/shards")?.compactMap { $0 as? String } ?? []
        #expect(files.filter { $0.hasSuffix(".tmp") }.isEmpty, "temporary files left: \(files)")
        let journals = (try? FileManager.default.contentsOfDirectory(atPath: dir.path + "/merging")) ?? []
        #expect(journals.isEmpty, "no journal left: \(journals)")
    }
}

/// A batch spans windows and commits one window at a time, so a crash can leave part of
/// it stored; the replay must store the rest, even after the stored part was sealed and
/// merged with windows the crash left without their flows. (A merged shard spans many
/// windows: what it says of one window's positions is not what another window holds.)
@Suite(.serialized, .ownThread) struct PartialBatchReplayTests {
    /// `lines`, with each flow's end moved to `ends[i]` milliseconds after 2026-01-01T00:00Z.
    static func flows(endingAt ends: [Int64], seed: UInt64) -> [String] {
        zip(generatedLines(ends.count, seed: seed), ends).map { line, end in
            String(decoding: line, as: UTF8.self).replacingOccurrences(
                of: #""TimeFlowEndMs":\d+"#, with: "\"TimeFlowEndMs\":\(MergeTests.start + end)", options: .regularExpression)
        }
    }

    @Test func aBatchCutShortIsStoredWholeByItsReplayAfterAMerge() throws {
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let ingest = ["--data", data, "--window", "1m", "--grace", "0s", "--no-background-seal"]
        // Two sealed windows for the merge to take (00:05 and 00:06).
        let earlier = Self.flows(endingAt: [300_000, 360_000], seed: 3)
        try earlier.joined(separator: "\n").write(toFile: dir.path + "/earlier.jsonl", atomically: true, encoding: .utf8)
        #expect(try ChildProcess.run(flowrec, ["ingest", dir.path + "/earlier.jsonl", "--seal-now"] + ingest) == 0)
        // One batch over two windows, its first line in the later one: the writer commits
        // 00:00 (lines 2 and 3) first and dies before 00:01 (line 1).
        let cut = Self.flows(endingAt: [90_000, 30_000, 40_000], seed: 4)
        try cut.joined(separator: "\n").write(toFile: dir.path + "/cut.jsonl", atomically: true, encoding: .utf8)
        #expect(try ChildProcess.run(flowrec, ["ingest", dir.path + "/cut.jsonl"] + ingest,
                                     environment: ["FLOWREC_TEST_CRASH_AT": "append.betweenWindows"]) == 137)
        // The stored part is sealed. A merge now would take it with 00:05 and 00:06 (the
        // day has no active shard); it waits, since the cut batch is not all stored.
        #expect(try ChildProcess.run(flowrec, ["seal", "--data", data, "--all"]) == 0)
        let merge = ["merge", "--data", data, "--merge-window", "6h"]
        #expect(try ChildProcess.run(flowrec, merge) == 0)
        let isMerged = { (shard: ShardRecord) in shard.id.windowEndMs - shard.id.windowStartMs > 60_000 }
        #expect(try !ShardStore.openExisting(directory: data).shards().contains(where: isMerged))

        // The replay stores the rest of the batch; then the day merges.
        #expect(try ChildProcess.run(flowrec, ["ingest", dir.path + "/cut.jsonl"] + ingest) == 0)
        #expect(try ChildProcess.run(flowrec, ["seal", "--data", data, "--all"]) == 0)
        #expect(try ChildProcess.run(flowrec, merge) == 0)
        let store = try ShardStore.openExisting(directory: data)
        let shards = try store.shards()
        #expect(shards.filter(isMerged).count == 1, "\(shards.map(\.id))")
        let stored = try storedFlows(store)
        let missing = Set(earlier + cut).subtracting(stored)
        #expect(missing.isEmpty, "\(missing.count) flows missing: \(missing.map { $0.prefix(80) })")
        #expect(stored.count == earlier.count + cut.count, "each flow once")
    }
}
