import Foundation

/// How far one forwarder has delivered one shard. Kept in the catalog's `deliveries`
/// table, so a restarted sync resumes at the first chunk not yet delivered, and
/// retention knows which shards it may delete.
public struct DeliveryState: Sendable, Equatable {
    public var chunksDelivered: Int64
    /// The chunk size the delivery started with (0: the shard travels whole).
    public var chunkRows: Int64
    public var complete: Bool
    public var updatedMs: Int64

    public init(chunksDelivered: Int64, chunkRows: Int64, complete: Bool, updatedMs: Int64) {
        self.chunksDelivered = chunksDelivered
        self.chunkRows = chunkRows
        self.complete = complete
        self.updatedMs = updatedMs
    }
}

extension ShardStore {
    /// Marks a shard as delivered (or partly delivered) by a forwarder. One row per
    /// (forwarder, shard): the catalog commits it before this returns.
    public func recordDelivery(forwarder: String, shard: ShardID, chunksDelivered: Int64, chunkRows: Int64 = 0,
                               complete: Bool) throws {
        try catalog.recordDelivery(.init(forwarder: forwarder, shardID: shard.description, chunksDelivered: chunksDelivered,
                                         chunkRows: chunkRows, complete: complete,
                                         updatedMs: Int64(Date().timeIntervalSince1970 * 1000)))
    }

    /// Every shard `forwarder` has started or finished delivering, by shard id.
    public func deliveries(forwarder: String) throws -> [ShardID: DeliveryState] {
        var result: [ShardID: DeliveryState] = [:]
        for row in try catalog.deliveries() where row.forwarder == forwarder {
            guard let id = ShardID(row.shardID) else { continue }
            result[id] = DeliveryState(chunksDelivered: row.chunksDelivered, chunkRows: row.chunkRows, complete: row.complete,
                                       updatedMs: row.updatedMs)
        }
        return result
    }

    /// The names of every forwarder that has delivery state in this store.
    public func forwarderNames() throws -> [String] {
        Array(Set(try catalog.deliveries().map(\.forwarder))).sorted()
    }
}
