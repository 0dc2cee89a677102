import FlowrecTestTraits
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import StorageKit
import Testing

/// Retention with a held clock and a held (or real, small) disk: which shards go, in
/// which order, what stays, and that deleted flows never come back.
@Suite(.ownThread) struct RetentionTests {
    let options = ShardStore.Options(windowMs: 60_000, graceMs: 0)

    /// 24,000 flows at 50/s: eight 1-minute windows, the first seven sealed.
    func sealedStore(_ dir: TemporaryDirectory) throws -> (ShardStore, [[UInt8]]) {
        let lines = generatedLines(24_000)
        let store = try ShardStore(directory: dir.path, options: options)
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealClosedWindows()
        return (store, lines)
    }

    func sealed(_ store: ShardStore) throws -> [ShardRecord] { try store.shards().filter { $0.state == .sealed } }

    @Test func ageDeletesOldSealedShardsAndTheirFlowsNeverReturn() throws {
        let dir = TemporaryDirectory()
        let (store, lines) = try sealedStore(dir)
        let before = try sealed(store)
        #expect(before.count >= 5)
        let maxAge: Int64 = 3_600_000
        let now = before[2].id.windowEndMs + maxAge  // the first three windows are exactly old enough
        let report = try store.prune(RetentionPolicy(maxAgeMs: maxAge), nowMs: now, volume: VolumeSpace(freeBytes: 1 << 40, totalBytes: 1 << 41))
        #expect(report.deleted.map(\.shard) == before.prefix(3).map(\.id))
        #expect(report.deleted.allSatisfy { $0.reason == .age && !$0.undelivered })
        #expect(try sealed(store).map(\.id) == before.dropFirst(3).map(\.id))
        for shard in before.prefix(3) { #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + shard.path)) }
        #expect(try store.shards().contains { $0.state == .active }, "the active shard is never deleted")

        // Re-ingesting the same lines, in this store or after a restart, stores nothing.
        let kept = try store.shards().reduce(Int64(0)) { $0 + $1.rowCount }
        #expect(try store.append(batch(lines[...], firstLine: 1)).stored == 0)
        let reopened = try ShardStore(directory: dir.path, options: options)
        #expect(try reopened.append(batch(lines[...], firstLine: 1)).stored == 0)
        #expect(try reopened.shards().reduce(Int64(0)) { $0 + $1.rowCount } == kept)
        #expect(try reopened.resumePositions()[SourcePartition(source: "file:test", partition: 0)] == 24_001)
    }

    /// Dead letters are kept as long as flows: the age limit deletes those received
    /// before it (a dry run counts them first), and keeps the newer ones.
    @Test func ageDeletesOldDeadLettersAndKeepsNewOnes() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: options)
        let garbage = (0..<30).map { Array("not a flow \($0)".utf8) }
        let day: Int64 = 86_400_000
        let now: Int64 = 1_800_000_000_000
        #expect(try store.append(batch(garbage[0..<20], firstLine: 1), receivedMs: now - 3 * day).deadLetters == 20)
        #expect(try store.append(batch(garbage[20..<30], firstLine: 21), receivedMs: now - day / 2).deadLetters == 10)
        let policy = RetentionPolicy(maxAgeMs: day)
        #expect(try store.deadLetterRetentionPlan(policy, nowMs: now) == (pastAge: 20, overShare: 0))
        #expect(try store.deadLetterCount() == 30, "a dry run deletes nothing")
        let report = try store.prune(policy, nowMs: now, volume: VolumeSpace(freeBytes: 1 << 40, totalBytes: 1 << 41))
        #expect(report.deadLettersDeleted == 20)
        #expect(try store.deadLetterCount() == 10)
        var kept: [Int64] = []
        try store.forEachDeadLetter { _, _, position, _, _ in kept.append(position) }
        #expect(kept == Array(21...30))
        #expect(try store.prune(RetentionPolicy(maxAgeMs: nil, maxTotalBytes: 1 << 40), nowMs: now).deadLettersDeleted == 0,
                "without an age limit dead letters stay")
    }

    /// A producer writing garbage: while a size limit is set, dead letters may take a
    /// tenth of it. The oldest batches beyond that go (a dry run counts them first), the
    /// file gives the space back to the volume, and no shard is deleted for them.
    @Test func deadLettersBeyondTheirShareGoOldestFirstAndNoShardForThem() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try sealedStore(dir)
        let shardsBefore = try store.shards().map(\.id)
        let now: Int64 = 1_800_000_000_000
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 1_000)
        // Four batches of 500 letters (about 0.5 MB each), received a minute apart.
        for batchIndex in 0..<4 {
            let first = Int64(batchIndex * 500 + 1)
            let garbage = (0..<500).map { Array("not a flow \(batchIndex)-\($0) ".utf8) + payload }
            #expect(try store.append(batch(garbage[...], source: "file:garbage", firstLine: first),
                                     receivedMs: now - Int64(4 - batchIndex) * 60_000).deadLetters == 500)
        }
        let path = dir.path + "/deadletters.sqlite"
        let fileBefore = fileSize(path) + fileSize(path + "-wal")
        let letterBytes = try store.deadLetterBytes()
        #expect(letterBytes > 2_000_000)
        // A limit whose tenth, at the low watermark, holds one and a half batches; the
        // store as a whole is under it.
        let total = try store.shards().reduce(Int64(0)) { $0 + $1.bytesOnDisk } + letterBytes
            + (try RollupStore(path: store.rollupsPath).liveBytes())
        let limit = Int64(1.5 * Double(letterBytes / 4) / 0.9 / 0.1)
        #expect(total < limit)
        let policy = RetentionPolicy(maxTotalBytes: limit)
        let share = Int64(Double(limit) * policy.deadLetterShare)
        #expect(share < letterBytes)

        let planned = try store.deadLetterRetentionPlan(policy, nowMs: now)
        #expect(planned.pastAge == 0 && planned.overShare > 0 && planned.overShare % 500 == 0, "whole batches: \(planned)")
        #expect(try store.deadLetterCount() == 2_000, "a dry run deletes nothing")
        let report = try store.prune(policy, nowMs: now, volume: VolumeSpace(freeBytes: 1 << 40, totalBytes: 1 << 41))
        #expect(report.deadLettersOverShare == planned.overShare, "the dry run counted what the real run deleted")
        #expect(report.deleted.isEmpty, "no shard goes for the dead letters: \(report.deleted.map(\.shard))")
        #expect(try store.shards().map(\.id) == shardsBefore)
        let after = try store.deadLetterBytes()
        #expect(after <= share, "within their share: \(after) of \(share)")
        #expect(report.deadLetterBytesFreed == letterBytes - after)
        var kept: [Int64] = []
        try store.forEachDeadLetter { _, _, position, _, _ in kept.append(position) }
        #expect(!kept.isEmpty && kept == Array(Int64(2_001 - kept.count)...2_000), "the newest are kept, whole batches")
        #expect(fileSize(path) + fileSize(path + "-wal") < fileBefore - 1_000_000, "the file gave the space back")

        // With only a free-space limit, the share is of the store's own bytes.
        let freeOnly = RetentionPolicy(minFreeBytes: 1 << 20, lowWatermark: 0.9)
        let storeBytes = try store.shards().reduce(Int64(0)) { $0 + $1.bytesOnDisk } + (try store.deadLetterBytes())
            + (try RollupStore(path: store.rollupsPath).liveBytes())
        let second = try store.prune(freeOnly, nowMs: now, volume: VolumeSpace(freeBytes: 1 << 40, totalBytes: 1 << 41))
        if Double(after) > Double(storeBytes) * 0.1 {
            #expect(second.deadLettersOverShare > 0)
        } else {
            #expect(second.deadLettersOverShare == 0)
        }
        #expect(second.deleted.isEmpty)
        // Without a size or free-space limit nothing is deleted for the share.
        #expect(try store.prune(RetentionPolicy(maxAgeMs: 365 * 86_400_000), nowMs: now).deadLettersOverShare == 0)
    }

    @Test func sizeLimitPrunesOldestFirstDownToTheLowWatermark() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try sealedStore(dir)
        let all = try store.shards()
        // The size limit counts the rollups too (here none older than the shards: they
        // stay), and the dead letters' file (here empty: its few pages).
        let rollups = try RollupStore(path: store.rollupsPath).liveBytes()
        #expect(rollups > 0)
        let total = all.reduce(Int64(0)) { $0 + $1.bytesOnDisk } + rollups + (try store.deadLetterBytes())
        let limit = total - 1
        let plan = try store.retentionPlan(RetentionPolicy(maxTotalBytes: limit, lowWatermark: 0.8), nowMs: 0, volume: nil)
        let report = try store.prune(RetentionPolicy(maxTotalBytes: limit, lowWatermark: 0.8), nowMs: 0,
                                     volume: VolumeSpace(freeBytes: 1 << 40, totalBytes: 1 << 41))
        #expect(report.deleted == plan, "a dry run lists exactly what the real run deletes")
        let deletedBytes = report.deleted.reduce(Int64(0)) { $0 + $1.bytes }
        let target = Int64(Double(limit) * 0.8)
        #expect(total - deletedBytes <= target, "pruned to the low watermark, not just below the limit")
        let lastBytes = try #require(report.deleted.last).bytes
        #expect(total - deletedBytes + lastBytes > target, "and not one shard further")
        let sealedBefore = all.filter { $0.state == .sealed }.map(\.id)
        #expect(report.deleted.map(\.shard) == Array(sealedBefore.prefix(report.deleted.count)), "oldest first")
    }

    @Test func undeliveredShardsWaitForTheirForwarderUntilFreeSpaceRunsOut() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try sealedStore(dir)
        let shards = try sealed(store)
        for shard in shards.prefix(2) {
            try store.recordDelivery(forwarder: "clickhouse", shard: shard.id, chunksDelivered: 1, complete: true)
        }
        try store.recordDelivery(forwarder: "clickhouse", shard: shards[2].id, chunksDelivered: 1, complete: false)
        let roomy = VolumeSpace(freeBytes: 1 << 40, totalBytes: 1 << 41)
        var policy = RetentionPolicy(maxAgeMs: 60_000, requiredForwarders: ["clickhouse"])
        let byAge = try store.prune(policy, nowMs: Int64.max / 2, volume: roomy)
        #expect(byAge.deleted.map(\.shard) == shards.prefix(2).map(\.id), "only delivered shards go for age")

        // The volume runs low: the hard limit deletes undelivered shards too, flagged.
        policy.minFreeBytes = 1 << 30
        let remaining = try sealed(store)
        policy.lowWatermark = 1  // free exactly up to the limit: one shard is enough
        let bySpace = try store.prune(policy, nowMs: 0, volume: VolumeSpace(freeBytes: (1 << 30) - 1, totalBytes: 1 << 34))
        #expect(bySpace.deleted.map(\.shard) == [remaining[0].id])
        #expect(bySpace.deleted.allSatisfy { $0.reason == .freeSpace && $0.undelivered })
    }

    @Test func freeSpaceOnARealSmallVolume() throws {
        let fs = SmallFilesystem(megabytes: 48)
        guard fs.mounted else {
            #expect(!TestEnvironment.requireServers, "cannot mount a tmpfs (needs root): the free-space test did not run")
            return
        }
        let store = try ShardStore(directory: fs.path + "/data", options: options)
        try store.append(batch(generatedLines(24_000)[...], firstLine: 1))
        try store.sealClosedWindows()
        let volume = try #require(VolumeSpace.of(fs.path))
        let sealedBytes = try sealed(store).reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        let limit = volume.freeBytes + sealedBytes / 3  // asks for a third of the sealed shards' space
        let report = try store.prune(RetentionPolicy(minFreeBytes: limit, lowWatermark: 1))
        #expect(!report.deleted.isEmpty && report.deleted.count < 7)
        let after = try #require(VolumeSpace.of(fs.path))
        #expect(after.freeBytes >= limit, "the real volume has the free space asked for: before \(volume.freeBytes), after \(after.freeBytes), deleted \(report.deleted.reduce(0) { $0 + $1.bytes }) in \(report.deleted.count) shards")
        #expect(report.deleted.allSatisfy { $0.reason == .freeSpace })
    }

    @Test func pruneDryRunListsWhatTheRealRunDeletes() throws {
        let dir = TemporaryDirectory()
        // The store is closed before `flowrec prune` runs: one writer per data directory.
        let total = try sealedStore(dir).0.shards().reduce(Int64(0)) { $0 + $1.bytesOnDisk }
        let flowrec = try ChildProcess.flowrec().path
        let limit = ["--data", dir.path, "--max-size", String(total / 2)]
        let dryRun = try ChildProcess.output(flowrec, ["prune"] + limit + ["--dry-run"])
        let real = try ChildProcess.output(flowrec, ["prune"] + limit)
        let listed = dryRun.split(separator: "\n").filter { $0.hasPrefix("would delete 2") }.map { $0.dropFirst("would delete ".count) }
        let deleted = real.split(separator: "\n").filter { $0.hasPrefix("deleted 2") }.map { $0.dropFirst("deleted ".count) }
        #expect(!listed.isEmpty)
        #expect(listed == deleted, "dry run:\n\(dryRun)\nreal run:\n\(real)")
        #expect(try ChildProcess.output(flowrec, ["prune"] + limit + ["--dry-run"]).hasSuffix("would delete 0 shards, 0 bytes\n"))
    }

    @Test func shardsRemovedOrAddedByHandAreReconciled() throws {
        let dir = TemporaryDirectory()
        let (store, _) = try sealedStore(dir)
        let shards = try sealed(store)
        // One shard deleted by hand; one moved out and back in under the catalog's nose.
        try FileManager.default.removeItem(atPath: dir.path + "/" + shards[0].path)
        let stash = dir.path + "/stash.zst"
        try FileManager.default.moveItem(atPath: dir.path + "/" + shards[1].path, toPath: stash)
        _ = try store.prune(RetentionPolicy(maxAgeMs: 60_000), nowMs: 0, volume: nil)  // forgets both
        #expect(try !store.shards().contains { $0.id == shards[0].id || $0.id == shards[1].id })
        try FileManager.default.moveItem(atPath: stash, toPath: dir.path + "/" + shards[1].path)
        let report = try store.prune(RetentionPolicy(maxAgeMs: 60_000), nowMs: 0, volume: nil)
        #expect(report.adopted == [shards[1].path])
        let adopted = try #require(try store.shards().first { $0.id == shards[1].id })
        #expect(adopted.rowCount == shards[1].rowCount && adopted.state == .sealed)
    }
}
