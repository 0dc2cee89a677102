package import FlowModel
package import ShardStore

/// What the encoder reads a row from: a decoded `Flow`, or a `ShardRow` read in place
/// from a shard (no intermediate flow: the forwarder's fast path).
package protocol ClickHouseRowSource {
    /// An integer or boolean field; nil when absent or null.
    func integer(_ field: FieldID) -> Int64?
    /// A text field's UTF-8; nil when absent or null.
    func withText<R>(_ field: FieldID, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R?
    /// The unknown fields' members, `"key":value` joined by commas; nil when none.
    func withExtras<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R?
}

extension Flow: ClickHouseRowSource {
    package func withText<R>(_ field: FieldID, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        withUTF8(field) { bytes in body(bytes) }
    }

    package func withExtras<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        extrasBytes.isEmpty ? nil : extrasBytes.withUnsafeBufferPointer(body)
    }
}

extension ShardRow: ClickHouseRowSource {
    package func withText<R>(_ field: FieldID, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        withUTF8(field, body)
    }
}

/// Turns flows into the body of one `INSERT ... FORMAT RowBinary` or `FORMAT Native`
/// for the flows table (`ClickHouseSchema.columns`).
///
/// Binary formats, not JSON: the server parses them without text conversion, which is
/// most of the cost of an insert. Native is columnar (one buffer per column, joined at
/// the end); RowBinary is written row by row into one buffer. Both carry the same values:
///
/// - absent and JSON `null` values are NULL (the empty string or array in sort-key and
///   array columns, which cannot hold NULL); the shard itself keeps the difference;
/// - an integer that does not fit its column (a negative port, say) is NULL in the
///   column and kept, as written, in `_extras`, so nothing is lost in ClickHouse either.
package struct ClickHouseBlockEncoder {
    package enum Format: String, Sendable, CaseIterable {
        case rowBinary = "RowBinary"
        case native = "Native"
    }

    package let format: Format
    package private(set) var rowCount = 0

    private let plans: [ColumnPlan]
    private let columns: [ClickHouseSchema.Column]
    private var rows: [UInt8] = []
    /// Native only: per column, the null map (Nullable) or offsets (Array), then values.
    private var prefixes: [[UInt8]]
    private var values: [[UInt8]]
    private var arrayOffset: [UInt64]

    package init(format: Format, dialect: ClickHouseSchema.Dialect = .compatible) {
        self.format = format
        columns = ClickHouseSchema.columns(dialect: dialect)
        plans = columns.map(ColumnPlan.init)
        prefixes = Array(repeating: [], count: columns.count)
        values = Array(repeating: [], count: columns.count)
        arrayOffset = Array(repeating: 0, count: columns.count)
    }

    /// The column list of the INSERT, in payload order.
    package var columnList: String { Self.columnList(columns) }

    /// The column list of an INSERT of `dialect`'s table, without an encoder.
    package static func columnList(dialect: ClickHouseSchema.Dialect) -> String { columnList(ClickHouseSchema.columns(dialect: dialect)) }

    private static func columnList(_ columns: [ClickHouseSchema.Column]) -> String {
        columns.map { "`\($0.name)`" }.joined(separator: ", ")
    }

    /// Adds one row; `shard` fills the `_shard` column.
    package mutating func append<Row: ClickHouseRowSource>(_ flow: Row, shard: [UInt8]) {
        var misfits: [(FieldID, [UInt8])] = []
        for (index, plan) in plans.enumerated() {
            switch plan {
            case let .integer(field, width, range, nullable):
                let value = flow.integer(field)
                let fits = value.map { range.contains($0) } ?? true
                if let value, !fits { misfits.append((field, Array(String(value).utf8))) }
                if let stored = fits ? value : nil {
                    if nullable { writePresent(column: index) }
                    writeInteger(stored, width: width, column: index)
                } else if nullable {
                    writeNull(column: index) { BinaryWriter.littleEndian(0, width: width, into: &$0) }
                } else {
                    writeInteger(0, width: width, column: index)
                }
            case let .text(field, nullable):
                let written: Bool? = flow.withText(field) { bytes in
                    if nullable { writePresent(column: index) }
                    writeString(bytes, column: index)
                    return true
                }
                if written == nil {
                    if nullable {
                        writeNull(column: index) { $0.append(0) }
                    } else {
                        writeString(UnsafeBufferPointer(start: nil, count: 0), column: index)
                    }
                }
            case let .stringArray(field):
                let parsed: [[UInt8]]?? = flow.withText(field) { text in
                    let elements = JSONStringArray.parse(text)
                    if elements == nil { misfits.append((field, Array(text))) }
                    return elements
                }
                writeArray((parsed ?? []) ?? [], column: index)
            case .extras:
                let extras = Self.extras(flow.withExtras { Array($0) } ?? [], misfits: misfits)
                if extras.isEmpty {
                    writeNull(column: index) { $0.append(0) }
                } else {
                    writePresent(column: index)
                    extras.withUnsafeBufferPointer { writeString($0, column: index) }
                }
            case .shard:
                shard.withUnsafeBufferPointer { writeString($0, column: index) }
            }
        }
        rowCount += 1
    }

    /// The finished body; the encoder is empty again afterwards.
    package mutating func finish() -> [UInt8] {
        defer {
            rowCount = 0
            rows.removeAll(keepingCapacity: true)
            for i in plans.indices {
                prefixes[i].removeAll(keepingCapacity: true)
                values[i].removeAll(keepingCapacity: true)
                arrayOffset[i] = 0
            }
        }
        switch format {
        case .rowBinary:
            return rows
        case .native:
            var body: [UInt8] = []
            body.reserveCapacity(values.reduce(0) { $0 + $1.count } + prefixes.reduce(0) { $0 + $1.count } + 16 * columns.count)
            BinaryWriter.varint(UInt64(columns.count), into: &body)
            BinaryWriter.varint(UInt64(rowCount), into: &body)
            for (i, column) in columns.enumerated() {
                BinaryWriter.string(Array(column.name.utf8), into: &body)
                BinaryWriter.string(Array(column.payloadType.utf8), into: &body)
                body += prefixes[i]
                body += values[i]
            }
            return body
        }
    }

    // MARK: Writing one value

    /// The "not NULL" flag of a Nullable column; its value follows.
    private mutating func writePresent(column: Int) {
        switch format {
        case .rowBinary: rows.append(0)
        case .native: prefixes[column].append(0)
        }
    }

    /// NULL: RowBinary writes the flag alone; Native sets the null map and still needs a
    /// placeholder value (`placeholder` writes the type's default) to keep rows aligned.
    private mutating func writeNull(column: Int, placeholder: (inout [UInt8]) -> Void) {
        switch format {
        case .rowBinary:
            rows.append(1)
        case .native:
            prefixes[column].append(1)
            placeholder(&values[column])
        }
    }

    private mutating func writeInteger(_ value: Int64, width: Int, column: Int) {
        switch format {
        case .rowBinary: BinaryWriter.littleEndian(value, width: width, into: &rows)
        case .native: BinaryWriter.littleEndian(value, width: width, into: &values[column])
        }
    }

    private mutating func writeString(_ bytes: UnsafeBufferPointer<UInt8>, column: Int) {
        switch format {
        case .rowBinary: BinaryWriter.string(bytes, into: &rows)
        case .native: BinaryWriter.string(bytes, into: &values[column])
        }
    }

    private mutating func writeArray(_ elements: [[UInt8]], column: Int) {
        switch format {
        case .rowBinary:
            BinaryWriter.varint(UInt64(elements.count), into: &rows)
            for e in elements { BinaryWriter.string(e, into: &rows) }
        case .native:
            arrayOffset[column] += UInt64(elements.count)
            BinaryWriter.littleEndian(Int64(bitPattern: arrayOffset[column]), width: 8, into: &prefixes[column])
            for e in elements { BinaryWriter.string(e, into: &values[column]) }
        }
    }

    /// `_extras`: the flow's unknown members (`"key":value` joined by commas, as the
    /// flow keeps them) plus any value that did not fit its column, as one JSON object;
    /// empty when there are none.
    static func extras(_ unknown: [UInt8], misfits: [(FieldID, [UInt8])]) -> [UInt8] {
        guard !unknown.isEmpty || !misfits.isEmpty else { return [] }
        var object: [UInt8] = [UInt8(ascii: "{")] + unknown
        for (field, value) in misfits {
            if object.count > 1 { object.append(UInt8(ascii: ",")) }
            object += Array("\"\(field.name)\":".utf8) + value
        }
        object.append(UInt8(ascii: "}"))
        return object
    }
}

