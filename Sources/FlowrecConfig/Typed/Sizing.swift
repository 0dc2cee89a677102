import Foundation
package import ShardStore

/// What a recorder needs, at the worst moment, for a flow rate and its settings: disk,
/// memory, and how long a seal takes (what `terminationGracePeriodSeconds` must cover).
///
/// The per-flow figures are measured by `scripts/bench` on the generated medium cluster
/// (bench/RESULTS.md) and rounded against the recorder: a sizing that fits here fits the
/// figures measured, with room. `flowrec config sizing` prints this model for any rate;
/// docs/operations.md's table is its output, and a test checks that the manifests under
/// deploy/ fit their own volume, memory limit and grace period at the rate they state.
package struct Sizing: Sendable {
    /// The figures the model is made of, each with where it was measured.
    package enum Measured {
        /// Sealed shards, level 3 (Sealing table: 27.1 for an hour of 2.5M flows);
        /// granule-aligned frames and smaller windows cost a little more.
        package static let sealedBytesPerFlow = 32.0
        /// An active shard on disk (Ingest table: 186).
        package static let activeBytesPerFlow = 190.0
        /// The uncompressed compact copy a seal or a merge writes before compressing
        /// (Sealing table: "active shard ... compact copy uncompressed", 174.9).
        package static let copyBytesPerFlow = 175.0
        /// Sort keys the sealer holds per flow of the window it seals (docs/operations.md).
        package static let sealerBytesPerFlow = 24.0
        /// Seal speed on one core (Sealing: 121,699 flows/s), rounded down.
        package static let sealFlowsPerCoreSecond = 100_000.0
        /// A rollup row on disk, any tier (Rollups: 100 bytes per row).
        package static let rollupRowBytes = 100.0
        /// Distinct rollup groups per minute of the medium cluster (Rollups: 11,088);
        /// an hour holds about twice a minute's, a day four times (the sample's ratio,
        /// rounded up: a real day has more distinct groups than a short sample).
        package static let mediumClusterGroupsPerMinute = 11_088.0
        package static let hourGroupsPerMinuteGroup = 2.0
        package static let dayGroupsPerMinuteGroup = 4.0
        /// The recorder's own memory apart from what is modelled below: binary, runtime,
        /// HTTP server, allocator arenas (the Kafka benchmark's anonymous peak, 281 MiB,
        /// less its queue, batch, sealer and page caches, rounded up).
        package static let baseResidentBytes = 128.0 * 1_048_576
        /// SQLite's page cache per open window (`ShardStore` sets 16 MiB).
        package static let pageCachePerWindow = 16.0 * 1_048_576
        /// Decoded batch in memory per message (the raw JSON and the decoded flow).
        package static let batchBytesPerMessage = 2_048.0
        /// One API query's working memory (frames decompressed, SQLite sorter).
        package static let queryBytes = 64.0 * 1_048_576
        /// A merge's dictionary of distinct strings and its batch of rows.
        package static let mergeBytes = 64.0 * 1_048_576
        /// Catalog, dead letters, WAL files and headroom for the odd large file.
        package static let otherDiskBytes = 1_073_741_824.0
        /// Day rollups kept "forever" are counted for this long.
        package static let keptForeverDays = 400.0
    }

    /// One line of the estimate: what, and how many bytes.
    package struct Item: Sendable {
        package let what: String
        package let bytes: Double
    }

    package let flowsPerSecond: Double
    package let disk: [Item]
    package let memory: [Item]
    /// Seconds one window's seal takes with `cpuCores` to itself.
    package let sealSeconds: Double

    package var diskBytes: Double { disk.reduce(0) { $0 + $1.bytes } }
    package var memoryBytes: Double { memory.reduce(0) { $0 + $1.bytes } }
    /// What `terminationGracePeriodSeconds` should be at least: a running seal finishes
    /// on SIGTERM (twice its time, for a busy node) plus a batch and the listener's close.
    package var gracePeriodSeconds: Double { 2 * sealSeconds + 30 }

    /// - Parameters:
    ///   - groupsPerMinute: distinct rollup groups per minute (namespace and owner pairs,
    ///     protocols, ...); the medium cluster's by default.
    ///   - cpuCores: what a seal can count on (the pod's CPU request).
    package init(flowsPerSecond rate: Double, store: ShardStore.Options, retention: RetentionPolicy, merge: MergePolicy?,
                 batchMessages: Int, kafkaQueueBytes: Double, apiConcurrentQueries: Int,
                 groupsPerMinute: Double = Measured.mediumClusterGroupsPerMinute, cpuCores: Double = 1) {
        flowsPerSecond = rate
        let day = 86_400.0
        let windowFlows = rate * Double(store.windowMs) / 1000
        let graceFlows = rate * Double(store.graceMs) / 1000
        var disk: [Item] = []
        if let maxAgeMs = retention.maxAgeMs {
            // A window is deleted once it ended maxAge ago: up to maxAge plus a window.
            let flows = rate * (Double(maxAgeMs) / 1000) + windowFlows
            disk.append(Item(what: "sealed shards (\(Self.days(maxAgeMs)) of flows, retention.maxAge)", bytes: flows * Measured.sealedBytesPerFlow))
        }
        disk.append(Item(what: "active shards (the open window and the one waiting for its grace)",
                         bytes: (2 * windowFlows + graceFlows) * Measured.activeBytesPerFlow))
        disk.append(Item(what: "a seal's uncompressed copy of one window", bytes: windowFlows * Measured.copyBytesPerFlow))
        if let merge {
            let merged = min(Double(merge.maxRows), rate * Double(merge.windowMs) / 1000)
            disk.append(Item(what: "a merge's uncompressed copy and its output beside the sources",
                             bytes: merged * (Measured.copyBytesPerFlow + Measured.sealedBytesPerFlow)))
        }
        let perTier: [(name: String, groups: Double, buckets: Double, ageMs: Int64?)] = [
            ("minute", 1, 1440, retention.rollupMaxAge.minuteMs),
            ("hour", Measured.hourGroupsPerMinuteGroup, 24, retention.rollupMaxAge.hourMs),
            ("day", Measured.dayGroupsPerMinuteGroup, 1, retention.rollupMaxAge.dayMs),
        ]
        for tier in perTier {
            let days = tier.ageMs.map { Double($0) / 1000 / day } ?? Measured.keptForeverDays
            let rows = groupsPerMinute * tier.groups * tier.buckets * days
            let label = tier.ageMs.map { Self.days($0) } ?? "kept, counted for \(Int(Measured.keptForeverDays))d"
            disk.append(Item(what: "\(tier.name) rollups (\(label))", bytes: rows * Measured.rollupRowBytes))
        }
        disk.append(Item(what: "catalog, dead letters, WAL files", bytes: Measured.otherDiskBytes))
        self.disk = disk

        var memory = [
            Item(what: "flowrec itself (runtime, HTTP server, allocator)", bytes: Measured.baseResidentBytes),
            Item(what: "librdkafka's prefetch queue (queued.max.messages.kbytes)", bytes: kafkaQueueBytes),
            Item(what: "a batch of \(batchMessages) messages, raw and decoded", bytes: Double(batchMessages) * Measured.batchBytesPerMessage),
            Item(what: "the sealer's sort keys for one window", bytes: windowFlows * Measured.sealerBytesPerFlow),
            Item(what: "SQLite page caches of two open windows", bytes: 2 * Measured.pageCachePerWindow),
            Item(what: "\(apiConcurrentQueries) API queries at once (http.apiMaxConcurrent)", bytes: Double(apiConcurrentQueries) * Measured.queryBytes),
        ]
        if merge != nil { memory.append(Item(what: "a merge's dictionary and batch", bytes: Measured.mergeBytes)) }
        self.memory = memory
        sealSeconds = windowFlows / (Measured.sealFlowsPerCoreSecond * max(0.1, cpuCores))
    }

    /// What `retention.minFree` leaves of a volume: the most the estimate may take.
    package static func usableBytes(volume: Double, retention: RetentionPolicy) -> Double {
        volume * (1 - (retention.minFreeFraction ?? 0)) - Double(retention.minFreeBytes ?? 0)
    }

    private static func days(_ ms: Int64) -> String {
        let days = Double(ms) / 86_400_000
        return days == days.rounded() ? "\(Int(days))d" : String(format: "%.1fd", days)
    }
}

