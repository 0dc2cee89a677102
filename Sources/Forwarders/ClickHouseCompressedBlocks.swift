import CZstd

/// How the ClickHouse forwarder compresses its request bodies.
package enum ClickHouseBodyCompression: String, CaseIterable, Sendable {
    /// The body as encoded.
    case none
    /// `Content-Encoding: gzip`: what any HTTP server inflates, and the slowest to make
    /// and to inflate (zlib level 1 was most of the forwarder's CPU time).
    case gzip
    /// ClickHouse's own compressed framing (`ClickHouseCompressedBlocks`, blocks of ZSTD)
    /// sent with `decompress=1`: the format ClickHouse's native clients send. Servers
    /// since 2017 (18.16 included) take it; it costs a fraction of gzip on both sides.
    case zstd
}

/// ClickHouse's compressed framing, the body of an HTTP request with `decompress=1`:
/// a sequence of blocks, each
///
///     checksum   16 bytes  CityHash128 v1.0.2 of everything after it in the block (low, high; little-endian)
///     method      1 byte   0x90 = ZSTD
///     compressed  4 bytes  the block's size from `method` on, these 9 header bytes included
///     plain       4 bytes  the size of the block's data once decompressed
///     data                 one ZSTD frame
///
/// The server checks each checksum and decompresses each block on its own, so blocks
/// are cut at `blockBytes` of input, as ClickHouse's own clients cut them
/// (`max_compress_block_size`, 1 MiB).
package enum ClickHouseCompressedBlocks {
    package static let methodZstd: UInt8 = 0x90
    package static let headerBytes = 9
    package static let checksumBytes = 16
    /// Plain bytes per block.
    package static let blockBytes = 1 << 20
    /// zstd's level 1: it already shrinks Native flows about as much as gzip's level 1,
    /// at several times its speed (`flowrec-bench forward` measures both).
    package static let level: Int32 = 1

    /// The concatenation of the parts `parts` hands to its `write` function (`totalBytes`
    /// in all), framed in compressed blocks. Parts are gathered into blocks of
    /// `blockBytes` through one staging buffer (a copy costs far less than compressing).
    /// `write` returns false once compression has failed.
    package static func compress(totalBytes: Int, level: Int32 = Self.level,
                                 _ parts: ((UnsafeRawBufferPointer) -> Bool) -> Bool) throws(ForwarderError) -> [UInt8] {
        guard let context = ZSTD_createCCtx() else {
            throw ForwarderError(.configuration, "zstd could not make a compression context (out of memory?)")
        }
        defer { ZSTD_freeCCtx(context) }
        let blocks = max(1, (totalBytes + blockBytes - 1) / blockBytes)
        let bound = blocks * (checksumBytes + headerBytes + ZSTD_compressBound(blockBytes))
        let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: blockBytes, alignment: 16)
        defer { staging.deallocate() }
        var failure: String?
        // Left uninitialized, as gzip's output: only what is written is touched.
        let output = [UInt8](unsafeUninitializedCapacity: bound) { target, written in
            written = 0
            var staged = 0
            /// Compresses the staged bytes into the next block at `written`.
            func flush() -> Bool {
                guard staged > 0 else { return true }
                let block = UnsafeMutableRawPointer(target.baseAddress! + written)
                let data = block + checksumBytes + headerBytes
                let size = ZSTD_compressCCtx(context, data, target.count - written - checksumBytes - headerBytes,
                                             staging.baseAddress, staged, level)
                guard ZSTD_isError(size) == 0 else {
                    failure = String(cString: ZSTD_getErrorName(size))
                    return false
                }
                let header = block + checksumBytes
                header.storeBytes(of: methodZstd, as: UInt8.self)
                header.storeBytes(of: UInt32(headerBytes + size).littleEndian, toByteOffset: 1, as: UInt32.self)
                header.storeBytes(of: UInt32(staged).littleEndian, toByteOffset: 5, as: UInt32.self)
                let checksum = CityHash102.hash128(UnsafeRawBufferPointer(start: header, count: headerBytes + size))
                block.storeBytes(of: checksum.low.littleEndian, as: UInt64.self)
                block.storeBytes(of: checksum.high.littleEndian, toByteOffset: 8, as: UInt64.self)
                written += checksumBytes + headerBytes + size
                staged = 0
                return true
            }
            var fed = 0
            let complete = parts { part in
                guard failure == nil else { return false }
                fed += part.count
                guard fed <= totalBytes else {
                    failure = "the parts hold more than the \(totalBytes) bytes announced"
                    return false
                }
                var offset = 0
                while offset < part.count {
                    let take = min(blockBytes - staged, part.count - offset)
                    (staging.baseAddress! + staged).copyMemory(from: part.baseAddress! + offset, byteCount: take)
                    staged += take
                    offset += take
                    if staged == blockBytes, !flush() { return false }
                }
                return true
            }
            if !complete, failure == nil { failure = "the encoder stopped handing over its body" }
            if failure == nil { _ = flush() }
            if failure != nil { written = 0 }
        }
        if let failure {
            throw ForwarderError(.configuration, "zstd could not compress a \(totalBytes)-byte body: \(failure)")
        }
        return output
    }

    /// `input` framed in one call.
    package static func compress(_ input: [UInt8], level: Int32 = Self.level) throws(ForwarderError) -> [UInt8] {
        try compress(totalBytes: input.count, level: level) { (write: (UnsafeRawBufferPointer) -> Bool) in
            input.withUnsafeBytes { write($0) }
        }
    }
}
