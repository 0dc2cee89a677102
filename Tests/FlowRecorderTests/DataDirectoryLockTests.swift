import FlowrecTestTraits
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// One writer per data directory: a second `flowrec record` (or `ingest`) on a directory a
/// recorder is writing refuses at once, naming the holder; readers keep working; the
/// first recorder's store ends whole (every flow once, the catalog agreeing with the shards).
@Suite(.serialized, .ownThread) struct DataDirectoryLockTests {
    @Test func aSecondWriterRefusesAndNothingIsCorrupted() throws {
        let flowrec = try ChildProcess.flowrec()
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 8])
        defer { broker.stop() }
        let dir = TemporaryDirectory(), logs = TemporaryDirectory()
        let producer = try ChildProcess.start(flowrec, ["generate", "--kafka", broker.bootstrapServers, "--rate", "500", "--duration", "40s",
                                                        "--seed", "3", "--speedup", "8"])
        let record = ["record", "--brokers", broker.bootstrapServers, "--data", dir.path, "--window", "1m", "--grace", "0s",
                      "--http-listen", "127.0.0.1:0", "--exit-when-idle", "8s", "--kafka-property", "session.timeout.ms=6000",
                      "--log-format", "human"]
        let first = try ChildProcess.start(flowrec, record, errorLog: logs.path + "/first.log")
        // Wait until the first recorder holds the directory and has stored something.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? ShardStore.openForReading(directory: dir.path).shards().reduce(0) { $0 + $1.rowCount }) ?? 0) == 0 {
            usleep(200_000)
        }

        let started = Date()
        let second = try ChildProcess.start(flowrec, record, errorLog: logs.path + "/second.log")
        second.waitUntilExit()
        #expect(second.terminationStatus != 0, "a second recorder on the same directory must refuse")
        #expect(Date().timeIntervalSince(started) < 15, "and refuse at once")
        let refusal = (try? String(contentsOfFile: logs.path + "/second.log", encoding: .utf8)) ?? ""
        #expect(refusal.contains("another flowrec process writes to") && refusal.contains("pid \(first.processIdentifier)"), "\(refusal)")

        let ingest = try ChildProcess.output(flowrec.path, ["ingest", "-", "--data", dir.path])
        #expect(ingest.contains("another flowrec process writes to"), "\(ingest)")
        #expect(try ChildProcess.run(flowrec, ["query", "--data", dir.path, "--limit", "5"]) == 0, "readers work beside the writer")
        #expect(try ChildProcess.run(flowrec, ["sql", "--data", dir.path, "SELECT count(*) FROM flows"]) == 0)
        #expect(try ChildProcess.run(flowrec, ["deadletters", "list", "--data", dir.path]) == 0, "so does listing dead letters")

        producer.waitUntilExit()
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)

        var options = GeneratorOptions()
        options.seed = 3
        options.flowsPerSecond = 500
        var generator = FlowGenerator(options: options)
        let produced: [String] = (0..<20_000).map { _ in
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            return String(decoding: line, as: UTF8.self)
        }
        let store = try ShardStore.openExisting(directory: dir.path)
        let stored = try storedFlows(store)
        #expect(stored.count == produced.count && Set(stored) == Set(produced), "every flow once: \(stored.count) stored of \(produced.count)")
        // The catalog agrees with the shards' own meta.
        for shard in try store.shards() {
            let reader = try store.reader(for: shard.id)
            #expect(try reader.meta("row_count").flatMap { Int64($0) } == shard.rowCount, "\(shard.id)")
            #expect(shard.bytesOnDisk > 0, "\(shard.id)")
        }
    }
}
