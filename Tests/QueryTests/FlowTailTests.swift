import FlowModel
import FlowrecTesting
import Foundation
import Query
import ShardStore
import Testing

/// `flowrec tail`: the newest flows, then every flow stored afterwards, filtered, in
/// the order stored; a shard sealed before its last rows were read is reported.
@Suite struct FlowTailTests {
    static let port = FlowSchema.id(of: "DstPort")
    static let end = FlowSchema.id(of: "TimeFlowEndMs")

    func decoded(_ lines: ArraySlice<[UInt8]>) -> [Flow] {
        lines.map { line in
            var flow = Flow()
            try? FlowDecoder().decode(line, into: &flow)
            return flow
        }
    }

    @Test func followPrintsEachNewMatchingFlowOnceInStoredOrder() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(9_000, seed: 9, rate: 20)
        let writer = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0))
        try writer.append(batch(lines[0..<3000], firstLine: 1))

        let tail = try FlowTail(store: ShardStore.openExisting(directory: dir.path), fields: ["TimeFlowEndMs", "DstPort"],
                            whereSQL: "DstPort = 443")
        var printed: [[QueryValue]] = []
        try tail.last(5) { printed.append($0) }
        // The last five stored of the one batch (stored in the seal order), by end time.
        let firstMatches = Set(decoded(lines[0..<3000]).filter { $0.integer(Self.port) == 443 }.map { $0.integer(Self.end) ?? 0 })
        let printedTimes = printed.map { row -> Int64 in if case .integer(let t) = row[0] { t } else { -1 } }
        #expect(printed.count == 5 && printed.allSatisfy { $0[1] == .integer(443) })
        #expect(printedTimes.allSatisfy(firstMatches.contains) && printedTimes == printedTimes.sorted())
        // Exactly those, read with the stock sqlite3 from the newest shard.
        let newest = try #require(try writer.shards().last)
        let lastStored = try ChildProcess.output("/usr/bin/sqlite3", [dir.path + "/" + newest.path,
            "SELECT TimeFlowEndMs FROM flow_rows WHERE DstPort = 443 ORDER BY rowid DESC LIMIT 5"])
        #expect(printedTimes == lastStored.split(separator: "\n").compactMap { Int64($0) }.sorted())

        // Two more batches, polled in between and after.
        printed.removeAll()
        try writer.append(batch(lines[3000..<6000], firstLine: 3001))
        try tail.poll { printed.append($0) }
        try writer.append(batch(lines[6000..<9000], firstLine: 6001))
        try tail.poll { printed.append($0) }
        try tail.poll { printed.append($0) }  // nothing new: nothing printed
        // Each poll's flows by end time.
        let later = [lines[3000..<6000], lines[6000..<9000]].flatMap { polled in
            decoded(polled).filter { $0.integer(Self.port) == 443 }.map { $0.integer(Self.end) ?? 0 }.sorted()
        }
        #expect(printed == later.map { [.integer($0), .integer(443)] })
    }

    @Test func rowsSealedBeforeTheyWereReadAreReported() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(6_000, seed: 9, rate: 20)
        let writer = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try writer.append(batch(lines[0..<1000], firstLine: 1))
        let tail = try FlowTail(store: ShardStore.openExisting(directory: dir.path), fields: ["Bytes"], whereSQL: nil)
        try tail.last(0) { _ in }
        // More rows into the same window, then the window is sealed before tail polls.
        try writer.append(batch(lines[1000..<6000], firstLine: 1001))
        try writer.sealClosedWindows()
        var count = 0
        let notices = try tail.poll { _ in count += 1 }
        #expect(notices.contains { $0.contains("were stored just before it was sealed") }, "\(notices)")
    }

    /// With fewer matching flows in the active shards than asked for, the rest come from
    /// the sealed shards before them, newest end times first, across shards.
    @Test func theNewestFlowsComeFromSealedShardsWhenTheActiveOnesHoldTooFew() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(6_000, seed: 9, rate: 20)  // 300 s: five one-minute windows
        let writer = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        try writer.append(batch(lines[0..<5_800], firstLine: 1))
        try writer.sealClosedWindows(watermarkMs: .max)
        let store = try ShardStore.openExisting(directory: dir.path)
        #expect(try store.shards().allSatisfy { $0.state == .sealed })
        let sealedMatches = decoded(lines[0..<5_800]).filter { $0.integer(Self.port) == 443 }
            .map { $0.integer(Self.end) ?? 0 }.sorted()
            .map { [QueryValue.integer($0), .integer(443)] }
        let perWindow = sealedMatches.count / 5
        let asked = perWindow * 2 + 3  // more than the newest window holds
        let tail = try FlowTail(store: store, fields: ["TimeFlowEndMs", "DstPort"], whereSQL: "DstPort = 443")
        var printed: [[QueryValue]] = []
        try tail.last(asked) { printed.append($0) }
        #expect(printed == Array(sealedMatches.suffix(asked)))

        // A few more flows into an active shard: they come last, the sealed ones fill the rest.
        try writer.append(batch(lines[5_800..<6_000], firstLine: 5_801))
        let activeMatches = decoded(lines[5_800..<6_000]).filter { $0.integer(Self.port) == 443 }
            .map { $0.integer(Self.end) ?? 0 }.sorted().map { [QueryValue.integer($0), .integer(443)] }
        #expect(!activeMatches.isEmpty && activeMatches.count < asked)
        printed.removeAll()
        try FlowTail(store: ShardStore.openExisting(directory: dir.path), fields: ["TimeFlowEndMs", "DstPort"], whereSQL: "DstPort = 443")
            .last(asked) { printed.append($0) }
        #expect(printed == Array(sealedMatches.suffix(asked - activeMatches.count)) + activeMatches)
        #expect(try FlowTail(store: store, fields: ["Bytes"], whereSQL: "DstPort = 1").last(5) { _ in Issue.record("nothing matches") } == ())
    }
}
