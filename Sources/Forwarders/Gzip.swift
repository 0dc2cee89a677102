import CZlib

/// gzip (RFC 1952) for request bodies: ClickHouse inflates a body sent with
/// `Content-Encoding: gzip`, old servers included.
package enum Gzip {
    /// Level 1: flow payloads shrink about 20× already at the fastest level, and the
    /// forwarder must not spend more CPU compressing than the server spends inserting.
    package static let level: Int32 = 1

    /// `input` compressed in one call.
    package static func compress(_ input: [UInt8], level: Int32 = Gzip.level) throws(ForwarderError) -> [UInt8] {
        try Stream(level: level).body(of: input)
    }

    /// One gzip member written part by part (`BodyCompressor`): the encoder hands over
    /// each Native block as it finishes, while its buffers are still in the cache. After
    /// `finish` the stream starts the next member.
    final class Stream: BodyCompressor {
        /// On the heap: zlib keeps a pointer back to it, so it must never move.
        private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        /// Where deflate writes; appended to the body whenever it fills.
        private let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 256 << 10)
        private var failed = false

        init(level: Int32 = Gzip.level) throws(ForwarderError) {
            stream.initialize(to: z_stream())
            // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib's.
            guard deflateInit2_(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                // deinit still runs (every property is set): it frees both buffers, and
                // deflateEnd of a stream that never started does nothing.
                throw ForwarderError(.configuration, "zlib could not start a gzip stream (out of memory?)")
            }
            stream.pointee.next_out = scratch.baseAddress
            stream.pointee.avail_out = UInt32(scratch.count)
        }

        deinit {
            deflateEnd(stream)
            stream.deallocate()
            scratch.deallocate()
        }

        func write(_ part: UnsafeRawBufferPointer, into output: inout [UInt8]) {
            guard !failed, part.count > 0 else { return }
            stream.pointee.next_in = UnsafeMutablePointer(mutating: part.baseAddress!.assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = UInt32(part.count)
            while stream.pointee.avail_in > 0 {
                if stream.pointee.avail_out == 0 { drain(into: &output) }
                // Z_OK always, with room to write and input left: anything else is a
                // failure (accepting "no progress" here could loop forever).
                guard deflate(stream, Z_NO_FLUSH) == Z_OK else { failed = true; return }
            }
        }

        func finish(into output: inout [UInt8]) throws(ForwarderError) {
            defer {
                deflateReset(stream)
                stream.pointee.next_out = scratch.baseAddress
                stream.pointee.avail_out = UInt32(scratch.count)
                failed = false
            }
            guard !failed else { throw ForwarderError(.configuration, "zlib could not compress a request body") }
            while true {
                if stream.pointee.avail_out == 0 { drain(into: &output) }
                let status = deflate(stream, Z_FINISH)
                if status == Z_STREAM_END { break }
                guard status == Z_OK else {
                    throw ForwarderError(.configuration, "zlib could not finish a request body (status \(status))")
                }
            }
            drain(into: &output)
        }

        /// Moves what deflate wrote into `output` and points deflate at the emptied buffer.
        private func drain(into output: inout [UInt8]) {
            let filled = scratch.count - Int(stream.pointee.avail_out)
            if filled > 0 { output.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<filled])) }
            stream.pointee.next_out = scratch.baseAddress
            stream.pointee.avail_out = UInt32(scratch.count)
        }
    }
}
