import CSQLite
import CZstd
import Foundation
import Synchronization

/// A read-only SQLite VFS that opens sealed shards (`*.sqlite.zst`) in place.
///
/// SQLite asks for pages by byte offset; this VFS maps an offset to the zstd frame that
/// holds it (through the seek table), decompresses only that frame, and keeps recent
/// frames in one cache shared by every reader and bounded in bytes. Files that are not
/// sealed shards are handed to SQLite's default VFS unchanged.
///
/// ```swift
/// SeekableZstdVFS.register()
/// let db = try SQLiteDatabase(path: SeekableZstdVFS.uri(for: path), mode: .readOnly, vfs: SeekableZstdVFS.name)
/// ```
package enum SeekableZstdVFS {
    package static let name = "flowrec-zstd"

    /// The URI to open a sealed shard with: immutable, so SQLite takes no locks and
    /// never looks for a journal.
    package static func uri(for path: String) -> String { SQLiteDatabase.immutableURI(path) }

    /// Whether this VFS reads `path` itself: a sealed shard, or one being verified
    /// before its rename. Other files go to SQLite's default VFS.
    package static func handles(_ path: String) -> Bool { path.hasSuffix(".zst") || path.hasSuffix(".zst.tmp") }

    /// Registers the VFS once per process (not as the default).
    package static func register() { _ = registration }

    /// The cache of decompressed frames shared by all sealed-shard readers.
    package static let frameCache = FrameCache(limitBytes: 64 << 20)

    /// The last read failure of a sealed shard, by path, so an SQLite I/O error can be
    /// reported with what actually went wrong (corrupt frame, truncated file).
    package static func lastError(for path: String) -> String? { errors.withLock { $0[path] } }

    private static let errors = Mutex<[String: String]>([:])
    package static func record(error: String, for path: String) { errors.withLock { $0[path] = error } }

    private static let registration: Void = {
        guard let base = sqlite3_vfs_find(nil) else { fatalError("SQLite has no default VFS") }
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: base.pointee)
        vfs.pointee.zName = UnsafePointer(strdup(name))
        vfs.pointee.szOsFile = max(base.pointee.szOsFile, Int32(MemoryLayout<sqlite3_file>.stride + MemoryLayout<UnsafeRawPointer>.stride))
        vfs.pointee.pNext = nil
        vfs.pointee.pAppData = base.pointee.pAppData
        defaultXOpen = base.pointee.xOpen
        defaultVFS = base
        vfs.pointee.xOpen = sealedXOpen
        sqlite3_vfs_register(vfs, 0)
    }()
}

// MARK: - C entry points (they cannot capture, so they reach state through globals)

nonisolated(unsafe) private var defaultXOpen: (@convention(c) (UnsafeMutablePointer<sqlite3_vfs>?, sqlite3_filename?, UnsafeMutablePointer<sqlite3_file>?, Int32, UnsafeMutablePointer<Int32>?) -> Int32)?  // written once in `registration` (a lazy global), before any open
nonisolated(unsafe) private var defaultVFS: UnsafeMutablePointer<sqlite3_vfs>?  // as defaultXOpen

nonisolated(unsafe) private let sealedMethods: UnsafeMutablePointer<sqlite3_io_methods> = {  // built once, never written after
    let m = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
    m.initialize(to: sqlite3_io_methods())
    m.pointee.iVersion = 1
    m.pointee.xClose = { file in
        guard let file else { return SQLITE_OK }
        Unmanaged<SeekableZstdFile>.fromOpaque(contextPointer(file).pointee!).release()
        contextPointer(file).pointee = nil
        return SQLITE_OK
    }
    m.pointee.xRead = { file, buffer, amount, offset in
        guard let file, let buffer else { return SQLITE_IOERR_READ }
        return sealedFile(file).read(into: buffer, count: Int(amount), at: offset)
    }
    m.pointee.xWrite = { _, _, _, _ in SQLITE_READONLY }
    m.pointee.xTruncate = { _, _ in SQLITE_READONLY }
    m.pointee.xSync = { _, _ in SQLITE_OK }
    m.pointee.xFileSize = { file, size in
        guard let file, let size else { return SQLITE_IOERR_FSTAT }
        size.pointee = sealedFile(file).decompressedSize
        return SQLITE_OK
    }
    m.pointee.xLock = { _, _ in SQLITE_OK }
    m.pointee.xUnlock = { _, _ in SQLITE_OK }
    m.pointee.xCheckReservedLock = { _, out in out?.pointee = 0; return SQLITE_OK }
    m.pointee.xFileControl = { _, _, _ in SQLITE_NOTFOUND }
    m.pointee.xSectorSize = { _ in 4096 }
    m.pointee.xDeviceCharacteristics = { _ in SQLITE_IOCAP_IMMUTABLE }
    return m
}()

