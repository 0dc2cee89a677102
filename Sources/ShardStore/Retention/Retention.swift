import StorageKit
import Foundation
import Logging
import Synchronization
import FlowModel

/// Limits that keep a store's disk use bounded; any combination, all optional.
///
/// Only whole sealed shards are deleted, oldest window first; active shards never. A
/// limit that is exceeded is brought down to `lowWatermark` of itself, so deletions come
/// in occasional batches instead of one shard per check.
package struct RetentionPolicy: Sendable, Equatable {
    /// Raw shards whose window ended longer ago than this are deleted, and dead letters
    /// received longer ago than this.
    package var maxAgeMs: Int64?
    /// The store's total size on disk: shards (active and sealed), rollups and dead letters.
    package var maxTotalBytes: Int64?
    /// Free space to keep on the data volume, in bytes and/or as a fraction of its size
    /// (the larger applies). This is the hard limit: when it is reached, shards that a
    /// forwarder has not delivered yet are deleted too, because losing old flows beats
    /// stopping ingest.
    package var minFreeBytes: Int64?
    package var minFreeFraction: Double?
    /// 0.9: a store over its size limit is pruned to 90% of it; a volume under its
    /// free-space limit is pruned until free space is the limit / 0.9.
    package var lowWatermark = 0.9
    /// While a size or free-space limit is set, dead letters may take at most this share
    /// of `maxTotalBytes` (or of the store's bytes, with only a free-space limit); beyond
    /// it the oldest go first. A producer writing garbage then cannot push real flows out
    /// of a bounded store, nor fill the volume with letters no limit would delete.
    package var deadLetterShare = 0.1
    /// One run stops deleting after this long; the next run continues.
    package var maxRunSeconds = 30.0
    /// Forwarders that must have delivered a shard before age or size may delete it.
    package var requiredForwarders: [String] = []
    /// How long each rollup tier is kept (usually much longer than `maxAgeMs`: rollups
    /// are what answers old ranges). The size and free-space limits count rollups too.
    package var rollupMaxAge = RollupAges()

    package init(maxAgeMs: Int64? = nil, maxTotalBytes: Int64? = nil, minFreeBytes: Int64? = nil,
                minFreeFraction: Double? = nil, lowWatermark: Double = 0.9, requiredForwarders: [String] = []) {
        self.maxAgeMs = maxAgeMs
        self.maxTotalBytes = maxTotalBytes
        self.minFreeBytes = minFreeBytes
        self.minFreeFraction = minFreeFraction
        self.lowWatermark = lowWatermark
        self.requiredForwarders = requiredForwarders
    }

    /// Dead letters received before this go: they are kept as long as flows, not forever
    /// (a producer writing garbage would otherwise grow deadletters.sqlite without bound).
    func deadLetterCutoff(nowMs: Int64) -> Int64? { maxAgeMs.map { nowMs - $0 } }

    package var isEmpty: Bool {
        maxAgeMs == nil && maxTotalBytes == nil && minFreeBytes == nil && minFreeFraction == nil && rollupMaxAge.isEmpty
    }

    package func validate() throws(ShardStoreError) {
        if let age = maxAgeMs, age < 60_000 { throw ShardStoreError(.invalidOptions, "the retention age must be at least 1 minute") }
        try rollupMaxAge.validate()
        if let bytes = maxTotalBytes, bytes <= 0 { throw ShardStoreError(.invalidOptions, "the size limit must be positive") }
        if let fraction = minFreeFraction, !(0..<1).contains(fraction) {
            throw ShardStoreError(.invalidOptions, "the free-space fraction must be between 0% and 100%")
        }
        if !(0.5...1).contains(lowWatermark) { throw ShardStoreError(.invalidOptions, "the low watermark must be between 0.5 and 1 (e.g. 0.9)") }
        if !(deadLetterShare > 0 && deadLetterShare <= 1) {
            throw ShardStoreError(.invalidOptions, "the dead letters' share must be above 0 and at most 1 (e.g. 0.1)")
        }
    }

    /// Whether a size or free-space limit is set (what the dead letters' share applies under).
    var limitsSpace: Bool { maxTotalBytes != nil || minFreeBytes != nil || minFreeFraction != nil }
}

