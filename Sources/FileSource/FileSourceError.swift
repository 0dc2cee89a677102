import StorageKit

/// A JSON-lines input that cannot be read: which file, what went wrong, and the
/// operating system's error beneath it.
package struct FileSourceError: Error, ErrorWithCause, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// The file does not exist or is not readable.
        case cannotOpen
        /// Reading it failed part way.
        case readFailed
    }

    package let kind: Kind
    package let path: String
    private let underlying: (any Error)?

    package init(_ kind: Kind, path: String, cause: (any Error)? = nil) {
        self.kind = kind
        self.path = path
        underlying = cause
    }

    package var cause: (any Error)? { underlying }

    package var description: String {
        switch kind {
        case .cannotOpen: "cannot read \(path): check that the file exists and is readable"
        case .readFailed: "reading \(path) failed" + (underlying.map { ": \($0)" } ?? "")
        }
    }
}
