import FlowGenerator
import FlowrecTesting
import Foundation
import Query
import ShardStore
import StorageKit
import Testing

/// A store on a volume the reader cannot write (a read-only mount, a snapshot): the
/// reading commands answer, whether its writer has stopped (no `-wal` files: the files
/// are read as immutable) or runs elsewhere (its `-wal` and `-shm` are used). Reading
/// commands once opened the catalog for writing and failed with "unable to open
/// database file".
@Suite(.serialized, .ownThread) struct ReadOnlyVolumeTests {
    @Test func aStoppedWritersStoreIsReadFromAReadOnlyMount() throws {
        let dir = TemporaryDirectory()
        let flows = 30_000  // 2.5 minutes at 200 flows/s: sealed windows and an active one
        let lines = generatedLines(flows, seed: 7, rate: 200, features: Set(GeneratorOptions.Feature.allCases))
        do {
            let store = try sealedGeneratedStore(at: dir.path, count: flows)
            try store.close()
            let states = Set(try store.shards().map(\.state))
            #expect(states == [.sealed, .active], "\(states)")
        }
        let mount = ReadOnlyMount(of: dir.path)
        guard mount.mounted else {
            #expect(!TestEnvironment.requireServers, "cannot bind-mount read-only (needs root): the read-only volume test did not run")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/catalog.sqlite-wal"), "the writer closed its files")
        #expect(SQLiteDatabase.isInUnwritableDirectory(mount.path + "/catalog.sqlite"))

        let store = try ShardStore.openForReading(directory: mount.path)
        #expect(try storedFlows(store).sorted() == lines.map { String(decoding: $0, as: UTF8.self) }.sorted())

        let flowrec = try ChildProcess.flowrec().path
        let count = try ChildProcess.output(flowrec, ["sql", "--data", mount.path, "--format", "csv", "SELECT count(*) FROM flows"])
        #expect(count.split(separator: "\n").last == "\(flows)", "\(count)")
        let top = try ChildProcess.output(flowrec, ["top", "--data", mount.path, "--by", "Proto", "--format", "csv"])
        #expect(!top.contains("Error"), "\(top)")
        let csv = try ChildProcess.output(flowrec, ["export", "--data", mount.path, "--format", "csv", "--output", "-"])
        #expect(csv.split(separator: "\n").count == flows + 1, "a header and a row per flow")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/catalog.sqlite-wal"), "nothing was written")
    }

    @Test func aRunningWritersStoreIsReadThroughItsLogFromAReadOnlyMount() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(6_000, seed: 3, rate: 200)
        let writer = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000))
        try writer.append(batch(lines[0..<4_000], firstLine: 1))
        #expect(FileManager.default.fileExists(atPath: dir.path + "/catalog.sqlite-wal"), "a running writer has its log")
        let mount = ReadOnlyMount(of: dir.path)
        guard mount.mounted else {
            #expect(!TestEnvironment.requireServers, "cannot bind-mount read-only (needs root): the read-only volume test did not run")
            return
        }
        let flowrec = try ChildProcess.flowrec().path
        let query = ["sql", "--data", mount.path, "--format", "csv", "SELECT count(*) FROM flows"]
        let before = try ChildProcess.output(flowrec, query)
        #expect(before.split(separator: "\n").last == "4000", "\(before)")
        // What the writer stores next is seen by the next reader.
        try writer.append(batch(lines[4_000...], firstLine: 4_001))
        let after = try ChildProcess.output(flowrec, query)
        #expect(after.split(separator: "\n").last == "6000", "\(after)")
        try writer.close()
    }
}
