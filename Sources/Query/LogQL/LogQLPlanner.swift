import FlowModel
import ShardStore

/// Where a LogQL selection is planned: its matchers, line filters and label filters
/// turned into SQL over one shard's `flow_rows AS r`, so SQLite skips the flows that
/// cannot match without decoding them.
///
/// Every condition here is exact (it holds for a flow if and only if Loki's filter
/// holds for its stream and line), and `isExact` says whether the whole selection was
/// translated. What is not (a regex of another shape on the line, a label only an
/// unknown field could give) is left to `LogQLFlowEvaluator` on the decoded flows the
/// SQL lets through. The plugin's regex shapes (contract §2.3) are recognised:
/// `"K"` (present), `K":"v"` (equal), `K":"(?i)[^"]*v.*"` (contains), `K":N[,}]` (number,
/// also the at-least alternations), `K":\[(?i)[^]]*v[^]]*]` (array contains),
/// `K":true`; a key without its opening quote matches every key that ends with it.
struct LogQLPlanner {
    let model: LokiStreamModel
    let encoding: ShardSchema.TimeEncoding
    /// The fields the shard's rows list in `_quoted` and `_nulls`; nil when unknown
    /// (active shards, older sealed ones): every quoted or null check stays.
    var bookkeeping: SkipIndex.BookkeepingFields? = nil

    struct Plan {
        var conditions: [String] = []
        /// Every stage is in `conditions`: no decoded flow needs to be checked again.
        var isExact = true
        /// A matcher on a static label failed: nothing matches.
        var empty = false
        /// SQL for the unwrapped value (REAL), when the selection unwraps a numeric field.
        var unwrapped: String?
        /// The field unwrapped, and the condition that a flow has it (without a number
        /// there is no sample: `__error__` drops it, or nothing comes). Apart from
        /// `conditions` so that the traffic series can test presence its own way.
        var unwrappedField: FieldID?
        var valuePresent: String?

        /// Every condition a flow must meet: the selection's, and having the value.
        var allConditions: [String] { conditions + (valuePresent.map { [$0] } ?? []) }

        /// Nothing in SQL: every flow is checked by the evaluator.
        static let untranslated = Plan(isExact: false)
    }

    func plan(_ selection: LogSelection) -> Plan {
        var plan = Plan()
        for matcher in selection.matchers {
            if let value = model.staticLabels[matcher.name] {
                let regexes = LogQLRegexCache()
                if (try? LogQLFlowEvaluator.matches(matcher, value, regexes)) != true { plan.empty = true }
                continue
            }
            guard let field = FlowSchema.id(named: matcher.name), model.labelSet.contains(field) else {
                // Not a label: absent, so its value is "".
                let regexes = LogQLRegexCache()
                if (try? LogQLFlowEvaluator.matches(matcher, "", regexes)) != true { plan.empty = true }
                continue
            }
            plan.conditions.append(labelCondition(field, matcher))
        }
        var extracting = false
        for stage in selection.stages {
            switch stage {
            case .lineFilter(let filter):
                if let condition = lineCondition(filter) { plan.conditions.append(condition) } else { plan.isExact = false }
            case .json:
                extracting = true
            case .labelFilter(let alternatives):
                let parts = alternatives.map { labelFilterCondition($0, extracted: extracting) }
                if parts.contains(where: { $0 == nil }) {
                    plan.isExact = false
                } else {
                    plan.conditions.append("(" + parts.compactMap { $0 }.joined(separator: " OR ") + ")")
                }
            case .unwrap(let name):
                guard extracting || model.isLabel(name), let field = FlowSchema.id(named: name), field.kind == .integer else {
                    plan.isExact = false
                    continue
                }
                let column = column(field)
                plan.unwrapped = field.spec.isUnsigned64
                    ? "(CASE WHEN \(column) < 0 THEN \(column) + 18446744073709551616.0 ELSE CAST(\(column) AS REAL) END)" : "CAST(\(column) AS REAL)"
                plan.unwrappedField = field
                plan.valuePresent = "\(column) IS NOT NULL"
            case .dropErrors:
                break
            }
        }
        if selection.unwrapped != nil && plan.unwrapped == nil { plan.isExact = false }
        return plan
    }

    // MARK: Pruning

