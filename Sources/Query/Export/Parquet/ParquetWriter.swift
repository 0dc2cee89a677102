import Foundation
import StorageKit

/// A Parquet file writer for flat and list columns, written against the Apache Parquet
/// format specification (parquet-format's `parquet.thrift`): no Parquet library exists
/// for Swift or in Debian's C packages, and what flows need is small.
///
/// Layout: `PAR1`, row groups (per column: an optional dictionary page, one data page,
/// each zstd-compressed), the file metadata in Thrift's compact protocol, its length,
/// `PAR1`. Data pages are version 1: repetition levels and definition levels as
/// length-prefixed RLE/bit-packed runs, then the values: PLAIN (integers, booleans, the
/// strings of a column whose dictionary would not pay) or RLE_DICTIONARY indices.
/// Optional columns have definition levels (1: present); a list column is the standard
/// three-level `LIST` (an optional group, a repeated `list`, an optional `element`).
final class ParquetWriter {
    /// One column of the file.
    struct Column {
        enum Kind: Equatable {
            case int64
            case boolean
            case string
            case stringList
            case int64List
        }

        enum Annotation: Equatable {
            case none
            /// UTF-8 text (`STRING`).
            case string
            /// An unsigned 64-bit integer held as its bit pattern (`INTEGER(64, false)`).
            case unsigned64
            /// Epoch milliseconds (`TIMESTAMP(MILLIS, UTC)`).
            case timestampMillis
        }

        let name: String
        let kind: Kind
        let annotation: Annotation
    }

    /// One value of a row, as the column's kind takes it (nil: absent).
    enum Value: Equatable {
        case null
        case int64(Int64)
        case boolean(Bool)
        case string(String)
        case strings([String?])
        case int64s([Int64])
    }

    private let handle: FileHandle
    let columns: [Column]
    private let rowsPerGroup: Int
    private let level: Int32
    private var builders: [ColumnBuilder]
    private var rowsInGroup = 0
    private var offset: Int64 = 0
    private var rowGroups: [RowGroupMeta] = []
    private(set) var rows: Int64 = 0
    private let metadata: [(String, String)]

