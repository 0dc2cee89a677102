import FlowModel
import Foundation
import StorageKit

/// Where a batch's flows go: each to the window its `TimeFlowEndMs` falls in, skipping
/// positions a window already absorbed (a replay), dead letters to their table, each
/// shard's rows and positions in one transaction.
extension ShardStore {
    /// Stores a batch. Flows whose position a shard of their window already holds are
    /// skipped; dead letters are stored once per position.
    @discardableResult
    package func append(_ batch: IngestBatch, receivedMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws -> AppendSummary {
        guard !isReadOnly else { throw ShardStoreError(.readOnly, "this store was opened for reading; open it with ShardStore(directory:) to write") }
        var summary = AppendSummary()
        guard !batch.isEmpty else { return summary }
        // The batch's high-water mark: the highest position of each source partition.
        // Content keys are no offsets: nothing to resume from, no high-water mark.
        let highWater = batch.isContentKeyed ? [:]
            : BatchPositionRanges(batch.positions[0..<batch.flowCount] + batch.deadLetters.map(\.at))
                .named(sources: batch.sources).mapValues(\.last)

        // Route flows to windows, skipping positions a window already absorbed. Keys are
        // resolved once per (window, source, partition), not per flow.
        var byWindow: [Int64: [Int]] = [:]
        var newestInBatch: [Int: [Int32: Int64]] = [:]
        var thresholdWindow = Int64.min, thresholdSource = -1, thresholdPartition = Int32.min
        var threshold: Int64? = nil
        var deadLetters = batch.deadLetters
        for i in 0..<batch.flowCount {
            guard let end = batch.endTimesMs[i], EventTime.storableEndMs.contains(end) else {
                // The decoder keeps such flows out; one built otherwise is kept as a dead
                // letter too, never routed (its window could not be named or computed).
                deadLetters.append(Self.unstorable(batch.flows[i], at: batch.positions[i]))
                continue
            }
            let window = floorDiv(end, options.windowMs) * options.windowMs
            let p = batch.positions[i]
            if end > (newestInBatch[p.source]?[p.partition] ?? .min) { newestInBatch[p.source, default: [:]][p.partition] = end }
            if window != thresholdWindow || p.source != thresholdSource || p.partition != thresholdPartition {
                thresholdWindow = window
                thresholdSource = p.source
                thresholdPartition = p.partition
                let key = SourcePartition(source: batch.sources[p.source], partition: p.partition)
                // Positions up to a store-wide mark were processed, even if retention has
                // since deleted the shards that held them.
                threshold = [try lastPosition(window: window, key: key), checkpoint.marks[key]].compactMap { $0 }.max()
            }
            if !batch.isContentKeyed, let threshold, p.position <= threshold {
                summary.skippedAsReplayed += 1
                continue
            }
            byWindow[window, default: []].append(i)
        }

        let now = Date()
        for (source, partitions) in newestInBatch {
            for (partition, newest) in partitions {
                let key = SourcePartition(source: batch.sources[source], partition: partition)
                partitionClocks[key] = (max(partitionClocks[key]?.newestMs ?? newest, newest), now)
            }
        }

        // Dead letters first: if a crash follows, their replay is ignored by key.
        let windows = byWindow.keys.sorted()
        if !deadLetters.isEmpty {
            summary.deadLetters = try self.deadLetters.write(deadLetters, sources: batch.sources, receivedMs: receivedMs,
                                                             highWater: windows.isEmpty ? highWater : nil)
        }
        for (n, window) in windows.enumerated() {
            let shard = try activeShard(window: window)
            let isLast = n == windows.count - 1
            let rows = byWindow[window] ?? []
            let written = try shard.write(flows: rows, of: batch, highWater: isLast ? highWater : nil,
                                          durable: !isLast && windows.count > 1, sortedRun: options.writesSortedRuns)
            summary.stored += rows.count - written.skipped
            summary.skippedAsReplayed += written.skipped
            summary.shardsTouched += 1
            // The positions the shard now holds, as a reload from the catalog would see
            // them (a content-keyed batch records none).
            var last = windowLast[window] ?? [:]
            for (key, range) in written.absorbed {
                last[key] = max(last[key] ?? range.last, range.last)
            }
            windowLast[window] = last
            try catalog.record(shard, relativePath: shard.id.activeRelativePath)
            if !isLast { CrashPoint.reached("append.betweenWindows") }
        }
        if windows.isEmpty && deadLetters.isEmpty {
            // Every flow was a replay: no shard commits, so the checkpoint itself moves on.
            try checkpoint.advance(to: highWater)
        }
        if options.sealInBackground { try sealClosedWindowsInBackground() }
        return summary
    }

    /// A flow the store cannot place in a window, as a dead letter holding its JSON.
    private static func unstorable(_ flow: Flow, at position: SourcePosition) -> DeadLetter {
        var payload: [UInt8] = []
        FlowEncoder().encode(flow, into: &payload)
        let reason = flow.integer(FlowSchema.requiredField).map {
            FlowDecodingError(.endTimeOutOfRange(valueMs: $0, accepted: EventTime.storableEndMs), at: 0).description
        } ?? FlowDecodingError(.missingRequiredField(FlowSchema.requiredField.name), at: 0).description
        return DeadLetter(at: position, reason: reason, errorOffset: nil, payload: payload)
    }

    private func lastPosition(window: Int64, key: SourcePartition) throws -> Int64? {
        if let known = windowLast[window] { return known[key] }
        let loaded = try catalog.lastPositions(windowStartMs: window)
        windowLast[window] = loaded
        return loaded[key]
    }

    private func activeShard(window: Int64) throws -> ActiveShard {
        if let shard = active[window] { return shard }
        let part = try catalog.nextPart(windowStartMs: window, windowEndMs: window + options.windowMs)
        let id = ShardID(windowStartMs: window, windowEndMs: window + options.windowMs, part: part)
        let shard = try ActiveShard(id: id, path: directory.appendingPathComponent(id.activeRelativePath).path)
        active[window] = shard
        return shard
    }
}
