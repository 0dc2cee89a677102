import Foundation

/// What a sealed shard file says about itself in its `meta` table: its window and part,
/// its rows and time range, its checksum, the source positions it holds, and, for a
/// merged shard, the shards it replaced. Enough to list it in a catalog without reading
/// its rows (`flowrec fsck` reads them all; adopting a file and opening an archive do
/// not need to).
struct SealedShardFacts {
    let id: ShardID
    let rows: Int64
    let minTimeMs: Int64?
    let maxTimeMs: Int64?
    let checksum: String?
    let positions: [SourcePartition: PositionRange]
    let mergedFrom: [ShardID]

    /// nil when the file's `meta` has no window (not a flowrec shard).
    init?(_ reader: ShardReader) throws {
        guard let id = try Self.id(of: reader) else { return nil }
        self.id = id
        rows = try reader.meta("row_count").flatMap { Int64($0) } ?? 0
        minTimeMs = try reader.meta("min_time_ms").flatMap { Int64($0) }
        maxTimeMs = try reader.meta("max_time_ms").flatMap { Int64($0) }
        checksum = try reader.meta("content_checksum")
        positions = try reader.positions()
        mergedFrom = try Self.mergedFrom(of: reader)
    }

    /// The shard's window and part as its `meta` records them (any shard, active or
    /// sealed); nil for a file that is not a flowrec shard.
    static func id(of reader: ShardReader) throws -> ShardID? {
        guard let start = try reader.meta("window_start_ms").flatMap({ Int64($0) }),
              let end = try reader.meta("window_end_ms").flatMap({ Int64($0) }),
              let part = try reader.meta("part").flatMap({ Int($0) }) else { return nil }
        return ShardID(windowStartMs: start, windowEndMs: end, part: part)
    }

    /// For a merged shard, the shards it replaced; empty for any other.
    static func mergedFrom(of reader: ShardReader) throws -> [ShardID] {
        try reader.meta("merged_from")?.split(separator: ",").compactMap { ShardID(String($0)) } ?? []
    }

    /// Lists the shard in `catalog` as sealed at `relativePath`, with its skip summaries
    /// (stored, or computed from its rows for a shard sealed before flowrec had them).
    func record(in catalog: Catalog, relativePath: String, bytes: Int64, reader: ShardReader) throws {
        try catalog.recordScanned(id: id, state: .sealed, relativePath: relativePath, rows: rows, minTimeMs: minTimeMs,
                                  maxTimeMs: maxTimeMs, bytes: bytes, checksum: checksum, positions: positions)
        try catalog.replaceSummaries(try reader.skipSummaries() ?? reader.computeSkipSummaries(), of: id)
    }
}
