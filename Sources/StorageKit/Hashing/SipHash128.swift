/// SipHash-2-4 with a 128-bit output (Aumasson and Bernstein, "SipHash: a fast
/// short-input PRF", and the reference `siphash.c` with `cROUNDS=2, dROUNDS=4`).
///
/// flowrec keys pushed log entries by their content with it: a retried push must find
/// the entries it already stored, and two different entries of a window must never
/// share a key. With 128 bits, a window of a billion entries collides with probability
/// about 10^-21; 64 bits would collide once in a few windows at NetObserv's rates. The
/// key is fixed (the hash must be the same in every process and release): this is not
/// a defence against chosen collisions, only a well-mixed content digest.
package struct SipHash128 {
    package static let defaultKey: (UInt64, UInt64) = (0x666C_6F77_7265_6321, 0x6C6F_6B69_2D70_7573)

    // Inlinable, like the rest of the hot path: a `package` generic that other modules
    // call unspecialised went through protocol witnesses for every byte (half of a push).
    @usableFromInline var v0, v1, v2, v3: UInt64
    @usableFromInline var tail: UInt64 = 0
    @usableFromInline var tailBytes = 0
    @usableFromInline var length = 0

    @inlinable package init(key: (UInt64, UInt64) = SipHash128.defaultKey) {
        v0 = key.0 ^ 0x736F_6D65_7073_6575
        v1 = key.1 ^ 0x646F_7261_6E64_6F6D ^ 0xEE
        v2 = key.0 ^ 0x6C79_6765_6E65_7261
        v3 = key.1 ^ 0x7465_6462_7974_6573
    }

    /// Adds bytes to the message.
    @inlinable package mutating func combine<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { combine(buffer: $0) }
        if done == nil { Array(bytes).withUnsafeBufferPointer { combine(buffer: $0) } }
    }

    /// Adds a string's UTF-8 bytes. A small string (up to 15 bytes, most label names and
    /// values) has no contiguous UTF-8 view to lend, and the generic `combine` copied it
    /// into a new array each time (a push went from 69k to 79k flows/s without it).
    @inlinable package mutating func combine(utf8 text: String) {
        var text = text
        text.withUTF8 { combine(buffer: $0) }
    }

    /// Adds one byte (a separator).
    @inlinable package mutating func combine(byte: UInt8) {
        var byte = byte
        withUnsafePointer(to: &byte) { combine(buffer: UnsafeBufferPointer(start: $0, count: 1)) }
    }

    @inlinable package mutating func combine(buffer: UnsafeBufferPointer<UInt8>) {
        var i = 0
        length += buffer.count
        // Fill a pending partial word first.
        while tailBytes != 0 && i < buffer.count {
            tail |= UInt64(buffer[i]) << (8 * UInt64(tailBytes))
            tailBytes += 1
            i += 1
            if tailBytes == 8 {
                compress(tail)
                tail = 0
                tailBytes = 0
            }
        }
        while i + 8 <= buffer.count {
            var m: UInt64 = 0
            for j in 0..<8 { m |= UInt64(buffer[i + j]) << (8 * UInt64(j)) }
            compress(m)
            i += 8
        }
        while i < buffer.count {
            tail |= UInt64(buffer[i]) << (8 * UInt64(tailBytes))
            tailBytes += 1
            i += 1
        }
    }

    /// The 128-bit digest as two words (the reference's first and second 8 output bytes,
    /// read little-endian).
    @inlinable package consuming func finalize() -> (UInt64, UInt64) {
        let b = UInt64(truncatingIfNeeded: length) << 56 | tail
        compress(b)
        v2 ^= 0xEE
        for _ in 0..<4 { round() }
        let h0 = v0 ^ v1 ^ v2 ^ v3
        v1 ^= 0xDD
        for _ in 0..<4 { round() }
        let h1 = v0 ^ v1 ^ v2 ^ v3
        return (h0, h1)
    }

    @inlinable mutating func compress(_ m: UInt64) {
        v3 ^= m
        round()
        round()
        v0 ^= m
    }

    @inlinable @inline(__always) mutating func round() {
        v0 &+= v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 &+= v3; v3 = rotl(v3, 16); v3 ^= v2
        v0 &+= v3; v3 = rotl(v3, 21); v3 ^= v0
        v2 &+= v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    }

    @inlinable @inline(__always) func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }
}
