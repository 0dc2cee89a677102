package import FlowModel
package import Foundation

/// A store failure a user can act on.
package struct ShardStoreError: Error, Sendable, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// The on-disk flow store: routes each flow by `TimeFlowEndMs` to its window's shard,
/// writes each batch exactly once, and knows where every source partition resumes.
///
/// Layout under `directory`:
///
///     catalog.sqlite                                   index of shards (a cache)
///     deadletters.sqlite                               messages that are not flows
///     shards/YYYY/MM/DD/<start>_<end>.<part>.sqlite     active shards (WAL)
///
/// Exactly once: a batch's flows go to their shards in one transaction per shard, each
/// recording the positions it absorbed; a replayed position a window already holds is
/// skipped. The batch's last commit also records its high-water mark (the highest
/// position of every partition in the batch); a restart resumes after the largest one,
/// so a crash between two shard commits replays the batch and the skip rule drops the
/// part already stored. When a batch touches several shards, the commits before the
/// last are synced, so even a power loss cannot keep a high-water mark whose rows are gone.
package final class ShardStore {
    package struct Options: Sendable {
        /// Width of a shard's time window, 1 minute to 1 day.
        package var windowMs: Int64 = 3_600_000
        /// How long after its end a window stays open for late flows before sealing.
        package var graceMs: Int64 = 120_000
        /// zstd level used when sealing; 3 keeps up with ingest, compaction goes higher.
        package var sealLevel: Int32 = 3
        /// Uncompressed bytes per zstd frame of a sealed shard (the unit a reader decompresses).
        package var frameSize: Int = 1 << 20
        /// Seal windows as they close, on a background thread, while writing goes on.
        package var sealInBackground = false
        /// Told about every finished seal (on the sealing thread), for metrics.
        package var sealObserver: (@Sendable (SealSummary) -> Void)?

        package init(windowMs: Int64 = 3_600_000, graceMs: Int64 = 120_000, sealLevel: Int32 = 3, frameSize: Int = 1 << 20,
                    sealInBackground: Bool = false) {
            self.sealInBackground = sealInBackground
            self.windowMs = windowMs
            self.graceMs = graceMs
            self.sealLevel = sealLevel
            self.frameSize = frameSize
        }

        package func validate() throws(ShardStoreError) {
            guard (60_000...86_400_000).contains(windowMs), 86_400_000 % windowMs == 0 else {
                throw ShardStoreError("the shard window must be between 1m and 1d and divide a day evenly (e.g. 1m, 5m, 15m, 1h, 6h, 1d); got \(windowMs) ms")
            }
        }
    }

    /// What one `append` did.
    package struct AppendSummary: Sendable, Equatable {
        package var stored = 0
        /// Flows skipped because their position was already stored (a replay).
        package var skippedAsReplayed = 0
        package var deadLetters = 0
        package var shardsTouched = 0

        package init() {}
    }

    package let directory: URL
    /// `rollups.sqlite`: per-minute aggregates written as shards are sealed.
    package var rollupsPath: String { directory.appendingPathComponent("rollups.sqlite").path }
    package let options: Options
    let catalog: Catalog
    /// Store-wide "processed through" marks kept in `deadletters.sqlite`: from batches
    /// of only dead letters, and from shards that retention deleted.
    var retiredHighWater: [SourcePartition: Int64] = [:]
    let deadLetters: DeadLetterStore
    private var active: [Int64: ActiveShard] = [:]
    /// Per window: the highest position absorbed per source partition over all parts.
    private var windowLast: [Int64: [SourcePartition: Int64]] = [:]
    /// Event time that every active source partition has reached: the smallest of their
    /// newest `TimeFlowEndMs`. Windows close by it, so a partition consumed more slowly
    /// than the others (a backlog, a slow broker) does not find its windows already
    /// sealed. A partition silent for `idlePartitionSeconds` of wall time stops holding it back.
    package var watermarkMs: Int64 {
        let now = Date()
        let live = partitionClocks.values.filter { now.timeIntervalSince($0.lastSeen) < idlePartitionSeconds }
        if let slowest = live.map(\.newestMs).min() { return slowest }
        return partitionClocks.values.map(\.newestMs).max() ?? restoredWatermarkMs
    }
    /// Per source partition: the newest flow time stored from it, and when it was seen.
    private var partitionClocks: [SourcePartition: (newestMs: Int64, lastSeen: Date)] = [:]
    /// Before any flow arrives in this process: the newest time found in the shards.
    private var restoredWatermarkMs: Int64 = .min
    /// Wall-clock seconds after which a silent partition no longer holds back sealing.
    package var idlePartitionSeconds: Double = 120
    /// Lower parts of a window found active at start-up behind a newer part: superseded,
    /// they are sealed at the next opportunity.
    private var supersededShards: [ActiveShard] = []
    private lazy var backgroundSealer = BackgroundSealer(
        sealer: ShardSealer(level: options.sealLevel, frameSize: options.frameSize, rollupsPath: rollupsPath),
        catalogPath: directory.appendingPathComponent("catalog.sqlite").path, observer: options.sealObserver)

    /// Opened by `openForReading`: no shard is opened for writing, and nothing is written.
    package let isReadOnly: Bool

    package convenience init(directory: String, options: Options = Options()) throws {
        try self.init(directory: directory, options: options, readOnly: false)
    }

    private init(directory: String, options: Options, readOnly: Bool) throws {
        isReadOnly = readOnly
        try options.validate()
        self.directory = URL(fileURLWithPath: directory)
        self.options = options
        do {
            try FileManager.default.createDirectory(at: self.directory.appendingPathComponent("shards"),
                                                    withIntermediateDirectories: true)
        } catch {
            throw ShardStoreError("cannot create the data directory \(directory): \(error.localizedDescription)")
        }
        catalog = try Catalog(path: self.directory.appendingPathComponent("catalog.sqlite").path)
        deadLetters = try DeadLetterStore(path: self.directory.appendingPathComponent("deadletters.sqlite").path)
        retiredHighWater = try deadLetters.highWater()
        if !readOnly { try reopenActiveShards() }
    }

    /// Opens every active shard file on disk (also ones the catalog missed because of a
    /// crash just after creating them) and refreshes the catalog from them.
    private func reopenActiveShards() throws {
        let shardsDir = directory.appendingPathComponent("shards")
        guard let files = FileManager.default.enumerator(atPath: shardsDir.path) else { return }
        var activeFiles: [String] = []
        for case let relative as String in files {
            let full = shardsDir.appendingPathComponent(relative).path
            if relative.hasSuffix(".tmp") {
                // An interrupted seal: the active shard is still complete; redo it later.
                try? FileManager.default.removeItem(atPath: full)
            } else if relative.hasSuffix(".sqlite") {
                activeFiles.append(relative)
            }
        }
        for relative in activeFiles {
            let full = shardsDir.appendingPathComponent(relative).path
            if FileManager.default.fileExists(atPath: full + ".zst") {
                // Crashed after the sealed file was verified and renamed: it wins.
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: full + suffix) }
                continue
            }
            let name = (relative as NSString).lastPathComponent.dropLast(".sqlite".count)
            guard let id = ShardID(String(name)), id.windowEndMs - id.windowStartMs == options.windowMs else {
                throw ShardStoreError("shards/\(relative) does not belong to a store with \(options.windowMs / 60000)-minute windows: open the store with the window it was written with")
            }
            let shard = try ActiveShard(id: id, path: full)
            if let existing = active[id.windowStartMs] {
                if existing.id.part > id.part { supersededShards.append(shard); continue }
                supersededShards.append(existing)
            }
            active[id.windowStartMs] = shard
            try catalog.record(shard, relativePath: id.activeRelativePath)
            restoredWatermarkMs = max(restoredWatermarkMs, shard.maxTimeMs ?? .min)
        }
        // Shards the catalog lists as active whose sealed file exists: finish the bookkeeping.
        for row in try catalog.shards() where row.state == "active" && active[row.id.windowStartMs]?.id != row.id {
            let sealed = directory.appendingPathComponent(row.id.sealedRelativePath).path
            if FileManager.default.fileExists(atPath: sealed) {
                let checksum = try ShardReader(path: sealed).meta("content_checksum").flatMap { UInt64($0, radix: 16) } ?? 0
                try catalog.markSealed(row.id, relativePath: row.id.sealedRelativePath, bytes: fileSize(sealed), checksum: checksum)
            }
        }
        for row in try catalog.shards() { restoredWatermarkMs = max(restoredWatermarkMs, row.maxTimeMs ?? .min) }
    }

    // MARK: Sealing

    package struct SealSummary: Sendable {
        package let id: ShardID
        package let rows: Int64
        package let compactBytes: Int64
        package let sealedBytes: Int64
        package let seconds: Double
        package let steps: SealStepTimes
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
            if let first = failures.first { throw ShardStoreError(first) }
        }
        return results.sorted { $0.id < $1.id }
    }

    /// Detaches and returns the shards whose window closed by the watermark, plus any
    /// superseded parts found at start-up.
    private func closedShards(watermarkMs: Int64?) -> [ActiveShard] {
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

    /// Hands closed windows to the background sealer (with `sealInBackground`).
    private func sealClosedWindowsInBackground() throws {
        for shard in closedShards(watermarkMs: nil) {
            try catalog.record(shard, relativePath: shard.id.activeRelativePath)
            backgroundSealer.enqueue(.init(id: shard.id, activePath: shard.path,
                                           sealedPath: directory.appendingPathComponent(shard.id.sealedRelativePath).path))
        }
    }

    // MARK: Deep compaction

    package struct CompactionSummary: Sendable {
        package let id: ShardID
        package let bytesBefore: Int64
        package let bytesAfter: Int64
        package let seconds: Double
    }

    /// Recompresses sealed shards below `level` at `level` (frame by frame, `frameSize`
    /// bytes each), verifies each new file in place against the shard's content checksum,
    /// and swaps it in atomically. Readers of the old file keep reading it until they close.
    @discardableResult
    package func compact(level: Int32 = 19, frameSize: Int = 1 << 20, limit: Int = .max,
                        progress: (CompactionSummary) -> Void = { _ in }) throws -> [CompactionSummary] {
        var results: [CompactionSummary] = []
        let compactor = ShardCompactor(directory: directory, level: level, frameSize: frameSize)
        for (id, relative, checksum) in try catalog.sealedBelow(level: level).prefix(limit) {
            let summary = try compactor.compact(id: id, relativePath: relative, checksum: checksum, catalog: catalog)
            progress(summary)
            results.append(summary)
        }
        return results
    }

    /// Waits for background seals to finish. Call before exiting.
    package func close() throws {
        guard options.sealInBackground else { return }
        let (_, failures) = backgroundSealer.drain()
        backgroundSealer.stop()
        if let first = failures.first { throw ShardStoreError(first) }
    }

    private func seal(_ shard: ActiveShard) throws -> SealSummary {
        let started = Date()
        let id = shard.id
        try catalog.record(shard, relativePath: id.activeRelativePath)
        let sealer = ShardSealer(level: options.sealLevel, frameSize: options.frameSize, rollupsPath: rollupsPath)
        // On failure the caller puts the shard back among the active ones.
        let result = try sealer.seal(activePath: shard.path, sealedPath: directory.appendingPathComponent(id.sealedRelativePath).path, id: id)
        CrashPoint.reached("seal.beforeCatalog")
        try catalog.markSealed(id, relativePath: id.sealedRelativePath, bytes: result.sealedBytes, checksum: result.checksum, level: options.sealLevel)
        return SealSummary(id: id, rows: result.rows, compactBytes: result.compactBytes, sealedBytes: result.sealedBytes,
                           seconds: Date().timeIntervalSince(started), steps: result.steps)
    }

    /// The window width an existing store was written with (from its catalog), so
    /// commands that only read or maintain it need not be told.
    package static func existingWindowMs(directory: String) -> Int64? {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("catalog.sqlite").path
        guard FileManager.default.fileExists(atPath: path),
              let db = try? SQLiteDatabase(path: path, mode: .readOnly) else { return nil }
        return try? db.scalarInteger("SELECT window_end_ms - window_start_ms FROM shards LIMIT 1")
    }

    /// Opens an existing store with the window it was written with.
    /// The store of a running recorder, for queries: shards are found through the catalog
    /// and read through read-only connections; appending or sealing is refused.
    package static func openForReading(directory: String) throws -> ShardStore {
        try ShardStore(directory: directory, options: .init(windowMs: existingWindowMs(directory: directory) ?? 3_600_000),
                       readOnly: true)
    }

    package static func openExisting(directory: String) throws -> ShardStore {
        try ShardStore(directory: directory, options: .init(windowMs: existingWindowMs(directory: directory) ?? 3_600_000))
    }

    // MARK: Writing

    /// Stores a batch. Flows whose position a shard of their window already holds are
    /// skipped; dead letters are stored once per position.
    @discardableResult
    package func append(_ batch: IngestBatch, receivedMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws -> AppendSummary {
        guard !isReadOnly else { throw ShardStoreError("this store was opened for reading; open it with ShardStore(directory:) to write") }
        var summary = AppendSummary()
        guard !batch.isEmpty else { return summary }
        // The batch's high-water mark: the highest position of each source partition.
        var highWater: [SourcePartition: Int64] = [:]
        func note(_ p: SourcePosition) {
            let key = SourcePartition(source: batch.sources[p.source], partition: p.partition)
            highWater[key] = max(highWater[key] ?? p.position, p.position)
        }
        for i in 0..<batch.flowCount { note(batch.positions[i]) }
        for letter in batch.deadLetters { note(letter.at) }

        // Route flows to windows, skipping positions a window already absorbed. Keys are
        // resolved once per (window, source, partition), not per flow.
        let endField = FlowSchema.requiredField
        var byWindow: [Int64: [Int]] = [:]
        var newestInBatch: [Int: [Int32: Int64]] = [:]
        var thresholdWindow = Int64.min, thresholdSource = -1, thresholdPartition = Int32.min
        var threshold: Int64? = nil
        var deadLetters = batch.deadLetters
        for i in 0..<batch.flowCount {
            guard let end = batch.flows[i].integer(endField), EventTime.storableEndMs.contains(end) else {
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
                // Positions up to a retired mark were processed, even if retention has since
                // deleted the shards that held them.
                threshold = [try lastPosition(window: window, key: key), retiredHighWater[key]].compactMap { $0 }.max()
            }
            if let threshold, p.position <= threshold {
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
            try shard.write(flows: rows, of: batch, highWater: isLast ? highWater : nil,
                            durable: !isLast && windows.count > 1)
            summary.stored += rows.count
            summary.shardsTouched += 1
            var last = windowLast[window] ?? [:]
            for i in rows {
                let p = batch.positions[i]
                let key = SourcePartition(source: batch.sources[p.source], partition: p.partition)
                last[key] = max(last[key] ?? p.position, p.position)
            }
            windowLast[window] = last
            try catalog.record(shard, relativePath: shard.id.activeRelativePath)
        }
        if windows.isEmpty && deadLetters.isEmpty {
            // Every flow was a replay: still move the high-water mark forward.
            _ = try self.deadLetters.write([], sources: batch.sources, receivedMs: receivedMs, highWater: highWater)
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
        let parts = try catalog.shards().filter { $0.id.windowStartMs == window }
        let part = (parts.map(\.id.part).max() ?? -1) + 1
        let id = ShardID(windowStartMs: window, windowEndMs: window + options.windowMs, part: part)
        let shard = try ActiveShard(id: id, path: directory.appendingPathComponent(id.activeRelativePath).path)
        active[window] = shard
        return shard
    }

    // MARK: Reading

    /// Where each source partition resumes: the position after the largest high-water
    /// mark. Partitions never seen are absent (start from the consumer's reset policy).
    package func resumePositions() throws -> [SourcePartition: Int64] {
        var marks = try catalog.highWater()
        for (key, value) in try deadLetters.highWater() { marks[key] = max(marks[key] ?? value, value) }
        return marks.mapValues { $0 + 1 }
    }

    package struct ShardInfo: Sendable {
        package let id: ShardID
        package let state: String
        package let path: String
        package let rowCount: Int64
        package let minTimeMs: Int64?
        package let maxTimeMs: Int64?
        package let bytesOnDisk: Int64
    }

    package func shards() throws -> [ShardInfo] {
        try catalog.shards().map {
            ShardInfo(id: $0.id, state: $0.state, path: $0.path, rowCount: $0.rowCount, minTimeMs: $0.minTimeMs,
                      maxTimeMs: $0.maxTimeMs, bytesOnDisk: $0.bytesOnDisk)
        }
    }

    /// Every flow of one shard, in the order stored; sealed shards are read in place.
    package func forEachFlow(in id: ShardID, _ body: (Flow) throws -> Void) throws {
        if let shard = active[id.windowStartMs], shard.id == id {
            try shard.forEachFlow(body)
            return
        }
        try reader(for: id).forEachFlow(body)
    }

    /// The file holding a shard now: the sealed one when it exists, else the active one.
    private func currentPath(of id: ShardID) -> (path: String, sealed: Bool) { Self.currentPath(of: id, in: directory) }

    /// The same for any data directory: scan workers call it without the store, at the
    /// moment they open the shard, so a shard sealed after the listing is read sealed.
    static func currentPath(of id: ShardID, in directory: URL) -> (path: String, sealed: Bool) {
        let sealed = directory.appendingPathComponent(id.sealedRelativePath).path
        if FileManager.default.fileExists(atPath: sealed) { return (sealed, true) }
        return (directory.appendingPathComponent(id.activeRelativePath).path, false)
    }

    /// The file that holds a shard now: the sealed `.sqlite.zst` once it is sealed.
    package func filePath(of id: ShardID) -> String { currentPath(of: id).path }

    /// A URI that opens a shard read-only (sealed ones through the VFS), for ATTACH.
    package func readURI(for id: ShardID) -> String {
        let (path, sealed) = currentPath(of: id)
        guard sealed else { return "file:" + path + "?mode=ro" }
        SealedShardVFS.register()
        return SealedShardVFS.uri(for: path) + "&vfs=\(SealedShardVFS.name)"
    }

    /// A read-only reader for one shard (sealed shards in place). Queries use it.
    package func reader(for id: ShardID) throws -> ShardReader {
        try ShardReader(path: currentPath(of: id).path)
    }

    /// Readable shards (not quarantined) whose stored flows may fall in [fromMs, toMs),
    /// oldest first: the catalog knows each shard's min and max `TimeFlowEndMs`.
    package func shards(overlappingFromMs fromMs: Int64?, toMs: Int64?) throws -> [ShardInfo] {
        try shards().filter { shard in
            guard shard.state != "quarantined", let minT = shard.minTimeMs, let maxT = shard.maxTimeMs else { return false }
            if let fromMs, maxT < fromMs { return false }
            if let toMs, minT >= toMs { return false }
            return true
        }
    }

    package func deadLetterCount() throws -> Int64 { try deadLetters.count() }

    package struct ReplaySummary: Sendable {
        package var examined = 0
        package var stored = 0
        package var stillInvalid = 0
    }

    /// Decodes every dead letter again (after an upgrade that accepts more variants) and
    /// stores the ones that now decode. They are stored under the source
    /// `deadletter:<original source>` at their original position, so the usual skip rule
    /// makes a repeated or interrupted replay store each flow once; the dead letters that
    /// were stored are then removed.
    @discardableResult
    package func replayDeadLetters(decoder: FlowDecoder = FlowDecoder()) throws -> ReplaySummary {
        var summary = ReplaySummary()
        var batch = IngestBatch()
        var replayed: [(source: String, partition: Int32, position: Int64)] = []
        try deadLetters.forEach { source, partition, position, _, payload in
            summary.examined += 1
            let at = SourcePosition(source: batch.sourceIndex("deadletter:" + source), partition: partition, position: position)
            do {
                try batch.appendFlow(at: at) { (flow: inout Flow) throws(FlowDecodingError) in try decoder.decode(payload, into: &flow) }
                replayed.append((source, partition, position))
            } catch {
                summary.stillInvalid += 1
            }
        }
        if batch.flowCount > 0 {
            summary.stored = try append(batch).stored
            try deadLetters.remove(replayed)
        }
        return summary
    }

    /// Dead letters in position order: source, partition, position, reason, payload.
    package func forEachDeadLetter(_ body: (String, Int32, Int64, String, [UInt8]) throws -> Void) throws {
        try deadLetters.forEach(body)
    }
}
