import CSQLite

/// Walks one rowid table of an immutable database (`DatabasePages`) in row id order and
/// decodes each row's record in place: the table B-tree and record formats of
/// <https://www.sqlite.org/fileformat2.html>, sections 1.6 and 2.1.
///
/// A row's values are read straight from the page (or, for a row spilling onto overflow
/// pages, from one buffer the row is assembled in) and stay valid until the next call to
/// `next()` or `seek(toRowID:)`. Anything malformed (a page of the wrong kind, a cell or
/// a record running past its page, a loop in the tree) is an `SQLiteError` of kind
/// `.corrupt`, as SQLite would report it, never a crash.
///
/// ```swift
/// let cursor = TableCursor(pages: try DatabasePages(path: path), rootPage: root)
/// try cursor.seek(toRowID: first)
/// while try cursor.next(), cursor.rowID <= last { total += cursor.integerOrNull(3) ?? 0 }
/// ```
///
/// Public, with its value readers `@inlinable public`, only so that other modules inline
/// them: Swift 6.3 does not serialize `@inlinable package` bodies, and the forwarder
/// called `integerOrNull` for every value (`perf`: a tenth of its encoding).
public final class TableCursor {
    private let pages: DatabasePages
    private let root: Int
    /// One page buffer per depth of the tree, reused from row to row.
    @exclusivity(unchecked) private var buffers: [UnsafeMutableRawBufferPointer] = []
    @exclusivity(unchecked) private var levels: [Level] = []
    /// A record that spills onto overflow pages is assembled here, and its pages read
    /// into `overflow`.
    @exclusivity(unchecked) private var spill = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    @exclusivity(unchecked) private var overflow: UnsafeMutableRawBufferPointer

    // The state a row's values are read from is exempt from dynamic exclusivity checks:
    // they were a quarter of reading a row (`perf`), and a cursor is used by one thread,
    // never re-entered, as any SQLite statement.

    /// The current row's record and its decoded header: per column, the serial type
    /// and where its value starts.
    @exclusivity(unchecked) @usableFromInline var payload = UnsafeRawPointer(bitPattern: 1)!
    @exclusivity(unchecked) @usableFromInline var types: UnsafeMutablePointer<Int>
    @exclusivity(unchecked) @usableFromInline var offsets: UnsafeMutablePointer<Int>
    @exclusivity(unchecked) private var capacity = 128
    /// Columns the current record holds; later columns (added to the table after the
    /// row was written) read as NULL.
    @exclusivity(unchecked) @usableFromInline package private(set) var columnCount = 0
    @exclusivity(unchecked) package private(set) var rowID: Int64 = 0
    /// Whether `next()` decodes each row's record header (the default). A reader that
    /// takes every row whole with `decodeRecord(into:present:stride:columns:)` turns it
    /// off: that call decodes the header and the integers in one pass.
    package var decodesHeaders = true
    /// The current row's record size in bytes.
    @exclusivity(unchecked) private var recordSize = 0

    /// Where the walk is on one page: for a leaf the next cell to return, for an
    /// interior page the next child to descend into (`cells` is the right-most child).
    private struct Level {
        var page: Int
        var leaf: Bool
        var header: Int
        var cells: Int
        var next: Int
    }

    /// The deepest tree accepted: a 4 KiB-page table of 2^63 rows is far shallower, so
    /// anything deeper is a loop in a damaged file.
    private static let maximumDepth = 40

    package init(pages: DatabasePages, rootPage: Int) {
        self.pages = pages
        root = rootPage
        overflow = .allocate(byteCount: pages.pageSize, alignment: 8)
        types = .allocate(capacity: capacity)
        offsets = .allocate(capacity: capacity)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        spill.deallocate()
        overflow.deallocate()
        types.deallocate()
        offsets.deallocate()
    }

    /// Places the cursor before the first row whose row id is at least `rowID`: the
    /// next `next()` returns it.
    package func seek(toRowID target: Int64) throws(SQLiteError) {
        levels.removeAll(keepingCapacity: true)
        var page = root
        while true {
            var level = try load(page, depth: levels.count)
            let bytes = UnsafeRawPointer(buffers[levels.count].baseAddress!)
            // The first cell whose key is at least the target (cells are in key order).
            var lo = 0, hi = level.cells
            while lo < hi {
                let mid = (lo + hi) / 2
                if try key(of: mid, in: level, bytes) < target { lo = mid + 1 } else { hi = mid }
            }
            if level.leaf {
                level.next = lo
                levels.append(level)
                return
            }
            // Child `lo` holds every key up to cell `lo`'s; the right-most child the rest.
            level.next = lo + 1
            levels.append(level)
            page = try child(lo, of: level, bytes)
        }
    }

