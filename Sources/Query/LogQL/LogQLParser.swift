/// A LogQL query that cannot be parsed (or is outside the subset flowrec answers), with
/// the position and Loki's own wording: "parse error at line 1, col 12: syntax error:
/// unexpected IDENTIFIER, expecting ...".
package struct LogQLParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package let line: Int
    package let column: Int
    package let message: String

    package var description: String { "parse error at line \(line), col \(column): \(message)" }
}

/// Parses the LogQL subset of `LogQLQuery` by recursive descent.
///
/// ```swift
/// let query = try LogQLParser.parse(#"{app="netobserv-flowcollector"}|~`Proto":6[,}]`"#)
/// ```
package struct LogQLParser {
    private var tokens: [Token]
    private var index = 0
    private let text: [UInt8]

    package static func parse(_ query: String) throws(LogQLParseError) -> LogQLQuery {
        var parser = try LogQLParser(query)
        let result = try parser.parseQuery()
        guard parser.current.kind == .end else { throw parser.unexpected(expecting: "end of query") }
        return result
    }

    private init(_ query: String) throws(LogQLParseError) {
        text = Array(query.utf8)
        var lexer = Lexer(text)
        tokens = try lexer.tokens()
    }

    // MARK: Grammar

    private mutating func parseQuery() throws(LogQLParseError) -> LogQLQuery {
        if current.kind == .leftBrace { return .logs(try parseSelection()) }
        return .metric(try parseMetric())
    }

    /// metric := term ('/' NUMBER)*
    private mutating func parseMetric() throws(LogQLParseError) -> MetricExpression {
        var expression = try parseMetricTerm()
        while current.kind == .slash {
            advance()
            let divisor = try expectNumber()
            expression = .divide(expression, divisor)
        }
        return expression
    }

    private mutating func parseMetricTerm() throws(LogQLParseError) -> MetricExpression {
        let token = current
        switch token.kind {
        case .leftParen:
            advance()
            let inner = try parseMetric()
            // `(fn(...) by (labels))`: grouping written after a range aggregation.
            if case .range(var range) = inner, isKeyword("by") {
                range.by = try parseGrouping()
                try expect(.rightParen, "')'")
                return .range(range)
            }
            try expect(.rightParen, "')'")
            return inner
        case .identifier:
            let name = token.text
            if name == "topk" || name == "bottomk" {
                advance()
                try expect(.leftParen, "'('")
                let k = try expectNumber()
                guard k >= 1, k == k.rounded(), k <= 100_000 else { throw error(at: token, "invalid k for \(name): \(k)") }
                try expect(.comma, "','")
                let inner = try parseMetric()
                try expect(.rightParen, "')'")
                return .rank(k: Int(k), bottom: name == "bottomk", inner)
            }
            if let op = VectorAggregation.Operator(rawValue: name) {
                advance()
                var grouping: [String]? = isKeyword("by") ? try parseGrouping() : nil
                try expect(.leftParen, "'('")
                let inner = try parseMetric()
                try expect(.rightParen, "')'")
                if grouping == nil, isKeyword("by") { grouping = try parseGrouping() }
                return .aggregate(op, by: grouping, inner)
            }
            if let function = RangeAggregation.Function(rawValue: name) {
                advance()
                try expect(.leftParen, "'('")
                var quantile: Double?
                if function == .quantileOverTime {
                    let q = try expectNumber()
                    guard (0...1).contains(q) else { throw error(at: token, "the quantile must be between 0 and 1") }
                    quantile = q
                    try expect(.comma, "','")
                }
                let selection = try parseSelection()
                guard current.kind == .range else { throw unexpected(expecting: "a range such as [1m]") }
                let rangeToken = current
                guard let seconds = Self.durationSeconds(rangeToken.text), seconds > 0 else {
                    throw error(at: rangeToken, "invalid range \(rangeToken.text): a whole number of seconds such as 30s, 2m or 1h is expected")
                }
                advance()
                try expect(.rightParen, "')'")
                var range = RangeAggregation(function, quantile: quantile, selection, rangeSeconds: seconds)
                if isKeyword("by") { range.by = try parseGrouping() }
                if function == .rate || function == .countOverTime, selection.unwrapped != nil, function == .countOverTime {
                    throw error(at: token, "count_over_time counts lines: it takes no unwrap")
                }
                if function != .rate && function != .countOverTime && selection.unwrapped == nil {
                    throw error(at: token, "\(name) needs `| unwrap FIELD`")
                }
                return .range(range)
            }
            throw unexpected(expecting: "a metric aggregation (topk, sum, rate, count_over_time, ...) or a selector '{'")
        default:
            throw unexpected(expecting: "a selector '{' or a metric aggregation")
        }
    }

    /// `by (a, b)`.
    private mutating func parseGrouping() throws(LogQLParseError) -> [String] {
        advance()  // by
        try expect(.leftParen, "'('")
        var labels: [String] = []
        while current.kind != .rightParen {
            guard current.kind == .identifier else { throw unexpected(expecting: "a label name") }
            labels.append(current.text)
            advance()
            if current.kind == .comma { advance() } else { break }
        }
        try expect(.rightParen, "')'")
        return labels
    }

    /// selection := '{' matcher (',' matcher)* '}' stage*
    private mutating func parseSelection() throws(LogQLParseError) -> LogSelection {
        try expect(.leftBrace, "'{'")
        var matchers: [LabelMatcher] = []
        while current.kind != .rightBrace {
            guard current.kind == .identifier else { throw unexpected(expecting: "a label name") }
            let name = current.text
            advance()
            let opToken = current
            guard let op = LabelMatcher.Operator(rawValue: opToken.text), opToken.kind == .operator else {
                throw unexpected(expecting: "=, !=, =~ or !~")
            }
            advance()
            guard current.kind == .string else { throw unexpected(expecting: "a quoted value") }
            matchers.append(LabelMatcher(name, op, current.text))
            advance()
            if current.kind == .comma { advance() } else { break }
        }
        try expect(.rightBrace, "'}'")
        guard !matchers.isEmpty else { throw error(at: current, "queries require at least one label matcher") }
        var stages: [PipelineStage] = []
        while true {
            switch current.kind {
            case .lineFilter:
                let op = current.text
                advance()
                guard current.kind == .string else { throw unexpected(expecting: "a quoted or `raw` pattern") }
                let pattern = current.text
                advance()
                switch op {
                case "|~": stages.append(.lineFilter(LineFilter(.regex, negated: false, pattern)))
                case "!~": stages.append(.lineFilter(LineFilter(.regex, negated: true, pattern)))
                case "|=": stages.append(.lineFilter(LineFilter(.contains, negated: false, pattern)))
                default: stages.append(.lineFilter(LineFilter(.contains, negated: true, pattern)))
                }
            case .pipe:
                advance()
                stages.append(try parseStage())
            default:
                return LogSelection(matchers: matchers, stages: stages)
            }
        }
    }

    private mutating func parseStage() throws(LogQLParseError) -> PipelineStage {
        guard current.kind == .identifier else { throw unexpected(expecting: "json, unwrap, __error__ or a label filter") }
        let name = current.text
        if name == "json" && next.kind != .operator {
            advance()
            return .json
        }
        if name == "unwrap" && next.kind == .identifier {
            advance()
            let field = current.text
            advance()
            return .unwrap(field)
        }
        var alternatives: [LabelFilter] = [try parseLabelFilter()]
        while isKeyword("or") {
            advance()
            alternatives.append(try parseLabelFilter())
        }
        if alternatives.count == 1, alternatives[0].name == "__error__", alternatives[0].op == .equal,
           alternatives[0].value == .string("") {
            return .dropErrors
        }
        return .labelFilter(alternatives)
    }

    private mutating func parseLabelFilter() throws(LogQLParseError) -> LabelFilter {
        guard current.kind == .identifier else { throw unexpected(expecting: "a label name") }
        let name = current.text
        advance()
        guard current.kind == .operator, let op = LabelFilter.Operator(rawValue: current.text) else {
            throw unexpected(expecting: "=, !=, =~, !~, >, >=, < or <=")
        }
        advance()
        let token = current
        switch token.kind {
        case .string:
            advance()
            return LabelFilter(name, op, .string(token.text))
        case .number:
            advance()
            guard let value = Double(token.text) else { throw error(at: token, "invalid number \(token.text)") }
            return LabelFilter(name, op, .number(value))
        case .identifier where token.text == "ip":
            guard op == .equal || op == .notEqual else { throw error(at: token, "ip() takes = or != only") }
            advance()
            try expect(.leftParen, "'('")
            guard current.kind == .string else { throw unexpected(expecting: "a quoted address, CIDR or range") }
            let spec = current.text
            guard IPMatcher(spec) != nil else { throw error(at: current, "invalid ip filter \"\(spec)\": an address, a CIDR or a range a-b") }
            advance()
            try expect(.rightParen, "')'")
            return LabelFilter(name, op, .ip(spec))
        default:
            throw unexpected(expecting: "a quoted value, a number or ip(\"...\")")
        }
    }

    // MARK: Tokens

    private var current: Token { tokens[index] }
    private var next: Token { tokens[min(index + 1, tokens.count - 1)] }
    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }
    private func isKeyword(_ word: String) -> Bool { current.kind == .identifier && current.text == word }

    private mutating func expect(_ kind: Token.Kind, _ what: String) throws(LogQLParseError) {
        guard current.kind == kind else { throw unexpected(expecting: what) }
        advance()
    }

    private mutating func expectNumber() throws(LogQLParseError) -> Double {
        guard current.kind == .number, let value = Double(current.text) else { throw unexpected(expecting: "a number") }
        advance()
        return value
    }

    private func unexpected(expecting: String) -> LogQLParseError {
        let token = current
        let found = token.kind == .end ? "end of query" : "\(token.kind.name) \(token.kind == .string ? "\"\(token.text)\"" : token.text)"
        return error(at: token, "syntax error: unexpected \(found), expecting \(expecting)")
    }

    private func error(at token: Token, _ message: String) -> LogQLParseError {
        LogQLParseError(line: 1, column: token.column, message: message)
    }

    /// `30s`, `2m`, `1h`, `1m30s`, `360s`, `1d`: whole seconds only (the plugin sends those).
    static func durationSeconds(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number: Int64 = 0
        var sawDigit = false
        var chars = Array(text.utf8)[...]
        while let c = chars.first {
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                let (m, o1) = number.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(c - UInt8(ascii: "0")))
                guard !o1, !o2 else { return nil }
                number = a
                sawDigit = true
                chars = chars.dropFirst()
                continue
            }
            guard sawDigit else { return nil }
            let unit: Int64
            if chars.starts(with: Array("ms".utf8)) { return nil }
            switch c {
            case UInt8(ascii: "s"): unit = 1
            case UInt8(ascii: "m"): unit = 60
            case UInt8(ascii: "h"): unit = 3600
            case UInt8(ascii: "d"): unit = 86_400
            case UInt8(ascii: "w"): unit = 604_800
            default: return nil
            }
            let (part, o) = number.multipliedReportingOverflow(by: unit)
            guard !o else { return nil }
            total += part
            number = 0
            sawDigit = false
            chars = chars.dropFirst()
        }
        guard !sawDigit, total <= 366 * 86_400 else { return nil }
        return total
    }
}

