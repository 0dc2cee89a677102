import ArgumentParser
import FlowrecConfig
import Forwarders
import Foundation
import KafkaSource
import Query
import ShardStore
import StorageKit

/// How `flowrec` ends when a command fails, by class (the BSD sysexits codes, so scripts
/// can tell a typo from a dead server): the usage text is printed only for mistakes in
/// the command line itself; every other failure prints its cause and what to do.
enum ExitClass: Int32, CaseIterable {
    case failure = 1
    /// The command line is wrong (an unknown option, a bad value): usage is printed.
    case usage = 64
    /// The data cannot be read as it should (a damaged shard, an invalid statement).
    case dataError = 65
    /// Something named does not exist: the data directory, a file, a shard.
    case noInput = 66
    /// A server or target is unreachable or refused (Kafka, ClickHouse, a command).
    case unavailable = 69
    /// An output cannot be created (it exists, the directory is not writable).
    case cannotCreate = 73
    /// Reading or writing failed: the disk is full, an I/O error.
    case ioError = 74
    /// Try again later: another process writes this data directory.
    case tryAgain = 75
    /// A setting is wrong (the YAML file, an environment variable).
    case configuration = 78

    /// One line each in `flowrec --help` (short enough not to wrap at 80 columns).
    var meaning: String {
        switch self {
        case .failure: "another failure"
        case .usage: "the command line is wrong (usage printed)"
        case .dataError: "data cannot be read (a damaged shard, an invalid statement)"
        case .noInput: "the data directory, a file or a shard named does not exist"
        case .unavailable: "a server or target is unreachable or refused (Kafka, ClickHouse)"
        case .cannotCreate: "an output cannot be created"
        case .ioError: "reading or writing failed (the disk is full, an I/O error)"
        case .tryAgain: "another flowrec writes the data directory: try again later"
        case .configuration: "a setting is wrong"
        }
    }

    /// The exit codes, for `flowrec --help`, success first.
    static var table: String {
        (["   0  success"] + allCases.map { "\(String(repeating: " ", count: 4 - String($0.rawValue).count))\($0.rawValue)  \($0.meaning)" })
            .joined(separator: "\n")
    }

    /// The class of a failure, from the error's kind (never from its text).
    static func of(_ error: any Error) -> ExitClass {
        if error.isDiskFull { return .ioError }
        switch error {
        case let failure as CommandFailure: return failure.exit
        case let error as ShardStoreError:
            switch error.kind {
            case .notADataDirectory: return .noInput
            case .locked: return .tryAgain
            case .unreadableShard, .verificationFailed: return .dataError
            case .fileOperationFailed: return .ioError
            case .invalidOptions, .wrongWindow, .notARollupDimension: return .configuration
            case .readOnly, .needsUpgrade, .other: return .failure
            }
        case let error as QueryError:
            switch error.kind {
            case .invalidStatement, .unknownField, .notAllowed, .unreadableShard: return .dataError
            case .invalidArgument: return .usage
            case .outputFailed: return .cannotCreate
            case .cancelled, .store: return .failure
            }
        case let error as ForwarderError:
            switch error.kind {
            case .unavailable, .rejected: return .unavailable
            case .configuration: return .configuration
            }
        case is SettingsError: return .configuration
        case is KafkaError: return .unavailable
        default: return .failure
        }
    }
}

/// A failure the user can act on, printed as `Error: <message>` without the usage text
/// that ArgumentParser adds to validation errors (the arguments were fine), and its
/// exit class.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    let exit: ExitClass

    init(_ description: String, exit: ExitClass = .failure) {
        self.description = description
        self.exit = exit
    }
}

