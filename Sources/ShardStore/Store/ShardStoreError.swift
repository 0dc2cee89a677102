import StorageKit

/// A store failure: what kind it is (code decides by `kind`), a message a user can act
/// on, and the failure beneath it (`cause`: a `SQLiteError`, a POSIX error), so a caller
/// asks `error.isDiskFull` instead of reading words.
package struct ShardStoreError: Error, ErrorWithCause, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// Options or limits out of range (a window that does not divide a day, ...).
        case invalidOptions
        /// The path is not a flowrec data directory, or cannot be created or read.
        case notADataDirectory
        /// The store was written with another window width.
        case wrongWindow
        /// Writing to a store opened for reading.
        case readOnly
        /// A shard file that cannot be read or fails its checks; `ShardStoreError.shard` names it.
        case unreadableShard
        /// A seal or compaction whose result did not verify; the original is kept.
        case verificationFailed
        /// A file the store had to remove or replace could not be.
        case fileOperationFailed
        /// A field that rollups do not group by.
        case notARollupDimension
        /// Another flowrec process writes to this data directory.
        case locked
        /// A store on a volume this process cannot write needs an upgrade that only a
        /// writer can make (its catalog was written by an older flowrec).
        case needsUpgrade
        /// Anything else; `cause` says more.
        case other
    }

    package let kind: Kind
    package let message: String
    /// The shard the failure is about, when it is about one.
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
}