/// A token and the column (1-based) it starts at.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case identifier, string, number, `operator`, lineFilter, pipe, comma, slash
        case leftBrace, rightBrace, leftParen, rightParen, range, end

        var name: String {
            switch self {
            case .identifier: "IDENTIFIER"
            case .string: "STRING"
            case .number: "NUMBER"
            case .operator, .lineFilter: "OPERATOR"
            case .pipe: "|"
            case .comma: ","
            case .slash: "/"
            case .leftBrace: "{"
            case .rightBrace: "}"
            case .leftParen: "("
            case .rightParen: ")"
            case .range: "RANGE"
            case .end: "END"
            }
        }
    }
    let kind: Kind
    let text: String
    let column: Int
}

/// Splits a query into tokens: strings in double quotes (with escapes) or backticks (raw),
/// `[5m]` ranges, identifiers, numbers and LogQL's operators.
struct Lexer {
    let bytes: [UInt8]
    var pos = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func tokens() throws(LogQLParseError) -> [Token] {
        var tokens: [Token] = []
        while true {
            skipSpace()
            let column = pos + 1
            guard pos < bytes.count else {
                tokens.append(Token(kind: .end, text: "", column: column))
                return tokens
            }
            let c = bytes[pos]
            func single(_ kind: Token.Kind) -> Token {
                pos += 1
                return Token(kind: kind, text: String(UnicodeScalar(c)), column: column)
            }
            func two(_ kind: Token.Kind) -> Token {
                pos += 2
                return Token(kind: kind, text: String(decoding: bytes[(pos - 2)..<pos], as: UTF8.self), column: column)
            }
            let n = pos + 1 < bytes.count ? bytes[pos + 1] : 0
            switch c {
            case UInt8(ascii: "{"): tokens.append(single(.leftBrace))
            case UInt8(ascii: "}"): tokens.append(single(.rightBrace))
            case UInt8(ascii: "("): tokens.append(single(.leftParen))
            case UInt8(ascii: ")"): tokens.append(single(.rightParen))
            case UInt8(ascii: ","): tokens.append(single(.comma))
            case UInt8(ascii: "/"): tokens.append(single(.slash))
            case UInt8(ascii: "|"):
                tokens.append(n == UInt8(ascii: "~") || n == UInt8(ascii: "=") ? two(.lineFilter) : single(.pipe))
            case UInt8(ascii: "!"):
                guard n == UInt8(ascii: "~") || n == UInt8(ascii: "=") else { throw error(column, "syntax error: unexpected !") }
                // `!~`/`!=` after a selector or stage is a line filter; after a label name an operator.
                let afterName = tokens.last?.kind == .identifier
                tokens.append(two(afterName ? .operator : .lineFilter))
            case UInt8(ascii: "="):
                tokens.append(n == UInt8(ascii: "~") ? two(.operator) : single(.operator))
            case UInt8(ascii: ">"), UInt8(ascii: "<"):
                tokens.append(n == UInt8(ascii: "=") ? two(.operator) : single(.operator))
            case UInt8(ascii: "\""):
                tokens.append(Token(kind: .string, text: try quoted(column), column: column))
            case UInt8(ascii: "`"):
                pos += 1
                let start = pos
                while pos < bytes.count, bytes[pos] != UInt8(ascii: "`") { pos += 1 }
                guard pos < bytes.count else { throw error(column, "syntax error: unterminated raw string") }
                tokens.append(Token(kind: .string, text: String(decoding: bytes[start..<pos], as: UTF8.self), column: column))
                pos += 1
            case UInt8(ascii: "["):
                pos += 1
                let start = pos
                while pos < bytes.count, bytes[pos] != UInt8(ascii: "]") { pos += 1 }
                guard pos < bytes.count else { throw error(column, "syntax error: unterminated range [") }
                let text = String(decoding: bytes[start..<pos], as: UTF8.self).trimmingSpaces()
                tokens.append(Token(kind: .range, text: text, column: column))
                pos += 1
            default:
                if isIdentifierStart(c) {
                    let start = pos
                    while pos < bytes.count, isIdentifierPart(bytes[pos]) { pos += 1 }
                    tokens.append(Token(kind: .identifier, text: String(decoding: bytes[start..<pos], as: UTF8.self), column: column))
                } else if isDigit(c) || (c == UInt8(ascii: "-") && isDigit(n)) || c == UInt8(ascii: ".") {
                    let start = pos
                    pos += 1
                    while pos < bytes.count, isDigit(bytes[pos]) || bytes[pos] == UInt8(ascii: ".")
                        || bytes[pos] | 0x20 == UInt8(ascii: "e")
                        || ((bytes[pos] == UInt8(ascii: "-") || bytes[pos] == UInt8(ascii: "+")) && bytes[pos - 1] | 0x20 == UInt8(ascii: "e")) {
                        pos += 1
                    }
                    tokens.append(Token(kind: .number, text: String(decoding: bytes[start..<pos], as: UTF8.self), column: column))
                } else {
                    throw error(column, "syntax error: unexpected character \(String(decoding: [c], as: UTF8.self))")
                }
            }
        }
    }

