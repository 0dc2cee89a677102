import FlowModel
import Foundation

/// Compiled regular expressions of one query, by pattern (RE2 syntax; the plugin's
/// patterns are in the subset Swift's regex engine shares with RE2). Used by one
/// thread at a time: each shard reader, or the evaluator, has its own.
final class LogQLRegexCache {
    private var compiled: [String: Regex<AnyRegexOutput>] = [:]

    /// `pattern` compiled (unanchored use: `search`; label matchers: `fullMatch`).
    func regex(_ pattern: String) throws(QueryError) -> Regex<AnyRegexOutput> {
        if let known = compiled[pattern] { return known }
        do {
            let regex = try Regex(Self.swiftSyntax(ofRE2: pattern)).matchingSemantics(.unicodeScalar)
            compiled[pattern] = regex
            return regex
        } catch {
            throw QueryError(.invalidStatement, "invalid regex \(pattern): \(error)")
        }
    }

    /// An RE2 pattern in the syntax Swift's regex engine reads the same way. They differ
    /// inside bracket expressions: RE2 takes a `]` right after `[` or `[^` as a member
    /// (the plugin's array filter `\[(?i)[^]]*eth[^]]*]` relies on it) and `[`, `&&`,
    /// `--` and `~~` as literal characters, where Swift nests classes and applies set
    /// operations. Those are escaped; the rest is passed as it is.
    static func swiftSyntax(ofRE2 pattern: String) -> String {
        var out = ""
        var inClass = false
        var classStart = false  // just after `[` or `[^`
        var escaped = false
        let chars = Array(pattern)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            defer { i += 1 }
            if escaped {
                out.append(c)
                escaped = false
                classStart = false
                continue
            }
            if c == "\\" {
                out.append(c)
                escaped = true
                continue
            }
            if !inClass {
                out.append(c)
                if c == "[" {
                    inClass = true
                    classStart = true
                    if i + 1 < chars.count, chars[i + 1] == "^" {
                        out.append("^")
                        i += 1
                    }
                }
                continue
            }
            switch c {
            case "]" where classStart:
                out += "\\]"
            case "]":
                out.append(c)
                inClass = false
            case "[" where i + 1 < chars.count && chars[i + 1] == ":":
                // A POSIX class `[:alpha:]`: copied through its closing `:]`.
                out.append(c)
                while i + 1 < chars.count {
                    i += 1
                    out.append(chars[i])
                    if chars[i] == "]" && chars[i - 1] == ":" { break }
                }
            case "[", "&", "~":
                out += "\\" + String(c)
            case "-" where i + 1 < chars.count && chars[i + 1] == "-":
                out += "\\-"
            default:
                out.append(c)
            }
            classStart = false
        }
        return out
    }

    func search(_ pattern: String, in text: String) throws(QueryError) -> Bool {
        let r = try regex(pattern)
        return (try? r.firstMatch(in: text)) != nil
    }

    func fullMatch(_ pattern: String, _ text: String) throws(QueryError) -> Bool {
        let r = try regex(pattern)
        return (try? r.wholeMatch(in: text)) != nil
    }
}

/// Evaluates a selection on one decoded flow exactly as Loki would on its stream and
/// line: the reference semantics (the SQL plan is checked against it by tests, and
/// takes over only for what it translates exactly).
struct LogQLFlowEvaluator {
    let model: LokiStreamModel
    let selection: LogSelection
    let regexes = LogQLRegexCache()

    /// What a flow gives after the pipeline, or nil when it is filtered out.
    struct Outcome {
        /// Labels after the pipeline: stream labels and, after `| json`, extracted ones.
        var labels: [String: String]
        /// The `| unwrap` value, when the selection unwraps.
        var value: Double?
    }

