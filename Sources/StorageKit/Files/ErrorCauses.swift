import Foundation

/// An error that carries the failure beneath it, so a caller several layers up can ask
/// "was this the disk filling up?" or "was the file corrupt?" without reading messages.
package protocol ErrorWithCause: Error {
    /// The failure that caused this one, if any.
    var cause: (any Error)? { get }
}

extension Error {
    /// This error, then each cause beneath it (through `ErrorWithCause` and Foundation's
    /// `NSUnderlyingErrorKey`), outermost first.
    package var causeChain: [any Error] {
        var chain: [any Error] = [self]
        while chain.count < 16 {
            let last = chain[chain.count - 1]
            if let caused = last as? any ErrorWithCause, let cause = caused.cause {
                chain.append(cause)
            } else if let underlying = (last as NSError).userInfo[NSUnderlyingErrorKey] as? NSError {
                chain.append(underlying)
            } else {
                break
            }
        }
        return chain
    }

    /// Whether "no space left on device" is somewhere beneath this error: SQLite's
    /// SQLITE_FULL or ENOSPC, or a POSIX ENOSPC from Foundation's file calls.
    package var isDiskFull: Bool {
        causeChain.contains { error in
            if let sqlite = error as? SQLiteError { return sqlite.kind == .diskFull }
            let ns = error as NSError
            return ns.domain == NSPOSIXErrorDomain && ns.code == Int(ENOSPC)
                || ns.domain == NSCocoaErrorDomain && ns.code == CocoaError.fileWriteOutOfSpace.rawValue
        }
    }

    /// The SQLite failure beneath this error, if there is one.
    package var sqliteCause: SQLiteError? {
        causeChain.lazy.compactMap { $0 as? SQLiteError }.first
    }
}
