package import FlowModel
package import Foundation
import StorageKit

/// Finding shards and reading them: the catalog's records, the file that holds a shard
/// now (sealed once it is sealed), a reader for one shard. Multi-shard queries are the
/// Query layer's.
extension ShardStore {
    /// Every shard the catalog knows, oldest window first.
    package func shards() throws -> [ShardRecord] { try catalog.shards() }

    /// The skip summaries of the sealed shards that have them (from the catalog): what a
    /// planner rules shards out with before opening any.
    package func skipSummaries(fields: [FieldID]? = nil, shards: [ShardID]? = nil) throws -> [ShardID: [SkipSummary]] {
        try catalog.summaries(fields: fields, shards: shards)
    }

    /// The shards a merged shard replaced (empty for any other shard): their ids are what
    /// rollups and deliveries recorded the flows under.
    package func mergedSources(of id: ShardID) throws -> [ShardID] { try catalog.sources(of: id) }

    /// Every flow of one shard, in the order stored; sealed shards are read in place.
    package func forEachFlow(in id: ShardID, _ body: (Flow) throws -> Void) throws {
        if let shard = active[id.windowStartMs], shard.id == id {
            try shard.forEachFlow(body)
            return
        }
        try reader(for: id).forEachFlow(body)
    }

    /// The file holding a shard now: the sealed one when it exists, else the active one.
    func currentPath(of id: ShardID) -> (path: String, sealed: Bool) { Self.currentPath(of: id, in: directory) }

    /// The same for any data directory: scan workers call it without the store, at the
    /// moment they open the shard, so a shard sealed after the listing is read sealed.
    package static func currentPath(of id: ShardID, in directory: URL) -> (path: String, sealed: Bool) {
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
        SeekableZstdVFS.register()
        return SeekableZstdVFS.uri(for: path) + "&vfs=\(SeekableZstdVFS.name)"
    }

    /// A read-only reader for one shard (sealed shards in place). Queries use it.
    package func reader(for id: ShardID) throws -> ShardReader {
        try ShardReader(path: currentPath(of: id).path)
    }

    /// Readable shards (not quarantined) whose stored flows may fall in [fromMs, toMs),
    /// oldest first: the catalog knows each shard's min and max `TimeFlowEndMs`.
    package func shards(overlappingFromMs fromMs: Int64?, toMs: Int64?) throws -> [ShardRecord] {
        try shards().filter { shard in
            guard shard.state != .quarantined, let minT = shard.minTimeMs, let maxT = shard.maxTimeMs else { return false }
            if let fromMs, maxT < fromMs { return false }
            if let toMs, minT >= toMs { return false }
            return true
        }
    }
}
