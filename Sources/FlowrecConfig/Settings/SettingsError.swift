import StorageKit

/// A configuration problem: its kind, the setting it is about (when there is one), and
/// a message that names the value, where it came from and what to write instead.
package struct SettingsError: Error, ErrorWithCause, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// A key, flag or argument flowrec does not know (the message suggests the nearest).
        case unknownSetting
        /// A value that does not parse, or is out of range.
        case invalidValue
        /// A required value is missing.
        case missingValue
        /// Values that contradict each other (a certificate without its key, ...).
        case conflict
        /// A value given where it may not be (a secret on the command line or in the file).
        case notAllowedHere
        /// The config file or a secret file cannot be read.
        case unreadableFile
    }

    package let kind: Kind
    /// The setting's dotted key (`kafka.brokers`), when the problem is about one.
    package let key: String?
    package let message: String
    private let underlying: (any Error)?

    package init(_ kind: Kind, key: String? = nil, _ message: String, cause: (any Error)? = nil) {
        self.kind = kind
        self.key = key
        self.message = message
        underlying = cause
    }

    package var cause: (any Error)? { underlying }
    package var description: String { message }
}
