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

    /// `input` framed in one call.
    package static func compress(_ input: [UInt8], level: Int32 = Self.level) throws(ForwarderError) -> [UInt8] {
        try Framer(level: level).body(of: input)
    }

    /// A body framed part by part (`BodyCompressor`): parts are gathered into blocks of
    /// `blockBytes` through one staging buffer (a copy costs far less than compressing),
    /// and each full block is compressed and framed at once.
    final class Framer: BodyCompressor {
        private let context: OpaquePointer
        private let level: Int32
        private let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: blockBytes, alignment: 16)
        private var staged = 0
        /// One framed block: compressed here, then appended to the body.
        private let block: UnsafeMutableRawBufferPointer
        private var failure: String?

        init(level: Int32 = ClickHouseCompressedBlocks.level) throws(ForwarderError) {
            guard let context = ZSTD_createCCtx() else {
                throw ForwarderError(.configuration, "zstd could not make a compression context (out of memory?)")
            }
            self.context = context
            self.level = level
            block = .allocate(byteCount: checksumBytes + headerBytes + ZSTD_compressBound(blockBytes), alignment: 16)
        }

        deinit {
            ZSTD_freeCCtx(context)
            staging.deallocate()
            block.deallocate()
        }

        func write(_ part: UnsafeRawBufferPointer, into output: inout [UInt8]) {
            var offset = 0
            while offset < part.count, failure == nil {
                let take = min(blockBytes - staged, part.count - offset)
                (staging.baseAddress! + staged).copyMemory(from: part.baseAddress! + offset, byteCount: take)
                staged += take
                offset += take
                if staged == blockBytes { flush(into: &output) }
            }
        }

        func finish(into output: inout [UInt8]) throws(ForwarderError) {
            flush(into: &output)
            defer {
                staged = 0
                failure = nil
            }
            if let failure { throw ForwarderError(.configuration, "zstd could not compress a request body: \(failure)") }
        }

        /// Compresses the staged bytes into one framed block at the end of `output`.
        private func flush(into output: inout [UInt8]) {
            guard staged > 0, failure == nil else { return }
            let start = block.baseAddress!
            let data = start + checksumBytes + headerBytes
            let size = ZSTD_compressCCtx(context, data, block.count - checksumBytes - headerBytes, staging.baseAddress, staged, level)
            guard ZSTD_isError(size) == 0 else {
                failure = String(cString: ZSTD_getErrorName(size))
                return
            }
            let header = start + checksumBytes
            header.storeBytes(of: methodZstd, as: UInt8.self)
            header.storeBytes(of: UInt32(headerBytes + size).littleEndian, toByteOffset: 1, as: UInt32.self)
            header.storeBytes(of: UInt32(staged).littleEndian, toByteOffset: 5, as: UInt32.self)
            let checksum = CityHash102.hash128(UnsafeRawBufferPointer(start: header, count: headerBytes + size))
            start.storeBytes(of: checksum.low.littleEndian, as: UInt64.self)
            start.storeBytes(of: checksum.high.littleEndian, toByteOffset: 8, as: UInt64.self)
            output.append(contentsOf: UnsafeRawBufferPointer(start: start, count: checksumBytes + headerBytes + size))
            staged = 0
        }
    }
}

/// Compresses a request body handed over part by part, as the encoder finishes each
/// block: a part is compressed while it is still in the cache, and the whole body never
/// exists uncompressed.
protocol BodyCompressor: AnyObject {
    /// Adds `part` to the body, appending what is compressed so far to `output`; a
    /// failure is kept and thrown by `finish`.
    func write(_ part: UnsafeRawBufferPointer, into output: inout [UInt8])
    /// Ends the body (appending its rest to `output`), and readies the compressor for
    /// the next one.
    func finish(into output: inout [UInt8]) throws(ForwarderError)
}

extension BodyCompressor {
    /// `input` as one whole body.
    func body(of input: [UInt8]) throws(ForwarderError) -> [UInt8] {
        var output: [UInt8] = []
        input.withUnsafeBytes { write($0, into: &output) }
        try finish(into: &output)
        return output
    }
}

/// No compression: the parts one after another.
final class PlainBody: BodyCompressor {
    func write(_ part: UnsafeRawBufferPointer, into output: inout [UInt8]) { output.append(contentsOf: part) }
    func finish(into output: inout [UInt8]) throws(ForwarderError) {}
}

extension ClickHouseBodyCompression {
    /// A compressor for bodies of this kind.
    func makeCompressor() throws(ForwarderError) -> any BodyCompressor {
        switch self {
        case .none: PlainBody()
        case .gzip: try Gzip.Stream()
        case .zstd: try ClickHouseCompressedBlocks.Framer()
        }
    }
}
