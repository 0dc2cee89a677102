import Foundation

/// One configurable value of flowrec, defined once: the YAML key, the command-line
/// flag, the environment variable, the default and the help all come from here, and
/// so do `--help`, `--check-config` and the configuration reference in the docs.
package struct Setting: Sendable {
    package enum Kind: Sendable, Equatable {
        case string, integer, number, bool, duration, byteSize, freeSpace
        /// Several values: a YAML sequence, a repeated flag, or commas in the environment.
        case list
        /// `KEY=VALUE` pairs: a YAML mapping, a repeated flag, or commas in the environment.
        case map
        case choice([String])
    }

    /// Dotted YAML path, e.g. `kafka.brokers`.
    package let key: String
    /// Long flag without dashes, e.g. `brokers`; nil for values that must not appear on a
    /// command line (secrets: they would show in `ps` and shell history).
    package let flag: String?
    package let kind: Kind
    /// The default, as text; nil when unset by default.
    package let defaultValue: String?
    package let help: String
    /// Secrets are read from the environment only and never printed.
    package let secret: Bool
    /// What the value looks like, for `--help` (e.g. `HOST:PORT`).
    package let valueName: String

    package init(_ key: String, flag: String?, _ kind: Kind, default defaultValue: String? = nil, value valueName: String? = nil,
                secret: Bool = false, _ help: String) {
        self.key = key
        self.flag = flag
        self.kind = kind
        self.defaultValue = defaultValue
        self.help = help
        self.secret = secret
        self.valueName = valueName ?? Self.defaultValueName(kind)
    }

    /// `FLOWREC_` + the key in upper snake case: `kafka.sasl.passwordFile` →
    /// `FLOWREC_KAFKA_SASL_PASSWORD_FILE`.
    package var environmentVariable: String {
        var name = "FLOWREC_"
        var previousLower = false
        for character in key {
            if character == "." {
                name += "_"
                previousLower = false
            } else if character.isUppercase {
                if previousLower { name += "_" }
                name += String(character)
                previousLower = false
            } else {
                name += character.uppercased()
                previousLower = character.isLowercase || character.isNumber
            }
        }
        return name
    }

    static func defaultValueName(_ kind: Kind) -> String {
        switch kind {
        case .string: "TEXT"
        case .integer: "N"
        case .number: "X"
        case .bool: ""
        case .duration: "DURATION"
        case .byteSize: "SIZE"
        case .freeSpace: "SIZE|N%"
        case .list: "VALUE"
        case .map: "KEY=VALUE"
        case .choice(let options): options.joined(separator: "|")
        }
    }
}

/// A setting's value and where it came from.
package enum SettingValue: Sendable, Equatable {
    case scalar(String)
    case list([String])
    case map([String: String])
}

package enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    case defaultValue
    case file(String)
    case environment(String)
    case flag(String)

    package var description: String {
        switch self {
        case .defaultValue: "default"
        case .file(let path): "file \(path)"
        case .environment(let name): "env \(name)"
        case .flag(let flag): "flag --\(flag)"
        }
    }
}