    /// Moves to the next row in row id order; false after the last.
    package func next() throws(SQLiteError) -> Bool {
        while let top = levels.last {
            let depth = levels.count - 1
            let bytes = UnsafeRawPointer(buffers[depth].baseAddress!)
            if top.leaf {
                guard top.next < top.cells else { levels.removeLast(); continue }
                levels[depth].next += 1
                try enter(cell: top.next, of: top, bytes)
                return true
            }
            guard top.next <= top.cells else { levels.removeLast(); continue }
            levels[depth].next += 1
            let page = try child(top.next, of: top, bytes)
            var level = try load(page, depth: depth + 1)
            level.next = 0
            levels.append(level)
        }
        return false
    }

    // MARK: - Values of the current row

    /// Whether column `c` is NULL (or absent from this row's record).
    @inlinable @inline(__always) public func isNull(_ c: Int) -> Bool { c >= columnCount || types[c] == 0 }

    /// Column `c` as an integer; nil for NULL, a text or a blob. A REAL is truncated, as
    /// SQLite's `sqlite3_column_int64` would.
    @inlinable @inline(__always) public func integerOrNull(_ c: Int) -> Int64? {
        guard c < columnCount else { return nil }
        return Self.integer(type: types[c], at: payload + offsets[c])
    }

    /// The integer a value of serial type `type` at `p` holds (see `integerOrNull`): the
    /// one conversion both the per-column readers and `decodeRecord` use.
    @inlinable @inline(__always) static func integer(type: Int, at p: UnsafeRawPointer) -> Int64? {
        switch type {
        case 1: return Int64(p.load(as: Int8.self))
        case 2: return Int64(Int16(bitPattern: p.loadUnaligned(as: UInt16.self).bigEndian))
        case 3: return Int64(p.load(as: Int8.self)) << 16 | Int64(p.load(fromByteOffset: 1, as: UInt8.self)) << 8
            | Int64(p.load(fromByteOffset: 2, as: UInt8.self))
        case 4: return Int64(Int32(bitPattern: p.loadUnaligned(as: UInt32.self).bigEndian))
        case 5: return Int64(Int16(bitPattern: p.loadUnaligned(as: UInt16.self).bigEndian)) << 32
            | Int64(p.loadUnaligned(fromByteOffset: 2, as: UInt32.self).bigEndian)
        case 6: return Int64(bitPattern: p.loadUnaligned(as: UInt64.self).bigEndian)
        case 7:
            let d = Double(bitPattern: p.loadUnaligned(as: UInt64.self).bigEndian)
            return d.isNaN ? 0 : Int64(max(-9.223372036854775e18, min(d, 9.223372036854775e18)))
        case 8: return 0
        case 9: return 1
        default: return nil
        }
    }

    /// Whether column `c` is a text.
    @inlinable @inline(__always) public func isText(_ c: Int) -> Bool { c < columnCount && types[c] >= 13 && types[c] & 1 == 1 }

    /// Whether column `c` is a REAL (which `integerOrNull` truncates).
    @inlinable @inline(__always) public func isReal(_ c: Int) -> Bool { c < columnCount && types[c] == 7 }

    /// Column `c`'s bytes when it is a text or a blob, valid until the cursor moves.
    @inlinable @inline(__always) public func bytes(_ c: Int) -> UnsafeBufferPointer<UInt8>? {
        guard c < columnCount else { return nil }
        let type = types[c]
        guard type >= 12 else { return nil }
        return UnsafeBufferPointer(start: (payload + offsets[c]).assumingMemoryBound(to: UInt8.self), count: (type - 12) >> 1)
    }