extension Sizing {
    /// The estimate for `flowrec record` with settings `s` (a config file, flags, the
    /// environment): its window, retention, merging, batch, prefetch queue and API limits.
    package init(flowsPerSecond rate: Double, settings s: ResolvedSettings, groupsPerMinute: Double = Measured.mediumClusterGroupsPerMinute,
                 cpuCores: Double = 1) throws(SettingsError) {
        let store = ShardStore.Options(windowMs: s.milliseconds("store.window"), graceMs: s.milliseconds("store.grace"))
        let level = Int32(s.count("store.compactLevel"))
        let merge = try MergePolicy(settings: s, storeWindowMs: store.windowMs, level: level == 0 ? store.sealLevel : level)
        // librdkafka's default queued.max.messages.kbytes is 65536.
        let queueKiB = s.map("kafka.properties")["queued.max.messages.kbytes"].flatMap { Double($0) } ?? 65_536
        self.init(flowsPerSecond: rate, store: store, retention: try RetentionPolicy(settings: s), merge: merge,
                  batchMessages: Int(s.count("kafka.batchSize")), kafkaQueueBytes: queueKiB * 1024,
                  apiConcurrentQueries: Int(s.count("http.apiMaxConcurrent")), groupsPerMinute: groupsPerMinute, cpuCores: cpuCores)
    }
}
