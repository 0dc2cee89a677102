package import ShardStore
import StorageKit

/// A query failure: its kind (the API maps kinds to HTTP statuses, the CLI to exit
/// codes), a message that says which part of the query to change, and the failure
/// beneath it.
package struct QueryError: Error, ErrorWithCause, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// Not valid SQL over the `flows` table (syntax, an unknown column, a type error).
        case invalidStatement
        /// A field name that is not one of NetObserv's.
        case unknownField
        /// A range, step, limit or other argument out of bounds.
        case invalidArgument
        /// A statement that would write, or a function that is not allowed.
        case notAllowed
        /// Stopped by its deadline or resource bounds (see `QueryLimits`).
        case cancelled
        /// A shard could not be read; `shard` names it.
        case unreadableShard
        /// The output could not be written (an export's file exists, the disk is full).
        case outputFailed
        /// The store failed in another way; `cause` says how.
        case store
    }

    package let kind: Kind
    package let message: String
    package let shard: ShardID?
    private let underlying: (any Error)?

    package init(_ kind: Kind, _ message: String, shard: ShardID? = nil, cause: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        self.shard = shard
        self.underlying = cause
    }

    package var cause: (any Error)? { underlying }
    package var description: String { message }

    /// A failure of a statement the user wrote (`--where`, `flowrec sql`): bad SQL is the
    /// user's to fix; a shard that cannot be read or a deadline is not, and says so.
    /// `what` names the part to check ("Check --where and --fields.").
    package static func fromStatement(_ error: any Error, _ prefix: String, check what: String = "") -> QueryError {
        if let query = error as? QueryError { return query }
        if let store = error as? ShardStoreError {
            return QueryError(store.kind == .unreadableShard ? .unreadableShard : .store, store.message, shard: store.shard, cause: store)
        }
        guard let sqlite = error as? SQLiteError else {
            return QueryError(.store, "\(error)", cause: error)
        }
        switch sqlite.kind {
        case .invalidStatement, .misuse:
            return QueryError(.invalidStatement, "\(prefix): \(sqlite.message)." + (what.isEmpty ? "" : " \(what)"), cause: sqlite)
        case .notAuthorized, .readOnly:
            return QueryError(.notAllowed, "\(prefix): \(sqlite.message). Only reading the flows table is allowed.", cause: sqlite)
        case .interrupted:
            return QueryError(.cancelled, "the query was stopped: \(sqlite.message)", cause: sqlite)
        case .tooBig:
            return QueryError(.cancelled, "the query was stopped: it needed more memory or a larger value than a query may use (\(sqlite.message))",
                              cause: sqlite)
        case .corrupt, .io, .cannotOpen:
            let shard = sqlite.path.flatMap { ShardID(fileName: String($0.split(separator: "/").last ?? "")) }
            return QueryError(.unreadableShard, "a shard cannot be read: \(sqlite)", shard: shard, cause: sqlite)
        default:
            return QueryError(.store, "\(sqlite)", cause: sqlite)
        }
    }
}