/// How long each rollup tier is kept; nil keeps a tier until a size or free-space limit
/// needs its room (only minute rows are ever taken that way, oldest first).
package struct RollupAges: Sendable, Equatable {
    package var minuteMs: Int64?
    package var hourMs: Int64?
    package var dayMs: Int64?

    package init(minuteMs: Int64? = nil, hourMs: Int64? = nil, dayMs: Int64? = nil) {
        self.minuteMs = minuteMs
        self.hourMs = hourMs
        self.dayMs = dayMs
    }

    /// Every tier kept at most `maxMs` (nil: as they are).
    package func capped(at maxMs: Int64?) -> RollupAges {
        guard let maxMs else { return self }
        return RollupAges(minuteMs: min(minuteMs ?? maxMs, maxMs), hourMs: min(hourMs ?? maxMs, maxMs), dayMs: min(dayMs ?? maxMs, maxMs))
    }

    package var isEmpty: Bool { minuteMs == nil && hourMs == nil && dayMs == nil }

    /// In `RollupSchema.tiers` order.
    package var byTier: [Int64?] { [minuteMs, hourMs, dayMs] }

    func validate() throws(ShardStoreError) {
        for age in byTier.compactMap({ $0 }) where age < 60_000 {
            throw ShardStoreError(.invalidOptions, "a rollup retention age must be at least 1 minute")
        }
        // A coarser tier answers what a finer one no longer holds, never the other way.
        let set = byTier.compactMap { $0 }
        if set != set.sorted() {
            throw ShardStoreError(.invalidOptions, "rollup tiers must be kept at least as long as finer ones (minutes <= hours <= days)")
        }
        if (minuteMs == nil && (hourMs != nil || dayMs != nil)) || (hourMs == nil && dayMs != nil) {
            throw ShardStoreError(.invalidOptions, "a finer rollup tier cannot be kept forever while a coarser one is pruned (minutes <= hours <= days)")
        }
    }
}

/// Size and free space of the volume that holds the data directory.
package struct VolumeSpace: Sendable, Equatable {
    package var freeBytes: Int64
    package var totalBytes: Int64

    package init(freeBytes: Int64, totalBytes: Int64) {
        self.freeBytes = freeBytes
        self.totalBytes = totalBytes
    }

    /// What `statvfs` says about the volume holding `path` (blocks available to
    /// unprivileged users count as free, as `df` shows).
    package static func of(_ path: String) -> VolumeSpace? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        let block = Int64(stats.f_frsize)
        return VolumeSpace(freeBytes: Int64(stats.f_bavail) * block, totalBytes: Int64(stats.f_blocks) * block)
    }
}

/// One shard that retention deletes (or, in a dry run, would delete), and why.
package struct PruneDecision: Sendable, Equatable {
    package enum Reason: String, Sendable {
        case age
        case totalSize = "total-size"
        case freeSpace = "free-space"
    }

    package let shard: ShardID
    package let path: String
    package let bytes: Int64
    package let reason: Reason
    /// A required forwarder had not delivered it (only ever true for free space).
    package let undelivered: Bool
}

package struct PruneReport: Sendable {
    package var deleted: [PruneDecision] = []
    /// Decisions not carried out because the run hit `maxRunSeconds`.
    package var postponed = 0
    /// Catalog rows whose file had disappeared, and sealed files the catalog did not list.
    package var forgotten: [String] = []
    package var adopted: [String] = []
    /// Shards whose rollups were deleted by `rollupMaxAge` (the day tier's age).
    package var rollupShardsDropped = 0
    /// Days of minute rollups deleted because a size or free-space limit needed the room.
    package var rollupMinuteDays: [RollupPruneDecision] = []
    /// Dead letters deleted by the age limit.
    package var deadLettersDeleted = 0
    /// Dead letters deleted, oldest first, because they took more than their share of
    /// the size limits, and the bytes that gave back.
    package var deadLettersOverShare = 0
    package var deadLetterBytesFreed: Int64 = 0
}

/// A day of minute rollups that retention deletes (or would) for a size or free-space
/// limit: the oldest minute rows go before any raw shard newer than them.
package struct RollupPruneDecision: Sendable, Equatable {
    package let dayStartMs: Int64
    package let rows: Int64
    /// `rows` at the bytes a rollup row takes on disk (about 100, bench/RESULTS.md), in a
    /// dry run; measured when carried out.
    package let bytes: Int64
    package let reason: PruneDecision.Reason
}

