import StorageKit

/// A failure of the recorder itself (its listener), as opposed to the store's or
/// Kafka's, which keep their own types.
package struct RecorderError: Error, ErrorWithCause, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// The HTTP listener could not load its TLS files, bind, or start.
        case listenerFailed
    }

    package let kind: Kind
    package let message: String
    private let underlying: (any Error)?

    package init(_ kind: Kind, _ message: String, cause: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        underlying = cause
    }

    package var cause: (any Error)? { underlying }
    package var description: String { message }
}
