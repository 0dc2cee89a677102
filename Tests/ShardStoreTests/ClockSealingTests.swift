import FlowrecTestTraits
import FlowGenerator
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// Windows close by the wall clock too: a historical import leaves nothing open when
/// asked to seal, also with several files, and `flowrec seal --all` seals what is left.
@Suite(.serialized, .ownThread) struct ClockSealingTests {
    /// Writes `count` generated flows of `start` onwards (1-minute windows at `rate`/s).
    func file(_ dir: TemporaryDirectory, _ name: String, count: Int, seed: UInt64, startMs: Int64) throws -> String {
        var options = GeneratorOptions()
        options.seed = seed
        options.flowsPerSecond = 100
        options.startMs = startMs
        var generator = FlowGenerator(options: options)
        var text: [UInt8] = []
        for _ in 0..<count {
            generator.nextRecord(into: &text)
            text.append(UInt8(ascii: "\n"))
        }
        let path = dir.path + "/" + name
        try Data(text).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func ingestSealNowOfLastWeeksFilesLeavesNothingActive() throws {
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let weekAgo = (Int64(Date().timeIntervalSince1970 * 1000) - 7 * 86_400_000) / 60_000 * 60_000
        // Two files, the second one an hour later: each file is its own source partition,
        // and the first one's newest window used to stay open behind the second's.
        let first = try file(dir, "a.jsonl", count: 15_000, seed: 1, startMs: weekAgo)
        let second = try file(dir, "b.jsonl", count: 15_000, seed: 2, startMs: weekAgo + 3_600_000)
        let output = try ChildProcess.output(flowrec.path, ["ingest", first, second, "--data", dir.path + "/data", "--window", "1m",
                                                            "--seal-now"])
        let store = try ShardStore.openForReading(directory: dir.path + "/data")
        let shards = try store.shards()
        #expect(shards.count >= 6, "\(shards.count) shards")
        #expect(shards.allSatisfy { $0.state == .sealed }, "every window sealed: \(shards.filter { $0.state != .sealed }.map(\.id))")
        #expect(shards.reduce(0) { $0 + $1.rowCount } == 30_000)
        #expect(output.contains("active shards:     none"), "\(output)")
        // The count includes the seals made in the background while ingesting (it said 0).
        #expect(output.contains("sealed:            \(shards.count) shards, 30000 flows"), "\(output)")
    }

    @Test func sealAllSealsWindowsThatAreStillOpen() throws {
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        // Flows of the last few minutes: their newest window has not closed yet.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let input = try file(dir, "recent.jsonl", count: 6_000, seed: 3, startMs: now - 90_000)
        let ingest = try ChildProcess.output(flowrec.path, ["ingest", input, "--data", dir.path + "/data", "--window", "5m", "--grace", "10m",
                                                            "--seal-now"])
        #expect(ingest.contains("sealed once their windows close"), "the ingest says what it left and when: \(ingest)")
        #expect(try ShardStore.openForReading(directory: dir.path + "/data").shards().contains { $0.state == .active })
        let seal = try ChildProcess.output(flowrec.path, ["seal", "--data", dir.path + "/data", "--all"])
        #expect(seal.contains("active shards:     none"), "\(seal)")
        let shards = try ShardStore.openForReading(directory: dir.path + "/data").shards()
        #expect(shards.allSatisfy { $0.state == .sealed } && shards.reduce(0) { $0 + $1.rowCount } == 6_000)
    }
}
