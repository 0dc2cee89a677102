import StorageKit
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing


@Suite struct ShardStoreTests {
    @Test func flowsComeBackEqualToTheInput() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(5000, features: Set(GeneratorOptions.Feature.allCases))
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000))
        let summary = try store.append(batch(lines[...], firstLine: 1))
        #expect(summary.stored == 5000)
        #expect(summary.shardsTouched > 1, "50 flows/s over 100 s of event time spans several 1-minute windows")
        let stored = try storedFlows(store)
        let input = lines.map { String(decoding: $0, as: UTF8.self) }
        #expect(stored.count == input.count)
        #expect(Set(stored) == Set(input), "every stored flow re-encodes to its input line")
    }

    @Test func sharedCorpusSurvivesStorage() throws {
        guard let shared = try TestEnvironment.sharedCorpusLines() else { return }
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path)
        try store.append(batch(shared[...], firstLine: 1))
        let stored = Set(try storedFlows(store))
        #expect(stored == Set(shared.map { String(decoding: $0, as: UTF8.self) }))
    }

    @Test func edgeCasesSurviveStorage() throws {
        let lines = [
            #"{"Flags":null,"Proto":6,"TimeFlowEndMs":1767225600000}"#,
            #"{"FlowDirection":"1","IfDirections":["1","0"],"TimeFlowEndMs":1767225600001}"#,
            #"{"AAA":{"x":[1,{"y":null}]},"SrcK8S_Name":"","TimeFlowEndMs":1767225600002,"zzz":true}"#,
            #"{"Bytes":9223372036854775807,"SrcK8S_Name":"café-日本-🚀 \u003c","TimeFlowEndMs":1767225600003}"#,
        ].map { Array($0.utf8) }
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path)
        try store.append(batch(lines[...], firstLine: 1))
        #expect(Set(try storedFlows(store)) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
    }

    @Test func replayingTheSameBatchStoresNothingTwice() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(3000)
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000))
        try store.append(batch(lines[...], firstLine: 1))
        let again = try store.append(batch(lines[...], firstLine: 1))
        #expect(again.stored == 0)
        #expect(again.skippedAsReplayed == 3000)
        #expect(try storedFlows(store).count == 3000)
    }

    @Test func overlappingReplayAfterReopenStoresOnlyTheNewPart() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(4000)
        do {
            let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000))
            try store.append(batch(lines[0..<2500], firstLine: 1))
        }
        let reopened = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000))
        #expect(try reopened.resumePositions()[SourcePartition(source: "file:test", partition: 0)] == 2501)
        // A consumer that restarted from an older offset replays lines 2001... again.
        let summary = try reopened.append(batch(lines[2000...], firstLine: 2001))
        #expect(summary.skippedAsReplayed == 500)
        #expect(summary.stored == 1500)
        #expect(try storedFlows(reopened).count == 4000)
        #expect(try reopened.resumePositions()[SourcePartition(source: "file:test", partition: 0)] == 4001)
    }

    @Test func aCrashBetweenShardCommitsIsRepairedByReplay() throws {
        // Simulate the crash: a batch spanning two windows where only the first window's
        // commit happened. Equivalent state: store the first window's flows alone, without
        // advancing the high-water mark past the batch (positions of the first window only).
        let dir = TemporaryDirectory()
        let lines = generatedLines(2000)
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000))
        let full = batch(lines[...], firstLine: 1)
        let end = FlowSchema.requiredField
        let firstWindow = (full.flows[0].integer(end) ?? 0) / 60_000
        let firstWindowLines = lines.enumerated().filter { (i, _) in (full.flows[i].integer(end) ?? 0) / 60_000 == firstWindow }
        var partial = IngestBatch()
        let src = partial.sourceIndex("file:test")
        for (i, line) in firstWindowLines {
            partial.append(try FlowDecoder().decode(line), at: SourcePosition(source: src, partition: 0, position: Int64(i + 1)))
        }
        try store.append(partial)
        // The restart replays the whole batch.
        let summary = try store.append(full)
        #expect(summary.skippedAsReplayed == firstWindowLines.count)
        #expect(try storedFlows(store).count == 2000)
    }

    @Test func deadLettersAreStoredOnceWithTheirReason() throws {
        let dir = TemporaryDirectory()
        var lines = generatedLines(100)
        lines[10] = Array("{not json".utf8)
        lines[20] = [0xFF, 0xFE]
        lines[30] = Array(#"{"Bytes":1}"#.utf8)
        let store = try ShardStore(directory: dir.path)
        let first = try store.append(batch(lines[...], firstLine: 1))
        #expect(first.stored == 97)
        #expect(first.deadLetters == 3)
        let again = try store.append(batch(lines[...], firstLine: 1))
        #expect(again.deadLetters == 0)
        #expect(try store.deadLetterCount() == 3)
        var reasons: [Int64: String] = [:]
        try store.forEachDeadLetter { _, _, position, reason, _ in reasons[position] = reason }
        #expect(reasons[31]?.contains("TimeFlowEndMs") == true)
        #expect(reasons[11]?.contains("invalid JSON") == true)
        #expect(reasons.count == 3)
    }

    /// What the recorder drops when the group takes a partition away mid-batch: every
    /// flow and dead letter of that partition, the rest kept in order, and a store of the
    /// batch then holds exactly the rest.
    @Test func entriesOfOnePartitionAreRemovedFromABatch() throws {
        var lines = generatedLines(60)
        lines[7] = Array("{not json".utf8)
        lines[8] = Array("{not json either".utf8)
        var mixed = IngestBatch()
        let topic = mixed.sourceIndex("flows-export"), other = mixed.sourceIndex("other-topic")
        for (i, line) in lines.enumerated() {
            // Partition i % 3 of the topic; the other topic's partition 1 stays.
            let source = i % 10 == 9 ? other : topic
            mixed.decodeFlowOrDeadLetter(line, at: SourcePosition(source: source, partition: Int32(i % 3), position: Int64(i)),
                                         with: FlowDecoder(), maxPayloadBytes: .max)
        }
        mixed.rankInSealOrder()
        let kept = { (p: SourcePosition) in p.source != topic || p.partition != 1 }
        let expectedFlows = (0..<mixed.flowCount).filter { kept(mixed.positions[$0]) }.map { mixed.flows[$0] }
        let expectedPositions = mixed.positions.filter(kept)
        let expectedLetters = mixed.deadLetters.map(\.at).filter(kept)
        let removed = mixed.removeEntries(source: topic, partition: 1)
        #expect(removed == 60 - expectedPositions.count - expectedLetters.count && removed > 0)
        #expect(Array(mixed.flows.prefix(mixed.flowCount)) == expectedFlows)
        #expect(mixed.positions == expectedPositions)
        #expect(mixed.endTimesMs == expectedFlows.map { $0.integer(FlowSchema.requiredField) }, "each end time stays with its flow")
        #expect(mixed.deadLetters.map(\.at) == expectedLetters && expectedLetters.count == 1, "line 7 is partition 1, line 8 partition 2")
        #expect(mixed.sealRanks.isEmpty, "the ranks of the removed flows went with them")

        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path)
        let summary = try store.append(mixed)
        #expect(summary.stored == expectedFlows.count && summary.deadLetters == 1)
        #expect(try storedFlows(store).sorted() == expectedFlows.map { FlowEncoder().encode($0) }.sorted())
    }

    @Test func resumePositionsCoverBatchesOfOnlyDeadLetters() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path)
        try store.append(batch([Array("garbage".utf8)][...], source: "flows-export", firstLine: 41))
        #expect(try store.resumePositions()[SourcePartition(source: "flows-export", partition: 0)] == 42)
    }

    @Test func windowsAndPartsAreNamedByTime() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path)
        try store.append(batch([Array(#"{"TimeFlowEndMs":1767229199999}"#.utf8), Array(#"{"TimeFlowEndMs":1767229200000}"#.utf8)][...], firstLine: 1))
        let ids = try store.shards().map(\.id.description)
        #expect(ids == ["20260101T0000Z_20260101T0100Z.0", "20260101T0100Z_20260101T0200Z.0"])
        #expect(FileManager.default.fileExists(atPath: dir.path + "/shards/2026/01/01/20260101T0000Z_20260101T0100Z.0.sqlite"))
    }

    @Test func badWindowIsRejectedWithAFix() {
        #expect(throws: ShardStoreError.self) { try ShardStore(directory: "/tmp/x", options: .init(windowMs: 7 * 60_000)) }
    }

    @Test func aStoredShardOpensInTheSqlite3Shell() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path)
        try store.append(batch(generatedLines(500)[...], firstLine: 1))
        let shard = try #require(try store.shards().first)
        let text = try ChildProcess.output("/usr/bin/sqlite3", [dir.path + "/" + shard.path,
            "SELECT count(*), count(DISTINCT SrcK8S_Namespace) > 1, typeof(Bytes) FROM flows"])
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == "\(shard.rowCount)|1|integer")
    }
}


