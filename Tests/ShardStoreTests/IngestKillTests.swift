import FlowrecTestTraits
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// `flowrec ingest` killed with SIGKILL at random moments and restarted each time ends
/// with every line stored exactly once.
@Suite(.serialized, .ownThread) struct IngestKillTests {
    @Test func killedAndRestartedIngestStoresEachFlowOnce() throws {
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let input = dir.path + "/flows.jsonl"
        let lines = generatedLines(150_000, seed: 11, rate: 200)
        var text = Data()
        for line in lines { text.append(contentsOf: line); text.append(UInt8(ascii: "\n")) }
        try text.write(to: URL(fileURLWithPath: input))
        let data = dir.path + "/data"
        let args = ["ingest", input, "--data", data, "--window", "5m", "--batch-size", "2000"]

        var random = SeededRandom(seed: 5)
        var kills = 0
        var storedAfterFirstKill: Int64?
        for _ in 0..<20 {
            let process = try ChildProcess.start(flowrec, args)
            // A random moment inside the ingest (start-up takes part of it).
            usleep(UInt32(100_000 + random.below(400_000)))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                kills += 1
            }
            process.waitUntilExit()
            if kills == 1 && storedAfterFirstKill == nil {
                let partial = try ShardStore(directory: data, options: .init(windowMs: 300_000))
                storedAfterFirstKill = try partial.shards().reduce(0) { $0 + $1.rowCount }
            }
        }
        let final = try ChildProcess.start(flowrec, args)
        final.waitUntilExit()
        #expect(final.terminationStatus == 0)
        // Each restart resumes with less left to do, so later runs may finish first.
        #expect(kills >= 5, "the ingest should have been killed mid-way several times (it was \(kills) times)")
        let partial = storedAfterFirstKill ?? 0
        #expect(partial < Int64(lines.count), "the first kill should land before the ingest finished (\(partial) stored)")

        let store = try ShardStore(directory: data, options: .init(windowMs: 300_000))
        let stored = try storedFlows(store)
        #expect(stored.count == lines.count, "exactly one row per line")
        let same = stored.sorted() == lines.map { String(decoding: $0, as: UTF8.self) }.sorted()
        #expect(same, "the stored flows are the input lines, each once")
    }
}
