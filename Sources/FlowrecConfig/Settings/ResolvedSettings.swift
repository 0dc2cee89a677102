import Foundation
import Yams

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
            throw SettingsError(.unreadableFile, "cannot read the config file \(path): \(error.localizedDescription)", cause: error)
        }
        let document: Any?
        do { document = try Yams.load(yaml: text) } catch {
            throw SettingsError(.invalidValue, "\(path) is not valid YAML: \(error)", cause: error)
        }
        guard let document else { return }
        guard let root = document as? [String: Any] else { throw SettingsError(.invalidValue, "\(path): the top level must be a mapping of settings") }
        try apply(mapping: root, prefix: "", file: path)
    }

    private mutating func apply(mapping: [String: Any], prefix: String, file: String) throws(SettingsError) {
        for (name, node) in mapping.sorted(by: { $0.key < $1.key }) {
            let key = prefix.isEmpty ? name : prefix + "." + name
            if let setting = table.first(where: { $0.key == key }) {
                if node is NSNull { continue }  // `key:` with no value leaves the setting unset
                if setting.secret {
                    throw SettingsError(.notAllowedHere, key: key, "\(file): \(key) is a secret and is read from \(setting.environmentVariable) only; put a file path in \(key)File instead where one exists")
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
                throw SettingsError(.unknownSetting, key: key, "\(file): unknown setting '\(key)'" + (Self.suggestion(for: key, in: table).map { " (did you mean '\($0)'?)" } ?? ""))
            }
        }
    }

    private mutating func apply(arguments: [String]) throws(SettingsError) {
        var i = 0
        var given: Set<String> = []
        while i < arguments.count {
            let word = arguments[i]
            guard word.hasPrefix("--") else {
                throw SettingsError(.unknownSetting, "unexpected argument '\(word)'; options start with -- (see --help)")
            }
            var name = String(word.dropFirst(2))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let setting = table.first(where: { $0.flag == name }) else {
                if let secret = table.first(where: { $0.secret && $0.key.split(separator: ".").last.map(String.init)?.lowercased() == name.replacingOccurrences(of: "-", with: "") }) {
                    throw SettingsError(.notAllowedHere, key: secret.key, "--\(name) is not accepted on the command line (it would show in ps and shell history); set \(secret.environmentVariable)")
                }
                throw SettingsError(.unknownSetting, "unknown option '--\(name)'" + (Self.suggestion(forFlag: name, in: table).map { "; did you mean '--\($0)'?" } ?? "") + " (see --help)")
            }
            let text: String
            if setting.kind == .bool {
                text = inline ?? "true"
            } else if let inline {
                text = inline
            } else {
                guard i + 1 < arguments.count else { throw SettingsError(.missingValue, key: setting.key, "--\(name) needs a value (\(setting.valueName))") }
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
                    throw SettingsError(.invalidValue, key: setting.key, "\(setting.key) (\(source)): '\(pair)' is not KEY=VALUE")
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
                throw SettingsError(.invalidValue, key: setting.key, "\(setting.key) (\(source)): expected a mapping of KEY: VALUE")
            }
            return .map(mapping.mapValues { scalarText($0) })
        default:
            guard !(node is [Any]), !(node is [String: Any]) else {
                throw SettingsError(.invalidValue, key: setting.key, "\(setting.key) (\(source)): expected one value, not a list or mapping")
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
        if !ok { throw SettingsError(.invalidValue, key: setting.key, "\(setting.key) (\(source)): '\(text)' is not \(expected)") }
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

    // Settings with a default always have a value (defaults are applied first, and a
    // layer can only replace one). These read them without a fallback, so no default is
    // written twice; using one on a setting without a default is a programming error
    // (`SettingsTests` reads every defaulted setting through them).

    /// The text of a setting that has a default.
    package func text(_ key: String) -> String { defaulted(key) { $0 } }
    /// A defaulted duration, in milliseconds.
    package func milliseconds(_ key: String) -> Int64 { defaulted(key) { SettingParsers.seconds($0).map { Int64(($0 * 1000).rounded()) } } }
    /// A defaulted duration, in seconds.
    package func durationSeconds(_ key: String) -> Double { defaulted(key, SettingParsers.seconds) }
    /// A defaulted integer.
    package func count(_ key: String) -> Int64 { defaulted(key) { Int64($0) } }
    /// A defaulted number.
    package func decimal(_ key: String) -> Double { defaulted(key) { Double($0) } }

    private func defaulted<T>(_ key: String, _ parse: (String) -> T?) -> T {
        guard let text = string(key), let value = parse(text) else {
            preconditionFailure("\(key) is read as a defaulted setting but has no valid value: give it a default in FlowrecSettings")
        }
        return value
    }

    /// A value that must be set, or an error naming every way to set it.
    package func required(_ key: String) throws(SettingsError) -> String {
        guard let value = string(key), !value.isEmpty else {
            let setting = table.first { $0.key == key }
            let ways = [setting?.flag.map { "--\($0)" }, setting.map(\.environmentVariable), "\(key) in the config file"].compactMap { $0 }
            throw SettingsError(.missingValue, key: key, "\(key) is required: set it with " + ways.joined(separator: ", ") + ".")
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