    /// The `field = value` terms every matching flow must satisfy that the skip index
    /// can check (stream matchers `=`, and line filters of the console's exact shapes
    /// `K":"v"` and `K":N[,}]` naming one field), with the time range: shards and
    /// granules that cannot hold them are not read. A necessary condition only; the plan
    /// still decides each flow.
    func skipFilter(_ selection: LogSelection, fromMs: Int64?, toMs: Int64?) -> SkipFilter {
        var filter = SkipFilter(fromMs: fromMs, toMs: toMs)
        for matcher in selection.matchers where matcher.op == .equal && !matcher.value.isEmpty {
            guard let field = FlowSchema.id(named: matcher.name), model.labelSet.contains(field) else { continue }
            if field.kind == .string { filter.require(field, equals: .text(matcher.value)) }
            if field.kind == .integer, let n = Int64(matcher.value), String(n) == matcher.value { filter.require(field, equals: .integer(n)) }
        }
        for stage in selection.stages {
            guard case .lineFilter(let line) = stage, line.kind == .regex, !line.negated else { continue }
            let parts = Self.topLevelAlternatives(line.pattern)
            guard parts.count == 1, parts[0].hasPrefix("\"") else { continue }
            var rest = Substring(parts[0]).dropFirst()
            let key = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            rest = rest.dropFirst(key.count)
            let fields = linedFields(key: String(key), strict: true, prefixOnly: false)
            guard fields.count == 1, let field = fields.first, rest.hasPrefix("\":") else { continue }
            rest = rest.dropFirst(2)
            if field.kind == .string, rest.hasPrefix("\""), rest.hasSuffix("\""), rest.count >= 2 {
                let inner = String(rest.dropFirst().dropLast())
                if Self.isPluginValue(inner), !inner.contains("."), !inner.contains("*") { filter.require(field, equals: .text(inner)) }
            } else if field.kind == .integer, rest.hasSuffix("[,}]"), let n = Int64(rest.dropLast(4)), String(n) == rest.dropLast(4) {
                filter.require(field, equals: .integer(n))
            }
        }
        return filter
    }

    // MARK: Values

    /// The stored value of a field, decoded (string ids resolved, times restored).
    func column(_ field: FieldID) -> String {
        ShardSchema.storedExpression(field.spec, table: "r.", encoding: encoding)
    }