extension ShardStore {
    /// What a prune would delete now, oldest first, without deleting anything.
    /// `now` and `volume` are parameters so tests can hold the clock and the disk still.
    package func retentionPlan(_ policy: RetentionPolicy, nowMs: Int64, volume: VolumeSpace?) throws -> [PruneDecision] {
        let shards = try catalog.shards()
        let delivered = try catalog.deliveredToAll(policy.requiredForwarders)
        func isPending(_ id: ShardID) -> Bool { !policy.requiredForwarders.isEmpty && !delivered.contains(id.description) }

        var total = try storeBytes(shards)
        var candidates = shards.filter { $0.state == .sealed }  // already oldest first
        var plan: [PruneDecision] = []
        func take(_ index: Int, _ reason: PruneDecision.Reason) {
            let shard = candidates.remove(at: index)
            plan.append(PruneDecision(shard: shard.id, path: shard.path, bytes: shard.bytesOnDisk, reason: reason,
                                      undelivered: isPending(shard.id)))
            total -= shard.bytesOnDisk
        }

        if let maxAge = policy.maxAgeMs {
            while let i = candidates.firstIndex(where: { $0.id.windowEndMs <= nowMs - maxAge && !isPending($0.id) }) {
                take(i, .age)
            }
        }
        if let maxTotal = policy.maxTotalBytes, total > maxTotal {
            let target = Int64(Double(maxTotal) * policy.lowWatermark)
            while total > target, let i = candidates.firstIndex(where: { !isPending($0.id) }) { take(i, .totalSize) }
        }
        if let volume, policy.minFreeBytes != nil || policy.minFreeFraction != nil {
            let limit = max(policy.minFreeBytes ?? 0, Int64((policy.minFreeFraction ?? 0) * Double(volume.totalBytes)))
            var free = volume.freeBytes + plan.reduce(Int64(0)) { $0 + $1.bytes }
            if free < limit {
                let target = Int64(Double(limit) / policy.lowWatermark)
                // Delivered shards first; undelivered ones only if that is not enough.
                while free < target, let i = candidates.firstIndex(where: { !isPending($0.id) }) {
                    free += candidates[i].bytesOnDisk
                    take(i, .freeSpace)
                }
                while free < target, !candidates.isEmpty {
                    free += candidates[0].bytesOnDisk
                    take(0, .freeSpace)
                }
            }
        }
        return plan
    }

    /// Deletes what `retentionPlan` lists, oldest first, within `policy.maxRunSeconds`.
    /// First reconciles the catalog with the files (shards deleted or added by hand).
    /// Each deleted shard's high-water marks are kept in the store, so nothing it held is
    /// ever consumed or ingested again.
    @discardableResult
    package func prune(_ policy: RetentionPolicy, nowMs: Int64? = nil, volume: VolumeSpace? = nil) throws -> PruneReport {
        let nowMs = nowMs ?? Int64(Date().timeIntervalSince1970 * 1000)
        var report = PruneReport()
        try reconcileCatalogWithFiles(&report)
        var plan = try retentionPlan(policy, nowMs: nowMs, volume: volume ?? VolumeSpace.of(directory.path))
        if !policy.rollupMaxAge.isEmpty, FileManager.default.fileExists(atPath: rollupsPath) {
            let rollups = try RollupStore(path: rollupsPath)
            report.rollupShardsDropped = try rollups.prune(cutoffs: policy.rollupMaxAge.byTier.map { $0.map { nowMs - $0 } })
            if report.rollupShardsDropped > 0 {
                logger.info("retention dropped the rollups of shards older than the rollup age limits",
                            metadata: ["shards": "\(report.rollupShardsDropped)"])
            }
        }
        if let cutoff = policy.deadLetterCutoff(nowMs: nowMs) {
            report.deadLettersDeleted = try deadLetters.delete(receivedBefore: cutoff)
            if report.deadLettersDeleted > 0 {
                logger.info("retention deleted dead letters older than the age limit",
                            metadata: ["dead_letters": "\(report.deadLettersDeleted)"])
            }
        }
        try pruneDeadLettersOverShare(policy, into: &report)
        if try pruneMinuteRollups(policy, volume: volume, into: &report) || report.deadLettersOverShare > 0 {
            plan = try retentionPlan(policy, nowMs: nowMs, volume: volume ?? VolumeSpace.of(directory.path))
        }
        let started = monotonicSeconds()
        var i = 0
        while i < plan.count {
            let decision = plan[i]
            defer { i += 1 }
            if monotonicSeconds() - started > policy.maxRunSeconds {
                report.postponed = plan.count - i
                logger.notice("retention stopped at its time limit; the rest waits for the next run",
                              metadata: ["seconds": "\(policy.maxRunSeconds)", "postponed": "\(report.postponed)"])
                break
            }
            try delete(decision)
            report.deleted.append(decision)
            if i == plan.count - 1, volume == nil, let refill = try shortfall(policy, nowMs: nowMs) {
                // Deleting writes to the catalog too: measured again, the volume may still be
                // short of its free-space limit by a few pages. Then the next shards go.
                plan += refill
            }
            if decision.undelivered {
                logger.error("retention deleted a shard before every forwarder delivered it: the volume is below its free-space limit",
                             metadata: ["shard": "\(decision.shard)", "bytes": "\(decision.bytes)"])
            } else {
                logger.info("retention deleted a shard",
                            metadata: ["shard": "\(decision.shard)", "bytes": "\(decision.bytes)", "reason": "\(decision.reason.rawValue)"])
            }
        }
        return report
    }

