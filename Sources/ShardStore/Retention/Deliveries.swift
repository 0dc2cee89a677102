package import Foundation

/// How far one forwarder has delivered one shard. Kept in the catalog's `deliveries`
/// table, so a restarted sync resumes at the first chunk not yet delivered, and
/// retention knows which shards it may delete.
package struct DeliveryState: Sendable, Equatable {
    package var chunksDelivered: Int64
    /// The chunk size the delivery started with (0: the shard travels whole).
    package var chunkRows: Int64
    package var complete: Bool
    package var updatedMs: Int64

    package init(chunksDelivered: Int64, chunkRows: Int64, complete: Bool, updatedMs: Int64) {
        self.chunksDelivered = chunksDelivered
        self.chunkRows = chunkRows
        self.complete = complete
        self.updatedMs = updatedMs
    }
}

extension ShardStore {
    /// Marks a shard as delivered (or partly delivered) by a forwarder. One row per
    /// (forwarder, shard): the catalog commits it before this returns.
    package func recordDelivery(forwarder: String, shard: ShardID, chunksDelivered: Int64, chunkRows: Int64 = 0,
                               complete: Bool) throws {
        try DeliveryLedger.record(in: catalog, forwarder: forwarder, shard: shard, chunksDelivered: chunksDelivered,
                                  chunkRows: chunkRows, complete: complete)
    }

    /// Every shard `forwarder` has started or finished delivering, by shard id.
    package func deliveries(forwarder: String) throws -> [ShardID: DeliveryState] {
        try DeliveryLedger.deliveries(in: catalog, forwarder: forwarder)
    }

    /// The names of every forwarder that has delivery state in this store.
    package func forwarderNames() throws -> [String] {
        Array(Set(try catalog.deliveries().map(\.forwarder))).sorted()
    }
}

/// The catalog alone, for replication: which shards are sealed, where their files are,
/// and what each forwarder has delivered. Opens no shard, so `flowrec sync` and the
/// recorder's forwarding thread can use it beside a running writer.
package final class DeliveryLedger {
    package let directory: URL
    private let catalog: Catalog
    /// Delivery state is written: one process at a time per data directory.
    private let writerLock: DataDirectoryLock

    package init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory)
        let path = self.directory.appendingPathComponent("catalog.sqlite").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw ShardStoreError(.notADataDirectory, "\(directory) is not a flowrec data directory (no catalog.sqlite)")
        }
        writerLock = try DataDirectoryLock(directory: directory)
        catalog = try Catalog(path: path)
    }

    /// Sealed shards whose flows may fall in [fromMs, toMs), oldest window first.
    package func sealedShards(overlappingFromMs fromMs: Int64? = nil, toMs: Int64? = nil) throws -> [ShardRecord] {
        try catalog.shards().filter { $0.state == .sealed && $0.overlaps(fromMs: fromMs, toMs: toMs) }
    }

    /// Active shards whose flows may fall in [fromMs, toMs): what a sync leaves for later.
    package func activeShards(overlappingFromMs fromMs: Int64? = nil, toMs: Int64? = nil) throws -> [ShardRecord] {
        try catalog.shards().filter { $0.state == .active && $0.overlaps(fromMs: fromMs, toMs: toMs) }
    }

    /// The sealed file of a shard.
    package func sealedPath(of id: ShardID) -> String { directory.appendingPathComponent(id.sealedRelativePath).path }

    package func deliveries(forwarder: String) throws -> [ShardID: DeliveryState] {
        try Self.deliveries(in: catalog, forwarder: forwarder)
    }

    package func recordDelivery(forwarder: String, shard: ShardID, chunksDelivered: Int64, chunkRows: Int64 = 0,
                               complete: Bool) throws {
        try Self.record(in: catalog, forwarder: forwarder, shard: shard, chunksDelivered: chunksDelivered,
                        chunkRows: chunkRows, complete: complete)
    }

    static func deliveries(in catalog: Catalog, forwarder: String) throws -> [ShardID: DeliveryState] {
        var result: [ShardID: DeliveryState] = [:]
        for row in try catalog.deliveries() where row.forwarder == forwarder {
            guard let id = ShardID(row.shardID) else { continue }
            result[id] = DeliveryState(chunksDelivered: row.chunksDelivered, chunkRows: row.chunkRows, complete: row.complete,
                                       updatedMs: row.updatedMs)
        }
        return result
    }

    static func record(in catalog: Catalog, forwarder: String, shard: ShardID, chunksDelivered: Int64, chunkRows: Int64,
                       complete: Bool) throws {
        try catalog.recordDelivery(.init(forwarder: forwarder, shardID: shard.description, chunksDelivered: chunksDelivered,
                                         chunkRows: chunkRows, complete: complete,
                                         updatedMs: Int64(Date().timeIntervalSince1970 * 1000)))
    }
}
