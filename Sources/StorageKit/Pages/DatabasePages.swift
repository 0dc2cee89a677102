import CSQLite
import Foundation

/// The pages of an immutable SQLite database file, read without SQLite: a sealed shard
/// (through its seek table and the shared frame cache, as `SeekableZstdVFS` reads it) or
/// a plain file nothing writes to any more.
///
/// Why bypass SQLite at all: reading a 116-column row through the VDBE and one
/// `sqlite3_column_*` call per column costs about 2.8 µs, more than ClickHouse spends
/// inserting the row (`bench/NOTES.md`, *Forwarding*). The record format underneath is
/// documented, stable and simple (<https://www.sqlite.org/fileformat2.html>), and a
/// sealed shard never changes, so a reader that walks the table's B-tree and decodes
/// records in place (`TableCursor`) reads the same rows for a fraction of that. Only
/// reads of whole rows in row id order use it; everything else goes through SQLite.
package final class DatabasePages {
    package let path: String
    /// Bytes per page, and the bytes of each page that hold data (the page size less
    /// the reserved tail some extensions use).
    let pageSize: Int
    let usableSize: Int
    let pageCount: Int
    private let source: Source
    /// The frame the last page came from: consecutive pages mostly share one, and the
    /// shared cache's lock and lookup then happen once per frame, not per page.
    /// (Without exclusivity checks, as `TableCursor`'s state: one reader, one thread.)
    @exclusivity(unchecked) private var frame: [UInt8] = []
    @exclusivity(unchecked) private var frameStart: Int64 = 0

    private enum Source {
        case sealed(SeekableZstdFile)
        case plain(Int32)
    }

    /// Opens `path`: a sealed shard (`*.sqlite.zst`, `*.zst.tmp`) or a plain database
    /// file that nothing writes to (its WAL, if any, checkpointed and gone).
    package init(path: String) throws(SQLiteError) {
        self.path = path
        let size: Int64
        let opened: Source
        if SeekableZstdVFS.handles(path) {
            do {
                let file = try SeekableZstdFile(path: path)
                opened = .sealed(file)
                size = file.decompressedSize
            } catch {
                throw SQLiteError(code: SQLITE_CANTOPEN, message: "cannot read sealed file: \(error)", sql: nil, path: path)
            }
        } else {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw SQLiteError(code: SQLITE_CANTOPEN, message: "cannot open: errno \(errno)", sql: nil, path: path, systemErrno: errno) }
            var status = stat()
            guard fstat(fd, &status) == 0 else {
                close(fd)
                throw SQLiteError(code: SQLITE_IOERR, message: "cannot stat: errno \(errno)", sql: nil, path: path, systemErrno: errno)
            }
            opened = .plain(fd)
            size = Int64(status.st_size)
        }
        do {
            (pageSize, usableSize) = try Self.checkHeader(opened, path: path, size: size)
        } catch {
            if case .plain(let fd) = opened { close(fd) }
            throw error
        }
        source = opened
        pageCount = Int(size / Int64(pageSize))
    }

    /// The page size and usable bytes per page from the database header, once checked.
    private static func checkHeader(_ source: Source, path: String, size: Int64) throws(SQLiteError) -> (pageSize: Int, usableSize: Int) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: DatabaseHeader.size, alignment: 8)
        defer { buffer.deallocate() }
        var headerFrame: [UInt8] = [], headerFrameStart: Int64 = 0
        var bytes: [UInt8] = []
        if size >= DatabaseHeader.size {
            try Self.read(source, path: path, into: buffer, at: 0, frame: &headerFrame, frameStart: &headerFrameStart)
            bytes = [UInt8](buffer)
        }
        let header = try DatabaseHeader(bytes, path: path)
        return (header.pageSize, header.usableSize)
    }

    deinit {
        if case .plain(let fd) = source { close(fd) }
    }

    /// Copies page `number` (numbered from 1) into `buffer`, which holds `pageSize` bytes.
    func read(page number: Int, into buffer: UnsafeMutableRawBufferPointer) throws(SQLiteError) {
        guard number >= 1, number <= pageCount else {
            throw SQLiteError(code: SQLITE_CORRUPT, message: "page \(number) is past the end of the file (\(pageCount) pages)", sql: nil, path: path)
        }
        try Self.read(source, path: path, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<pageSize]),
                      at: Int64(number - 1) * Int64(pageSize), frame: &frame, frameStart: &frameStart)
    }

    private static func read(_ source: Source, path: String, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64,
                             frame: inout [UInt8], frameStart: inout Int64) throws(SQLiteError) {
        switch source {
        case .plain(let fd):
            let got = pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            guard got == buffer.count else {
                throw SQLiteError(code: SQLITE_IOERR, message: "short read at \(offset): \(got) of \(buffer.count) bytes (errno \(errno))", sql: nil, path: path)
            }
        case .sealed(let file):
            var done = 0
            while done < buffer.count {
                let position = offset + Int64(done)
                if position < frameStart || position >= frameStart + Int64(frame.count) {
                    guard position < file.decompressedSize else {
                        throw SQLiteError(code: SQLITE_CORRUPT, message: "read at \(position) past the end (\(file.decompressedSize) bytes)", sql: nil, path: path)
                    }
                    do {
                        (frame, frameStart) = try file.frame(containing: position)
                    } catch {
                        SeekableZstdVFS.record(error: "\(error)", for: path)
                        throw SQLiteError(code: SQLITE_CORRUPT, message: "\(error)", sql: nil, path: path)
                    }
                }
                let within = Int(position - frameStart)
                let n = min(buffer.count - done, frame.count - within)
                guard n > 0 else { throw SQLiteError(code: SQLITE_CORRUPT, message: "empty frame at \(position)", sql: nil, path: path) }
                frame.withUnsafeBytes { (buffer.baseAddress! + done).copyMemory(from: $0.baseAddress! + within, byteCount: n) }
                done += n
            }
        }
    }
}
