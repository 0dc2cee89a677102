import FlowModel
import Foundation

/// How flows become Parquet columns: NetObserv's field names, and types a dataframe
/// reads without help (`TimeFlowEndMs` a UTC timestamp, counters 64-bit integers, names
/// strings, `Interfaces` and `Flags` lists of strings, `IfDirections` a list of integers).
/// `NetworkEvents` (objects of strings) stays its JSON text, and so does `_extras`, the
/// fields flowrec does not know (one JSON object per flow, verbatim).
enum ParquetFlows {
    /// The bookkeeping column that keeps unknown fields: without it an export of every
    /// field would drop what a newer agent sent.
    static let extras = ParquetWriter.Column(name: "_extras", kind: .string, annotation: .string)

    /// The columns for `names`: NetObserv's field names, or `_extras`; nil for any other name.
    static func columns(for names: [String]) -> [ParquetWriter.Column]? {
        var columns: [ParquetWriter.Column] = []
        for name in names {
            if name == extras.name { columns.append(extras); continue }
            guard let id = FlowSchema.id(named: name) else { return nil }
            columns.append(column(for: id))
        }
        return columns
    }

    static func column(for field: FieldID) -> ParquetWriter.Column {
        let spec = field.spec
        switch spec.kind {
        case .integer:
            let annotation: ParquetWriter.Column.Annotation =
                spec.isUnsigned64 ? .unsigned64 : (spec.name == "TimeFlowEndMs" || spec.name == "TimeFlowStartMs" ? .timestampMillis : .none)
            return .init(name: spec.name, kind: .int64, annotation: annotation)
        case .bool: return .init(name: spec.name, kind: .boolean, annotation: .none)
        case .string, .objectArray: return .init(name: spec.name, kind: .string, annotation: .string)
        case .stringArray, .tcpFlags: return .init(name: spec.name, kind: .stringList, annotation: .string)
        case .directionArray: return .init(name: spec.name, kind: .int64List, annotation: .none)
        }
    }

    /// A field's value as its column takes it, from the `flows` view's value; nil when
    /// the stored value has no faithful form in the column (an array element that is
    /// not an integer in `IfDirections`, say): the exporter writes null and counts it.
    static func value(_ value: QueryValue, for column: ParquetWriter.Column) -> ParquetWriter.Value? {
        switch (column.kind, value) {
        case (_, .null): return .null
        case (.int64, .integer(let v)): return .int64(v)
        case (.int64, .unsigned(let v)): return .int64(Int64(bitPattern: v))
        case (.boolean, .integer(let v)): return .boolean(v != 0)
        case (.string, .text(let t)): return .string(t)
        case (.stringList, .text(let t)):
            if let items = JSONArray.parse(t) { return .strings(items.map { $0.string ?? $0.number.map(String.init) }) }
            // Flags written as a number (agents before 1.8): the names of its bits.
            if let bits = Int64(t) { return .strings(TCPFlagNames.names(bits)) }
            return nil
        case (.stringList, .integer(let bits)): return .strings(TCPFlagNames.names(bits))
        case (.int64List, .text(let t)):
            if let items = JSONArray.parse(t) {
                let numbers = items.compactMap { $0.number ?? $0.string.flatMap { Int64($0) } }
                return numbers.count == items.count ? .int64s(numbers) : nil
            }
            // A base64 string (the agent of January 2025): one direction per byte.
            if let quoted = JSONArray.parseString(t), let bytes = Data(base64Encoded: quoted) { return .int64s(bytes.map { Int64($0) }) }
            return nil
        default:
            return nil
        }
    }
}

/// Just enough JSON for the array fields flowrec stores as text: arrays of strings or
/// integers (`["eth0","br-ex"]`, `[0,1]`, `["0","1"]`), and a lone string.
enum JSONArray {
    struct Item {
        var string: String?
        var number: Int64?
    }

    static func parse(_ text: String) -> [Item]? {
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
    static func parseString(_ text: String) -> String? {
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
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
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