private let sealedXOpen: @convention(c) (UnsafeMutablePointer<sqlite3_vfs>?, sqlite3_filename?, UnsafeMutablePointer<sqlite3_file>?, Int32, UnsafeMutablePointer<Int32>?) -> Int32 = { vfs, name, file, flags, outFlags in
    guard let file else { return SQLITE_CANTOPEN }
    let path = name.map { String(cString: $0) } ?? ""
    guard flags & SQLITE_OPEN_MAIN_DB != 0, SeekableZstdVFS.handles(path) else {
        return defaultXOpen?(defaultVFS, name, file, flags, outFlags) ?? SQLITE_CANTOPEN
    }
    do {
        let sealed = try SeekableZstdFile(path: path)
        file.pointee.pMethods = UnsafePointer(sealedMethods)
        contextPointer(file).pointee = Unmanaged.passRetained(sealed).toOpaque()
        outFlags?.pointee = SQLITE_OPEN_READONLY
        return SQLITE_OK
    } catch {
        SeekableZstdVFS.record(error: "\(error)", for: path)
        file.pointee.pMethods = nil
        return SQLITE_CANTOPEN
    }
}

/// The slot after the `sqlite3_file` header where the Swift object lives.
private func contextPointer(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
    UnsafeMutableRawPointer(file).advanced(by: MemoryLayout<sqlite3_file>.stride)
        .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
}

private func sealedFile(_ file: UnsafeMutablePointer<sqlite3_file>) -> SeekableZstdFile {
    Unmanaged<SeekableZstdFile>.fromOpaque(contextPointer(file).pointee!).takeUnretainedValue()
}

// MARK: - One open sealed shard

/// An open sealed shard: its seek table and a file descriptor for reading frames.
final class SeekableZstdFile: @unchecked Sendable {  // used by the SQLite connection that opened it
    let path: String
    let frames: [SeekableZstd.Frame]
    let decompressedSize: Int64
    private let fd: Int32
    private let identity: FileIdentity
    private let dctx: OpaquePointer

    init(path: String) throws {
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SeekableZstd.FormatError("cannot open \(path)") }
        defer { try? handle.close() }
        let size = fileSize(path)
        frames = try SeekableZstd.readSeekTable(handle, fileSize: size, name: path)
        decompressedSize = frames.last.map { $0.decompressedOffset + Int64($0.decompressedSize) } ?? 0
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SeekableZstd.FormatError("cannot open \(path): errno \(errno)") }
        var status = stat()
        guard fstat(fd, &status) == 0 else { close(fd); throw SeekableZstd.FormatError("cannot stat \(path): errno \(errno)") }
        guard let dctx = ZSTD_createDCtx() else { close(fd); throw SeekableZstd.FormatError("out of memory") }
        self.dctx = dctx
        identity = FileIdentity(status)
    }

    deinit {
        close(fd)
        ZSTD_freeDCtx(dctx)
    }

    /// SQLite's read: copy `count` bytes at `offset`, frame by frame.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int64) -> Int32 {
        var done = 0
        while done < count {
            let position = offset + Int64(done)
            guard position < decompressedSize else {
                memset(buffer + done, 0, count - done)
                return SQLITE_IOERR_SHORT_READ
            }
            let bytes: [UInt8], start: Int64
            do {
                (bytes, start) = try frame(containing: position)
            } catch {
                SeekableZstdVFS.record(error: "\(error)", for: path)
                return SQLITE_IOERR_READ
            }
            let within = Int(position - start)
            let n = min(count - done, bytes.count - within)
            bytes.withUnsafeBytes { src in (buffer + done).copyMemory(from: src.baseAddress! + within, byteCount: n) }
            done += n
        }
        return SQLITE_OK
    }

    /// The decompressed frame holding byte `position` of the original (which must be
    /// below `decompressedSize`), through the shared cache, and where it starts.
    func frame(containing position: Int64) throws -> (bytes: [UInt8], start: Int64) {
        let index = frameIndex(containing: position)
        let frame = frames[index]
        let bytes = try SeekableZstdVFS.frameCache.frame(file: identity, index: index) { try decompress(frame) }
        return (bytes, frame.decompressedOffset)
    }

    private func frameIndex(containing position: Int64) -> Int {
        var lo = 0, hi = frames.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if frames[mid].decompressedOffset <= position { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    private func decompress(_ frame: SeekableZstd.Frame) throws -> [UInt8] {
        var got = 0
        let compressed = [UInt8](unsafeUninitializedCapacity: frame.compressedSize) { buffer, initialized in
            got = pread(fd, buffer.baseAddress, frame.compressedSize, off_t(frame.compressedOffset))
            initialized = max(got, 0)  // a short read leaves a short array: decompressFrame reports the truncation
        }
        return try compressed.withUnsafeBytes { bytes in
            try SeekableZstd.decompressFrame(bytes, frame, name: path, dctx: dctx)
        }
    }
}

// Extended result codes are macros over SQLITE_IOERR that Swift cannot import.
private let SQLITE_IOERR_READ = SQLITE_IOERR | (1 << 8)
private let SQLITE_IOERR_SHORT_READ = SQLITE_IOERR | (2 << 8)
private let SQLITE_IOERR_FSTAT = SQLITE_IOERR | (7 << 8)