    /// After a plan's deletions on the real volume: the shards to delete next when the
    /// free-space limit is still not met (the catalog's own writes, a file the kernel
    /// has not released yet), nil when it is met or nothing is left to delete.
    private func shortfall(_ policy: RetentionPolicy, nowMs: Int64) throws -> [PruneDecision]? {
        guard policy.minFreeBytes != nil || policy.minFreeFraction != nil else { return nil }
        catalog.checkpoint()
        guard let volume = VolumeSpace.of(directory.path) else { return nil }
        let limit = max(policy.minFreeBytes ?? 0, Int64((policy.minFreeFraction ?? 0) * Double(volume.totalBytes)))
        guard volume.freeBytes < limit else { return nil }
        let more = try retentionPlan(RetentionPolicy(minFreeBytes: limit, lowWatermark: policy.lowWatermark,
                                                     requiredForwarders: policy.requiredForwarders), nowMs: nowMs, volume: volume)
        return more.isEmpty ? nil : Array(more.prefix(1))
    }

    private func delete(_ decision: PruneDecision) throws {
        try ShardFiles.lock.withLock { _ in
            // Keep what the shard proves was processed, before the proof is gone.
            let marks = try catalog.highWater(of: decision.shard)
            try checkpoint.advance(to: marks)
            let path = directory.appendingPathComponent(decision.path).path
            ReadConnectionPool.shared.forget(path: path)  // or a kept connection holds the space
            if unlink(path) != 0 && errno != ENOENT {
                throw ShardStoreError(.fileOperationFailed, "retention cannot delete \(decision.path) (errno \(errno)): check the data directory's permissions")
            }
            fsyncDirectory((path as NSString).deletingLastPathComponent)
            try catalog.deleteShard(decision.shard)
        }
    }

    /// What the size and free-space limits still need freed, and which limit it is; nil
    /// when both hold. `total` counts shards and rollups.
    private func need(_ policy: RetentionPolicy, total: Int64, volume: VolumeSpace?) -> (bytes: Int64, reason: PruneDecision.Reason)? {
        if let maxTotal = policy.maxTotalBytes, total > maxTotal {
            return (total - Int64(Double(maxTotal) * policy.lowWatermark), .totalSize)
        }
        if let volume, policy.minFreeBytes != nil || policy.minFreeFraction != nil {
            let limit = max(policy.minFreeBytes ?? 0, Int64((policy.minFreeFraction ?? 0) * Double(volume.totalBytes)))
            if volume.freeBytes < limit { return (Int64(Double(limit) / policy.lowWatermark) - volume.freeBytes, .freeSpace) }
        }
        return nil
    }

    /// What the size limit counts: the shards, the rollups' rows (`rollups`, or opened
    /// here when the file exists) and the dead letters.
    private func storeBytes(_ shards: [ShardRecord], rollups: RollupStore? = nil) throws -> Int64 {
        var rollupBytes: Int64 = 0
        if let rollups {
            rollupBytes = try rollups.liveBytes()
        } else if FileManager.default.fileExists(atPath: rollupsPath) {
            rollupBytes = try RollupStore(path: rollupsPath).liveBytes()
        }
        return shards.reduce(Int64(0)) { $0 + currentBytes($1) } + rollupBytes + (try deadLetters.liveBytes())
    }

