/// A deliberately simple JSON parser used as the oracle for "equal as JSON values".
/// It shares no code with `FlowDecoder`, so a bug in one shows up as a mismatch.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    /// Integers are kept exactly; other numbers as Double.
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    struct ParseError: Error {}

    static func parse(_ text: String) throws -> JSONValue {
        var parser = Parser(chars: Array(text.unicodeScalars))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.i == parser.chars.count else { throw ParseError() }
        return value
    }

    private struct Parser {
        let chars: [Unicode.Scalar]
        var i = 0

        mutating func skipSpace() { while i < chars.count, " \n\r\t".unicodeScalars.contains(chars[i]) { i += 1 } }

        mutating func value() throws -> JSONValue {
            skipSpace()
            guard i < chars.count else { throw ParseError() }
            switch chars[i] {
            case "{":
                i += 1
                var dict: [String: JSONValue] = [:]
                skipSpace()
                if chars[i] == "}" { i += 1; return .object(dict) }
                while true {
                    skipSpace()
                    guard case .string(let key) = try value() else { throw ParseError() }
                    skipSpace()
                    guard chars[i] == ":" else { throw ParseError() }
                    i += 1
                    dict[key] = try value()
                    skipSpace()
                    if chars[i] == "," { i += 1; continue }
                    guard chars[i] == "}" else { throw ParseError() }
                    i += 1
                    return .object(dict)
                }
            case "[":
                i += 1
                var items: [JSONValue] = []
                skipSpace()
                if chars[i] == "]" { i += 1; return .array(items) }
                while true {
                    items.append(try value())
                    skipSpace()
                    if chars[i] == "," { i += 1; continue }
                    guard chars[i] == "]" else { throw ParseError() }
                    i += 1
                    return .array(items)
                }
            case "\"":
                i += 1
                var s = String.UnicodeScalarView()
                while chars[i] != "\"" {
                    if chars[i] == "\\" {
                        i += 1
                        switch chars[i] {
                        case "n": s.append("\n")
                        case "t": s.append("\t")
                        case "r": s.append("\r")
                        case "b": s.append("\u{8}")
                        case "f": s.append("\u{C}")
                        case "u":
                            var code = UInt32(String(String.UnicodeScalarView(chars[(i + 1)...(i + 4)])), radix: 16)!
                            i += 4
                            if (0xD800..<0xDC00).contains(code) {
                                let low = UInt32(String(String.UnicodeScalarView(chars[(i + 3)...(i + 6)])), radix: 16)!
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                                i += 6
                            }
                            s.append(Unicode.Scalar(code)!)
                        default: s.append(chars[i])
                        }
                    } else {
                        s.append(chars[i])
                    }
                    i += 1
                }
                i += 1
                return .string(String(s))
            case "t": i += 4; return .bool(true)
            case "f": i += 5; return .bool(false)
            case "n": i += 4; return .null
            default:
                let start = i
                while i < chars.count, "+-0123456789.eE".unicodeScalars.contains(chars[i]) { i += 1 }
                let text = String(String.UnicodeScalarView(chars[start..<i]))
                if let v = Int64(text) { return .integer(v) }
                guard let d = Double(text) else { throw ParseError() }
                if d.rounded() == d, abs(d) < 9e18 { return .integer(Int64(d)) }
                return .number(d)
            }
        }
    }
}
