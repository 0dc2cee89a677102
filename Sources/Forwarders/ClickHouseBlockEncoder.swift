package import FlowModel
package import ShardStore
import StorageKit

/// What the encoder reads rows from, by their number: a batch of a shard's rows read in
/// place (the forwarder's fast path, column by column), or one decoded `Flow`.
protocol ClickHouseRowSource {
    /// An integer or boolean field; nil when absent or null.
    func integer(_ field: FieldID, row: Int) -> Int64?
    /// A text field's UTF-8; nil when absent or null.
    func withText<R>(_ field: FieldID, row: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R?
    /// The unknown fields' members, `"key":value` joined by commas; nil when none.
    func withExtras<R>(row: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R?
}

/// One decoded flow, as row 0.
private struct SingleFlow: ClickHouseRowSource {
    let flow: Flow

    func integer(_ field: FieldID, row: Int) -> Int64? { flow.integer(field) }

    func withText<R>(_ field: FieldID, row: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        flow.withUTF8(field) { bytes in body(bytes) }
    }

    func withExtras<R>(row: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        flow.extrasBytes.isEmpty ? nil : flow.extrasBytes.withUnsafeBufferPointer(body)
    }
}

extension ShardRowBatch: ClickHouseRowSource {
    @inline(__always) func withText<R>(_ field: FieldID, row: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        utf8(field, row: row).map(body)
    }
}

/// Turns flows into the body of one `INSERT ... FORMAT RowBinary` or `FORMAT Native`
/// for the flows table (`ClickHouseSchema.columns`), compressed as it goes.
///
/// Binary formats, not JSON: the server parses them without text conversion, which is
/// most of the cost of an insert. Native is columnar (one buffer per column); RowBinary
/// is written row by row into one buffer. Both carry the same values:
///
/// - absent and JSON `null` values are NULL (the empty string or array in sort-key and
///   array columns, which cannot hold NULL); the shard itself keeps the difference;
/// - an integer that does not fit its column (a negative port, say) is NULL in the
///   column and kept, as written, in `_extras`, so nothing is lost in ClickHouse either.
///
/// A body is a series of blocks of `blockRows` rows, each handed to the compressor as
/// soon as it is complete (a Native body may hold any number of blocks; the server
/// gathers an INSERT's blocks into one part): a worker holds one block's buffers, not a
/// whole chunk's, and the compressor reads each block while it is still in the cache.
package final class ClickHouseBlockEncoder {
    package enum Format: String, Sendable, CaseIterable {
        case rowBinary = "RowBinary"
        case native = "Native"
    }

    package let format: Format
    /// Rows in a block: 16,384 keeps a block's buffers at about 11 MB (a worker held a
    /// whole 100,000-row chunk, about 70 MB, before the body was compressed), and costs
    /// the server little: 2,048-row blocks, which fit a core's L2 cache, made the encoder
    /// faster but the server slower (each block repeats 116 column headers; bodies grew
    /// from 21 to 26 bytes per row), and the forwarder with it (bench/NOTES.md).
    package static let defaultBlockRows = 16_384
    package let blockRows: Int
    /// Rows appended since the last `finish`.
    package private(set) var rowCount = 0
    /// Rows of the block being encoded.
    private var blockRowCount = 0
    /// The body so far: the blocks already compressed.
    private var body: [UInt8] = []
    /// Seconds spent compressing since the encoder was made (the forwarder reports its
    /// phases apart: `flowrec-bench forward`).
    package private(set) var compressSeconds = 0.0
    private let compressor: any BodyCompressor

    private let plans: [ColumnPlan]
    private let columns: [ClickHouseSchema.Column]
    /// RowBinary: the whole body. Native: unused.
    private var rows = ByteColumn()
    /// Native only: per column, the null map (Nullable) or offsets (Array), then values.
    /// Raw buffers, not `[[UInt8]]`: a chunk appends a few bytes a hundred million times,
    /// and each append to a nested array checked uniqueness and capacity (`perf`: a
    /// quarter of the encoder's time).
    private let prefixes: UnsafeMutableBufferPointer<ByteColumn>
    private let values: UnsafeMutableBufferPointer<ByteColumn>
    /// Native only: per Nullable column, whether the block's rows so far were all
    /// present, all NULL, or mixed. Until a column's rows mix, nothing is written for
    /// its null map (nor for its NULLs' placeholders): most columns are present in
    /// every row of a block, or in none (a feature that is off), and their one-byte
    /// writes into a hundred null maps per row were the encoder's costliest stores
    /// (`perf`). The map is written out when the rows first mix, or at the block's end.
    private let runs: UnsafeMutableBufferPointer<NullRun>
    /// Per column, the bytes a NULL's placeholder takes in its values (the type's
    /// default: an integer's width of zeros, an empty string's zero length).
    private let placeholderBytes: [Int]
    private var arrayOffset: [UInt64]
    /// Per array column, the previous row's JSON text and its parsed elements: rows in
    /// the seal order mostly repeat their neighbour's interfaces and directions, and
    /// parsing each row's array again (an array of arrays per row) was the encoder's
    /// largest source of allocation (`perf`).
    private var lastArray: [(text: [UInt8], elements: [[UInt8]]?)]
    /// Native only: per column, its name and type as the block spells them, the same for
    /// every chunk.
    private let columnHeaders: [[UInt8]]

    package init(format: Format, dialect: ClickHouseSchema.Dialect = .compatible, compression: ClickHouseBodyCompression = .none,
                 blockRows: Int = defaultBlockRows) throws(ForwarderError) {
        self.format = format
        self.blockRows = max(1, blockRows)
        compressor = try compression.makeCompressor()
        columns = ClickHouseSchema.columns(dialect: dialect)
        plans = columns.map(ColumnPlan.init)
        prefixes = .allocate(capacity: columns.count)
        prefixes.initialize(repeating: ByteColumn())
        values = .allocate(capacity: columns.count)
        values.initialize(repeating: ByteColumn())
        runs = .allocate(capacity: columns.count)
        runs.initialize(repeating: .none)
        placeholderBytes = plans.map { plan in
            if case let .integer(_, width, _, _) = plan { width } else { 1 }
        }
        arrayOffset = Array(repeating: 0, count: columns.count)
        lastArray = Array(repeating: ([], []), count: columns.count)
        columnHeaders = columns.map { column in
            var header = ByteColumn()
            defer { header.free() }
            header.appendString(Array(column.name.utf8))
            header.appendString(Array(column.payloadType.utf8))
            return header.withBytes { Array($0) }
        }
    }

    deinit {
        rows.free()
        for i in prefixes.indices {
            prefixes[i].free()
            values[i].free()
        }
        prefixes.deallocate()
        values.deallocate()
        runs.deallocate()
    }

    /// The column list of the INSERT, in payload order.
    package var columnList: String { Self.columnList(columns) }

    /// The column list of an INSERT of `dialect`'s table, without an encoder.
    package static func columnList(dialect: ClickHouseSchema.Dialect) -> String { columnList(ClickHouseSchema.columns(dialect: dialect)) }

    private static func columnList(_ columns: [ClickHouseSchema.Column]) -> String {
        columns.map { "`\($0.name)`" }.joined(separator: ", ")
    }

    /// Adds one flow; `shard` fills the `_shard` column.
    package func append(_ flow: Flow, shard: [UInt8]) {
        encode(SingleFlow(flow: flow), rows: 0..<1, shard: shard)
    }

    /// Appends rows `rowIDs` of a sealed shard, read in place in the order of `keys`: one
    /// chunk of the forwarder.
    package func append(rowsOf reader: ShardReader, rowIDs: ClosedRange<Int64>, orderedBy keys: [FieldID], shard: [UInt8]) throws {
        try reader.forEachBatch(rowIDs: rowIDs, orderedBy: keys) { append($0, shard: shard) }
    }

    /// Appends a batch of a shard's rows: Native column by column, within a block (a
    /// column's loop chooses how to write its values once, and writes into one buffer);
    /// RowBinary row by row, since it interleaves each row's values.
    private func append(_ batch: ShardRowBatch, shard: [UInt8]) {
        var start = 0
        while start < batch.count {
            let rows = format == .native ? min(batch.count - start, blockRows - blockRowCount) : 1
            encode(batch, rows: start..<(start + rows), shard: shard)
            start += rows
        }
    }

    /// Writes rows `rows` of `source` column by column, all in the block being encoded.
    /// Specialized here for `ShardRowBatch`, whose readers inline into each column's loop.
    private func encode<Source: ClickHouseRowSource>(_ source: Source, rows: Range<Int>, shard: [UInt8]) {
        // Values that do not fit their column, per row: kept in `_extras`.
        var misfits: [Int: [(FieldID, [UInt8])]] = [:]
        for (index, plan) in plans.enumerated() {
            // A row's place in the block: the null map of a column whose rows begin to
            // mix is written up to it.
            var before = blockRowCount
            switch plan {
            case let .integer(field, width, range, nullable):
                for row in rows {
                    let value = source.integer(field, row: row)
                    let fits = value.map { range.contains($0) } ?? true
                    if let value, !fits { misfits[row, default: []].append((field, Array(String(value).utf8))) }
                    if let stored = fits ? value : nil {
                        if nullable { writePresent(column: index, rowsBefore: before) }
                        writeInteger(stored, width: width, column: index)
                    } else if nullable {
                        writeNull(column: index, rowsBefore: before)
                    } else {
                        writeInteger(0, width: width, column: index)
                    }
                    before += 1
                }
            case let .text(field, nullable):
                for row in rows {
                    let written: Bool? = source.withText(field, row: row) { bytes in
                        if nullable { writePresent(column: index, rowsBefore: before) }
                        writeString(bytes, column: index)
                        return true
                    }
                    if written == nil {
                        if nullable {
                            writeNull(column: index, rowsBefore: before)
                        } else {
                            writeString(UnsafeBufferPointer(start: nil, count: 0), column: index)
                        }
                    }
                    before += 1
                }
            case let .stringArray(field):
                for row in rows {
                    let parsed: [[UInt8]]?? = source.withText(field, row: row) { text in
                        let elements: [[UInt8]]?
                        if text.elementsEqual(lastArray[index].text) {
                            elements = lastArray[index].elements
                        } else {
                            elements = JSONStringArray.parse(text)
                            lastArray[index] = (Array(text), elements)
                        }
                        if elements == nil { misfits[row, default: []].append((field, Array(text))) }
                        return elements
                    }
                    writeArray((parsed ?? []) ?? [], column: index)
                }
            case .extras:
                // `_extras` follows every field's column (`ClickHouseSchema.columns`): each
                // row's misfits are all known here.
                for row in rows {
                    let extras = Self.extras(source.withExtras(row: row) { Array($0) } ?? [], misfits: misfits[row] ?? [])
                    if extras.isEmpty {
                        writeNull(column: index, rowsBefore: before)
                    } else {
                        writePresent(column: index, rowsBefore: before)
                        extras.withUnsafeBufferPointer { writeString($0, column: index) }
                    }
                    before += 1
                }
            case .shard:
                for _ in rows { shard.withUnsafeBufferPointer { writeString($0, column: index) } }
            }
        }
        rowCount += rows.count
        blockRowCount += rows.count
        if blockRowCount == blockRows { finishBlock() }
    }

    /// The finished body, compressed as the encoder was told; the encoder is empty again
    /// afterwards (its buffers keep their capacity for the next chunk).
    package func finish() throws(ForwarderError) -> [UInt8] {
        finishBlock()
        defer {
            rowCount = 0
            body = []
        }
        let started = monotonicSeconds()
        defer { compressSeconds += monotonicSeconds() - started }
        try compressor.finish(into: &body)
        return body
    }

    /// Hands the block to the compressor and empties the column buffers.
    private func finishBlock() {
        guard blockRowCount > 0 else { return }
        let started = monotonicSeconds()
        forEachPart { compressor.write($0, into: &body) }
        compressSeconds += monotonicSeconds() - started
        blockRowCount = 0
        rows.removeAll()
        for i in plans.indices {
            prefixes[i].removeAll()
            values[i].removeAll()
            arrayOffset[i] = 0
            runs[i] = .none
        }
    }

    /// Hands the block to `write` in order, part by part (RowBinary: its one buffer;
    /// Native: the block header, then per column its name and type, null map or
    /// offsets, and values).
    private func forEachPart(_ write: (UnsafeRawBufferPointer) -> Void) {
        switch format {
        case .rowBinary:
            rows.withBytes(write)
        case .native:
            var header = ByteColumn()
            defer { header.free() }
            header.appendVarint(UInt64(columns.count))
            header.appendVarint(UInt64(blockRowCount))
            header.withBytes(write)
            for i in columns.indices {
                columnHeaders[i].withUnsafeBytes(write)
                switch runs[i] {
                case .present:
                    Self.repeating(0, count: blockRowCount, write)
                case .null:
                    // The values buffer is empty: every row's placeholder is left to here.
                    Self.repeating(1, count: blockRowCount, write)
                    Self.repeating(0, count: blockRowCount * placeholderBytes[i], write)
                case .none, .mixed:
                    prefixes[i].withBytes(write)
                }
                values[i].withBytes(write)
            }
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: 16_384)
    private static let ones = [UInt8](repeating: 1, count: 16_384)

    /// Hands `count` bytes of `byte` (0 or 1) to `write`, from a constant buffer.
    private static func repeating(_ byte: UInt8, count: Int, _ write: (UnsafeRawBufferPointer) -> Void) {
        (byte == 0 ? zeros : ones).withUnsafeBytes { buffer in
            var left = count
            while left > 0 {
                let n = min(left, buffer.count)
                write(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
                left -= n
            }
        }
    }

    // MARK: Writing one value

    /// The "not NULL" flag of a Nullable column; its value follows. Native writes it
    /// only once the block's rows mix (`runs`).
    /// `rowsBefore`: the rows of the block before this one in this column.
    @inline(__always) private func writePresent(column: Int, rowsBefore: Int) {
        switch format {
        case .rowBinary: rows.append(0)
        case .native:
            switch runs[column] {
            case .none, .present:
                runs[column] = .present
            case .mixed:
                prefixes[column].append(0)
            case .null:
                // The rows before were all NULL: their flags and placeholders first.
                prefixes[column].append(1, count: rowsBefore)
                values[column].append(0, count: rowsBefore * placeholderBytes[column])
                prefixes[column].append(0)
                runs[column] = .mixed
            }
        }
    }

    /// NULL: RowBinary writes the flag alone; Native sets the null map and still needs a
    /// placeholder value (the type's default) to keep rows aligned, both written only
    /// once the block's rows mix (`runs`).
    @inline(__always) private func writeNull(column: Int, rowsBefore: Int) {
        switch format {
        case .rowBinary:
            rows.append(1)
        case .native:
            switch runs[column] {
            case .none, .null:
                runs[column] = .null
            case .mixed:
                prefixes[column].append(1)
                values[column].append(0, count: placeholderBytes[column])
            case .present:
                // The rows before were all present: their flags first.
                prefixes[column].append(0, count: rowsBefore)
                prefixes[column].append(1)
                values[column].append(0, count: placeholderBytes[column])
                runs[column] = .mixed
            }
        }
    }

    @inline(__always) private func writeInteger(_ value: Int64, width: Int, column: Int) {
        switch format {
        case .rowBinary: rows.appendLittleEndian(value, width: width)
        case .native: values[column].appendLittleEndian(value, width: width)
        }
    }

    @inline(__always) private func writeString(_ bytes: UnsafeBufferPointer<UInt8>, column: Int) {
        switch format {
        case .rowBinary: rows.appendString(bytes)
        case .native: values[column].appendString(bytes)
        }
    }

    private func writeArray(_ elements: [[UInt8]], column: Int) {
        switch format {
        case .rowBinary:
            rows.appendVarint(UInt64(elements.count))
            for e in elements { rows.appendString(e) }
        case .native:
            arrayOffset[column] += UInt64(elements.count)
            prefixes[column].appendLittleEndian(Int64(bitPattern: arrayOffset[column]), width: 8)
            for e in elements { values[column].appendString(e) }
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

/// How a Nullable column's rows in the block being encoded have been so far (Native).
enum NullRun {
    /// No row yet (and always, for a column that is not Nullable).
    case none
    case present
    case null
    /// Present and NULL rows both: the null map and placeholders are written row by row.
    case mixed
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

/// A growable byte buffer written through a raw pointer, with ClickHouse's binary
/// primitives (LEB128 lengths, little-endian integers). Plain memory the owner frees
/// (`free()`): the encoder keeps one per column and reuses them chunk after chunk.
struct ByteColumn {
    private var base: UnsafeMutablePointer<UInt8>?
    private(set) var count = 0
    private var capacity = 0

    init() {}

    mutating func free() {
        base?.deallocate()
        base = nil
        count = 0
        capacity = 0
    }

    /// Empties the buffer and keeps its memory.
    mutating func removeAll() { count = 0 }

    @inline(__always) private mutating func reserve(_ extra: Int) -> UnsafeMutablePointer<UInt8> {
        if count + extra > capacity { grow(to: count + extra) }
        return base.unsafelyUnwrapped + count
    }

    @inline(never) private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2, 4096)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        if let base {
            grown.update(from: base, count: count)
            base.deallocate()
        }
        base = grown
        capacity = newCapacity
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        reserve(1).pointee = byte
        count += 1
    }

    mutating func append(_ byte: UInt8, count n: Int) {
        guard n > 0 else { return }
        reserve(n).initialize(repeating: byte, count: n)
        count += n
    }

    /// The low `width` bytes of `value`, little-endian (8 bytes are stored, `width` kept).
    @inline(__always) mutating func appendLittleEndian(_ value: Int64, width: Int) {
        UnsafeMutableRawPointer(reserve(8)).storeBytes(of: value.littleEndian, as: Int64.self)
        count += width
    }

    @inline(__always) mutating func appendVarint(_ value: UInt64) {
        let out = reserve(10)
        var v = value, n = 0
        while v >= 0x80 {
            out[n] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            n += 1
        }
        out[n] = UInt8(v)
        count += n + 1
    }

    @inline(__always) mutating func appendString(_ bytes: UnsafeBufferPointer<UInt8>) {
        appendVarint(UInt64(bytes.count))
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    mutating func appendString(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { appendString($0) }
    }

    /// The bytes written so far, valid inside `body`.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: base, count: count))
    }
}
