/// CSV as RFC 4180 has it: a field is quoted when it holds a comma, a quote or a line
/// break, its quotes doubled; rows end with a newline. What `flowrec export --format csv`
/// and the CSV output of `query`, `sql` and `top` write.
package enum CSV {
    /// `s` as a CSV field.
    package static func field(_ s: String) -> String {
        var bytes: [UInt8] = []
        appendField(s, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `s` as a CSV field, appended to `out` as UTF-8. A byte scan: the Foundation searches
    /// it replaced (`contains`, `replacingOccurrences`) were 70% of a CSV export's time.
    package static func appendField(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            let needsQuotes = bytes.contains {
                $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r")
            }
            guard needsQuotes else { return out.append(contentsOf: bytes) }
            out.append(UInt8(ascii: "\""))
            for byte in bytes {
                out.append(byte)
                if byte == UInt8(ascii: "\"") { out.append(byte) }
            }
            out.append(UInt8(ascii: "\""))
        }
    }

    /// One row of `values` (NULL: an empty field), with its newline, appended to `out`.
    package static func appendRow(_ values: [QueryValue], to out: inout [UInt8]) {
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            switch value {
            case .null: break
            case .text(let t): appendField(t, to: &out)
            default: out.append(contentsOf: value.text.utf8)
            }
        }
        out.append(UInt8(ascii: "\n"))
    }
}
