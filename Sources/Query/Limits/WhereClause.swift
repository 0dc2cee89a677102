/// A filter on the flows (`--where`, the API's `where`), checked to be one SQL
/// expression before it is put in a statement: no statement separators, comments,
/// sub-selects or set operations, balanced parentheses, and functions from
/// `SQLFunctions.allowed` only (the authorizer enforces that last part when it runs).
/// So `1=0) UNION ALL SELECT name, sql FROM sqlite_master --` is refused with a reason
/// instead of reading internal tables.
package struct WhereClause: Sendable, Equatable {
    package let text: String

    /// nil for an empty filter.
    package init?(_ text: String?) throws(QueryError) {
        guard let text, !text.allSatisfy(\.isWhitespace) else { return nil }
        try Self.check(text)
        self.text = text
    }

    /// Words that only a statement (not an expression) would hold.
    static let statementWords: Set<String> = [
        "SELECT", "UNION", "INTERSECT", "EXCEPT", "WITH", "FROM", "INSERT", "UPDATE", "DELETE", "DROP", "CREATE",
        "ALTER", "ATTACH", "DETACH", "PRAGMA", "VACUUM", "REINDEX", "ANALYZE", "BEGIN", "COMMIT", "ROLLBACK",
        "SAVEPOINT", "RELEASE", "REPLACE", "VALUES", "ORDER", "GROUP", "HAVING", "LIMIT", "OFFSET", "WINDOW", "RETURNING",
    ]

    private static func check(_ text: String) throws(QueryError) {
        let bytes = Array(text.utf8)
        var depth = 0
        var i = 0
        func refuse(_ why: String) -> QueryError {
            QueryError(.invalidStatement, "the filter must be one SQL expression over the flow fields (e.g. \"DstPort = 443 AND SrcK8S_Namespace = 'shop'\"); \(why)")
        }
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"), UInt8(ascii: "["):
                // A string or a quoted name: skip to its end (a doubled quote is one quote).
                let close = c == UInt8(ascii: "[") ? UInt8(ascii: "]") : c
                i += 1
                while i < bytes.count {
                    if bytes[i] == close {
                        if close != UInt8(ascii: "]"), i + 1 < bytes.count, bytes[i + 1] == close { i += 2; continue }
                        break
                    }
                    i += 1
                }
                guard i < bytes.count else { throw refuse("a quote is not closed") }
            case UInt8(ascii: ";"):
                throw refuse("';' ends a statement")
            case UInt8(ascii: "-") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "-"):
                throw refuse("'--' starts a comment")
            case UInt8(ascii: "/") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "*"):
                throw refuse("'/*' starts a comment")
            case UInt8(ascii: "("):
                depth += 1
            case UInt8(ascii: ")"):
                depth -= 1
                guard depth >= 0 else { throw refuse("a ')' closes more than was opened") }
            default:
                if isWordStart(c) {
                    let start = i
                    while i + 1 < bytes.count, isWordPart(bytes[i + 1]) { i += 1 }
                    let word = String(decoding: bytes[start...i], as: UTF8.self).uppercased()
                    if statementWords.contains(word) { throw refuse("'\(word)' belongs in a statement, not in a filter") }
                }
            }
            i += 1
        }
        guard depth == 0 else { throw refuse("a '(' is not closed") }
    }

    private static func isWordStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || c == UInt8(ascii: "_")
    }

    private static func isWordPart(_ c: UInt8) -> Bool { isWordStart(c) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "$") }
}

/// The SQL functions a user's filter or statement may call: SQLite's core, date, math,
/// JSON and aggregate functions. Left out: `load_extension`, `fts3_tokenizer` (leaks a
/// pointer), `zeroblob`/`randomblob` (allocate what they are asked), the `sqlite_*`
/// introspection functions and anything an extension might add.
package enum SQLFunctions {
    package static let allowed: Set<String> = [
        // core scalar
        "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull", "iif", "instr", "length",
        "like", "likelihood", "likely", "lower", "ltrim", "max", "min", "nullif", "octet_length", "printf", "quote",
        "random", "replace", "round", "rtrim", "sign", "soundex", "substr", "substring", "trim", "typeof", "unhex",
        "unicode", "unlikely", "upper",
        // aggregate
        "avg", "count", "group_concat", "string_agg", "sum", "total",
        // window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
        "last_value", "nth_value",
        // date and time
        "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
        // math
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh", "degrees", "exp",
        "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians", "sin", "sinh", "sqrt", "tan",
        "tanh", "trunc",
        // JSON
        "json", "json_array", "json_array_length", "json_error_position", "json_extract", "json_insert", "json_object",
        "json_patch", "json_remove", "json_replace", "json_set", "json_type", "json_valid", "json_quote",
        "json_group_array", "json_group_object", "json_each", "json_tree",
        // flowrec's own, registered by the LogQL engine on the connections it reads
        "flowrec_regex_full", "flowrec_regex_search", "flowrec_ip", "flowrec_json_string", "flowrec_u64", "flowrec_number",
    ]

    /// Whether the authorizer lets a statement call `name`.
    package static func isAllowed(_ name: String) -> Bool { allowed.contains(name.lowercased()) }
}
