import FlowrecTestTraits
import FlowModel
import FlowrecTesting
import Forwarders
import Foundation
import ShardStore
import Testing

/// The directory and exec forwarders: copies that verify, a full target, commands that
/// succeed, fail and hang.
@Suite(.ownThread) struct FileForwarderTests {
    @Test func directoryCopiesVerifyAndReadBack() async throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path + "/store", count: 30_000)
        let target = dir.path + "/archive"
        let forwarder = DirectoryForwarder(options: DirectoryForwarderOptions(path: target))
        let summary = try await ShardReplicator(store: store, forwarder: forwarder).run()
        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(summary.shardsDelivered == sealed.count && sealed.count >= 2)
        for shard in sealed {
            let (file, manifestPath) = forwarder.destination(of: shard.id)
            let manifest = try JSONDecoder().decode(ShardManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            #expect(manifest.rows == shard.rowCount)
            #expect(manifest.shard == shard.id.description)
            #expect(manifest.schemaVersion == ShardSchema.version)
            #expect(manifest.contentChecksum != nil)
            // sha256sum agrees, from the manifest's own folder.
            let listed = try ChildProcess.output("/usr/bin/sha256sum", [file]).split(separator: " ").first.map(String.init)
            #expect(manifest.sha256 == listed)
            // The copy is a sealed shard flowrec reads in place, with every row.
            var rows = 0
            try ShardReader(path: file).forEachFlow { _ in rows += 1 }
            #expect(Int64(rows) == shard.rowCount)
            #expect(!FileManager.default.fileExists(atPath: file + ".tmp"))
        }
        let again = try await ShardReplicator(store: store, forwarder: forwarder).run()
        #expect(again.shardsDelivered == 0)
    }

    @Test func aFullTargetFailsClearlyAndMarksNothing() async throws {
        let fs = SmallFilesystem(megabytes: 1)
        guard fs.mounted else {
            #expect(!TestEnvironment.requireServers, "mounting a tmpfs needs root")
            return
        }
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 60_000)
        let forwarder = DirectoryForwarder(options: DirectoryForwarderOptions(path: fs.path + "/archive"))
        let error = await #expect(throws: ForwarderError.self) {
            try await ShardReplicator(store: store, forwarder: forwarder).run()
        }
        #expect(error?.message.contains("The target is full") == true, "\(error?.message ?? "")")
        let delivered = try store.deliveries(forwarder: "directory").filter { $0.value.complete }
        // Whatever was delivered before the disk filled is complete and verified; nothing else.
        for (id, _) in delivered {
            #expect(FileManager.default.fileExists(atPath: forwarder.destination(of: id).manifest))
        }
        #expect(delivered.count < (try store.shards().filter { $0.state == .sealed }.count))
        let leftovers = FileManager.default.enumerator(atPath: fs.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".tmp") } ?? []
        #expect(leftovers.isEmpty, "no partial copy is left behind: \(leftovers)")
    }

    @Test func execRunsOncePerShardWithItsFactsInTheEnvironment() async throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path + "/store", count: 30_000)
        let log = dir.path + "/runs.log"
        let command = #"echo "$FLOWREC_SHARD_ID $FLOWREC_ROWS $FLOWREC_WINDOW_START_MS $(basename "$FLOWREC_SHARD_PATH")" >> "\#(log)""#
        let summary = try await ShardReplicator(store: store, forwarder: ExecForwarder(options: ExecForwarderOptions(command: command))).run()
        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(summary.shardsDelivered == sealed.count)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines == sealed.map { "\($0.id) \($0.rowCount) \($0.id.windowStartMs) \($0.id).sqlite.zst" })
    }

    @Test func aFailingCommandIsRetriedThenReportedWithItsOutput() async throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path + "/store", count: 30_000)
        let counter = dir.path + "/attempts"
        var options = ExecForwarderOptions(command: #"echo x >> "\#(counter)"; echo "bucket is read-only" >&2; exit 3"#)
        options.retry = RetryPolicy(maxAttempts: 2, initialDelaySeconds: 0.01, maxDelaySeconds: 0.02)
        let error = await #expect(throws: ForwarderError.self) {
            try await ShardReplicator(store: store, forwarder: ExecForwarder(options: options)).run()
        }
        #expect(error?.message.contains("exited with status 3") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("bucket is read-only") == true)
        #expect(try String(contentsOfFile: counter, encoding: .utf8).split(separator: "\n").count == 2)
        #expect(try store.deliveries(forwarder: "exec").isEmpty)
    }

    @Test func aHangingCommandIsKilledAtItsTimeout() async throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path + "/store", count: 12_500)
        var options = ExecForwarderOptions(command: "exec sleep 600")
        options.timeoutSeconds = 0.5
        options.retry = RetryPolicy(maxAttempts: 1)
        let started = Date()
        let error = await #expect(throws: ForwarderError.self) {
            try await ShardReplicator(store: store, forwarder: ExecForwarder(options: options)).run()
        }
        #expect(error?.message.contains("was killed after 0.5 s") == true, "\(error?.message ?? "")")
        // Well before the command's own end (the bound is loose: the whole suite shares
        // two cores, and a blocking test can hold the cooperative threads for a while).
        #expect(Date().timeIntervalSince(started) < 300)
    }
}

/// `flowrec export --format shards`: verified copies of the sealed shards in a range,
/// with a manifest that `sha256sum` and flowrec agree with.
@Suite(.ownThread) struct ShardExportTests {
    @Test func exportCopiesSealedShardsWithAManifest() throws {
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path + "/store", count: 30_000)
        let sealed = try store.shards().filter { $0.state == .sealed }
        let active = try store.shards().filter { $0.state == .active }
        let out = dir.path + "/export"
        let status = try ChildProcess.run(try ChildProcess.flowrec(), ["export", "--data", dir.path + "/store", "--format", "shards", "--output", out])
        #expect(status == 0)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any])
        let shards = try #require(manifest["shards"] as? [[String: Any]])
        #expect(shards.count == sealed.count)
        #expect(manifest["rows"] as? Int == Int(sealed.reduce(0) { $0 + $1.rowCount }))
        #expect(manifest["active_shards_left_out"] as? Int == active.count)
        for entry in shards {
            let file = out + "/" + (entry["file"] as? String ?? "")
            let listed = try ChildProcess.output("/usr/bin/sha256sum", [file]).split(separator: " ").first.map(String.init)
            #expect(entry["sha256"] as? String == listed)
            var rows = 0
            try ShardReader(path: file).forEachFlow { _ in rows += 1 }
            #expect(rows == entry["rows"] as? Int)
        }
    }
}