    /// The fraction of the dead letters' bytes beyond their share of the size limits,
    /// brought down to the low watermark of that share; nil when they are within it or
    /// no limit is set.
    private func deadLettersOverShare(_ policy: RetentionPolicy, total: Int64) throws -> Double? {
        guard policy.limitsSpace else { return nil }
        let letters = Double(try deadLetters.liveBytes())
        let share = Double(policy.maxTotalBytes ?? total) * policy.deadLetterShare
        guard letters > share else { return nil }
        return (letters - share * policy.lowWatermark) / letters
    }

    /// How many dead letters retention would delete now: past the age limit, and beyond
    /// their share of the size limits (`flowrec prune --dry-run`; the second counts whole
    /// batches of the oldest, before the age limit's deletions).
    package func deadLetterRetentionPlan(_ policy: RetentionPolicy, nowMs: Int64) throws -> (pastAge: Int, overShare: Int) {
        let pastAge = try policy.deadLetterCutoff(nowMs: nowMs).map { cutoff throws(SQLiteError) in try deadLetters.count(receivedBefore: cutoff) } ?? 0
        guard let excess = try deadLettersOverShare(policy, total: storeBytes(catalog.shards())),
              let oldest = try deadLetters.oldest(fraction: excess) else { return (pastAge, 0) }
        return (pastAge, oldest.letters)
    }

    /// Deletes the oldest dead letters while they take more than their share of the size
    /// limits (a batch at a time, measured again after each); logged at warning level,
    /// since those messages are lost for good.
    private func pruneDeadLettersOverShare(_ policy: RetentionPolicy, into report: inout PruneReport) throws {
        guard policy.limitsSpace else { return }
        var rounds = 0
        while rounds < 8, let excess = try deadLettersOverShare(policy, total: storeBytes(catalog.shards())),
              let oldest = try deadLetters.oldest(fraction: excess) {
            rounds += 1  // letters of unequal sizes may take a second round
            let before = try deadLetters.liveBytes()
            let deleted = try deadLetters.delete(receivedBefore: oldest.receivedBeforeMs)
            let freed = before - (try deadLetters.liveBytes())
            report.deadLettersOverShare += deleted
            report.deadLetterBytesFreed += freed
            logger.warning("retention deleted the oldest dead letters: they took more than their share of the size limits", metadata: [
                "dead_letters": "\(deleted)", "bytes": "\(freed)", "share": "\(policy.deadLetterShare)",
                "received_before": "\(EventTime.rfc3339(oldest.receivedBeforeMs == .max ? Int64(Date().timeIntervalSince1970 * 1000) : oldest.receivedBeforeMs))",
            ])
            if deleted == 0 || !deadLetters.shrinksWhenPruned { return }
        }
    }

    /// The days of minute rollups a size or free-space limit would take first: those
    /// older than every shard (their flows are answered by the hour and day tiers), oldest
    /// first, at about 100 bytes a row (what `flowrec prune --dry-run` lists).
    package func rollupRetentionPlan(_ policy: RetentionPolicy, volume: VolumeSpace?) throws -> [RollupPruneDecision] {
        guard FileManager.default.fileExists(atPath: rollupsPath) else { return [] }
        let rollups = try RollupStore(path: rollupsPath)
        let shards = try catalog.shards()
        let total = try storeBytes(shards, rollups: rollups)
        guard let (stillNeeded, reason) = need(policy, total: total, volume: volume),
              reason == .totalSize || rollups.shrinksWhenPruned,
              let day = try rollups.oldestMinuteDay() else { return [] }
        var needed = stillNeeded
        let oldestShard = shards.map(\.id.windowStartMs).min() ?? .max
        var plan: [RollupPruneDecision] = []
        var dayStart = day.dayStartMs, rows = day.rows
        // Only the oldest day is counted exactly; the days after it are assumed alike.
        while needed > 0, dayStart + 86_400_000 <= oldestShard, rows > 0 {
            plan.append(RollupPruneDecision(dayStartMs: dayStart, rows: rows, bytes: rows * 100, reason: reason))
            needed -= rows * 100
            dayStart += 86_400_000
            if let newest = try rollups.newestMinuteMs(), dayStart > newest { break }
        }
        return plan
    }