/// Close matches of a name the user typed, for "did you mean".
enum Suggestions {
    /// Names within an edit distance of 2 (or that start with what was typed, ignoring
    /// case), closest first.
    static func closest(to typed: String, among names: [String], limit: Int = 3) -> [String] {
        let lower = typed.lowercased()
        // NetObserv's names differ from what people type mostly by "K8S_" and underscores.
        func normalized(_ s: String) -> String { s.lowercased().replacingOccurrences(of: "k8s_", with: "").replacingOccurrences(of: "_", with: "") }
        let scored = names.map { name -> (String, Int) in
            let candidate = name.lowercased()
            if candidate == lower || normalized(name) == normalized(typed) { return (name, 0) }
            if candidate.hasPrefix(lower) || lower.hasPrefix(candidate) { return (name, 1) }
            return (name, distance(lower, candidate))
        }
        return scored.filter { $0.1 <= max(2, typed.count / 4) }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
            .prefix(limit).map(\.0)
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        guard !x.isEmpty else { return y.count }
        guard !y.isEmpty else { return x.count }
        var previous = Array(0...y.count)
        for i in 1...x.count {
            var current = [i] + Array(repeating: 0, count: y.count)
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[y.count]
    }

    /// The flow fields a statement names that are not fields, each with its closest
    /// fields: "DstNamespace (did you mean DstK8S_Namespace?)". Words SQL itself knows
    /// (keywords, functions, aliases it defines) are left alone.
    static func unknownFields(in sql: String, known: [String]) -> [String] {
        var result: [String] = []
        var seen = Set<String>()
        let knownLower = Set(known.map { $0.lowercased() })  // SQLite resolves names ignoring case
        for word in identifiers(in: sql) where !seen.contains(word) {
            seen.insert(word)
            guard !knownLower.contains(word.lowercased()), !sqlWords.contains(word.uppercased()), word.count > 3 else { continue }
            let close = closest(to: word, among: known)
            if let first = close.first, distance(word.lowercased(), first.lowercased()) <= max(3, word.count / 2) || first.lowercased().contains(word.lowercased()) {
                result.append("\(word) (did you mean \(close.joined(separator: " or "))?)")
            }
        }
        return result
    }

    /// Bare words of a statement (outside quotes), which SQLite would read as names.
    private static func identifiers(in sql: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        for c in sql {
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            if c == "'" { quote = c; continue }
            if c.isLetter || c.isNumber || c == "_" {
                current.append(c)
            } else {
                if !current.isEmpty, current.first?.isNumber == false { words.append(current) }
                current = ""
            }
        }
        if !current.isEmpty, current.first?.isNumber == false { words.append(current) }
        return words
    }

    private static let sqlWords: Set<String> = [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "NULL", "IS", "IN", "LIKE", "GLOB", "BETWEEN", "GROUP", "BY", "ORDER", "ASC",
        "DESC", "LIMIT", "OFFSET", "AS", "DISTINCT", "COUNT", "SUM", "MIN", "MAX", "AVG", "TOTAL", "CASE", "WHEN", "THEN", "ELSE",
        "END", "WITH", "HAVING", "JOIN", "LEFT", "INNER", "OUTER", "CROSS", "ON", "USING", "UNION", "ALL", "EXCEPT", "INTERSECT",
        "CAST", "INTEGER", "TEXT", "REAL", "FLOWS", "COALESCE", "IFNULL", "LENGTH", "LOWER", "UPPER", "SUBSTR", "ROUND", "ABS",
        "STRFTIME", "DATETIME", "DATE", "TIME", "OVER", "PARTITION", "ROWS", "RANGE", "PRINTF", "FORMAT", "INSTR", "REPLACE",
        "TRIM", "JSON_EXTRACT", "JSON_EACH", "VALUE", "KEY", "EXISTS", "TRUE", "FALSE", "ESCAPE", "COLLATE", "NOCASE", "RECURSIVE",
        "WINDOW", "FILTER", "GROUP_CONCAT", "HEX", "IIF", "NULLIF", "TYPEOF", "UNIXEPOCH", "RANK", "ROW_NUMBER", "DENSE_RANK",
        "LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE", "NTILE", "PERCENT_RANK", "CUME_DIST", "QUOTE", "SIGN", "FLOOR", "CEIL",
        "POWER", "SQRT", "LOG", "LN", "EXP", "MOD", "PI",
    ]
}

/// " Unknown fields: DstNamespace (did you mean DstK8S_Namespace?)" after a statement
/// SQLite could not prepare, from the statement's own words (not SQLite's message).
enum FieldHints {
    static func text(for error: QueryError, in sql: String) -> String {
        guard error.kind == .invalidStatement || error.kind == .unknownField else { return "" }
        let hints = Suggestions.unknownFields(in: sql, known: FlowsAcrossShards.columns + FlowsAcrossShards.hiddenColumns)
        return hints.isEmpty ? "" : " Unknown fields: " + hints.joined(separator: ", ") + "."
    }
}
