/// Where a shard is in its life. Stored in the catalog's `shards.state` as the raw value.
package enum ShardState: String, Sendable, CaseIterable {
    /// Being written: a plain SQLite file in WAL mode (`.sqlite`).
    case active
    /// Compacted, compressed, verified and renamed (`.sqlite.zst`); never changes again.
    case sealed
    /// Failed `flowrec fsck`'s checks and was moved under `quarantine/`; never read.
    case quarantined
}

/// What the catalog knows about one shard: enough to plan a query, a seal or a deletion
/// without opening the shard. The one record type for shards, from the catalog up to
/// the commands that list them.
package struct ShardRecord: Sendable, Equatable {
    package let id: ShardID
    package let state: ShardState
    /// Relative to the data directory (`shards/2026/01/01/...sqlite.zst`).
    package let path: String
    package let rowCount: Int64
    /// Smallest and largest `TimeFlowEndMs` stored; nil for an empty shard.
    package let minTimeMs: Int64?
    package let maxTimeMs: Int64?
    package let bytesOnDisk: Int64

    package init(id: ShardID, state: ShardState, path: String, rowCount: Int64, minTimeMs: Int64?, maxTimeMs: Int64?,
                 bytesOnDisk: Int64) {
        self.id = id
        self.state = state
        self.path = path
        self.rowCount = rowCount
        self.minTimeMs = minTimeMs
        self.maxTimeMs = maxTimeMs
        self.bytesOnDisk = bytesOnDisk
    }

    /// Whether its flows may fall in [fromMs, toMs) (nil: unbounded).
    package func overlaps(fromMs: Int64?, toMs: Int64?) -> Bool {
        guard let minT = minTimeMs, let maxT = maxTimeMs else { return false }
        if let fromMs, maxT < fromMs { return false }
        if let toMs, minT >= toMs { return false }
        return true
    }
}