/// How one column's value is taken from a flow and written.
enum ColumnPlan {
    case integer(FieldID, width: Int, range: ClosedRange<Int64>, nullable: Bool)
    /// Strings, and the JSON text of flags, directions and network events.
    case text(FieldID, nullable: Bool)
    case stringArray(FieldID)
    case extras
    case shard

    init(_ column: ClickHouseSchema.Column) {
        guard let field = column.field else {
            self = column.name == "_extras" ? .extras : .shard
            return
        }
        let type = column.payloadType
        let nullable = type.hasPrefix("Nullable(")
        let inner = nullable ? String(type.dropFirst("Nullable(".count).dropLast()) : type
        if inner.hasPrefix("Array(") {
            self = .stringArray(field)
        } else if let (width, range) = Self.integerLayout[inner] {
            self = .integer(field, width: width, range: range, nullable: nullable)
        } else {
            self = .text(field, nullable: nullable)
        }
    }

    /// Bytes and accepted values of each integer type the schema uses. A UInt64 column
    /// takes every value: flows hold NetObserv's uint64 counters as the bit pattern of
    /// the unsigned value (`FieldSpec.isUnsigned64`), and its 8 little-endian bytes are
    /// that value, up to 2^64-1.
    static let integerLayout: [String: (Int, ClosedRange<Int64>)] = [
        "UInt8": (1, 0...Int64(UInt8.max)), "UInt16": (2, 0...Int64(UInt16.max)),
        "UInt32": (4, 0...Int64(UInt32.max)), "UInt64": (8, Int64.min...Int64.max),
        "Int8": (1, Int64(Int8.min)...Int64(Int8.max)), "Int16": (2, Int64(Int16.min)...Int64(Int16.max)),
        "Int32": (4, Int64(Int32.min)...Int64(Int32.max)), "Int64": (8, Int64.min...Int64.max),
    ]
}

/// ClickHouse's binary primitives: LEB128 lengths, little-endian integers.
enum BinaryWriter {
    @inline(__always) static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    @inline(__always) static func littleEndian(_ value: Int64, width: Int, into out: inout [UInt8]) {
        var v = UInt64(bitPattern: value)
        for _ in 0..<width {
            out.append(UInt8(truncatingIfNeeded: v))
            v >>= 8
        }
    }

    @inline(__always) static func string(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        varint(UInt64(bytes.count), into: &out)
        out.append(contentsOf: bytes)
    }

    static func string(_ bytes: [UInt8], into out: inout [UInt8]) {
        varint(UInt64(bytes.count), into: &out)
        out += bytes
    }
}