    func evaluate(_ flow: Flow) throws(QueryError) -> Outcome? {
        var labels: [String: String] = [:]
        for (name, value) in model.streamLabels(of: flow) { labels[name] = value }
        for matcher in selection.matchers where try !Self.matches(matcher, labels[matcher.name] ?? "", regexes) { return nil }
        var lineBytes: [UInt8]?
        func line() -> String {
            if lineBytes == nil {
                var out: [UInt8] = []
                model.line(of: flow, into: &out)
                lineBytes = out
            }
            return String(decoding: lineBytes ?? [], as: UTF8.self)
        }
        var value: Double?
        var failed = false  // __error__ set: an unwrap that did not parse
        for stage in selection.stages {
            switch stage {
            case .lineFilter(let filter):
                let hit: Bool
                switch filter.kind {
                case .contains: hit = line().contains(filter.pattern)
                case .regex: hit = try regexes.search(filter.pattern, in: line())
                }
                if hit == filter.negated { return nil }
            case .json:
                for (name, text) in Self.extracted(from: flow, model: model) where labels[name] == nil || name.hasSuffix("_extracted") {
                    labels[name] = text
                }
            case .labelFilter(let alternatives):
                // A numeric comparison on a value that is not a number does not hold
                // (Loki marks it as an error; flowrec leaves the flow out either way).
                var any = false
                for filter in alternatives where try Self.holds(filter, labels[filter.name] ?? "", regexes) {
                    any = true
                    break
                }
                if !any { return nil }
            case .unwrap(let name):
                if let number = labels[name].flatMap(Double.init) {
                    value = number
                } else {
                    failed = true
                }
            case .dropErrors:
                if failed { return nil }
            }
        }
        if selection.unwrapped != nil && value == nil { return nil }
        return Outcome(labels: labels, value: value)
    }

    static func matches(_ matcher: LabelMatcher, _ value: String, _ regexes: LogQLRegexCache) throws(QueryError) -> Bool {
        switch matcher.op {
        case .equal: value == matcher.value
        case .notEqual: value != matcher.value
        case .matches: try regexes.fullMatch(matcher.value, value)
        case .notMatches: try !regexes.fullMatch(matcher.value, value)
        }
    }

    /// Whether a label filter holds for a label's value ("" when absent).
    static func holds(_ filter: LabelFilter, _ value: String, _ regexes: LogQLRegexCache) throws(QueryError) -> Bool {
        switch filter.value {
        case .string(let s):
            switch filter.op {
            case .equal: return value == s
            case .notEqual: return value != s
            case .matches: return try regexes.fullMatch(s, value)
            case .notMatches: return try !regexes.fullMatch(s, value)
            default:
                // `>`... on a quoted value compares numbers, as Loki does with `"100"`.
                guard let n = Double(s) else { return false }
                return try holds(LabelFilter(filter.name, filter.op, .number(n)), value, regexes)
            }
        case .ip(let spec):
            guard let matcher = IPMatcher(spec) else { return false }
            let inside = matcher.contains(value)
            return filter.op == .equal ? inside : !inside
        case .number(let n):
            guard let v = Double(value) else { return false }
            switch filter.op {
            case .equal: return v == n
            case .notEqual: return v != n
            case .greater: return v > n
            case .greaterOrEqual: return v >= n
            case .less: return v < n
            case .lessOrEqual: return v <= n
            case .matches, .notMatches: return false
            }
        }
    }

    /// What `| json` extracts from the line: every top-level scalar (known fields that
    /// are not labels, and unknown ones; nested objects flattened with `_`, arrays and
    /// nulls skipped).
    static func extracted(from flow: Flow, model: LokiStreamModel) -> [(String, String)] {
        var out: [(String, String)] = []
        for field in flow.present where !model.labelSet.contains(field) {
            if let text = model.text(of: field, in: flow) { out.append((field.name, text)) }
        }
        if let extras = flow.extrasJSON, let object = try? JSONSerialization.jsonObject(with: Data(extras.utf8)) as? [String: Any] {
            flatten(object, prefix: "", into: &out, model: model)
        }
        return out
    }

    private static func flatten(_ object: [String: Any], prefix: String, into out: inout [(String, String)], model: LokiStreamModel) {
        for (key, value) in object {
            var name = prefix.isEmpty ? key : prefix + "_" + key
            if prefix.isEmpty && model.isLabel(name) { name += "_extracted" }
            switch value {
            case let nested as [String: Any]: flatten(nested, prefix: name, into: &out, model: model)
            case is [Any], is NSNull: continue
            case let number as NSNumber:
                // JSONSerialization gives booleans as NSNumbers of type "c" (char).
                if String(cString: number.objCType) == "c" { out.append((name, number.boolValue ? "true" : "false")) } else { out.append((name, number.stringValue)) }
            case let text as String: out.append((name, text))
            default: continue
            }
        }
    }
}