@Suite struct DeadLetterReplayTests {
    @Test func replayStoresWhatNowDecodesOnceAndKeepsTheRest() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path)
        var lines = generatedLines(50)
        // Valid flows that an older limit rejected as too large, and real garbage.
        let strict = FlowDecoder(limits: .init(maxMessageBytes: 200))
        var b = IngestBatch()
        let src = b.sourceIndex("flows-export")
        lines.append(Array("not json".utf8))
        for (i, line) in lines.enumerated() {
            let at = SourcePosition(source: src, partition: 3, position: Int64(i))
            do {
                try b.appendFlow(at: at) { (flow: inout Flow) throws(FlowDecodingError) in try strict.decode(line, into: &flow) }
            } catch {
                b.appendDeadLetter(DeadLetter(at: at, reason: error.description, errorOffset: error.offset, payload: line))
            }
        }
        try store.append(b)
        #expect(try store.deadLetterCount() == 51)
        let first = try store.replayDeadLetters()
        #expect(first.stored == 50)
        #expect(first.stillInvalid == 1)
        #expect(try store.deadLetterCount() == 1)
        #expect(try storedFlows(store).count == 50)
        let again = try store.replayDeadLetters()
        #expect(again.stored == 0)
        #expect(try storedFlows(store).count == 50)
    }
}

