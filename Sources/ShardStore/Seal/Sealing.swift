import Foundation
import StorageKit

/// When and how a window's active shard becomes sealed: closed windows found by the
/// watermark, sealed in the foreground (`sealClosedWindows`) or handed to the
/// background sealer as writing goes on. The steps of one seal are `ShardSealer`'s.
extension ShardStore {
    package struct SealSummary: Sendable {
        package let id: ShardID
        package let rows: Int64
        package let compactBytes: Int64
        package let sealedBytes: Int64
        package let seconds: Double
        package let steps: SealStepTimes
        /// Why the rows were copied through SQLite, not record by record (nil: by records).
        package let copiedThroughSQLiteBecause: String?
    }

    /// Seals every active shard whose window ended at least the grace period before the
    /// watermark (the newest flow time seen), or before `watermarkMs` when given.
    @discardableResult
    package func sealClosedWindows(watermarkMs: Int64? = nil) throws -> [SealSummary] {
        var results: [SealSummary] = []
        let closed = closedShards(watermarkMs: watermarkMs)
        for (i, shard) in closed.enumerated() {
            do {
                let summary = try seal(shard)
                options.sealObserver?(summary)
                results.append(summary)
            } catch {
                // Every shard not sealed stays complete and writable: put them all back so
                // the next call (after space returns, say) seals them.
                for unsealed in closed[i...] {
                    if active[unsealed.id.windowStartMs] == nil {
                        active[unsealed.id.windowStartMs] = unsealed
                    } else {
                        supersededShards.append(unsealed)
                    }
                }
                throw error
            }
        }
        if options.sealInBackground {
            let (sealed, failures) = backgroundSealer.drain()
            results += sealed
            if let first = failures.first { throw first }
        }
        return results.sorted { $0.id < $1.id }
    }

    /// Detaches and returns the shards whose window closed by the watermark, plus any
    /// superseded parts found at start-up.
    func closedShards(watermarkMs: Int64?) -> [ActiveShard] {
        let mark = watermarkMs ?? self.watermarkMs
        var closed = supersededShards
        supersededShards = []
        guard mark > .min else { return closed }
        for window in active.keys.sorted() {
            guard let shard = active[window], shard.id.windowEndMs + options.graceMs <= mark else { continue }
            active[window] = nil
            closed.append(shard)
        }
        return closed
    }

    /// Seals every active window whose end plus the grace period is before `nowMs` on the
    /// wall clock, as well as those the watermark closed: in the background with
    /// `sealInBackground` (returning nothing), else here. An idle source still gets its
    /// windows sealed this way. Call it only when the source is caught up (the last poll
    /// came back empty): during a backlog the wall clock is ahead of the flows, and their
    /// windows would be sealed under them (late flows would open new parts).
    @discardableResult
    package func sealWindowsClosed(byWallClockMs nowMs: Int64) throws -> [SealSummary] {
        let mark = max(watermarkMs, nowMs)
        guard options.sealInBackground else { return try sealClosedWindows(watermarkMs: mark) }
        try sealClosedWindowsInBackground(watermarkMs: mark)
        return []
    }

    /// What stays active after a command that does not seal everything: how many flows
    /// in how many windows, and when the last of them closes by the wall clock (its end
    /// plus the grace period), so the command can say when they will be sealed.
    package struct StillActive: Sendable, Equatable {
        package var shards = 0
        package var flows: Int64 = 0
        /// The latest window end plus grace among them; nil when nothing is active.
        package var closesAtMs: Int64?
    }

    package func stillActive() throws -> StillActive {
        var result = StillActive()
        for shard in try catalog.shards() where shard.state == .active {
            result.shards += 1
            result.flows += shard.rowCount
            result.closesAtMs = max(result.closesAtMs ?? .min, shard.id.windowEndMs + options.graceMs)
        }
        return result
    }

    /// Hands closed windows to the background sealer (with `sealInBackground`).
    func sealClosedWindowsInBackground(watermarkMs: Int64? = nil) throws {
        for shard in closedShards(watermarkMs: watermarkMs) {
            try catalog.record(shard, relativePath: shard.id.activeRelativePath)
            backgroundSealer.enqueue(.init(id: shard.id, activePath: shard.path,
                                           sealedPath: directory.appendingPathComponent(shard.id.sealedRelativePath).path))
        }
    }

    func seal(_ shard: ActiveShard) throws -> SealSummary {
        let started = Date()
        let id = shard.id
        try catalog.record(shard, relativePath: id.activeRelativePath)
        let sealer = ShardSealer(level: options.sealLevel, frameSize: options.frameSize, rollupsPath: rollupsPath)
        // On failure the caller puts the shard back among the active ones.
        let result = try sealer.seal(activePath: shard.path, sealedPath: directory.appendingPathComponent(id.sealedRelativePath).path, id: id)
        CrashPoint.reached("seal.beforeCatalog")
        try catalog.markSealed(id, relativePath: id.sealedRelativePath, bytes: result.sealedBytes, checksum: result.checksum, level: options.sealLevel,
                               summaries: result.summaries)
        return SealSummary(id: id, rows: result.rows, compactBytes: result.compactBytes, sealedBytes: result.sealedBytes,
                           seconds: Date().timeIntervalSince(started), steps: result.steps,
                           copiedThroughSQLiteBecause: result.copiedThroughSQLiteBecause)
    }
}
