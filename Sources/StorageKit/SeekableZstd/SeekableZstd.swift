import CZstd
import Foundation

/// A zstd "seekable format" file: independent zstd frames, then a seek table in a
/// skippable frame (the layout of zstd's `contrib/seekable_format`). Plain `zstd -d`
/// decompresses it as a whole (it skips the table); flowrec reads single frames by
/// offset, which is what lets a sealed shard be queried without decompressing it all.
///
/// Each frame carries zstd's content checksum, so a corrupted frame fails to decode
/// instead of returning wrong bytes.
package enum SeekableZstd {
    static let skippableMagic: UInt32 = 0x184D_2A5E
    static let seekableMagic: UInt32 = 0x8F92_EAB1
    static let footerSize = 9
    /// The largest frame flowrec writes (`flowrec compact --frame-mib` allows 64); a seek
    /// table claiming more is damaged, and trusting it would allocate that much.
    package static let maxFrameBytes = 64 << 20

    /// The libzstd flowrec runs with (`flowrec --version`).
    package static var libraryVersion: String { String(cString: ZSTD_versionString()) }

    package struct Frame: Sendable, Equatable {
        /// Byte offset of the frame in the compressed file, and in the original.
        package let compressedOffset: Int64
        package let decompressedOffset: Int64
        package let compressedSize: Int
        package let decompressedSize: Int
    }

    package struct FormatError: Error, CustomStringConvertible, Sendable {
        package let description: String
        init(_ d: String) { description = d }
    }

    /// Compresses `source` into `destination` in frames of at most `frameSize` bytes at
    /// `level`, writing the seek table last. A frame also ends at each of `boundaries`
    /// (byte offsets of the source, in any order), so that what a reader wants together
    /// (a granule of rows, the schema and dictionary) is decompressed together and
    /// nothing else with it. Returns the frames written. The destination is fsynced
    /// before this returns.
    @discardableResult
    package static func compress(source: String, destination: String, level: Int32, frameSize: Int = 1 << 20,
                                boundaries: [Int64] = [], shouldCancel: () -> Bool = { false }) throws -> [Frame] {
        guard let input = FileHandle(forReadingAtPath: source) else { throw FormatError("cannot read \(source)") }
        defer { try? input.close() }
        guard FileManager.default.createFile(atPath: destination, contents: nil),
              let output = FileHandle(forWritingAtPath: destination) else {
            throw FormatError("cannot create \(destination): check free space and permissions")
        }
        defer { try? output.close() }
        guard let cctx = ZSTD_createCCtx() else { throw FormatError("out of memory creating a zstd context") }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)

        var frames: [Frame] = []
        var compressedOffset: Int64 = 0, decompressedOffset: Int64 = 0
        var scratch = [UInt8](repeating: 0, count: ZSTD_compressBound(frameSize))
        var cuts = boundaries.filter { $0 > 0 }.sorted()[...]
        while !shouldCancel() {
            while let next = cuts.first, next <= decompressedOffset { cuts = cuts.dropFirst() }
            let size = cuts.first.map { min(frameSize, Int($0 - decompressedOffset)) } ?? frameSize
            let chunk = try input.read(upToCount: size) ?? Data()
            if chunk.isEmpty { break }
            let written: Int = try chunk.withUnsafeBytes { src in
                let n = scratch.withUnsafeMutableBytes { dst in
                    ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
                }
                if ZSTD_isError(n) != 0 { throw FormatError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
                return n
            }
            try output.write(contentsOf: scratch[0..<written])
            frames.append(Frame(compressedOffset: compressedOffset, decompressedOffset: decompressedOffset,
                                compressedSize: written, decompressedSize: chunk.count))
            compressedOffset += Int64(written)
            decompressedOffset += Int64(chunk.count)
        }
        try output.write(contentsOf: seekTable(frames))
        try output.synchronize()
        return frames
    }

    /// The skippable frame holding the seek table for `frames`.
    static func seekTable(_ frames: [Frame]) -> Data {
        var table = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { table.append(contentsOf: $0) } }
        u32(skippableMagic)
        u32(UInt32(frames.count * 8 + footerSize))
        for f in frames {
            u32(UInt32(f.compressedSize))
            u32(UInt32(f.decompressedSize))
        }
        u32(UInt32(frames.count))
        table.append(0)  // descriptor: no per-frame checksums (zstd's own frame checksum is on)
        u32(seekableMagic)
        return table
    }

    /// Reads and checks the seek table at the end of an open file of `fileSize` bytes.
    static func readSeekTable(_ handle: FileHandle, fileSize: Int64, name: String) throws -> [Frame] {
        guard fileSize >= Int64(footerSize + 8) else { throw FormatError("\(name) is too short to be a sealed shard (\(fileSize) bytes)") }
        try handle.seek(toOffset: UInt64(fileSize) - UInt64(footerSize))
        let footer = try handle.read(upToCount: footerSize) ?? Data()
        guard footer.count == footerSize else { throw FormatError("\(name): cannot read the seek table footer") }
        let count = Int(footer.u32(at: 0))
        let descriptor = footer[footer.startIndex + 4]
        guard footer.u32(at: 5) == seekableMagic else {
            throw FormatError("\(name) has no seek table (not a sealed shard, or truncated)")
        }
        guard descriptor & 0x7C == 0 else { throw FormatError("\(name): seek table uses reserved flags") }
        let entrySize = descriptor & 0x80 != 0 ? 12 : 8
        let tableSize = Int64(count * entrySize + footerSize)
        guard count > 0, tableSize + 8 <= fileSize else { throw FormatError("\(name): seek table claims \(count) frames, more than the file holds") }
        try handle.seek(toOffset: UInt64(fileSize - tableSize - 8))
        let table = try handle.read(upToCount: Int(tableSize + 8)) ?? Data()
        guard table.count == Int(tableSize + 8), table.u32(at: 0) == skippableMagic,
              Int64(table.u32(at: 4)) == tableSize else {
            throw FormatError("\(name): seek table header is damaged")
        }
        var frames: [Frame] = []
        var c: Int64 = 0, d: Int64 = 0
        for i in 0..<count {
            let at = 8 + i * entrySize
            let cs = Int(table.u32(at: at)), ds = Int(table.u32(at: at + 4))
            guard ds > 0, ds <= maxFrameBytes, cs > 0, cs <= ZSTD_compressBound(ds) else {
                throw FormatError("\(name): seek table entry \(i) claims a \(cs)-byte frame of \(ds) bytes, which flowrec never writes")
            }
            frames.append(Frame(compressedOffset: c, decompressedOffset: d, compressedSize: cs, decompressedSize: ds))
            c += Int64(cs)
            d += Int64(ds)
        }
        guard c == fileSize - tableSize - 8 else {
            throw FormatError("\(name): frames add up to \(c) bytes but the file has \(fileSize - tableSize - 8) before the seek table")
        }
        return frames
    }

    /// Checks that a frame's own header announces the size the seek table claims, before
    /// any buffer of that size is allocated.
    static func checkHeader(_ compressed: UnsafeRawBufferPointer, _ frame: Frame, name: String) throws {
        let announced = ZSTD_getFrameContentSize(compressed.baseAddress, compressed.count)
        guard announced == UInt64(frame.decompressedSize) else {
            throw FormatError("\(name): frame at byte \(frame.compressedOffset) does not match the seek table (corrupt)")
        }
    }

    /// Reads one frame's compressed bytes and decompresses them.
    static func readFrame(_ handle: FileHandle, _ frame: Frame, name: String, dctx: OpaquePointer) throws -> [UInt8] {
        try handle.seek(toOffset: UInt64(frame.compressedOffset))
        let compressed = try handle.read(upToCount: frame.compressedSize) ?? Data()
        return try compressed.withUnsafeBytes { try decompressFrame($0, frame, name: name, dctx: dctx) }
    }

    /// Decompresses one frame's bytes, checking that they are whole, that the frame header
    /// announces the size the seek table claims (before allocating it), and zstd's checksum.
    static func decompressFrame(_ compressed: UnsafeRawBufferPointer, _ frame: Frame, name: String,
                                dctx: OpaquePointer) throws -> [UInt8] {
        guard compressed.count == frame.compressedSize else {
            throw FormatError("\(name): frame at byte \(frame.compressedOffset) is truncated")
        }
        try checkHeader(compressed, frame, name: name)
        // Not zeroed first: zstd writes every byte or fails (zeroing was 3% of a scan).
        var n = 0
        let out = [UInt8](unsafeUninitializedCapacity: frame.decompressedSize) { dst, initialized in
            n = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, compressed.baseAddress, compressed.count)
            initialized = ZSTD_isError(n) == 0 && n == frame.decompressedSize ? n : 0
        }
        if ZSTD_isError(n) != 0 {
            throw FormatError("\(name): frame at byte \(frame.compressedOffset) is corrupt (\(String(cString: ZSTD_getErrorName(n))))")
        }
        guard n == frame.decompressedSize else {
            throw FormatError("\(name): frame at byte \(frame.compressedOffset) decompresses to the wrong size")
        }
        return out
    }

    /// Decompresses a whole sealed file to `destination` through the seek table.
    package static func decompress(source: String, destination: String) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw FormatError("cannot read \(source)") }
        defer { try? input.close() }
        let size = Int64((try FileManager.default.attributesOfItem(atPath: source)[.size] as? NSNumber)?.int64Value ?? 0)
        let frames = try readSeekTable(input, fileSize: size, name: source)
        guard FileManager.default.createFile(atPath: destination, contents: nil),
              let output = FileHandle(forWritingAtPath: destination) else { throw FormatError("cannot create \(destination)") }
        defer { try? output.close() }
        guard let dctx = ZSTD_createDCtx() else { throw FormatError("out of memory creating a zstd context") }
        defer { ZSTD_freeDCtx(dctx) }
        for frame in frames { try output.write(contentsOf: try readFrame(input, frame, name: source, dctx: dctx)) }
    }
}

extension Data {
    func u32(at offset: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(self[startIndex + offset + i]) << (8 * i) }
        return v
    }
}

/// One buffer compressed as one zstd frame: the codec of Parquet pages.
package enum ZstdBlock {
    package static func compress(_ bytes: [UInt8], level: Int32) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
        let n = bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, level) }
        }
        if ZSTD_isError(n) != 0 { throw SeekableZstd.FormatError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }
}
