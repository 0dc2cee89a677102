/// CityHash128 as of CityHash v1.0.2: the checksum in front of every block of
/// ClickHouse's compressed framing (`decompress=1` on HTTP, the native protocol, parts
/// on disk). ClickHouse kept this old version when Google changed the algorithm in
/// v1.0.3, so later CityHash libraries give other values; the server refuses a block
/// whose checksum differs ("Checksum doesn't match: corrupted data").
///
/// Written from the algorithm's description (Geoff Pike and Jyrki Alakuijala's CityHash,
/// MIT licence). `CompressedBlocksTests.cityHashEqualsTheServersChecksums` checks it
/// against the checksums the test server writes into its own part files.
package enum CityHash102 {
    private static let k0: UInt64 = 0xc3a5_c85c_97cb_3127
    private static let k1: UInt64 = 0xb492_b66f_be98_f273
    private static let k2: UInt64 = 0x9ae1_6a3b_2f90_404f
    private static let k3: UInt64 = 0xc949_d7c7_509e_6557

    /// The 128-bit hash of `bytes` as (low, high): ClickHouse writes low, then high,
    /// each little-endian.
    package static func hash128(_ bytes: UnsafeRawBufferPointer) -> (low: UInt64, high: UInt64) {
        let s = Bytes(bytes)
        let length = bytes.count
        if length >= 16 {
            return hash128(s, from: 16, length: length - 16, seed: (s.load64(0) ^ k3, s.load64(8)))
        } else if length >= 8 {
            return hash128(s, from: 0, length: 0,
                           seed: (s.load64(0) ^ (UInt64(length) &* k0), s.load64(length - 8) ^ k1))
        }
        return hash128(s, from: 0, length: length, seed: (k0, k1))
    }

    /// Little-endian loads from the input at byte offsets.
    private struct Bytes {
        let base: UnsafeRawPointer?
        init(_ buffer: UnsafeRawBufferPointer) { base = buffer.baseAddress }
        @inline(__always) func load64(_ offset: Int) -> UInt64 {
            UInt64(littleEndian: base!.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
        @inline(__always) func load32(_ offset: Int) -> UInt64 {
            UInt64(UInt32(littleEndian: base!.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        }
        @inline(__always) func byte(_ offset: Int) -> UInt32 {
            UInt32(base!.load(fromByteOffset: offset, as: UInt8.self))
        }
    }

    @inline(__always) private static func rotate(_ value: UInt64, _ shift: UInt64) -> UInt64 {
        shift == 0 ? value : (value >> shift) | (value << (64 - shift))
    }

    @inline(__always) private static func shiftMix(_ value: UInt64) -> UInt64 { value ^ (value >> 47) }

    /// Hash128to64 of the pair (u, v).
    @inline(__always) private static func hash16(_ u: UInt64, _ v: UInt64) -> UInt64 {
        let multiplier: UInt64 = 0x9ddf_ea08_eb38_2d69
        var a = (u ^ v) &* multiplier
        a ^= a >> 47
        var b = (v ^ a) &* multiplier
        b ^= b >> 47
        return b &* multiplier
    }

    private static func hash0to16(_ s: Bytes, from start: Int, length: Int) -> UInt64 {
        if length > 8 {
            let a = s.load64(start)
            let b = s.load64(start + length - 8)
            // RotateByAtLeast1: the shift is the length, 9 to 16 here, never 0.
            let c = b &+ UInt64(length)
            let shift = UInt64(length) & 63
            return hash16(a, (c >> shift) | (c << (64 - shift))) ^ b
        }
        if length >= 4 {
            let a = s.load32(start)
            return hash16(UInt64(length) &+ (a << 3), s.load32(start + length - 4))
        }
        if length > 0 {
            let a = s.byte(start), b = s.byte(start + (length >> 1)), c = s.byte(start + length - 1)
            let y = a &+ (b << 8)
            let z = UInt32(length) &+ (c << 2)
            return shiftMix((UInt64(y) &* k2) ^ (UInt64(z) &* k3)) &* k2
        }
        return k2
    }

    /// CityMurmur: the seeded hash of inputs under 128 bytes.
    private static func murmur(_ s: Bytes, from start: Int, length: Int, seed: (UInt64, UInt64)) -> (low: UInt64, high: UInt64) {
        var a = seed.0, b = seed.1, c: UInt64 = 0, d: UInt64 = 0
        var remaining = length - 16
        if remaining <= 0 {
            a = shiftMix(a &* k1) &* k1
            c = b &* k1 &+ hash0to16(s, from: start, length: length)
            d = shiftMix(a &+ (length >= 8 ? s.load64(start) : c))
        } else {
            c = hash16(s.load64(start + length - 8) &+ k1, a)
            d = hash16(b &+ UInt64(length), c &+ s.load64(start + length - 16))
            a = a &+ d
            var p = start
            repeat {
                a ^= shiftMix(s.load64(p) &* k1) &* k1
                a = a &* k1
                b ^= a
                c ^= shiftMix(s.load64(p + 8) &* k1) &* k1
                c = c &* k1
                d ^= c
                p += 16
                remaining -= 16
            } while remaining > 0
        }
        a = hash16(a, c)
        b = hash16(d, b)
        return (a ^ b, hash16(b, a))
    }

    @inline(__always) private static func weak32(_ s: Bytes, _ p: Int, _ a: UInt64, _ b: UInt64) -> (UInt64, UInt64) {
        let w = s.load64(p), x = s.load64(p + 8), y = s.load64(p + 16), z = s.load64(p + 24)
        var a = a &+ w
        var b = rotate(b &+ a &+ z, 21)
        let c = a
        a = a &+ x
        a = a &+ y
        b = b &+ rotate(a, 44)
        return (a &+ z, b &+ c)
    }

    /// CityHash128WithSeed over `length` bytes from `start`.
    private static func hash128(_ s: Bytes, from start: Int, length: Int, seed: (UInt64, UInt64)) -> (low: UInt64, high: UInt64) {
        if length < 128 { return murmur(s, from: start, length: length, seed: seed) }
        var x = seed.0, y = seed.1
        var z = UInt64(length) &* k1
        var v: (UInt64, UInt64), w: (UInt64, UInt64)
        v.0 = rotate(y ^ k1, 49) &* k1 &+ s.load64(start)
        v.1 = rotate(v.0, 42) &* k1 &+ s.load64(start + 8)
        w.0 = rotate(y &+ z, 35) &* k1 &+ x
        w.1 = rotate(x &+ s.load64(start + 88), 53) &* k1
        var p = start
        var left = length
        /// One 64-byte step of the main loop (the original unrolls two per iteration).
        func step() {
            x = rotate(x &+ y &+ v.0 &+ s.load64(p + 16), 37) &* k1
            y = rotate(y &+ v.1 &+ s.load64(p + 48), 42) &* k1
            x ^= w.1
            y ^= v.0
            z = rotate(z ^ w.0, 33)
            v = weak32(s, p, v.1 &* k1, x &+ w.0)
            w = weak32(s, p + 32, z &+ w.1, y)
            swap(&z, &x)
            p += 64
        }
        repeat {
            step()
            step()
            left -= 128
        } while left >= 128
        y = y &+ rotate(w.0, 37) &* k0 &+ z
        x = x &+ rotate(v.0 &+ z, 49) &* k0
        // Up to four 32-byte pieces from the end of what is left.
        var tailDone = 0
        while tailDone < left {
            tailDone += 32
            y = rotate(y &- x, 42) &* k0 &+ v.1
            w.0 = w.0 &+ s.load64(p + left - tailDone + 16)
            x = rotate(x, 49) &* k0 &+ w.0
            w.0 = w.0 &+ v.0
            v = weak32(s, p + left - tailDone, v.0, v.1)
        }
        x = hash16(x, v.0)
        y = hash16(y, w.0)
        return (hash16(x &+ v.1, w.1) &+ y, hash16(x &+ w.1, y &+ v.1))
    }
}
