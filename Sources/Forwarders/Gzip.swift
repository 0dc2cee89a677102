import CZlib

/// gzip (RFC 1952) in one call, for request bodies: ClickHouse inflates a body sent
/// with `Content-Encoding: gzip`, old servers included.
package enum Gzip {
    /// Level 1: flow payloads shrink about 5× already at the fastest level, and the
    /// forwarder must not spend more CPU compressing than the server spends inserting.
    package static func compress(_ input: [UInt8], level: Int32 = 1) throws(ForwarderError) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib's.
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ForwarderError(.configuration, "zlib could not start a gzip stream (out of memory?)")
        }
        defer { deflateEnd(&stream) }
        // Uninitialized: zero-filling the bound (about the body's size, ~70 MB for a chunk
        // of 100,000 rows) wrote and faulted in every page of it for a ~3 MB result.
        var produced = -1
        let output = [UInt8](unsafeUninitializedCapacity: Int(deflateBound(&stream, UInt(input.count))) + 32) { target, written in
            input.withUnsafeBufferPointer { source in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                if deflate(&stream, Z_FINISH) == Z_STREAM_END { produced = Int(stream.total_out) }
            }
            written = max(produced, 0)
        }
        guard produced >= 0 else { throw ForwarderError(.configuration, "zlib could not compress a \(input.count)-byte body") }
        return output
    }
}