/// A restart reads each active shard's row count and time range from its `meta` (kept
/// by every batch) instead of scanning its rows; shards without that summary are scanned.
@Suite struct ActiveShardSummaryTests {
    @Test func restartReadsTheSummaryFromMetaOrScansWithoutIt() throws {
        let dir = TemporaryDirectory()
        let options = ShardStore.Options(windowMs: 60_000, graceMs: 0)
        let lines = generatedLines(2500)
        do {
            let store = try ShardStore(directory: dir.path, options: options)
            try store.append(batch(lines[..<1000], firstLine: 1))
            try store.append(batch(lines[1000...], firstLine: 1001))
        }
        func summaries() throws -> [String] {
            try ShardStore(directory: dir.path, options: options).shards()
                .map { "\($0.id) \($0.rowCount) \($0.minTimeMs ?? -1) \($0.maxTimeMs ?? -1)" }
        }
        let fromMeta = try summaries()
        let shards = try ShardStore(directory: dir.path, options: options).shards()
        #expect(shards.reduce(0) { $0 + $1.rowCount } == 2500)
        for shard in shards {
            let db = try SQLiteDatabase(path: dir.path + "/" + shard.path)
            let counted = try db.scalarInteger("SELECT count(*) FROM flow_rows")
            #expect(try db.scalarInteger("SELECT value FROM meta WHERE key = 'row_count'") == counted)
            #expect(try db.scalarInteger("SELECT value FROM meta WHERE key = 'max_time_ms'")
                    == db.scalarInteger("SELECT max(TimeFlowEndMs) FROM flow_rows"))
            try db.execute("DELETE FROM meta WHERE key IN ('row_count', 'min_time_ms', 'max_time_ms')")
        }
        #expect(try summaries() == fromMeta, "a shard without the summary is scanned to the same answer")
    }
}

/// Flows and file names the store cannot place never trap it.
@Suite struct UnstorableInputTests {
    @Test func aFlowOutsideTheStorableRangeBecomesADeadLetterAndTheStoreReopens() throws {
        let dir = TemporaryDirectory()
        let good = generatedLines(50)
        var input = batch(good[...], firstLine: 1)
        // Built by hand, past the decoder: the store itself must refuse to route it.
        for (i, endMs) in [Int64.max, -62_167_219_200_000, 253_402_300_799_999].enumerated() {
            var flow = Flow()
            flow.set(FlowSchema.requiredField, integer: endMs)
            input.append(flow, at: SourcePosition(source: 0, partition: 0, position: 1000 + Int64(i)))
        }
        do {
            let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000))
            let summary = try store.append(input)
            #expect(summary.stored == 50)
            #expect(summary.deadLetters == 3)
            var reasons: [String] = []
            try store.forEachDeadLetter { _, _, _, reason, payload in
                reasons.append(reason)
                #expect(String(decoding: payload, as: UTF8.self).contains("TimeFlowEndMs"))
            }
            #expect(reasons.count == 3 && reasons.allSatisfy { $0.contains("outside the accepted range") }, "\(reasons)")
            try store.close()
        }
        let reopened = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000))
        #expect(try reopened.shards().reduce(0) { $0 + $1.rowCount } == 50)
        #expect(try reopened.resumePositions()[SourcePartition(source: "file:test", partition: 0)] == 1003)
    }

    @Test func shardNamesAreParsedFromASCIIDigitsOnly() {
        #expect(ShardID("20260101T0000Z_20260101T0100Z.0") == ShardID(windowStartMs: 1_767_225_600_000, windowEndMs: 1_767_229_200_000, part: 0))
        #expect(ShardID("20260101T000030Z_20260101T0100Z.2")?.windowStartMs == 1_767_225_630_000)
        for stray in ["2026010½T0000Z_20260101T0100Z.0", "٢٠٢٦0101T0000Z_20260101T0100Z.0", "20260230T0000Z_20260301T0000Z.0",
                      "20260101T2400Z_20260102T0100Z.0", "20260101T0000_20260101T0100Z.0", "x_y.0", "", "20260101T0000Z.0"] {
            #expect(ShardID(stray) == nil, "\(stray)")
        }
    }
}
