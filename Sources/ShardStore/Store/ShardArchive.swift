import Foundation
package import Logging
import StorageKit
import Synchronization

/// A directory of sealed shards without a catalog: what `flowrec sync directory` (the
/// directory forwarder) and `flowrec export --format shards` write, the store's
/// `YYYY/MM/DD/<shard>.sqlite.zst` layout with a manifest beside each file. Queries read
/// it in place, read-only: the catalog they need is built in a scratch directory from
/// the shards' own `meta` tables, and the archive is reached through a symbolic link, so
/// nothing is written into it (it may be a read-only mount). The scratch directory goes
/// when the process exits.
package struct ShardArchive {
    /// The store to query: every archived shard, listed once.
    package let store: ShardStore
    /// Shards listed, and files left out (sources whose merged shard is archived too,
    /// and files that are not readable flowrec shards, each with the reason).
    package let shards: Int
    package let skipped: [(path: String, reason: String)]

    /// Scratch directories of the archives opened, removed at exit (the links in them,
    /// never what they point to).
    private static let scratchDirectories = Mutex<[String]>([])
    private static let removeAtExit: Void = {
        atexit { ShardArchive.removeScratchDirectories() }
    }()

    static func removeScratchDirectories() {
        for path in scratchDirectories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Whether `directory` holds sealed shard files but no catalog (so it is an archive,
    /// not a data directory).
    package static func isArchive(_ directory: String) -> Bool {
        let root = URL(fileURLWithPath: directory)
        guard !FileManager.default.fileExists(atPath: root.appendingPathComponent("catalog.sqlite").path) else { return false }
        return !shardFiles(in: directory).isEmpty
    }

    /// Sealed shard files under `directory`, relative to it, sorted.
    static func shardFiles(in directory: String) -> [String] {
        (FileManager.default.enumerator(atPath: directory)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".sqlite.zst") && !$0.contains("/.") }.sorted()
    }

    package init(directory: String, logger: Logger = Logger(label: "flowrec.archive")) throws {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("flowrec-archive-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            Self.removeAtExit
            Self.scratchDirectories.withLock { $0.append(scratch.path) }
            try FileManager.default.createSymbolicLink(at: scratch.appendingPathComponent("shards"), withDestinationURL: root)
        } catch {
            throw ShardStoreError(.fileOperationFailed, "cannot prepare a catalog for the archive \(directory) under \(NSTemporaryDirectory()): \(error.localizedDescription); set TMPDIR to a writable directory", cause: error)
        }
        var listed = 0
        var skipped: [(String, String)] = []
        var opened = false
        defer { if !opened { try? FileManager.default.removeItem(at: scratch) } }
        do {
            let catalog = try Catalog(path: scratch.appendingPathComponent("catalog.sqlite").path)
            var facts: [(relative: String, facts: SealedShardFacts, reader: ShardReader)] = []
            for relative in Self.shardFiles(in: root.path) {
                do {
                    let reader = try ShardReader(path: root.appendingPathComponent(relative).path)
                    guard let shard = try SealedShardFacts(reader) else {
                        skipped.append((relative, "its meta table names no window: not a flowrec shard"))
                        continue
                    }
                    facts.append((relative, shard, reader))
                } catch {
                    skipped.append((relative, "unreadable: \(error)"))
                }
            }
            // An archive may hold a merged shard and the sources it replaced (delivered
            // before the merge): the merged one holds all their flows, so they are left out.
            let replaced = Set(facts.flatMap(\.facts.mergedFrom))
            for (relative, shard, reader) in facts {
                if replaced.contains(shard.id) {
                    skipped.append((relative, "its flows are in a merged shard of the archive"))
                    continue
                }
                try shard.record(in: catalog, relativePath: "shards/" + relative,
                                 bytes: fileSize(root.appendingPathComponent(relative).path), reader: reader)
                listed += 1
            }
            store = try ShardStore.openForReading(directory: scratch.path, logger: logger)
            opened = true
        }
        shards = listed
        self.skipped = skipped
    }
}