    private mutating func skipSpace() {
        while pos < bytes.count, bytes[pos] == UInt8(ascii: " ") || bytes[pos] == UInt8(ascii: "\t")
            || bytes[pos] == UInt8(ascii: "\n") || bytes[pos] == UInt8(ascii: "\r") { pos += 1 }
    }

    /// A double-quoted string with Go's escapes (`\"`, `\\`, `\n`, `\t`, `\uXXXX`, ...).
    private mutating func quoted(_ column: Int) throws(LogQLParseError) -> String {
        pos += 1
        var out: [UInt8] = []
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\"), pos + 1 < bytes.count {
                let e = bytes[pos + 1]
                pos += 2
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "u") where pos + 4 <= bytes.count:
                    let hex = String(decoding: bytes[pos..<(pos + 4)], as: UTF8.self)
                    guard let scalar = UInt32(hex, radix: 16).flatMap(Unicode.Scalar.init) else {
                        throw error(column, "syntax error: invalid escape \\u\(hex)")
                    }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    pos += 4
                default:
                    // `\"`, `\\`, and regex escapes such as `\.` (kept as `\.`: Go keeps
                    // unknown escapes an error, but the plugin never sends them).
                    if e == UInt8(ascii: "\"") || e == UInt8(ascii: "\\") { out.append(e) } else { out.append(contentsOf: [UInt8(ascii: "\\"), e]) }
                }
                continue
            }
            out.append(c)
            pos += 1
        }
        throw error(column, "syntax error: unterminated string")
    }

    private func error(_ column: Int, _ message: String) -> LogQLParseError { LogQLParseError(line: 1, column: column, message: message) }
    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    private func isIdentifierStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || c == UInt8(ascii: "_")
    }
    private func isIdentifierPart(_ c: UInt8) -> Bool { isIdentifierStart(c) || isDigit(c) }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
