import CSQLite
import Foundation

/// Fills an empty rowid table of a database file with rows given in row id order by
/// writing the table's B-tree pages itself: leaves appended at the end of the file as
/// they fill, then the interior levels, the top one written into the table's own (so far
/// empty) root page, then the header's page count. The formats are those `TableCursor`
/// reads (<https://www.sqlite.org/fileformat2.html>, sections 1.6 and 2.1).
///
/// Why: inserting a row through SQLite encodes its record from bound values and walks
/// the tree to place it. A seal already holds each record encoded (read from the active
/// shard by `TableCursor`) and in the order it is to be stored, so the sealed table's
/// pages can be laid down one after the other, each once: the copy no longer decodes and
/// re-encodes 116 columns per row through the VDBE. SQLite then checks the result: the
/// seal's `quick_check` walks every page, and its checksum reads every row back.
///
/// While the writer works nothing else may have the file open for writing: open SQLite
/// connections must be between transactions (they notice the changed file by its change
/// counter, bumped at `finish()`). Rows must fit on their leaf (no overflow pages);
/// `append` says `.tooBig` for one that does not, and the caller copies through SQLite.
///
/// ```swift
/// let writer = try TableTreeWriter(path: path, rootPage: root)
/// for (rowID, record) in rows { try writer.append(rowID: rowID, record: record) }
/// try writer.finish()
/// ```
package final class TableTreeWriter {
    package let path: String
    private let descriptor: Int32
    private let pageSize: Int
    private let usableSize: Int
    private let root: Int
    /// SQLite never uses the page holding the lock bytes at 1 GiB (`PENDING_BYTE`).
    private let lockBytePage: Int
    /// The page number the next appended page gets.
    private var nextPage: Int
    /// The leaf being filled: cell pointers grow from its 8-byte header, cells down
    /// from its end.
    private let leaf: UnsafeMutableRawBufferPointer
    private var cells = 0
    private var contentStart: Int
    /// Written pages of the level being built (leaves, until `finish()`), with the
    /// largest row id under each.
    private var children: [(page: Int, lastRowID: Int64)] = []
    private var lastRowID: Int64 = 0
    package private(set) var rows = 0
    private var finished = false

    /// Opens the database at `path` to fill the table whose root is `rootPage`, which
    /// must be an empty table leaf in a file without auto-vacuum.
    package init(path: String, rootPage: Int) throws(SQLiteError) {
        self.path = path
        root = rootPage
        descriptor = open(path, O_RDWR)
        guard descriptor >= 0 else {
            throw SQLiteError(code: SQLITE_CANTOPEN, message: "cannot open for writing: errno \(errno)", sql: nil, path: path, systemErrno: errno)
        }
        do throws(SQLiteError) {
            let header = try Self.header(descriptor, path: path)
            (pageSize, usableSize) = (header.pageSize, header.usableSize)
            guard !header.hasAutoVacuum else {
                throw SQLiteError(code: SQLITE_MISUSE, message: "the table writer does not keep auto-vacuum's pointer maps", sql: nil, path: path)
            }
            var status = stat()
            guard fstat(descriptor, &status) == 0 else {
                throw SQLiteError(code: SQLITE_IOERR, message: "cannot stat: errno \(errno)", sql: nil, path: path, systemErrno: errno)
            }
            let pages = Int(status.st_size) / pageSize
            guard rootPage > 1, rootPage <= pages else {
                throw SQLiteError(code: SQLITE_MISUSE, message: "root page \(rootPage) is not a table's root in a file of \(pages) pages", sql: nil, path: path)
            }
            var rootHeader = [UInt8](repeating: 0, count: 8)
            try Self.read(descriptor, path: path, into: &rootHeader, at: Int64(rootPage - 1) * Int64(pageSize))
            guard rootHeader[0] == 0x0D, rootHeader[3] == 0, rootHeader[4] == 0 else {
                throw SQLiteError(code: SQLITE_MISUSE, message: "page \(rootPage) is not an empty table (page type \(rootHeader[0]))", sql: nil, path: path)
            }
            nextPage = pages + 1
        } catch {
            close(descriptor)
            throw error
        }
        lockBytePage = 0x4000_0000 / pageSize + 1
        leaf = .allocate(byteCount: pageSize, alignment: 8)
        leaf.initializeMemory(as: UInt8.self, repeating: 0)
        contentStart = usableSize
    }

    deinit {
        leaf.deallocate()
        close(descriptor)
    }

    /// Adds the row `rowID` (larger than every row id before it) whose record is `record`
    /// (SQLite's record format, as `TableCursor.record` gives it).
    package func append(rowID: Int64, record: UnsafeRawBufferPointer) throws(SQLiteError) {
        guard !finished, rowID > lastRowID || rows == 0 else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "row \(rowID) appended after row \(lastRowID) (row ids must ascend)", sql: nil, path: path)
        }
        // A record longer than this spills onto overflow pages (the file format's X).
        guard record.count <= usableSize - 35 else {
            throw SQLiteError(code: SQLITE_TOOBIG, message: "row \(rowID)'s record of \(record.count) bytes needs overflow pages", sql: nil, path: path)
        }
        let cellSize = Self.varintLength(UInt64(record.count)) + Self.varintLength(UInt64(bitPattern: rowID)) + record.count
        if cells > 0, 8 + 2 * (cells + 1) + cellSize > contentStart { try writeLeaf() }
        contentStart -= cellSize
        let base = leaf.baseAddress!
        var at = contentStart
        Self.putVarint(UInt64(record.count), base, &at)
        Self.putVarint(UInt64(bitPattern: rowID), base, &at)
        (base + at).copyMemory(from: record.baseAddress!, byteCount: record.count)
        Self.putU16(UInt16(contentStart), base, 8 + 2 * cells)
        cells += 1
        rows += 1
        lastRowID = rowID
    }

    /// Writes the last leaf, the interior levels and the header's page count. With no
    /// rows the table stays as it was (one empty leaf).
    package func finish() throws(SQLiteError) {
        guard !finished else { return }
        finished = true
        guard rows > 0 else { return }
        if children.isEmpty {
            // One leaf: it is the root.
            try writeLeaf(at: root)
        } else {
            try writeLeaf()
            // Each child takes a 2-byte pointer and a cell of at most 4 + 9 bytes; the
            // right-most one lives in the header. Levels are balanced so that no page has
            // fewer than two children.
            let capacity = (usableSize - 12) / 15 + 1
            var level = children
            while level.count > capacity {
                let pages = (level.count + capacity - 1) / capacity
                var parents: [(page: Int, lastRowID: Int64)] = []
                var from = 0
                for p in 0..<pages {
                    let to = level.count * (p + 1) / pages
                    let page = allocatePage()
                    try writeInterior(level[from..<to], at: page)
                    parents.append((page, level[to - 1].lastRowID))
                    from = to
                }
                level = parents
            }
            try writeInterior(level[...], at: root)
        }
        // The header's page count, trusted because the change counter (offset 24) and
        // the version it is valid for (offset 92) agree; both move on, so an open
        // connection drops the pages it had cached.
        let header = try Self.header(descriptor, path: path)
        let counter = header.changeCounter &+ 1
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: DatabaseHeader.size, alignment: 8)
        defer { bytes.deallocate() }
        bytes.copyBytes(from: header.bytes)
        Self.putU32(counter, bytes.baseAddress!, 24)
        Self.putU32(counter, bytes.baseAddress!, 92)
        Self.putU32(UInt32(nextPage - 1), bytes.baseAddress!, 28)
        try write(UnsafeRawBufferPointer(bytes), at: 0)
    }

    /// The next free page at the end of the file.
    private func allocatePage() -> Int {
        if nextPage == lockBytePage { nextPage += 1 }
        defer { nextPage += 1 }
        return nextPage
    }

    /// Writes the leaf being filled (to `page`, or appended) and starts an empty one.
    private func writeLeaf(at page: Int? = nil) throws(SQLiteError) {
        let base = leaf.baseAddress!
        base.storeBytes(of: 0x0D, as: UInt8.self)
        Self.putU16(0, base, 1)
        Self.putU16(UInt16(cells), base, 3)
        Self.putU16(UInt16(truncatingIfNeeded: contentStart), base, 5)
        base.storeBytes(of: 0, toByteOffset: 7, as: UInt8.self)
        // The unused middle is zeroed: it compresses to nothing.
        (base + 8 + 2 * cells).initializeMemory(as: UInt8.self, repeating: 0, count: contentStart - 8 - 2 * cells)
        let target = page ?? allocatePage()
        try write(UnsafeRawBufferPointer(leaf), at: Int64(target - 1) * Int64(pageSize))
        if page == nil { children.append((target, lastRowID)) }
        cells = 0
        contentStart = usableSize
    }

    /// Writes an interior page over `children`: a cell (child page, its largest row id)
    /// per child but the last, which is the header's right-most pointer.
    private func writeInterior(_ children: ArraySlice<(page: Int, lastRowID: Int64)>, at page: Int) throws(SQLiteError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let base = buffer.baseAddress!
        var content = usableSize
        var pointer = 12
        var scratch = [UInt8](repeating: 0, count: 13)
        for child in children.dropLast() {
            let size = scratch.withUnsafeMutableBytes { cell in
                Self.putU32(UInt32(child.page), cell.baseAddress!, 0)
                var at = 4
                Self.putVarint(UInt64(bitPattern: child.lastRowID), cell.baseAddress!, &at)
                return at
            }
            content -= size
            scratch.withUnsafeBytes { (base + content).copyMemory(from: $0.baseAddress!, byteCount: size) }
            Self.putU16(UInt16(content), base, pointer)
            pointer += 2
        }
        base.storeBytes(of: 0x05, as: UInt8.self)
        Self.putU16(UInt16(children.count - 1), base, 3)
        Self.putU16(UInt16(truncatingIfNeeded: content), base, 5)
        Self.putU32(UInt32(children.last!.page), base, 8)
        try write(UnsafeRawBufferPointer(buffer), at: Int64(page - 1) * Int64(pageSize))
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(SQLiteError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let code = errno
                throw SQLiteError(code: code == ENOSPC ? SQLITE_FULL : SQLITE_IOERR, message: "cannot write at \(offset): errno \(code)",
                                  sql: nil, path: path, systemErrno: code)
            }
            done += n
        }
    }

    private static func header(_ descriptor: Int32, path: String) throws(SQLiteError) -> DatabaseHeader {
        var bytes = [UInt8](repeating: 0, count: DatabaseHeader.size)
        try read(descriptor, path: path, into: &bytes, at: 0)
        return try DatabaseHeader(bytes, path: path)
    }

    private static func read(_ descriptor: Int32, path: String, into bytes: inout [UInt8], at offset: Int64) throws(SQLiteError) {
        let count = bytes.count
        let got = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
        guard got == count else {
            throw SQLiteError(code: SQLITE_IOERR, message: "short read at \(offset): \(got) of \(count) bytes (errno \(errno))", sql: nil, path: path)
        }
    }

    // MARK: - Encodings (big-endian integers and SQLite's varints)

    static func varintLength(_ value: UInt64) -> Int {
        if value < 0x80 { return 1 }
        if value >> 56 != 0 { return 9 }
        return (64 - value.leadingZeroBitCount + 6) / 7
    }

    /// SQLite's varint: 7 bits per byte, most significant first, and a ninth byte of 8
    /// bits for values above 2^56.
    static func putVarint(_ value: UInt64, _ base: UnsafeMutableRawPointer, _ at: inout Int) {
        if value < 0x80 {
            base.storeBytes(of: UInt8(value), toByteOffset: at, as: UInt8.self)
            at += 1
            return
        }
        let length = varintLength(value)
        if length == 9 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: at + 8, as: UInt8.self)
            var rest = value >> 8
            for i in stride(from: 7, through: 0, by: -1) {
                base.storeBytes(of: UInt8(truncatingIfNeeded: rest & 0x7F) | 0x80, toByteOffset: at + i, as: UInt8.self)
                rest >>= 7
            }
        } else {
            var rest = value
            for i in stride(from: length - 1, through: 0, by: -1) {
                let high: UInt8 = i == length - 1 ? 0 : 0x80
                base.storeBytes(of: UInt8(truncatingIfNeeded: rest & 0x7F) | high, toByteOffset: at + i, as: UInt8.self)
                rest >>= 7
            }
        }
        at += length
    }

    private static func putU16(_ value: UInt16, _ base: UnsafeMutableRawPointer, _ at: Int) {
        base.storeBytes(of: value.bigEndian, toByteOffset: at, as: UInt16.self)
    }

    private static func putU32(_ value: UInt32, _ base: UnsafeMutableRawPointer, _ at: Int) {
        base.storeBytes(of: value.bigEndian, toByteOffset: at, as: UInt32.self)
    }
}
