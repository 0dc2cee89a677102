/// A Bloom filter over the values of one field of one shard: "certainly absent" or
/// "maybe present", in about 10 bits per distinct value (1% false positives).
///
/// Stored on disk (in the shard and the catalog), so its hash must never change between
/// processes or versions: FNV-1a over a type tag and the value's bytes, finished by
/// MurmurHash3's 64-bit mixer, split in two for double hashing. Swift's `Hasher` is
/// seeded per process and cannot be used.
package struct BloomFilter: Sendable, Equatable {
    let hashCount: Int
    private(set) var words: [UInt64]

    /// A filter sized for `expected` distinct values.
    init(expected: Int, bitsPerValue: Int = SkipIndex.bloomBitsPerValue) {
        let bits = max(64, expected * bitsPerValue)
        words = [UInt64](repeating: 0, count: (bits + 63) / 64)
        // k = ln 2 × m/n, rounded: 7 for 10 bits per value.
        hashCount = max(1, min(16, Int((Double(words.count * 64) / Double(max(1, expected)) * 0.693).rounded())))
    }

    private init(hashCount: Int, words: [UInt64]) {
        self.hashCount = hashCount
        self.words = words
    }

    /// `field`, when given, is hashed with the value: one filter can then hold the values
    /// of several fields (a granule's) without one field's value matching another's.
    mutating func insert(_ value: IndexValue, field: Int? = nil) {
        let (h1, h2) = Self.hashes(value, field: field)
        let bits = UInt64(words.count * 64)
        for i in 0..<UInt64(hashCount) {
            let bit = (h1 &+ i &* h2) % bits
            words[Int(bit / 64)] |= 1 << (bit % 64)
        }
    }

    package func mightContain(_ value: IndexValue, field: Int? = nil) -> Bool {
        let (h1, h2) = Self.hashes(value, field: field)
        let bits = UInt64(words.count * 64)
        for i in 0..<UInt64(hashCount) {
            let bit = (h1 &+ i &* h2) % bits
            if words[Int(bit / 64)] & (1 << (bit % 64)) == 0 { return false }
        }
        return true
    }

    /// `[hash count: 1 byte][words: 8 bytes each, little-endian]`.
    var serialized: [UInt8] {
        var bytes: [UInt8] = [UInt8(hashCount)]
        bytes.reserveCapacity(1 + words.count * 8)
        for word in words {
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return bytes
    }

    init?(serialized bytes: [UInt8]) {
        guard bytes.count > 1, (bytes.count - 1) % 8 == 0, (1...16).contains(Int(bytes[0])) else { return nil }
        var words: [UInt64] = []
        words.reserveCapacity((bytes.count - 1) / 8)
        var i = 1
        while i < bytes.count {
            var word: UInt64 = 0
            for k in 0..<8 { word |= UInt64(bytes[i + k]) << UInt64(8 * k) }
            words.append(word)
            i += 8
        }
        self.init(hashCount: Int(bytes[0]), words: words)
    }

    static func hashes(_ value: IndexValue, field: Int? = nil) -> (UInt64, UInt64) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func add(_ byte: UInt8) {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        if let field {
            add(3)
            add(UInt8(truncatingIfNeeded: field))
        }
        switch value {
        case .integer(let v):
            add(1)
            for shift in stride(from: 0, to: 64, by: 8) { add(UInt8(truncatingIfNeeded: v >> Int64(shift))) }
        case .text(let s):
            add(2)
            for byte in s.utf8 { add(byte) }
        }
        let mixed = mix(h)
        // An odd step visits every bit position of a power-of-two-free size evenly enough.
        return (mixed, mix(mixed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// MurmurHash3's fmix64: every input bit affects every output bit.
    private static func mix(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33
        k = k &* 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k = k &* 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }
}
