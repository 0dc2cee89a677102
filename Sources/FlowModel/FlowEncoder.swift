/// Writes a `Flow` back as NetObserv JSON: keys in Go's order (sorted bytewise),
/// absent fields omitted, integers exact, strings escaped as Go's `encoding/json`
/// escapes them, and unknown fields put back verbatim in their sorted place.
///
/// For a record produced by flowlogs-pipeline, `decode` then `encode` gives back the
/// same bytes; for any accepted record it gives back the same JSON value.
package struct FlowEncoder: Sendable {
    package init() {}

    /// Appends the flow's JSON object (no newline) to `out`, without the fields in
    /// `omitting` (Loki's line leaves out the fields that are stream labels).
    package func encode(_ flow: Flow, into out: inout [UInt8], omitting: FieldSet = FieldSet()) {
        let tables = FlowSchema.tables
        out.append(UInt8(ascii: "{"))
        var first = true
        let extras = ExtraMembers(flow.extras)
        var nextExtra = 0
        for field in FlowSchema.idsInKeyOrder where flow.present.contains(field) && !omitting.contains(field) {
            // Unknown keys that sort before this field go first.
            while nextExtra < extras.count, extras.key(nextExtra, sortsBefore: field) {
                appendSeparator(&first, &out)
                extras.appendMember(nextExtra, to: &out)
                nextExtra += 1
            }
            appendSeparator(&first, &out)
            tables.keyPrefixBytes.withUnsafeBufferPointer { prefixes in
                out.append(contentsOf: UnsafeBufferPointer(
                    rebasing: prefixes[tables.keyPrefixStart[field.index]..<tables.keyPrefixStart[field.index + 1]]))
            }
            appendValue(of: field, kind: tables.kinds[field.index], in: flow, to: &out)
        }
        while nextExtra < extras.count {
            appendSeparator(&first, &out)
            extras.appendMember(nextExtra, to: &out)
            nextExtra += 1
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The flow as a JSON string; convenient in tests and tools, slower than `encode(_:into:)`.
    package func encode(_ flow: Flow) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        encode(flow, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    private func appendSeparator(_ first: inout Bool, _ out: inout [UInt8]) {
        if first { first = false } else { out.append(UInt8(ascii: ",")) }
    }

    @inline(__always)
    private func appendValue(of field: FieldID, kind: FieldKind, in flow: Flow, to out: inout [UInt8]) {
        if flow.nulls.contains(field) {
            out.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
            return
        }
        let value = flow.values[field.index]
        switch kind {
        case .integer:
            let quoted = flow.numericStrings.contains(field)
            if quoted { out.append(UInt8(ascii: "\"")) }
            if value < 0 && FlowSchema.tables.unsigned64[field.index] {
                JSONEscaping.appendUnsigned(UInt64(bitPattern: value), to: &out)
            } else {
                JSONEscaping.appendInteger(value, to: &out)
            }
            if quoted { out.append(UInt8(ascii: "\"")) }
        case .bool:
            if value != 0 {
                out.append(contentsOf: [UInt8(ascii: "t"), UInt8(ascii: "r"), UInt8(ascii: "u"), UInt8(ascii: "e")])
            } else {
                out.append(contentsOf: [UInt8(ascii: "f"), UInt8(ascii: "a"), UInt8(ascii: "l"), UInt8(ascii: "s"), UInt8(ascii: "e")])
            }
        case .string:
            let range = TextRange(packed: value)
            flow.text.withUnsafeBufferPointer { all in
                JSONEscaping.appendQuoted(UnsafeBufferPointer(rebasing: all[range.start..<range.end]), to: &out)
            }
        case .stringArray, .directionArray, .objectArray, .tcpFlags:
            let range = TextRange(packed: value)
            out.append(contentsOf: flow.text[range.start..<range.end])
        }
    }
}

/// The unknown members of a flow, split so they can be merged into key order.
private struct ExtraMembers {
    let bytes: [UInt8]
    /// For each member: start of its quoted key, end of the key's quotes, end of the member.
    var members: [(keyStart: Int, keyEnd: Int, end: Int)] = []

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        guard !bytes.isEmpty else { return }
        // The bytes were validated by the decoder (or built by `appendExtra`), so a
        // light scan that tracks strings and nesting is enough to find the commas.
        var i = 0, memberStart = 0, keyEnd = -1, depth = 0, inString = false
        while i < bytes.count {
            let c = bytes[i]
            if inString {
                if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 0 && keyEnd < 0 { keyEnd = i + 1 }
                }
            } else {
                switch c {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                case UInt8(ascii: ",") where depth == 0:
                    members.append((memberStart, keyEnd, i))
                    memberStart = i + 1
                    keyEnd = -1
                default: break
                }
            }
            i += 1
        }
        members.append((memberStart, keyEnd, bytes.count))
    }

    var count: Int { members.count }

    /// Compares the member's key (as its unescaped bytes would sort; keys with escapes
    /// are rare enough that comparing their escaped text is an accepted approximation)
    /// with a known field's name.
    func key(_ i: Int, sortsBefore field: FieldID) -> Bool {
        let m = members[i]
        let key = bytes[(m.keyStart + 1)..<(m.keyEnd - 1)]
        return key.lexicographicallyPrecedes(field.name.utf8)
    }

    func appendMember(_ i: Int, to out: inout [UInt8]) {
        let m = members[i]
        out.append(contentsOf: bytes[m.keyStart..<m.end])
    }
}

/// JSON text helpers shared by the encoder and exporters.
package enum JSONEscaping {
    /// Appends `s` as a quoted JSON string, escaping like Go's `encoding/json`:
    /// `\"`, `\\`, `\n`, `\r`, `\t`, other controls and `<`, `>`, `&`, U+2028, U+2029 as `\u00XX`.
    @inlinable
    package static func appendQuoted<S: Sequence<UInt8>>(_ s: S, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let done: Void? = s.withContiguousStorageIfAvailable { buf in appendEscaped(buf, to: &out) }
        if done == nil { Array(s).withUnsafeBufferPointer { appendEscaped($0, to: &out) } }
        out.append(UInt8(ascii: "\""))
    }

    @usableFromInline
    static func appendEscaped(_ buf: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let escapeClass = Self.escapeClass
        var runStart = 0
        var i = 0
        let n = buf.count
        while i < n {
            let c = buf[i]
            if escapeClass[Int(c)] == 0 { i += 1; continue }
            let needsEscape: Bool
            if c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\")
                || c == UInt8(ascii: "<") || c == UInt8(ascii: ">") || c == UInt8(ascii: "&") {
                needsEscape = true
            } else if c == 0xE2, i + 2 < n, buf[i + 1] == 0x80, buf[i + 2] == 0xA8 || buf[i + 2] == 0xA9 {
                needsEscape = true
            } else {
                needsEscape = false
            }
            if !needsEscape { i += 1; continue }
            if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[runStart..<i])) }
            switch c {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(c)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(c)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0xE2:
                appendUnicodeEscape(buf[i + 2] == 0xA8 ? 0x2028 : 0x2029, to: &out)
                i += 2
            default:
                appendUnicodeEscape(UInt16(c), to: &out)
            }
            i += 1
            runStart = i
        }
        if runStart < n { out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[runStart..<n])) }
    }

    /// 1 for bytes that may need escaping (controls, `"`, `\\`, `<`, `>`, `&`, and 0xE2,
    /// the lead byte of U+2028/U+2029); 0 for bytes copied as they are.
    @usableFromInline
    static let escapeClass: [UInt8] = (0..<256).map { c in
        c < 0x20 || c == 0x22 || c == 0x5C || c == 0x3C || c == 0x3E || c == 0x26 || c == 0xE2 ? 1 : 0
    }

    private static func appendUnicodeEscape(_ v: UInt16, to out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "u"))
        out.append(hex[Int(v >> 12 & 0xF)])
        out.append(hex[Int(v >> 8 & 0xF)])
        out.append(hex[Int(v >> 4 & 0xF)])
        out.append(hex[Int(v & 0xF)])
    }

    /// Appends the decimal digits of `value`.
    /// An unsigned 64-bit integer in decimal.
    package static func appendUnsigned(_ value: UInt64, to out: inout [UInt8]) {
        out.append(contentsOf: String(value).utf8)
    }

    package static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value >= 0 && value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, no allocation
        var count = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            while magnitude > 0 {
                count += 1
                scratch[24 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[(24 - count)..<24]))
        }
    }
}