    /// The current row's record as stored (header, then values), valid until the cursor
    /// moves: what `TableTreeWriter.append` takes.
    package var record: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: payload, count: recordSize) }

    /// An integer (or NULL) to put in place of one column's value (`copyRecord`).
    package struct Replacement {
        package var column: Int
        package var value: Int64?
        package init(column: Int, value: Int64?) {
            self.column = column
            self.value = value
        }
    }

    /// Writes the current row's record to `out` with the values of some columns replaced
    /// (`replacements`, in ascending column order) and returns its size; `out` holds at
    /// least `record.count + 8 * replacements.count` bytes. Nil when a replaced column is
    /// beyond the record or its type takes more than one header byte (a text of 58 bytes
    /// or more): then the header would change size, which this copy does not do. Needs
    /// the header decoded (`decodesHeaders`).
    ///
    /// Why: a seal stores two times relative to a third (`ShardSchema.TimeEncoding`).
    /// Re-encoding only those two values, and copying the rest of the record as it is,
    /// keeps the copy a few `memcpy`s a row.
    package func copyRecord(to out: UnsafeMutableRawPointer, replacing replacements: UnsafeBufferPointer<Replacement>) -> Int? {
        // The header size's varint: at most two bytes for a record of fewer than 16,384 columns.
        let first = payload.load(as: UInt8.self)
        let headerSize: Int, headerStart: Int
        if first < 0x80 {
            (headerSize, headerStart) = (Int(first), 1)
        } else {
            let second = payload.load(fromByteOffset: 1, as: UInt8.self)
            guard second < 0x80 else { return nil }
            (headerSize, headerStart) = (Int(first & 0x7F) << 7 | Int(second), 2)
        }
        out.copyMemory(from: payload, byteCount: headerSize)
        var position = headerStart, column = 0
        var source = headerSize, target = headerSize
        for replacement in replacements {
            let c = replacement.column
            guard c < columnCount, c >= column else { return nil }
            while column < c {
                position += TableTreeWriter.varintLength(UInt64(bitPattern: Int64(types[column])))
                column += 1
            }
            let oldType = types[c]
            guard oldType < 0x80 else { return nil }
            let start = offsets[c]
            (out + target).copyMemory(from: payload + source, byteCount: start - source)
            target += start - source
            source = start + Self.valueWidth(type: oldType)
            let (type, width) = Self.integerType(replacement.value)
            out.storeBytes(of: UInt8(type), toByteOffset: position, as: UInt8.self)
            if let value = replacement.value {
                for i in 0..<width {
                    out.storeBytes(of: UInt8(truncatingIfNeeded: value >> (8 * (width - 1 - i))), toByteOffset: target + i, as: UInt8.self)
                }
            }
            target += width
        }
        (out + target).copyMemory(from: payload + source, byteCount: recordSize - source)
        return target + recordSize - source
    }

    /// The width in bytes of a value of serial type `type`, which is not negative, 10 or
    /// 11 (reserved): for types 0-9 from a table of nibbles (a switch was a jump to a
    /// different place for nearly every column), from the type above 11.
    @inline(__always) static func valueWidth(type: Int) -> Int {
        type < 10 ? (0x00_8864_3210 >> (type << 2)) & 0xF : (type - 12) >> 1
    }

    /// The serial type SQLite writes for `value` (file format 4: 0 and 1 take no bytes),
    /// and its width in bytes.
    static func integerType(_ value: Int64?) -> (type: Int, width: Int) {
        guard let value else { return (0, 0) }
        switch value {
        case 0: return (8, 0)
        case 1: return (9, 0)
        case -128...127: return (1, 1)
        case -32_768...32_767: return (2, 2)
        case -8_388_608...8_388_607: return (3, 3)
        case -2_147_483_648...2_147_483_647: return (4, 4)
        case -140_737_488_355_328...140_737_488_355_327: return (5, 6)
        default: return (6, 8)
        }
    }

    // MARK: - Pages and cells

    /// Reads `page` into the buffer of `depth` and checks its header.
    private func load(_ page: Int, depth: Int) throws(SQLiteError) -> Level {
        guard depth < Self.maximumDepth else { throw corrupt("the table's tree is deeper than \(Self.maximumDepth) levels (a loop of pages)") }
        while buffers.count <= depth { buffers.append(.allocate(byteCount: pages.pageSize, alignment: 8)) }
        try pages.read(page: page, into: buffers[depth])
        let bytes = UnsafeRawPointer(buffers[depth].baseAddress!)
        let header = page == 1 ? 100 : 0
        let leaf: Bool
        switch bytes.load(fromByteOffset: header, as: UInt8.self) {
        case 0x0D: leaf = true
        case 0x05: leaf = false
        case let kind: throw corrupt("page \(page) is not a table B-tree page (kind \(kind))")
        }
        let cells = Int(u16(bytes, header + 3))
        let pointers = header + (leaf ? 8 : 12)
        guard pointers + 2 * cells <= pages.usableSize else { throw corrupt("page \(page) claims \(cells) cells, more than fit") }
        return Level(page: page, leaf: leaf, header: header, cells: cells, next: 0)
    }

    /// Where cell `i` of a page starts.
    @inline(__always) private func cellOffset(_ i: Int, of level: Level, _ bytes: UnsafeRawPointer) throws(SQLiteError) -> Int {
        let offset = Int(u16(bytes, level.header + (level.leaf ? 8 : 12) + 2 * i))
        guard offset >= level.header + 8, offset + 4 <= pages.usableSize else { throw corrupt("cell \(i) of page \(level.page) starts outside the page (\(offset))") }
        return offset
    }

    /// The row id of cell `i` (a leaf's row, an interior cell's largest key on its left).
    private func key(of i: Int, in level: Level, _ bytes: UnsafeRawPointer) throws(SQLiteError) -> Int64 {
        var at = try cellOffset(i, of: level, bytes)
        if level.leaf { _ = try varint(bytes, &at, pages.usableSize) } else { at += 4 }
        return Int64(bitPattern: try varint(bytes, &at, pages.usableSize))
    }

    /// Child `i` of an interior page (`cells` is the right-most pointer).
    private func child(_ i: Int, of level: Level, _ bytes: UnsafeRawPointer) throws(SQLiteError) -> Int {
        let at = i == level.cells ? level.header + 8 : try cellOffset(i, of: level, bytes)
        return Int(u32(bytes, at))
    }

    /// Makes cell `i` of a leaf the current row: finds its record (assembling it when it
    /// spills onto overflow pages) and decodes the record's header.
    private func enter(cell i: Int, of level: Level, _ bytes: UnsafeRawPointer) throws(SQLiteError) {
        var at = try cellOffset(i, of: level, bytes)
        let usable = pages.usableSize
        let size = Int(truncatingIfNeeded: try varint(bytes, &at, usable))
        rowID = Int64(bitPattern: try varint(bytes, &at, usable))
        guard size > 0, size <= pages.pageCount * usable else { throw corrupt("row \(rowID) claims a record of \(size) bytes") }
        // How much of the record the leaf holds (the file format's X, M and K).
        let most = usable - 35
        if size <= most {
            guard at + size <= usable else { throw corrupt("the record of row \(rowID) runs past page \(level.page)") }
            payload = bytes + at
            try entered(size: size)
            return
        }
        let least = (usable - 12) * 32 / 255 - 23
        let spread = least + (size - least) % (usable - 4)
        let local = spread <= most ? spread : least
        guard at + local + 4 <= usable else { throw corrupt("the record of row \(rowID) runs past page \(level.page)") }
        if spill.count < size {
            spill.deallocate()
            spill = .allocate(byteCount: size, alignment: 8)
        }
        spill.baseAddress!.copyMemory(from: bytes + at, byteCount: local)
        var filled = local
        var next = Int(u32(bytes, at + local))
        var hops = 0
        while filled < size {
            hops += 1
            guard next != 0, hops <= pages.pageCount else { throw corrupt("the overflow chain of row \(rowID) ends early or loops") }
            try pages.read(page: next, into: overflow)
            let n = min(usable - 4, size - filled)
            (spill.baseAddress! + filled).copyMemory(from: overflow.baseAddress! + 4, byteCount: n)
            filled += n
            next = Int(u32(UnsafeRawPointer(overflow.baseAddress!), 0))
        }
        payload = UnsafeRawPointer(spill.baseAddress!)
        try entered(size: size)
    }

    /// The current row's record is at `payload`: decodes its header, unless the reader
    /// decodes each row itself (`decodesHeaders`).
    @inline(__always) private func entered(size: Int) throws(SQLiteError) {
        recordSize = size
        if decodesHeaders {
            try decodeHeader(values: nil, present: nil, stride: 0, columns: 0)
        } else {
            columnCount = 0
        }
    }

    /// Decodes the current row's record header and, in the same pass, writes column `c`'s
    /// integer (as `integerOrNull(c)` reads it) to `values[c * stride]` and whether there
    /// is one to `present[c * stride]`, for every `c < columns`; a column the record lacks
    /// (added to the table after the row was written) is absent. Afterwards every reader
    /// works as after a `next()` that decodes headers. For a reader that sets
    /// `decodesHeaders` to false and takes every row whole.
    ///
    /// Returns false when one of those columns holds a REAL (written truncated, as
    /// `integerOrNull` reads it), a text or a blob (written as absent): a reader to whom
    /// those mean something else checks the column's type.
    ///
    /// Why one pass: reading the header, then each value through `integerOrNull`, went
    /// over each column twice, switching on its type both times; the two were a quarter
    /// of the forwarder's encoding thread (`perf`, bench/NOTES.md).
    @discardableResult
    package func decodeRecord(into values: UnsafeMutablePointer<Int64>, present: UnsafeMutablePointer<Bool>,
                              stride: Int, columns: Int) throws(SQLiteError) -> Bool {
        try decodeHeader(values: values, present: present, stride: stride, columns: columns)
    }

    /// Reads the record header (each column's serial type and where its value starts),
    /// writing the first `columns` columns' integers as it goes (`decodeRecord`, whose
    /// result it returns).
    @inline(__always) @discardableResult
    private func decodeHeader(values: UnsafeMutablePointer<Int64>?, present: UnsafeMutablePointer<Bool>?,
                              stride: Int, columns: Int) throws(SQLiteError) -> Bool {
        var integers = true
        let size = recordSize
        var at = 0
        let headerSize = Int(truncatingIfNeeded: try varint(payload, &at, size))
        guard headerSize >= at, headerSize <= size else { throw corrupt("row \(rowID) has a record header of \(headerSize) bytes in a \(size)-byte record") }
        var body = headerSize
        var count = 0
        while at < headerSize {
            // Serial types below 128 (every integer, and texts under 58 bytes) take one byte.
            let first = payload.load(fromByteOffset: at, as: UInt8.self)
            let type: Int
            if first < 0x80 {
                type = Int(first)
                at += 1
            } else {
                type = Int(truncatingIfNeeded: try varint(payload, &at, headerSize))
            }
            if count == capacity { grow() }
            let start = body
            types[count] = type
            offsets[count] = start
            // Two branches, each inlining its half of `valueWidth`: most columns take the
            // first, so it is the one the branch predictor learns.
            if UInt(bitPattern: type) < 10 {
                body += Self.valueWidth(type: type)
            } else if type >= 12 {
                body += Self.valueWidth(type: type)
            } else {
                throw corrupt(type < 0 ? "row \(rowID) has a negative serial type" : "row \(rowID) uses the reserved serial type \(type)")
            }
            guard body <= size else { throw corrupt("row \(rowID)'s values run past its \(size)-byte record") }
            if count < columns, let values, let present {
                let value = Self.integer(type: type, at: payload + start)
                values[count * stride] = value ?? 0
                present[count * stride] = value != nil
                integers = integers && type != 7 && type < 12
            }
            count += 1
        }
        if count < columns, let values, let present {
            for c in count..<columns {
                values[c * stride] = 0
                present[c * stride] = false
            }
        }
        columnCount = count
        return integers
    }

    private func grow() {
        let larger = capacity * 2
        let newTypes = UnsafeMutablePointer<Int>.allocate(capacity: larger)
        let newOffsets = UnsafeMutablePointer<Int>.allocate(capacity: larger)
        newTypes.update(from: types, count: capacity)
        newOffsets.update(from: offsets, count: capacity)
        types.deallocate()
        offsets.deallocate()
        types = newTypes
        offsets = newOffsets
        capacity = larger
    }

    /// An SQLite varint (big-endian, seven bits a byte, the ninth byte whole) at `at`,
    /// which must end before `end`.
    @inline(__always) private func varint(_ bytes: UnsafeRawPointer, _ at: inout Int, _ end: Int) throws(SQLiteError) -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<8 {
            guard at < end else { throw corrupt("a varint runs past its end at byte \(at)") }
            let byte = bytes.load(fromByteOffset: at, as: UInt8.self)
            at += 1
            value = value << 7 | UInt64(byte & 0x7F)
            if byte < 0x80 { return value }
        }
        guard at < end else { throw corrupt("a varint runs past its end at byte \(at)") }
        let byte = bytes.load(fromByteOffset: at, as: UInt8.self)
        at += 1
        return value << 8 | UInt64(byte)
    }

    @inline(__always) private func u16(_ bytes: UnsafeRawPointer, _ at: Int) -> UInt16 {
        bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self).bigEndian
    }

    @inline(__always) private func u32(_ bytes: UnsafeRawPointer, _ at: Int) -> UInt32 {
        bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).bigEndian
    }

    private func corrupt(_ message: String) -> SQLiteError {
        SQLiteError(code: SQLITE_CORRUPT, message: message, sql: nil, path: pages.path)
    }
}