    init(path: String, columns: [Column], rowsPerGroup: Int, zstdLevel: Int32 = 3, metadata: [(String, String)] = []) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw QueryError(.outputFailed, "cannot create \(path): check the directory exists and is writable")
        }
        self.handle = handle
        self.columns = columns
        self.rowsPerGroup = max(1, rowsPerGroup)
        level = zstdLevel
        self.metadata = metadata
        builders = columns.map { ColumnBuilder(column: $0) }
        try write(Array("PAR1".utf8))
    }

    /// Adds one row: a value per column, in `columns` order.
    func append(_ row: [Value]) throws {
        for (i, value) in row.enumerated() { builders[i].append(value) }
        rowsInGroup += 1
        rows += 1
        if rowsInGroup == rowsPerGroup { try flushRowGroup() }
    }

    /// Writes the last row group and the footer (with `metadata` and `more`: facts known
    /// only at the end), and closes the file.
    func finish(more: [(String, String)] = []) throws {
        let metadata = self.metadata + more
        if rowsInGroup > 0 || rowGroups.isEmpty { try flushRowGroup() }
        var meta = ThriftCompactWriter()
        meta.i32(1, 1)  // version
        meta.structList(2, schemaElements()) { w, element in element.write(&w) }
        meta.i64(3, rows)
        meta.structList(4, rowGroups) { w, group in group.write(&w) }
        if !metadata.isEmpty {
            meta.structList(5, metadata) { w, pair in
                w.string(1, pair.0)
                w.string(2, pair.1)
            }
        }
        meta.string(6, "flowrec")
        meta.stop()
        try write(meta.bytes)
        var length = UInt32(meta.bytes.count).littleEndian
        try write(withUnsafeBytes(of: &length) { Array($0) })
        try write(Array("PAR1".utf8))
        try handle.synchronize()
        try handle.close()
    }

    private func write(_ bytes: [UInt8]) throws {
        try handle.write(contentsOf: bytes)
        offset += Int64(bytes.count)
    }

    // MARK: Row groups and pages

    private struct ChunkMeta {
        let column: Column
        let path: [String]
        let encodings: [Int32]
        let valueCount: Int64
        let uncompressed: Int64
        let compressed: Int64
        let dataPageOffset: Int64
        let dictionaryPageOffset: Int64?

        func write(_ w: inout ThriftCompactWriter, fileOffset: Int64) {
            w.i64(2, fileOffset)
            w.structure(3) { m in
                m.i32(1, ParquetWriter.physicalType(column.kind))
                m.i32List(2, encodings)
                m.stringList(3, path)
                m.i32(4, 6)  // ZSTD
                m.i64(5, valueCount)
                m.i64(6, uncompressed)
                m.i64(7, compressed)
                m.i64(9, dataPageOffset)
                if let dictionaryPageOffset { m.i64(11, dictionaryPageOffset) }
            }
        }
    }

    private struct RowGroupMeta {
        let chunks: [ChunkMeta]
        let rows: Int64
        let totalBytes: Int64

        func write(_ w: inout ThriftCompactWriter) {
            w.structList(1, chunks) { c, chunk in chunk.write(&c, fileOffset: chunk.dictionaryPageOffset ?? chunk.dataPageOffset) }
            w.i64(2, totalBytes)
            w.i64(3, rows)
        }
    }

    private func flushRowGroup() throws {
        var chunks: [ChunkMeta] = []
        var total: Int64 = 0
        for i in builders.indices {
            let chunk = try writeChunk(&builders[i])
            chunks.append(chunk)
            total += chunk.uncompressed
            builders[i] = ColumnBuilder(column: columns[i])
        }
        rowGroups.append(RowGroupMeta(chunks: chunks, rows: Int64(rowsInGroup), totalBytes: total))
        rowsInGroup = 0
    }

    private func writeChunk(_ builder: inout ColumnBuilder) throws -> ChunkMeta {
        let column = builder.column
        var uncompressed: Int64 = 0, compressed: Int64 = 0
        var dictionaryOffset: Int64?
        var encodings: [Int32] = [3]  // RLE, the levels
        var values: [UInt8]
        if let dictionary = builder.dictionaryIfWorthIt() {
            // Dictionary page: the distinct strings, PLAIN.
            dictionaryOffset = offset
            let (u, c) = try writePage(type: 2, body: dictionary.page, header: { w in
                w.structure(7) { d in
                    d.i32(1, Int32(dictionary.count))
                    d.i32(2, 0)  // PLAIN
                }
            })
            uncompressed += u
            compressed += c
            values = dictionary.indices
            encodings += [0, 8]  // PLAIN (dictionary), RLE_DICTIONARY
        } else {
            values = builder.plainValues()
            encodings.append(0)
        }
        let dataOffset = offset
        var body: [UInt8] = []
        if builder.maxRepetition > 0 { Self.appendLevels(builder.repetition, maxLevel: builder.maxRepetition, to: &body) }
        Self.appendLevels(builder.definition, maxLevel: builder.maxDefinition, to: &body)
        body += values
        let levelCount = builder.definition.count
        let encoding: Int32 = dictionaryOffset == nil ? 0 : 8
        let (u, c) = try writePage(type: 0, body: body, header: { w in
            w.structure(5) { d in
                d.i32(1, Int32(levelCount))
                d.i32(2, encoding)
                d.i32(3, 3)  // definition levels: RLE
                d.i32(4, 3)  // repetition levels: RLE
            }
        })
        uncompressed += u
        compressed += c
        return ChunkMeta(column: column, path: builder.path, encodings: encodings, valueCount: Int64(levelCount),
                         uncompressed: uncompressed, compressed: compressed, dataPageOffset: dataOffset,
                         dictionaryPageOffset: dictionaryOffset)
    }

    /// Writes a page (header, then its zstd-compressed body); returns the bytes it takes
    /// uncompressed and compressed, headers included.
    private func writePage(type: Int32, body: [UInt8], header: (inout ThriftCompactWriter) -> Void) throws -> (Int64, Int64) {
        let packed = try ZstdBlock.compress(body, level: level)
        var w = ThriftCompactWriter()
        w.i32(1, type)
        w.i32(2, Int32(body.count))
        w.i32(3, Int32(packed.count))
        header(&w)
        w.stop()
        try write(w.bytes)
        try write(packed)
        return (Int64(w.bytes.count + body.count), Int64(w.bytes.count + packed.count))
    }

    /// Levels as Parquet's RLE/bit-packed hybrid, prefixed by their byte length.
    static func appendLevels(_ levels: [UInt8], maxLevel: Int, to out: inout [UInt8]) {
        let encoded = RLEHybrid.encode(levels.map(Int64.init), bitWidth: bitWidth(Int64(maxLevel)))
        var length = UInt32(encoded.count).littleEndian
        out += withUnsafeBytes(of: &length) { Array($0) }
        out += encoded
    }

    static func bitWidth(_ maxValue: Int64) -> Int {
        maxValue <= 0 ? 0 : 64 - maxValue.leadingZeroBitCount
    }

    static func physicalType(_ kind: Column.Kind) -> Int32 {
        switch kind {
        case .int64, .int64List: 2   // INT64
        case .boolean: 0             // BOOLEAN
        case .string, .stringList: 6 // BYTE_ARRAY
        }
    }

    // MARK: Schema

    private struct SchemaElement {
        var type: Int32?
        var repetition: Int32?
        var name: String
        var children: Int32?
        var convertedType: Int32?
        var logical: ((inout ThriftCompactWriter) -> Void)?

        func write(_ w: inout ThriftCompactWriter) {
            if let type { w.i32(1, type) }
            if let repetition { w.i32(3, repetition) }
            w.string(4, name)
            if let children { w.i32(5, children) }
            if let convertedType { w.i32(6, convertedType) }
            if let logical { w.structure(10, logical) }
        }
    }

    private func schemaElements() -> [SchemaElement] {
        var elements = [SchemaElement(name: "schema", children: Int32(columns.count))]
        for column in columns {
            func leaf(_ name: String, _ kind: Column.Kind) -> SchemaElement {
                var element = SchemaElement(type: Self.physicalType(kind), repetition: 1, name: name)
                switch column.annotation {
                case .string:
                    element.convertedType = 0  // UTF8
                    element.logical = { $0.structure(1) { _ in } }  // STRING
                case .unsigned64:
                    element.convertedType = 14  // UINT_64
                    element.logical = { $0.structure(10) { int in
                        int.byte(1, 64)
                        int.bool(2, false)
                    } }
                case .timestampMillis:
                    element.convertedType = 9  // TIMESTAMP_MILLIS
                    element.logical = { $0.structure(8) { ts in
                        ts.bool(1, true)
                        ts.structure(2) { unit in unit.structure(1) { _ in } }  // MILLIS
                    } }
                case .none:
                    break
                }
                return element
            }
            switch column.kind {
            case .int64, .boolean, .string:
                elements.append(leaf(column.name, column.kind))
            case .stringList, .int64List:
                var group = SchemaElement(repetition: 1, name: column.name, children: 1, convertedType: 3)  // LIST
                group.logical = { $0.structure(3) { _ in } }
                elements.append(group)
                elements.append(SchemaElement(repetition: 2, name: "list", children: 1))
                elements.append(leaf("element", column.kind))
            }
        }
        return elements
    }
}

