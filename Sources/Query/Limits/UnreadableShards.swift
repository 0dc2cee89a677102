package import Logging
import Synchronization
package import ShardStore
import StorageKit

/// Shards a query could not read, and skipped.
///
/// A damaged shard file (a bad sector, a truncated copy, bytes changed under a sealed
/// shard) is not the query's fault: blaming the SQL or refusing the whole range would
/// leave an investigation with nothing until someone runs `flowrec fsck`. Instead the
/// readers skip the shard, and the answer carries a warning that names it, says why and
/// says what to do; every other shard of the range still answers. Only damage is
/// skipped: a query stopped by its deadline, a refused function or a full disk still
/// fails the query.
package final class UnreadableShards: Sendable {
    package struct Skipped: Sendable, Equatable, CustomStringConvertible {
        package let shard: ShardID
        package let reason: String

        package var description: String {
            "shard \(shard) could not be read and was skipped (\(reason)); the answer lacks its flows. Run `flowrec fsck` to check it and quarantine it"
        }
    }

    private let skipped = Mutex<[Skipped]>([])

    package init() {}

    /// The shards skipped so far, in the order they were met, each once.
    package var all: [Skipped] { skipped.withLock { $0 } }

    /// Records `shard` as skipped and returns true when `error` says its file is
    /// damaged; false (the caller rethrows) for any other failure.
    package func skip(_ shard: ShardID, after error: any Error) -> Bool {
        guard let reason = Self.damage(in: error) else { return false }
        skipped.withLock { list in
            if !list.contains(where: { $0.shard == shard }) { list.append(Skipped(shard: shard, reason: reason)) }
        }
        return true
    }

    /// One warning per skipped shard, on `logger` (standard error for the commands).
    package func warn(_ logger: Logger) {
        for item in all {
            logger.warning("\(item.description)", metadata: ["shard": "\(item.shard)", "reason": "\(item.reason)"])
        }
    }

    /// Takes over what `other` skipped.
    package func absorb(_ other: UnreadableShards) {
        for item in other.all {
            skipped.withLock { list in if !list.contains(where: { $0.shard == item.shard }) { list.append(item) } }
        }
    }

    /// The damage `error` reports, or nil when it is something else.
    static func damage(in error: any Error) -> String? {
        if let store = error as? ShardStoreError {
            guard store.kind == .unreadableShard else { return nil }
            return store.cause.map { "\($0)" } ?? store.message
        }
        if let sqlite = error as? SQLiteError {
            switch sqlite.kind {
            case .corrupt, .io, .cannotOpen: return sqlite.message
            default: return nil
            }
        }
        return nil
    }
}