    /// Deletes minute rollups, a day at a time and oldest first, while a size or
    /// free-space limit needs room and the day is older than every shard; measures again
    /// after each. True when anything was deleted.
    private func pruneMinuteRollups(_ policy: RetentionPolicy, volume fixedVolume: VolumeSpace?, into report: inout PruneReport) throws -> Bool {
        guard FileManager.default.fileExists(atPath: rollupsPath),
              policy.maxTotalBytes != nil || policy.minFreeBytes != nil || policy.minFreeFraction != nil else { return false }
        let rollups = try RollupStore(path: rollupsPath)
        var deleted = false
        while true {
            let shards = try catalog.shards()
            let total = try storeBytes(shards, rollups: rollups)
            let volume = fixedVolume ?? VolumeSpace.of(directory.path)
            guard let (_, reason) = need(policy, total: total, volume: volume),
                  reason == .totalSize || rollups.shrinksWhenPruned,
                  let day = try rollups.oldestMinuteDay(),
                  day.dayStartMs + 86_400_000 <= shards.map(\.id.windowStartMs).min() ?? .max else { return deleted }
            let before = try rollups.liveBytes()
            try rollups.pruneMinutes(before: day.dayStartMs + 86_400_000)
            let freed = before - (try rollups.liveBytes())
            report.rollupMinuteDays.append(RollupPruneDecision(dayStartMs: day.dayStartMs, rows: day.rows, bytes: freed, reason: reason))
            logger.info("retention deleted a day of minute rollups (hours and days still answer for it)", metadata: [
                "day": "\(EventTime.rfc3339(day.dayStartMs))", "rows": "\(day.rows)", "bytes": "\(freed)", "reason": "\(reason.rawValue)",
            ])
            deleted = true
            if fixedVolume != nil && reason == .freeSpace { return deleted }  // a test's fixed volume does not change
        }
    }

    /// Bytes a shard takes now (an active shard grows between catalog updates).
    private func currentBytes(_ row: ShardRecord) -> Int64 {
        guard row.state == .active else { return row.bytesOnDisk }
        let path = directory.appendingPathComponent(row.path).path
        return fileSize(path) + fileSize(path + "-wal")
    }

    /// Drops catalog rows of shard files that are gone, and lists sealed files the catalog
    /// does not know (read from their own `meta`, as `fsck` does, without the full check).
    private func reconcileCatalogWithFiles(_ report: inout PruneReport) throws {
        // Under the shard-file lock: a merge renames its file and swaps the catalog under it.
        try ShardFiles.lock.withLock { _ in try reconcileUnlocked(&report) }
    }

    private func reconcileUnlocked(_ report: inout PruneReport) throws {
        var known = Set<String>()
        for row in try catalog.shards() where row.state != .quarantined {
            known.insert(row.path)
            let path = directory.appendingPathComponent(row.path).path
            if !FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: path + ".zst") {
                try catalog.deleteShard(row.id)
                report.forgotten.append(row.path)
                logger.warning("a shard file is gone from disk; removed from the catalog", metadata: ["path": "\(row.path)"])
            }
        }
        let shardsDir = directory.appendingPathComponent("shards")
        let files = FileManager.default.enumerator(atPath: shardsDir.path)?.compactMap { $0 as? String } ?? []
        for relative in files where relative.hasSuffix(".sqlite.zst") && !known.contains("shards/" + relative) {
            let full = shardsDir.appendingPathComponent(relative).path
            do {
                let reader = try ShardReader(path: full)
                guard let facts = try SealedShardFacts(reader) else { continue }
                // A shard merged away (its file waits for removal) is not adopted back, nor a
                // merged shard whose sources are still listed (its flows would count twice).
                if try catalog.isMergedAway(facts.id) { continue }
                if try facts.mergedFrom.contains(where: { try catalog.contains($0) }) {
                    logger.warning("a merged shard is not in the catalog while its sources are; it is left alone (run `flowrec fsck`)",
                                   metadata: ["path": "shards/\(relative)"])
                    continue
                }
                try facts.record(in: catalog, relativePath: "shards/" + relative, bytes: fileSize(full), reader: reader)
                report.adopted.append("shards/" + relative)
                logger.notice("found a sealed shard the catalog did not list; added it", metadata: ["path": "shards/\(relative)"])
            } catch {
                logger.warning("a sealed shard is not in the catalog and cannot be read; run `flowrec fsck`",
                               metadata: ["path": "shards/\(relative)", "error": "\(error)"])
            }
        }
    }
}

/// Serializes the two things that remove or replace a sealed shard's file in one
/// process: retention deleting it and deep compaction renaming a new copy over it.
enum ShardFiles {
    static let lock = Mutex<Void>(())
}