/// One column's values of the row group being built, with its levels.
private struct ColumnBuilder {
    let column: ParquetWriter.Column
    var definition: [UInt8] = []
    var repetition: [UInt8] = []
    var integers: [Int64] = []
    var booleans: [Bool] = []
    var strings: [String] = []

    init(column: ParquetWriter.Column) { self.column = column }

    var isList: Bool { column.kind == .stringList || column.kind == .int64List }
    var maxDefinition: Int { isList ? 3 : 1 }
    var maxRepetition: Int { isList ? 1 : 0 }
    var path: [String] { isList ? [column.name, "list", "element"] : [column.name] }

    mutating func append(_ value: ParquetWriter.Value) {
        switch (column.kind, value) {
        case (.int64, .int64(let v)):
            definition.append(1)
            integers.append(v)
        case (.boolean, .boolean(let v)):
            definition.append(1)
            booleans.append(v)
        case (.string, .string(let v)):
            definition.append(1)
            strings.append(v)
        case (.stringList, .strings(let items)):
            appendListLevels(items.map { $0 != nil })
            strings += items.compactMap { $0 }
        case (.int64List, .int64s(let items)):
            appendListLevels(Array(repeating: true, count: items.count))
            integers += items
        default:
            // Absent (or a value of another shape, which the caller does not produce).
            definition.append(0)
            if isList { repetition.append(0) }
        }
    }

    /// A present list: an empty one is defined at level 1; each element at 3 (or 2 when
    /// null), the first starting the row (repetition 0), the others continuing it (1).
    private mutating func appendListLevels(_ present: [Bool]) {
        guard !present.isEmpty else {
            definition.append(1)
            repetition.append(0)
            return
        }
        for (i, isPresent) in present.enumerated() {
            definition.append(isPresent ? 3 : 2)
            repetition.append(i == 0 ? 0 : 1)
        }
    }

