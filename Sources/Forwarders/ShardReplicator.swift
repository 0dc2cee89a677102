package import ShardStore
import Foundation

/// Where a replication run is, for progress bars and metrics.
package struct ReplicationProgress: Sendable {
    package var shardsDone = 0
    package var shardsTotal = 0
    package var rowsDone: Int64 = 0
    package var rowsTotal: Int64 = 0
    package var current: ShardID?
    package var elapsedSeconds = 0.0
}

/// What a replication run did.
package struct ReplicationSummary: Sendable, Equatable {
    package var shardsDelivered = 0
    package var chunksDelivered = 0
    package var rowsDelivered: Int64 = 0
    package var elapsedSeconds = 0.0
}

/// Drives one forwarder over the store's sealed shards: oldest first, each from the
/// first chunk not yet delivered, saving progress in the catalog after every chunk.
/// Active shards are never forwarded: they still change.
package final class ShardReplicator {
    package let ledger: DeliveryLedger
    package let forwarder: any Forwarder

    package init(ledger: DeliveryLedger, forwarder: any Forwarder) {
        self.ledger = ledger
        self.forwarder = forwarder
    }

    /// For a store this process has open.
    package convenience init(store: ShardStore, forwarder: any Forwarder) throws {
        try self.init(ledger: DeliveryLedger(directory: store.directory.path), forwarder: forwarder)
    }

    /// A sealed shard not yet completely delivered, with the progress saved so far.
    package struct PendingShard: Sendable {
        package let shard: SealedShard
        package let state: DeliveryState?
    }

    /// Sealed shards overlapping [fromMs, toMs) that the forwarder has not completely
    /// delivered, oldest window first.
    package func pending(fromMs: Int64? = nil, toMs: Int64? = nil) throws -> [PendingShard] {
        let states = try ledger.deliveries(forwarder: forwarder.name)
        return try ledger.sealedShards(overlappingFromMs: fromMs, toMs: toMs)
            .filter { states[$0.id]?.complete != true }
            .map { info in
                PendingShard(shard: SealedShard(id: info.id, path: ledger.sealedPath(of: info.id), rowCount: info.rowCount,
                                                minTimeMs: info.minTimeMs, maxTimeMs: info.maxTimeMs, bytesOnDisk: info.bytesOnDisk),
                             state: states[info.id])
            }
    }

    /// Delivers every pending shard in the range. Stops at the first shard that fails
    /// (its progress so far is saved); `progress` hears after every chunk, and
    /// `shouldStop` is asked after every chunk too: a graceful stop never leaves a chunk
    /// sent but unrecorded.
    @discardableResult
    package func run(fromMs: Int64? = nil, toMs: Int64? = nil, shouldStop: () -> Bool = { false },
                    progress: (ReplicationProgress) -> Void = { _ in }) async throws -> ReplicationSummary {
        let start = Date()
        let work = try pending(fromMs: fromMs, toMs: toMs)
        var summary = ReplicationSummary()
        guard !work.isEmpty else { return summary }
        var status = ReplicationProgress()
        status.shardsTotal = work.count
        var plans: [DeliveryPlan] = []
        for item in work {
            let plan = try forwarder.plan(item.shard, resuming: item.state)
            plans.append(plan)
            let done = item.state.map { min(item.shard.rowCount, $0.chunksDelivered * max(plan.chunkRows, 1)) } ?? 0
            status.rowsTotal += item.shard.rowCount - (plan.chunkRows > 0 ? done : 0)
        }
        do {
            try await forwarder.prepare()
            func shardDone() {
                summary.shardsDelivered += 1
                status.shardsDone += 1
                status.elapsedSeconds = Date().timeIntervalSince(start)
                progress(status)
            }
            // Shards with nothing (left) to send are marked complete; the others go to
            // the forwarder in one call, so it can work ahead across shard boundaries.
            var deliveries: [ShardDelivery] = []
            for (item, plan) in zip(work, plans) {
                let first = Int(item.state?.chunksDelivered ?? 0)
                if plan.chunkCount == 0 || first >= plan.chunkCount {
                    try ledger.recordDelivery(forwarder: forwarder.name, shard: item.shard.id, chunksDelivered: Int64(plan.chunkCount),
                                             chunkRows: plan.chunkRows, complete: true)
                    shardDone()
                } else {
                    deliveries.append(ShardDelivery(shard: item.shard, plan: plan, firstChunk: first))
                }
            }
            try Task.checkCancellation()
            if !deliveries.isEmpty, !shouldStop() {
                status.current = deliveries[0].shard.id
                try await forwarder.deliver(deliveries) { index, chunk, rows in
                    let delivery = deliveries[index]
                    let complete = chunk + 1 == delivery.plan.chunkCount
                    try ledger.recordDelivery(forwarder: forwarder.name, shard: delivery.shard.id, chunksDelivered: Int64(chunk + 1),
                                             chunkRows: delivery.plan.chunkRows, complete: complete)
                    summary.chunksDelivered += 1
                    summary.rowsDelivered += Int64(rows)
                    status.rowsDone += Int64(rows)
                    status.elapsedSeconds = Date().timeIntervalSince(start)
                    progress(status)
                    if complete {
                        shardDone()
                        if index + 1 < deliveries.count { status.current = deliveries[index + 1].shard.id }
                    }
                    // A graceful stop between any two chunks, within a shard or between shards.
                    if index + 1 < deliveries.count || !complete, shouldStop() { throw StopRequested() }
                }
            }
        } catch is StopRequested {
            // Asked to stop between two chunks of a shard: what was sent is recorded.
        } catch {
            try? await forwarder.shutdown()
            throw error
        }
        try await forwarder.shutdown()
        summary.elapsedSeconds = Date().timeIntervalSince(start)
        return summary
    }
}

/// Thrown from the chunk callback to end a run early and cleanly.
private struct StopRequested: Error {}
