import FlowModel
import FlowrecTesting
import Forwarders
import Foundation
import ShardStore

/// The sums a replicated table must agree with, computed from the store's sealed shards
/// or from a ClickHouse table.
struct ReplicationTotals: Equatable, CustomStringConvertible {
    var rows: Int64 = 0
    var bytes: Int64 = 0
    var packets: Int64 = 0
    var bytesBySourceNamespace: [String: Int64] = [:]
    var rowsByShard: [String: Int64] = [:]

    var description: String { "rows \(rows), bytes \(bytes), packets \(packets), \(bytesBySourceNamespace.count) namespaces" }

    static let bytes = FlowSchema.id(of: "Bytes")
    static let packets = FlowSchema.id(of: "Packets")
    static let namespace = FlowSchema.id(of: "SrcK8S_Namespace")

    /// Over every sealed shard of `store`.
    init(sealedShardsOf store: ShardStore) throws {
        for shard in try store.shards() where shard.state == .sealed {
            try store.forEachFlow(in: shard.id) { flow in
                rows += 1
                bytes += flow.integer(Self.bytes) ?? 0
                packets += flow.integer(Self.packets) ?? 0
                bytesBySourceNamespace[flow.string(Self.namespace) ?? "", default: 0] += flow.integer(Self.bytes) ?? 0
                rowsByShard[shard.id.description, default: 0] += 1
            }
        }
    }

    /// Over `database.table` on the server.
    init(table: String, on server: ClickHouseTestServer) throws {
        let sums = try server.query("SELECT count(), sum(Bytes), sum(Packets) FROM \(table) FORMAT TabSeparated")
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\t").map { Int64($0) ?? -1 }
        rows = sums[0]
        bytes = sums[1]
        packets = sums[2]
        for line in try server.query("SELECT SrcK8S_Namespace, sum(Bytes) FROM \(table) GROUP BY SrcK8S_Namespace FORMAT TabSeparated")
            .split(separator: "\n") {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            bytesBySourceNamespace[String(parts[0])] = Int64(parts[1]) ?? -1
        }
        for line in try server.query("SELECT _shard, count() FROM \(table) GROUP BY _shard FORMAT TabSeparated").split(separator: "\n") {
            let parts = line.split(separator: "\t")
            rowsByShard[String(parts[0])] = Int64(parts[1]) ?? -1
        }
    }

    /// Why `replica` is not `self` with at most one chunk stored twice (what a crash on a
    /// server without deduplication tokens may leave), or nil when it is. `chunkRows`
    /// is the chunk size: the repeated chunk holds that many rows, or the remainder
    /// when it was a shard's last.
    func duplicationProblem(in replica: ReplicationTotals, chunkRows: Int64) -> String? {
        var repeated: [(String, Int64)] = []
        for (shard, rows) in rowsByShard {
            let copies = replica.rowsByShard[shard] ?? 0
            if copies < rows { return "shard \(shard): \(rows - copies) rows missing" }
            if copies > rows { repeated.append((shard, copies - rows)) }
        }
        if let unknown = Set(replica.rowsByShard.keys).subtracting(rowsByShard.keys).first { return "rows from unknown shard \(unknown)" }
        guard repeated.count <= 1 else { return "more than one chunk repeated: \(repeated)" }
        if let (shard, extra) = repeated.first {
            let rows = rowsByShard[shard] ?? 0
            let lastChunk = rows % chunkRows == 0 ? chunkRows : rows % chunkRows
            guard extra == chunkRows || extra == lastChunk else {
                return "shard \(shard) has \(extra) extra rows, which is not one chunk (\(chunkRows) or \(lastChunk))"
            }
        }
        return nil
    }
}

extension ClickHouseTestServer {
    /// Forwarder options for this server, quick to give up in tests.
    func forwarderOptions(database: String, format: ClickHouseBlockEncoder.Format = .native,
                          chunkRows: Int64 = 5_000) -> ClickHouseForwarderOptions {
        var options = ClickHouseForwarderOptions(endpoint: ClickHouseEndpoint(url: endpoint, user: user, password: password))
        options.database = database
        options.format = format
        options.chunkRows = chunkRows
        options.createTable = true
        options.retry = RetryPolicy(maxAttempts: 3, initialDelaySeconds: 0.1, maxDelaySeconds: 0.5)
        return options
    }

    /// A database name no other test uses; dropped by `dropDatabase`.
    static func uniqueDatabase(_ prefix: String) -> String { "\(prefix)_\(UInt32.random(in: 0...UInt32.max))" }
}