    /// PLAIN-encoded values.
    func plainValues() -> [UInt8] {
        var out: [UInt8] = []
        switch column.kind {
        case .int64, .int64List:
            out.reserveCapacity(integers.count * 8)
            for v in integers { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        case .boolean:
            // Bit-packed, least significant bit first.
            out = [UInt8](repeating: 0, count: (booleans.count + 7) / 8)
            for (i, v) in booleans.enumerated() where v { out[i / 8] |= 1 << UInt8(i % 8) }
        case .string, .stringList:
            for s in strings { Self.appendPlain(s, to: &out) }
        }
        return out
    }

    static func appendPlain(_ s: String, to out: inout [UInt8]) {
        var length = UInt32(s.utf8.count).littleEndian
        out += withUnsafeBytes(of: &length) { Array($0) }
        out += s.utf8
    }

    /// For a string column whose distinct values are few enough to pay: the dictionary
    /// page's body, the number of entries, and the data page's RLE_DICTIONARY values.
    func dictionaryIfWorthIt() -> (page: [UInt8], count: Int, indices: [UInt8])? {
        guard column.kind == .string || column.kind == .stringList, !strings.isEmpty else { return nil }
        var ids: [String: Int64] = [:]
        var order: [String] = []
        var indices: [Int64] = []
        indices.reserveCapacity(strings.count)
        var dictionaryBytes = 0
        for s in strings {
            if let id = ids[s] {
                indices.append(id)
            } else {
                let id = Int64(order.count)
                ids[s] = id
                order.append(s)
                indices.append(id)
                dictionaryBytes += s.utf8.count + 4
                // Mostly distinct, or too large for one page: PLAIN does as well.
                if dictionaryBytes > 1 << 20 || order.count > 1 << 16 { return nil }
            }
        }
        var page: [UInt8] = []
        page.reserveCapacity(dictionaryBytes)
        for s in order { Self.appendPlain(s, to: &page) }
        let width = max(1, ParquetWriter.bitWidth(Int64(order.count - 1)))
        return (page, order.count, [UInt8(width)] + RLEHybrid.encode(indices, bitWidth: width))
    }
}

/// Parquet's RLE/bit-packed hybrid: runs of one repeated value (RLE), and groups of 8
/// values packed in `bitWidth` bits each, least significant bit first.
enum RLEHybrid {
    static func encode(_ values: [Int64], bitWidth: Int) -> [UInt8] {
        var out: [UInt8] = []
        guard bitWidth > 0 else {
            // Every value is 0: one run.
            if !values.isEmpty { varint(UInt64(values.count) << 1, &out) }
            return out
        }
        let byteWidth = (bitWidth + 7) / 8
        var literals: [Int64] = []
        var i = 0
        func flushLiterals() {
            guard !literals.isEmpty else { return }
            let groups = (literals.count + 7) / 8
            varint(UInt64(groups) << 1 | 1, &out)
            var padded = literals
            padded += [Int64](repeating: 0, count: groups * 8 - literals.count)
            var bitBuffer: UInt64 = 0, bits = 0
            for v in padded {
                bitBuffer |= UInt64(v) << UInt64(bits)
                bits += bitWidth
                while bits >= 8 {
                    out.append(UInt8(truncatingIfNeeded: bitBuffer))
                    bitBuffer >>= 8
                    bits -= 8
                }
            }
            if bits > 0 { out.append(UInt8(truncatingIfNeeded: bitBuffer)) }
            literals.removeAll(keepingCapacity: true)
        }
        while i < values.count {
            var run = 1
            while i + run < values.count, values[i + run] == values[i] { run += 1 }
            // A long run becomes RLE once the literals before it fill whole groups.
            if run >= 8 {
                let fill = (8 - literals.count % 8) % 8
                if fill > 0 && fill < run {
                    literals += [Int64](repeating: values[i], count: fill)
                    i += fill
                    run -= fill
                }
                if literals.count % 8 == 0 && run >= 8 {
                    flushLiterals()
                    varint(UInt64(run) << 1, &out)
                    var v = UInt64(values[i])
                    for _ in 0..<byteWidth {
                        out.append(UInt8(truncatingIfNeeded: v))
                        v >>= 8
                    }
                    i += run
                    continue
                }
            }
            literals += values[i..<(i + run)]
            i += run
        }
        flushLiterals()
        return out
    }

    private static func varint(_ value: UInt64, _ out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}
