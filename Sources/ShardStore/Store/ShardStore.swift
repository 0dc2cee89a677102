import FlowModel
package import Foundation
package import Logging
import StorageKit

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
        /// zstd level used when sealing (`defaultSealLevel` unless set).
        package var sealLevel: Int32 = defaultSealLevel
        /// 6: on one hour of the medium cluster, 9% smaller than level 3 for 0.4 µs more
        /// CPU per flow, which pays for the traffic series the seal now adds (about 3 bytes
        /// per flow) and keeps hourly shards under 30 bytes per flow (bench/NOTES.md,
        /// "Topology"); compaction goes higher when the topics are quiet.
        package static let defaultSealLevel: Int32 = 6
        /// Uncompressed bytes per zstd frame of a sealed shard (the unit a reader decompresses).
        package var frameSize: Int = 1 << 20
        /// Seal windows as they close, on a background thread, while writing goes on.
        package var sealInBackground = false
        /// Each batch is written as a run sorted in the seal order (`SealRun`), which makes
        /// the seal's copy read sequentially. False only for the seal benchmark's
        /// baseline (rows in arrival order).
        package var writesSortedRuns = true
        /// Told about every finished seal (on the sealing thread), for metrics.
        package var sealObserver: (@Sendable (SealSummary) -> Void)?
        /// Told about every failed background seal (which is retried), for metrics and probes.
        package var sealFailureObserver: (@Sendable (ShardStoreError) -> Void)?

        package init(windowMs: Int64 = 3_600_000, graceMs: Int64 = 120_000, sealLevel: Int32 = defaultSealLevel, frameSize: Int = 1 << 20,
                    sealInBackground: Bool = false) {
            self.sealInBackground = sealInBackground
            self.windowMs = windowMs
            self.graceMs = graceMs
            self.sealLevel = sealLevel
            self.frameSize = frameSize
        }

        package func validate() throws(ShardStoreError) {
            guard (60_000...86_400_000).contains(windowMs), 86_400_000 % windowMs == 0 else {
                throw ShardStoreError(.invalidOptions, "the shard window must be between 1m and 1d and divide a day evenly (e.g. 1m, 5m, 15m, 1h, 6h, 1d); got \(windowMs) ms")
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
    let deadLetters: DeadLetterStore
    /// Where each source partition resumes, beyond what the shards themselves record.
    var checkpoint: ResumeCheckpoint { deadLetters.checkpoint }
    /// Lifecycle events: shards reopened or skipped at start-up, retention's deletions.
    package let logger: Logger
    var active: [Int64: ActiveShard] = [:]
    /// Per window: the highest position absorbed per source partition over all parts.
    var windowLast: [Int64: [SourcePartition: Int64]] = [:]
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
    var partitionClocks: [SourcePartition: (newestMs: Int64, lastSeen: Date)] = [:]
    /// Before any flow arrives in this process: the newest time found in the shards.
    var restoredWatermarkMs: Int64 = .min
    /// Wall-clock seconds after which a silent partition no longer holds back sealing.
    package var idlePartitionSeconds: Double = 120
    /// Lower parts of a window found active at start-up behind a newer part: superseded,
    /// they are sealed at the next opportunity.
    var supersededShards: [ActiveShard] = []
    lazy var backgroundSealer = BackgroundSealer(
        sealer: ShardSealer(level: options.sealLevel, frameSize: options.frameSize, rollupsPath: rollupsPath),
        catalogPath: directory.appendingPathComponent("catalog.sqlite").path, observer: options.sealObserver,
        failureObserver: options.sealFailureObserver, logger: logger)

    /// Opened by `openForReading`: no shard is opened for writing, and nothing is written.
    package let isReadOnly: Bool
    /// Held by a writer for its life: another process cannot write the same directory.
    private let writerLock: DataDirectoryLock?

    package convenience init(directory: String, options: Options = Options(),
                             logger: Logger = Logger(label: "flowrec.store")) throws {
        try self.init(directory: directory, options: options, readOnly: false, logger: logger)
    }

    init(directory: String, options: Options, readOnly: Bool, logger: Logger) throws {
        isReadOnly = readOnly
        self.logger = logger
        try options.validate()
        self.directory = URL(fileURLWithPath: directory)
        self.options = options
        do {
            try FileManager.default.createDirectory(at: self.directory.appendingPathComponent("shards"),
                                                    withIntermediateDirectories: true)
        } catch {
            throw ShardStoreError(.notADataDirectory, "cannot create the data directory \(directory): \(error.localizedDescription)",
                                  cause: error)
        }
        writerLock = readOnly ? nil : try DataDirectoryLock(directory: directory)
        catalog = try Catalog(path: self.directory.appendingPathComponent("catalog.sqlite").path, readOnly: readOnly)
        deadLetters = try DeadLetterStore(path: self.directory.appendingPathComponent(DeadLetterStore.fileName).path, writable: !readOnly)
        if !readOnly {
            try recoverMerges()
            try reopenActiveShards()
            try catalog.recordWindowMs(options.windowMs)
        }
    }

    /// Waits for the background seals queued so far; the sealer keeps running. Throws
    /// the first seal that failed (the caller reports it, as `close` would).
    package func waitForBackgroundSeals() throws {
        guard options.sealInBackground else { return }
        let (_, failures) = backgroundSealer.drain()
        if let first = failures.first { throw first }
    }

    /// Waits for background seals to finish. Call before exiting.
    package func close() throws {
        guard options.sealInBackground else { return }
        let (_, failures) = backgroundSealer.drain()
        backgroundSealer.stop()
        if let first = failures.first { throw first }
    }
}

