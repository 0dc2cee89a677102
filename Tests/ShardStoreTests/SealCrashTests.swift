import FlowrecTestTraits
import StorageKit
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// `flowrec ingest --seal-now` dies between each two steps of a seal (as under SIGKILL)
/// and is run again: every flow is stored once, every closed window ends sealed, and
/// no temporary or duplicate file is left.
@Suite(.serialized, .ownThread) struct SealCrashTests {
    @Test(arguments: ["seal.compacted", "seal.compressed", "seal.verified", "seal.renamed", "seal.beforeCatalog"])
    func aCrashAtEachSealStepIsRepairedByTheNextRun(_ point: String) throws {
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let lines = generatedLines(12_000, rate: 100)  // 120 s of event time: 2 closed 1-minute windows
        try Data(lines.map { $0 + [UInt8(ascii: "\n")] }.joined()).write(to: URL(fileURLWithPath: dir.path + "/f.jsonl"))
        let args = ["ingest", dir.path + "/f.jsonl", "--data", dir.path + "/data", "--window", "1m", "--grace", "0s",
                    "--seal-now", "--no-background-seal"]

        #expect(try ChildProcess.run(flowrec, args, environment: ["FLOWREC_TEST_CRASH_AT": point]) == 137, "the run should die at \(point)")
        #expect(try ChildProcess.run(flowrec, args, environment: ["FLOWREC_TEST_CRASH_AT": nil]) == 0)

        let store = try ShardStore(directory: dir.path + "/data", options: .init(windowMs: 60_000, graceMs: 0))
        let shards = try store.shards()
        #expect(shards.filter { $0.state == .sealed }.count >= 2, "\(shards.map { "\($0.id) \($0.state)" })")
        let stored = try storedFlows(store)
        #expect(stored.count == lines.count, "each flow exactly once")
        #expect(Set(stored) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
        // Rollups are written before the rename: a redone seal must not add them twice.
        let sealedRows = shards.filter { $0.state == .sealed }.reduce(Int64(0)) { $0 + $1.rowCount }
        let rollups = try SQLiteDatabase(path: dir.path + "/data/rollups.sqlite", mode: .readOnly)
        for tier in ["minute_rollups", "hour_rollups", "day_rollups"] {
            #expect(try rollups.scalarInteger("SELECT sum(flows) FROM \(tier)") == sealedRows, "\(tier) counts every sealed flow once")
        }
        let files = FileManager.default.enumerator(atPath: dir.path + "/data/shards")?.compactMap { $0 as? String } ?? []
        #expect(files.filter { $0.hasSuffix(".tmp") }.isEmpty, "temporary files left: \(files)")
        for file in files where file.hasSuffix(".sqlite") {
            #expect(!files.contains(file + ".zst"), "\(file) exists both active and sealed")
        }
    }
}