    /// SQL for a field's Loki text (`LokiStreamModel.text`), NULL when absent or null.
    func text(_ field: FieldID) -> String? {
        let raw = "r.\"\(field.name)\""
        switch field.kind {
        case .string: return "(SELECT value FROM strings WHERE id = \(raw))"
        case .bool: return "(CASE WHEN \(raw) IS NULL THEN NULL WHEN \(raw) = 0 THEN 'false' ELSE 'true' END)"
        case .integer:
            let value = column(field)
            return field.spec.isUnsigned64 ? "flowrec_u64(\(value))" : "CAST(\(value) AS TEXT)"
        case .stringArray, .directionArray, .objectArray, .tcpFlags:
            return nil
        }
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    // MARK: Stream matchers

    /// A matcher on a label field: absent or empty is "".
    private func labelCondition(_ field: FieldID, _ matcher: LabelMatcher) -> String {
        let raw = "r.\"\(field.name)\""
        let textSQL = text(field) ?? "NULL"
        let value = "coalesce(\(textSQL), '')"
        switch matcher.op {
        case .equal, .notEqual:
            var condition: String
            if matcher.value.isEmpty {
                condition = "\(value) = ''"
            } else if field.kind == .string {
                // Compare string ids: one lookup for the query, integers for the rows.
                condition = "coalesce(\(raw) = (SELECT id FROM strings WHERE value = \(Self.quote(matcher.value))), 0)"
            } else {
                condition = "\(value) = \(Self.quote(matcher.value))"
            }
            if matcher.op == .notEqual { condition = "NOT (\(condition))" }
            return condition
        case .matches, .notMatches:
            let alternatives = Self.exactAlternatives(matcher.value)
            var condition: String
            if let alternatives, field.kind == .string, !alternatives.contains("") {
                condition = "coalesce(\(raw) IN (SELECT id FROM strings WHERE value IN (\(alternatives.map(Self.quote).joined(separator: ", ")))), 0)"
            } else if let alternatives {
                condition = "\(value) IN (\(alternatives.map(Self.quote).joined(separator: ", ")))"
            } else {
                condition = "flowrec_regex_full(\(Self.quote(matcher.value)), \(value))"
            }
            if matcher.op == .notMatches { condition = "NOT (\(condition))" }
            return condition
        }
    }

    /// `^a$|^b$` (and plain `a|b` of literal words): the values a regex matcher accepts,
    /// when they are a finite list of literals; nil otherwise.
    static func exactAlternatives(_ pattern: String) -> [String]? {
        var values: [String] = []
        for part in pattern.split(separator: "|", omittingEmptySubsequences: false) {
            var p = Substring(part)
            if p.hasPrefix("^") { p = p.dropFirst() }
            if p.hasSuffix("$") { p = p.dropLast() }
            guard p.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else { return nil }
            values.append(String(p))
        }
        return values
    }

    // MARK: Label filters (after | json)

    /// A label filter on a field's text (stream label, or extracted by `| json`).
    private func labelFilterCondition(_ filter: LabelFilter, extracted: Bool) -> String? {
        let textSQL: String
        if let field = FlowSchema.id(named: filter.name) {
            if model.labelSet.contains(field) || extracted {
                // Arrays are never labels: "" for them, as for an absent label.
                textSQL = text(field) ?? "NULL"
            } else {
                textSQL = "NULL"
            }
        } else if let value = model.staticLabels[filter.name] {
            textSQL = Self.quote(value)
        } else if extracted {
            return nil  // maybe an unknown field of the line: the evaluator looks
        } else {
            textSQL = "NULL"
        }
        let value = "coalesce(\(textSQL), '')"
        switch filter.value {
        case .string(let s):
            switch filter.op {
            case .equal: return "\(value) = \(Self.quote(s))"
            case .notEqual: return "\(value) <> \(Self.quote(s))"
            case .matches: return "flowrec_regex_full(\(Self.quote(s)), \(value))"
            case .notMatches: return "NOT flowrec_regex_full(\(Self.quote(s)), \(value))"
            default:
                guard let n = Double(s) else { return "0" }
                return numeric(textSQL, filter.op, n)
            }
        case .number(let n):
            return numeric(textSQL, filter.op, n)
        case .ip(let spec):
            let inside = "flowrec_ip(\(Self.quote(spec)), \(value))"
            return filter.op == .equal ? inside : "NOT \(inside)"
        }
    }

    private func numeric(_ textSQL: String, _ op: LabelFilter.Operator, _ n: Double) -> String {
        let sqlOp: String
        switch op {
        case .equal: sqlOp = "="
        case .notEqual: sqlOp = "<>"
        case .greater: sqlOp = ">"
        case .greaterOrEqual: sqlOp = ">="
        case .less: sqlOp = "<"
        case .lessOrEqual: sqlOp = "<="
        case .matches, .notMatches: return "0"
        }
        return "coalesce(flowrec_number(\(textSQL)) \(sqlOp) \(n), 0)"
    }

    // MARK: Line filters

    /// An exact condition for a line filter, when its pattern is one of the shapes the
    /// console sends; nil otherwise.
    private func lineCondition(_ filter: LineFilter) -> String? {
        guard filter.kind == .regex else { return nil }
        var alternatives: [String] = []
        for part in Self.topLevelAlternatives(filter.pattern) {
            guard let condition = shapeCondition(part) else { return nil }
            alternatives.append(condition)
        }
        guard !alternatives.isEmpty else { return nil }
        // Unknown fields are in the line too: the pattern applies to their members as is.
        let members = "coalesce(flowrec_regex_search(\(Self.quote(filter.pattern)), r.\"_extras\"), 0)"
        let any = "(" + alternatives.joined(separator: " OR ") + " OR \(members))"
        return filter.negated ? "NOT \(any)" : any
    }

    /// `a|b|c` split at the `|` that are not inside parentheses or brackets.
    static func topLevelAlternatives(_ pattern: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0, inClass = false, escaped = false
        for c in pattern {
            if escaped { current.append(c); escaped = false; continue }
            switch c {
            case "\\": escaped = true
            case "[" where !inClass: inClass = true
            case "]" where inClass && !current.hasSuffix("[") && !current.hasSuffix("[^"): inClass = false
            case "(" where !inClass: depth += 1
            case ")" where !inClass: depth -= 1
            case "|" where !inClass && depth == 0:
                parts.append(current)
                current = ""
                continue
            default: break
            }
            current.append(c)
        }
        parts.append(current)
        return parts
    }

    /// One alternative of a line filter: key, then the value shape.
    private func shapeCondition(_ part: String) -> String? {
        var rest = Substring(part)
        let strict = rest.first == "\""
        if strict { rest = rest.dropFirst() }
        let key = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        guard !key.isEmpty else { return nil }
        rest = rest.dropFirst(key.count)
        let fields = linedFields(key: String(key), strict: strict, prefixOnly: rest.isEmpty && strict)
        if rest.isEmpty {
            // `"K` (a key that starts so) when strict, `K` (a key that ends so) otherwise;
            // neither alone is a console shape unless strict.
            guard strict else { return nil }
            return anyOf(fields.map(present))
        }
        if rest == "\"" { return anyOf(fields.map(present)) }
        guard rest.hasPrefix("\":") else { return nil }
        rest = rest.dropFirst(2)
        if rest.hasPrefix("\"(?i)[^\"]*"), rest.hasSuffix(".*\"") {
            // Contains, any case: the value holds the pattern.
            let inner = String(rest.dropFirst("\"(?i)[^\"]*".count).dropLast(3))
            guard Self.isPluginValue(inner) else { return nil }
            return anyOf(fields.filter { $0.kind == .string }.compactMap { field in
                text(field).map { "coalesce(flowrec_regex_search(\(Self.quote("(?i)" + inner)), flowrec_json_string(\($0))), 0)" }
            })
        }
        if rest.hasPrefix("\\[(?i)[^]]*"), rest.hasSuffix("[^]]*]") {
            let inner = String(rest.dropFirst("\\[(?i)[^]]*".count).dropLast("[^]]*]".count))
            guard Self.isPluginValue(inner), !inner.contains("]") else { return nil }
            return anyOf(fields.filter { $0.kind.isJSONText }.map { field in
                "coalesce(flowrec_regex_search(\(Self.quote("(?i)" + inner)), (SELECT value FROM strings WHERE id = r.\"\(field.name)\")), 0)"
            })
        }
        if rest.hasPrefix("\""), rest.hasSuffix("\""), rest.count >= 2 {
            // Equal: the whole (JSON-escaped) value matches, `.` being any character.
            let inner = String(rest.dropFirst().dropLast())
            guard Self.isPluginValue(inner) else { return nil }
            return anyOf(fields.filter { $0.kind == .string }.compactMap { field in
                guard let t = text(field) else { return nil }
                if !inner.contains(".") && !inner.contains("*") {
                    return "coalesce(r.\"\(field.name)\" = (SELECT id FROM strings WHERE value = \(Self.quote(inner))), 0)"
                }
                return "coalesce(flowrec_regex_full(\(Self.quote(inner)), flowrec_json_string(\(t))), 0)"
            })
        }
        if rest == "true" || rest == "false" {
            return anyOf(fields.filter { $0.kind == .bool }.map { "coalesce(r.\"\($0.name)\" \(rest == "true" ? "<> 0" : "= 0"), 0)" })
        }
        if rest.hasSuffix("[,}]") {
            // A number, exactly (`6`) or by a regex of digits (`[1-9][0-9]*`, the at-least
            // alternations), then the end of the value.
            let number = String(rest.dropLast(4))
            guard number.allSatisfy({ "0123456789[]-|(){},*+^".contains($0) }) else { return nil }
            let numeric = fields.filter { $0.kind == .integer }
            if let n = Int64(number), String(n) == number {
                return anyOf(numeric.map { "coalesce(\(column($0)) = \(n)\(notQuoted($0)), 0)" })
            }
            return anyOf(numeric.compactMap { field in
                text(field).map { "coalesce(flowrec_regex_full(\(Self.quote(number)), \($0))\(notQuoted(field)), 0)" }
            })
        }
        return nil
    }

    /// Fields that appear in the line (not labels) under a key matching the pattern's:
    /// the key itself when strict, every key ending with it otherwise; with
    /// `prefixOnly`, every key starting with it (`"DnsLatencyMs` without its quote).
    private func linedFields(key: String, strict: Bool, prefixOnly: Bool) -> [FieldID] {
        (0..<FlowSchema.count).map { FieldID(rawValue: UInt8($0)) }.filter { field in
            guard !model.labelSet.contains(field) else { return false }
            if prefixOnly { return field.name.hasPrefix(key) }
            return strict ? field.name == key : field.name.hasSuffix(key)
        }
    }

    /// The field is in the line: present, with a value or a JSON null. `_nulls` is read
    /// only for rows without a value (CASE is lazy where OR is not), and not at all when
    /// no row of the shard has the field null.
    private func present(_ field: FieldID) -> String {
        let column = "r.\"\(field.name)\""
        if let bookkeeping, !bookkeeping.nulls.contains(field.name) { return "(\(column) IS NOT NULL)" }
        return "(CASE WHEN \(column) IS NOT NULL THEN 1 ELSE instr(',' || coalesce(r.\"_nulls\", '') || ',', ',\(field.name),') > 0 END)"
    }

    /// ` AND NOT <the field arrived as a numeric string>` (the line has it quoted, `"1"`),
    /// or nothing when no row of the shard has it quoted.
    private func notQuoted(_ field: FieldID) -> String {
        if let bookkeeping, !bookkeeping.quoted.contains(field.name) { return "" }
        return " AND NOT (CASE WHEN r.\"_quoted\" IS NULL THEN 0 ELSE instr(',' || r.\"_quoted\" || ',', ',\(field.name),') > 0 END)"
    }

    private func anyOf(_ conditions: [String]) -> String {
        conditions.isEmpty ? "0" : "(" + conditions.joined(separator: " OR ") + ")"
    }

    /// The characters the console lets into a value (`filterRegexpValidation`), with
    /// `.` and `*` as the regex they become: safe to compare as a value pattern.
    static func isPluginValue(_ s: String) -> Bool {
        s.allSatisfy { $0.isLetter || $0.isNumber || "_-.,:/*".contains($0) }
    }
}
