import CSQLite

/// The first 100 bytes of a SQLite database file, checked for what the page readers and
/// the table writer rely on (<https://www.sqlite.org/fileformat2.html>, section 1.3):
/// the magic string, a page size that is a power of two from 512 to 65,536, at least
/// 480 usable bytes per page, and UTF-8 text.
///
/// Why one type: `DatabasePages` (reading) and `TableTreeWriter` (writing) both work on
/// pages without SQLite, and must agree on what a file they accept looks like.
struct DatabaseHeader {
    static let size = 100
    let bytes: [UInt8]
    /// Bytes per page (the stored 1 means 65,536).
    let pageSize: Int
    /// The bytes of each page that hold data: the page size less the reserved tail some
    /// extensions use.
    let usableSize: Int

    /// Checks `bytes` (the file's first 100 bytes, fewer if the file is shorter).
    init(_ bytes: [UInt8], path: String) throws(SQLiteError) {
        guard bytes.count >= Self.size, bytes[0..<16].elementsEqual("SQLite format 3\0".utf8) else {
            throw SQLiteError(code: SQLITE_NOTADB, message: "not a SQLite database (no header)", sql: nil, path: path)
        }
        self.bytes = bytes
        let rawPageSize = Int(bytes[16]) << 8 | Int(bytes[17])
        pageSize = rawPageSize == 1 ? 65536 : rawPageSize
        usableSize = pageSize - Int(bytes[20])
        let encoding = Self.u32(bytes, 56)
        guard pageSize >= 512, pageSize & (pageSize - 1) == 0, usableSize >= 480, encoding <= 1 else {
            throw SQLiteError(code: SQLITE_CORRUPT, message: "unsupported database header (page size \(pageSize), \(pageSize - usableSize) reserved bytes, text encoding \(encoding))",
                              sql: nil, path: path)
        }
    }

    /// The file change counter, bumped by every write transaction (offset 24).
    var changeCounter: UInt32 { Self.u32(bytes, 24) }

    /// Whether the file keeps auto-vacuum's pointer maps (offset 52: the largest root
    /// page, zero without them).
    var hasAutoVacuum: Bool { Self.u32(bytes, 52) != 0 }

    /// The big-endian 32-bit integer at `at`.
    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }
}
