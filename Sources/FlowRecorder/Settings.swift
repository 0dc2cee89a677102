import Foundation
import Yams

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

/// A configuration problem, with where the bad value came from.
package struct SettingsError: Error, Sendable, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// Settings from a YAML file, the environment and the command line, merged in that
/// order: flags win over the environment, which wins over the file, which wins over
/// the defaults. Every value is checked against its kind while merging, so a mistake
/// is reported once, naming the layer it came from.
package struct ResolvedSettings: Sendable {
    package let table: [Setting]
    package private(set) var values: [String: (value: SettingValue, source: SettingSource)] = [:]

    /// Keys the config file may hold for other commands (one file serves `record`,
    /// `sync` and `prune`): skipped rather than reported as unknown.
    private let otherKeys: Set<String>

    /// - Parameters:
    ///   - arguments: command-line words not handled elsewhere (`--window 1m`, `--topic=a`).
    ///   - configFile: a YAML file, or nil.
    ///   - fileMayAlsoHold: settings of other commands that the file may hold.
    package init(table: [Setting], arguments: [String], environment: [String: String], configFile: String?,
                fileMayAlsoHold: [Setting] = []) throws(SettingsError) {
        self.table = table
        otherKeys = Set(fileMayAlsoHold.map(\.key)).subtracting(table.map(\.key))
        for setting in table {
            if let value = setting.defaultValue {
                values[setting.key] = (try Self.value(value, for: setting, source: .defaultValue), .defaultValue)
            }
        }
        if let configFile { try apply(yamlFile: configFile) }
        for setting in table {
            guard let text = environment[setting.environmentVariable], !text.isEmpty else { continue }
            let source = SettingSource.environment(setting.environmentVariable)
            values[setting.key] = (try Self.value(text, for: setting, source: source), source)
        }
        try apply(arguments: arguments)
    }

    // MARK: Layers

    private mutating func apply(yamlFile path: String) throws(SettingsError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SettingsError("cannot read the config file \(path): \(error.localizedDescription)")
        }
        let document: Any?
        do { document = try Yams.load(yaml: text) } catch {
            throw SettingsError("\(path) is not valid YAML: \(error)")
        }
        guard let document else { return }
        guard let root = document as? [String: Any] else { throw SettingsError("\(path): the top level must be a mapping of settings") }
        try apply(mapping: root, prefix: "", file: path)
    }

    private mutating func apply(mapping: [String: Any], prefix: String, file: String) throws(SettingsError) {
        for (name, node) in mapping.sorted(by: { $0.key < $1.key }) {
            let key = prefix.isEmpty ? name : prefix + "." + name
            if let setting = table.first(where: { $0.key == key }) {
                if node is NSNull { continue }  // `key:` with no value leaves the setting unset
                if setting.secret {
                    throw SettingsError("\(file): \(key) is a secret and is read from \(setting.environmentVariable) only; put a file path in \(key)File instead where one exists")
                }
                let source = SettingSource.file(file)
                values[key] = (try Self.value(yaml: node, for: setting, source: source), source)
            } else if let nested = node as? [String: Any], table.contains(where: { $0.key.hasPrefix(key + ".") }) {
                try apply(mapping: nested, prefix: key, file: file)
            } else if node is NSNull, table.contains(where: { $0.key.hasPrefix(key + ".") }) {
                continue  // a section whose settings are all commented out
            } else if otherKeys.contains(key) || otherKeys.contains(where: { $0.hasPrefix(key + ".") }) {
                continue  // another command's setting
            } else {
                throw SettingsError("\(file): unknown setting '\(key)'" + (Self.suggestion(for: key, in: table).map { " (did you mean '\($0)'?)" } ?? ""))
            }
        }
    }

    private mutating func apply(arguments: [String]) throws(SettingsError) {
        var i = 0
        var given: Set<String> = []
        while i < arguments.count {
            let word = arguments[i]
            guard word.hasPrefix("--") else {
                throw SettingsError("unexpected argument '\(word)'; options start with -- (see --help)")
            }
            var name = String(word.dropFirst(2))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let setting = table.first(where: { $0.flag == name }) else {
                if let secret = table.first(where: { $0.secret && $0.key.split(separator: ".").last.map(String.init)?.lowercased() == name.replacingOccurrences(of: "-", with: "") }) {
                    throw SettingsError("--\(name) is not accepted on the command line (it would show in ps and shell history); set \(secret.environmentVariable)")
                }
                throw SettingsError("unknown option '--\(name)'" + (Self.suggestion(forFlag: name, in: table).map { "; did you mean '--\($0)'?" } ?? "") + " (see --help)")
            }
            let text: String
            if setting.kind == .bool {
                text = inline ?? "true"
            } else if let inline {
                text = inline
            } else {
                guard i + 1 < arguments.count else { throw SettingsError("--\(name) needs a value (\(setting.valueName))") }
                i += 1
                text = arguments[i]
            }
            let source = SettingSource.flag(name)
            let value = try Self.value(text, for: setting, source: source)
            // Repeated flags add up for lists and maps; flags replace what the
            // environment or file said the first time they appear.
            if given.contains(setting.key), let previous = values[setting.key]?.value {
                switch (previous, value) {
                case let (.list(a), .list(b)): values[setting.key] = (.list(a + b), source)
                case let (.map(a), .map(b)): values[setting.key] = (.map(a.merging(b) { _, new in new }), source)
                default: values[setting.key] = (value, source)
                }
            } else {
                values[setting.key] = (value, source)
            }
            given.insert(setting.key)
            i += 1
        }
    }

    // MARK: Values

    static func value(_ text: String, for setting: Setting, source: SettingSource) throws(SettingsError) -> SettingValue {
        switch setting.kind {
        case .list:
            return .list(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        case .map:
            var map: [String: String] = [:]
            // A flag carries one pair (its value may hold commas); the environment
            // carries several, separated by commas.
            let pairs: [Substring]
            if case .environment = source { pairs = text.split(separator: ",") } else { pairs = [Substring(text)] }
            for pair in pairs {
                guard let eq = pair.firstIndex(of: "=") else {
                    throw SettingsError("\(setting.key) (\(source)): '\(pair)' is not KEY=VALUE")
                }
                map[String(pair[..<eq]).trimmingCharacters(in: .whitespaces)] = String(pair[pair.index(after: eq)...])
            }
            return .map(map)
        default:
            try check(text, for: setting, source: source)
            return .scalar(text)
        }
    }

    static func value(yaml node: Any, for setting: Setting, source: SettingSource) throws(SettingsError) -> SettingValue {
        switch setting.kind {
        case .list:
            if let items = node as? [Any] { return .list(items.map { scalarText($0) }) }
            return try value(scalarText(node), for: setting, source: source)
        case .map:
            guard let mapping = node as? [String: Any] else {
                throw SettingsError("\(setting.key) (\(source)): expected a mapping of KEY: VALUE")
            }
            return .map(mapping.mapValues { scalarText($0) })
        default:
            guard !(node is [Any]), !(node is [String: Any]) else {
                throw SettingsError("\(setting.key) (\(source)): expected one value, not a list or mapping")
            }
            let text = scalarText(node)
            try check(text, for: setting, source: source)
            return .scalar(text)
        }
    }

    private static func scalarText(_ node: Any) -> String {
        switch node {
        case let b as Bool: b ? "true" : "false"
        case let s as String: s
        default: "\(node)"
        }
    }

    /// Rejects a scalar that does not parse as its kind.
    private static func check(_ text: String, for setting: Setting, source: SettingSource) throws(SettingsError) {
        let ok: Bool
        let expected: String
        switch setting.kind {
        case .string, .list, .map: return
        case .integer: ok = Int64(text) != nil; expected = "an integer"
        case .number: ok = Double(text) != nil; expected = "a number"
        case .bool: ok = ["true", "false", "yes", "no", "1", "0", "on", "off"].contains(text.lowercased()); expected = "true or false"
        case .duration: ok = SettingParsers.seconds(text) != nil; expected = "a duration such as 90s, 30m, 2h or 7d"
        case .byteSize: ok = SettingParsers.bytes(text) != nil; expected = "a size such as 500MB or 20GiB"
        case .freeSpace: ok = SettingParsers.freeSpace(text) != nil; expected = "a size (20GiB) or a share of the volume (10%)"
        case .choice(let options): ok = options.contains(text); expected = "one of " + options.joined(separator: ", ")
        }
        if !ok { throw SettingsError("\(setting.key) (\(source)): '\(text)' is not \(expected)") }
    }

    private static func suggestion(for key: String, in table: [Setting]) -> String? {
        table.map(\.key).min { editDistance($0, key) < editDistance($1, key) }.flatMap { editDistance($0, key) <= 3 ? $0 : nil }
    }

    private static func suggestion(forFlag flag: String, in table: [Setting]) -> String? {
        table.compactMap(\.flag).min { editDistance($0, flag) < editDistance($1, flag) }.flatMap { editDistance($0, flag) <= 3 ? $0 : nil }
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b.lowercased())
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    // MARK: Reading

    package func source(_ key: String) -> SettingSource? { values[key]?.source }

    package func string(_ key: String) -> String? {
        if case .scalar(let s)? = values[key]?.value { return s }
        return nil
    }

    package func list(_ key: String) -> [String] {
        if case .list(let l)? = values[key]?.value { return l }
        return string(key).map { [$0] } ?? []
    }

    package func map(_ key: String) -> [String: String] {
        if case .map(let m)? = values[key]?.value { return m }
        return [:]
    }

    package func integer(_ key: String) -> Int64? { string(key).flatMap { Int64($0) } }
    package func number(_ key: String) -> Double? { string(key).flatMap { Double($0) } }
    package func bool(_ key: String) -> Bool { string(key).map { ["true", "yes", "1", "on"].contains($0.lowercased()) } ?? false }
    package func seconds(_ key: String) -> Double? { string(key).flatMap(SettingParsers.seconds) }
    package func bytes(_ key: String) -> Int64? { string(key).flatMap(SettingParsers.bytes) }
    package func freeSpace(_ key: String) -> (bytes: Int64?, fraction: Double?)? { string(key).flatMap(SettingParsers.freeSpace) }

    /// A value that must be set, or an error naming every way to set it.
    package func required(_ key: String) throws(SettingsError) -> String {
        guard let value = string(key), !value.isEmpty else {
            let setting = table.first { $0.key == key }
            let ways = [setting?.flag.map { "--\($0)" }, setting.map(\.environmentVariable), "\(key) in the config file"].compactMap { $0 }
            throw SettingsError("\(key) is required: set it with " + ways.joined(separator: ", ") + ".")
        }
        return value
    }

    /// The effective settings as YAML, secrets masked, each line saying where its value
    /// came from: what `--check-config` prints.
    package func rendered() -> String {
        var lines: [String] = []
        var openSections: [String] = []
        for setting in table where values[setting.key] != nil {
            guard let (value, source) = values[setting.key] else { continue }
            let parts = setting.key.split(separator: ".").map(String.init)
            let sections = Array(parts.dropLast())
            var common = 0
            while common < min(sections.count, openSections.count), sections[common] == openSections[common] { common += 1 }
            for depth in common..<sections.count { lines.append(String(repeating: "  ", count: depth) + sections[depth] + ":") }
            openSections = sections
            let indent = String(repeating: "  ", count: sections.count)
            let name = parts.last ?? setting.key
            let note = "  # \(source)"
            if setting.secret {
                lines.append("\(indent)\(name): \"********\"\(note)")
                continue
            }
            switch value {
            case .scalar(let s): lines.append("\(indent)\(name): \(Self.yamlValue(s, kind: setting.kind))\(note)")
            case .list(let l): lines.append("\(indent)\(name): [\(l.map(Self.yamlScalar).joined(separator: ", "))]\(note)")
            case .map(let m):
                if m.isEmpty {
                    lines.append("\(indent)\(name): {}\(note)")
                } else {
                    lines.append("\(indent)\(name):\(note)")
                    for (k, v) in m.sorted(by: { $0.key < $1.key }) {
                        let masked = k.lowercased().contains("password") || k.lowercased().contains("secret") ? "\"********\"" : Self.yamlScalar(v)
                        lines.append("\(indent)  \(Self.yamlScalar(k)): \(masked)")
                    }
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A scalar as YAML: numbers and booleans bare where the setting is one, text
    /// quoted when YAML would read it as something else.
    static func yamlValue(_ s: String, kind: Setting.Kind) -> String {
        switch kind {
        case .integer, .number, .bool: s
        default: yamlScalar(s)
        }
    }

    static func yamlScalar(_ s: String) -> String {
        let plain = !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || "._-/:@%".contains($0) }
            && !["true", "false", "yes", "no", "null", "on", "off", "~"].contains(s.lowercased()) && Double(s) == nil
        if plain { return s }
        return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// Durations, sizes and free-space limits as users write them.
package enum SettingParsers {
    /// The longest duration accepted anywhere (100 years): every duration times 1000 fits
    /// in an Int64 of milliseconds, and `now - duration` cannot overflow.
    package static let maxSeconds: Double = 100 * 365.25 * 86_400

    /// `90s`, `30m`, `2h`, `7d`, `1w`, `250ms` or plain seconds; nil for anything else,
    /// including `inf`, `nan` and more than `maxSeconds`.
    package static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604_800)]
        var value: Double?
        if let (suffix, factor) = units.first(where: { text.hasSuffix($0.0) }) {
            value = Double(text.dropLast(suffix.count)).map { $0 * factor }
        } else {
            value = Double(text)
        }
        guard let v = value, v.isFinite, v >= 0, v <= maxSeconds else { return nil }
        return v
    }

    /// `500MB`, `20GiB`, `1.5TB` or plain bytes; decimal and binary units, as `df -H` and
    /// `df -h` print them.
    package static func bytes(_ text: String) -> Int64? {
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
            ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
        ]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let v = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v >= 0,
                  v * factor < 9.2e18 else { return nil }
            return Int64(v * factor)
        }
        guard let v = Int64(trimmed), v >= 0 else { return nil }
        return v
    }

    /// A point in time: epoch milliseconds or RFC 3339 (`2026-01-01T00:00:00Z`), between
    /// 1970 and the end of year 9999 (`EventTime.storableEndMs`, widened to the last
    /// millisecond of 9999); nil otherwise, so no caller's arithmetic can overflow.
    package static func timeMs(_ text: String) -> Int64? {
        let ms: Int64
        if let integer = Int64(text) {
            ms = integer
        } else {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) else { return nil }
            let value = (date.timeIntervalSince1970 * 1000).rounded()
            guard value.isFinite, abs(value) < 9e18 else { return nil }
            ms = Int64(value)
        }
        return acceptedTimeMs.contains(ms) ? ms : nil
    }

    /// What `timeMs` accepts: 1970-01-01 to 9999-12-31T23:59:59.999Z.
    package static let acceptedTimeMs: ClosedRange<Int64> = 0...253_402_300_799_999

    /// A size (`20GiB`) or a share of the volume (`10%`).
    package static func freeSpace(_ text: String) -> (bytes: Int64?, fraction: Double?)? {
        if text.hasSuffix("%") {
            guard let percent = Double(text.dropLast()), (0..<100).contains(percent) else { return nil }
            return (nil, percent / 100)
        }
        return bytes(text).map { ($0, nil) }
    }
}
