import Foundation

/// Just enough JSON for the arrays flowrec itself writes as text: array fields
/// (`["eth0","br-ex"]`, `[0,1]`, `["0","1"]`), a lone string, and the value sets of skip
/// summaries, read for every shard a query plans over (Foundation's JSONSerialization
/// made reading 721 shards' summaries most of a 21 ms query).
package enum JSONArray {
    package struct Item {
        package var string: String?
        package var number: Int64?
    }

    /// The items of a JSON array of strings, integers and nulls; nil for anything else.
    package static func parse(_ text: String) -> [Item]? {
        var bytes = Array(text.utf8)[...]
        skipSpace(&bytes)
        guard bytes.first == UInt8(ascii: "[") else { return nil }
        bytes = bytes.dropFirst()
        var items: [Item] = []
        skipSpace(&bytes)
        if bytes.first == UInt8(ascii: "]") { return [] }
        while true {
            skipSpace(&bytes)
            if bytes.first == UInt8(ascii: "\"") {
                guard let s = string(&bytes) else { return nil }
                items.append(Item(string: s))
            } else if bytes.starts(with: "null".utf8) {
                bytes = bytes.dropFirst(4)
                items.append(Item())
            } else {
                let digits = bytes.prefix { $0 == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
                guard !digits.isEmpty, let n = Int64(String(decoding: digits, as: UTF8.self)) else { return nil }
                bytes = bytes.dropFirst(digits.count)
                items.append(Item(number: n))
            }
            skipSpace(&bytes)
            guard let next = bytes.first else { return nil }
            bytes = bytes.dropFirst()
            if next == UInt8(ascii: "]") { return items }
            guard next == UInt8(ascii: ",") else { return nil }
        }
    }

    /// The text of a JSON string literal (`"AAE="`), nil otherwise.
    package static func parseString(_ text: String) -> String? {
        var bytes = Array(text.utf8)[...]
        skipSpace(&bytes)
        return string(&bytes)
    }

    private static func skipSpace(_ bytes: inout ArraySlice<UInt8>) {
        while let b = bytes.first, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { bytes = bytes.dropFirst() }
    }

    /// A JSON string at the start of `bytes` (escapes decoded), consumed.
    private static func string(_ bytes: inout ArraySlice<UInt8>) -> String? {
        guard bytes.first == UInt8(ascii: "\"") else { return nil }
        bytes = bytes.dropFirst()
        var out: [UInt8] = []
        while let b = bytes.first {
            bytes = bytes.dropFirst()
            switch b {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let e = bytes.first else { return nil }
                bytes = bytes.dropFirst()
                if let byte = JSONEscape.byte(for: e) {
                    out.append(byte)
                    continue
                }
                switch e {
                case UInt8(ascii: "u"):
                    guard bytes.count >= 4, var code = UInt32(String(decoding: bytes.prefix(4), as: UTF8.self), radix: 16) else { return nil }
                    bytes = bytes.dropFirst(4)
                    // A surrogate pair: the low half follows as another \u escape.
                    if (0xD800...0xDBFF).contains(code), bytes.starts(with: "\\u".utf8), bytes.count >= 6,
                       let low = UInt32(String(decoding: bytes.dropFirst(2).prefix(4), as: UTF8.self), radix: 16), (0xDC00...0xDFFF).contains(low) {
                        bytes = bytes.dropFirst(6)
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out += Array(String(Character(Unicode.Scalar(code) ?? "\u{FFFD}")).utf8)
                default: out.append(e)
                }
            default:
                out.append(b)
            }
        }
        return nil
    }
}

/// The one-character escapes of JSON strings, shared by the flow decoder and `JSONArray`.
enum JSONEscape {
    /// The byte `\e` stands for (`n` → newline, `"` → quote...); nil for `u` and for
    /// anything JSON does not define.
    @inline(__always)
    static func byte(for e: UInt8) -> UInt8? {
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): e
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }
}
