package import ShardStore

/// A sealed shard handed to a forwarder.
package struct SealedShard: Sendable {
    package let id: ShardID
    /// The `.sqlite.zst` file; open it with `ShardReader`, or copy it as it is.
    package let path: String
    package let rowCount: Int64
    package let minTimeMs: Int64?
    package let maxTimeMs: Int64?
    package let bytesOnDisk: Int64

    package init(id: ShardID, path: String, rowCount: Int64, minTimeMs: Int64?, maxTimeMs: Int64?, bytesOnDisk: Int64 = 0) {
        self.id = id
        self.path = path
        self.rowCount = rowCount
        self.minTimeMs = minTimeMs
        self.maxTimeMs = maxTimeMs
        self.bytesOnDisk = bytesOnDisk
    }
}

/// A replication target for sealed shards.
///
/// A shard is delivered in chunks that are the same on every attempt, so progress can
/// be saved after each one (in the catalog, by `ShardReplicator`) and a restart resumes
/// at the first chunk not yet delivered. A new kind of target is one new type that
/// conforms to this protocol, plus its options in the command line.
package protocol Forwarder: Sendable {
    /// The name delivery state is kept under; two targets need two names.
    var name: String { get }

    /// Checks the target once before any shard is delivered (reachable, writable,
    /// schema as expected), so a misconfiguration stops with one clear error.
    func prepare() async throws

    /// How `shard` is cut into chunks. `resuming` is the saved progress, if any: a
    /// forwarder whose chunk size is configurable keeps the size recorded there, so
    /// changing the setting never shifts the chunks of a half-delivered shard.
    func plan(_ shard: SealedShard, resuming: DeliveryState?) throws -> DeliveryPlan

    /// Delivers chunks `first..<plan.chunkCount` of `shard` in order, calling
    /// `delivered` with the chunk number and its row count once each is durable at the
    /// target.
    func deliver(_ shard: SealedShard, plan: DeliveryPlan, fromChunk first: Int,
                 delivered: (_ chunk: Int, _ rows: Int) throws -> Void) async throws

    /// Delivers several shards' chunks in order, calling `delivered` with the index in
    /// `work`, the chunk number and its row count once each is durable at the target.
    /// `ShardReplicator` hands over every pending shard at once, so a forwarder may
    /// prepare the next shard's first chunks while the previous shard's last one is in
    /// flight (the ClickHouse forwarder does: a cold start per shard had left the server
    /// idle while the next chunk was encoded). The default delivers one shard after the
    /// other with `deliver(_:plan:fromChunk:delivered:)`.
    func deliver(_ work: [ShardDelivery], delivered: (_ item: Int, _ chunk: Int, _ rows: Int) throws -> Void) async throws

    /// Releases connections; called once, after the last delivery.
    func shutdown() async throws
}

extension Forwarder {
    package func prepare() async throws {}
    package func shutdown() async throws {}

    package func deliver(_ work: [ShardDelivery], delivered: (_ item: Int, _ chunk: Int, _ rows: Int) throws -> Void) async throws {
        for (index, item) in work.enumerated() {
            try Task.checkCancellation()
            try await deliver(item.shard, plan: item.plan, fromChunk: item.firstChunk) { chunk, rows in
                try delivered(index, chunk, rows)
            }
        }
    }
}

/// One shard's share of a delivery: its chunks `firstChunk..<plan.chunkCount`.
package struct ShardDelivery: Sendable {
    package let shard: SealedShard
    package let plan: DeliveryPlan
    package let firstChunk: Int

    package init(shard: SealedShard, plan: DeliveryPlan, firstChunk: Int) {
        self.shard = shard
        self.plan = plan
        self.firstChunk = firstChunk
    }
}

/// How one shard is cut into chunks, saved with the progress.
package struct DeliveryPlan: Sendable, Equatable {
    package let chunkCount: Int
    /// Rows per chunk (0 when the shard travels whole, as a file).
    package let chunkRows: Int64

    package init(chunkCount: Int, chunkRows: Int64) {
        self.chunkCount = chunkCount
        self.chunkRows = chunkRows
    }

    /// A shard that travels in one piece.
    package static let whole = DeliveryPlan(chunkCount: 1, chunkRows: 0)
}

/// Why a delivery failed, with what to do about it.
package struct ForwarderError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable {
        /// The target refused the data or the request (HTTP 4xx, a schema mismatch, a
        /// failing command): retrying the same thing will not help.
        case rejected
        /// The target could not be reached or failed (network, HTTP 5xx, timeout, disk
        /// full) after every retry.
        case unavailable
        /// The forwarder's own configuration is wrong.
        case configuration
    }

    package let kind: Kind
    package let message: String

    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    package var description: String { message }
}
