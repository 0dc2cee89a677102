import CZlib

/// gzip (RFC 1952) for request bodies: ClickHouse inflates a body sent with
/// `Content-Encoding: gzip`, old servers included.
package enum Gzip {
    /// Level 1: flow payloads shrink about 20× already at the fastest level, and the
    /// forwarder must not spend more CPU compressing than the server spends inserting.
    package static let level: Int32 = 1

    /// `input` compressed in one call.
    package static func compress(_ input: [UInt8], level: Int32 = Gzip.level) throws(ForwarderError) -> [UInt8] {
        try compress(totalBytes: input.count, level: level) { (write: (UnsafeRawBufferPointer) -> Bool) in
            input.withUnsafeBytes { write($0) }
        }
    }

    /// The concatenation of the parts `parts` hands to its `write` function (`totalBytes`
    /// in all), compressed without joining them first: the Native encoder's per-column
    /// buffers go straight in, not through one more copy of the whole body (~70 MB per
    /// chunk of 100,000 rows). `write` returns false once zlib has failed.
    package static func compress(totalBytes: Int, level: Int32 = Gzip.level,
                                 _ parts: ((UnsafeRawBufferPointer) -> Bool) -> Bool) throws(ForwarderError) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib's.
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ForwarderError(.configuration, "zlib could not start a gzip stream (out of memory?)")
        }
        defer { deflateEnd(&stream) }
        // The bound holds the whole output, so each part needs one deflate call and the
        // output never moves. Left uninitialized: zero-filling it wrote and faulted in every
        // page of ~70 MB for a result of ~3 MB.
        var failed = false
        let output = [UInt8](unsafeUninitializedCapacity: Int(deflateBound(&stream, UInt(totalBytes))) + 32) { target, written in
            stream.next_out = target.baseAddress
            stream.avail_out = UInt32(target.count)
            let fed = parts { part in
                guard !failed else { return false }
                guard part.count > 0 else { return true }
                stream.next_in = UnsafeMutablePointer(mutating: part.baseAddress!.assumingMemoryBound(to: UInt8.self))
                stream.avail_in = UInt32(part.count)
                failed = deflate(&stream, Z_NO_FLUSH) != Z_OK || stream.avail_in != 0
                return !failed
            }
            failed = failed || !fed || deflate(&stream, Z_FINISH) != Z_STREAM_END
            written = failed ? 0 : Int(stream.total_out)
        }
        guard !failed else { throw ForwarderError(.configuration, "zlib could not compress a \(totalBytes)-byte body") }
        return output
    }
}
