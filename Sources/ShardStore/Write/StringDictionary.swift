/// Assigns a small integer id to each distinct string (UTF-8 bytes) a shard stores.
///
/// Flow records repeat the same few thousand names, addresses and labels millions of
/// times; storing an id instead of the text makes rows ~6x smaller, which is most of
/// what SQLite spends its time on. Lookups hash the bytes in place: no `String` and no
/// allocation per lookup.
struct StringDictionary {
    /// Open-addressed slots: hash and id, 0 id meaning empty.
    private var slotHashes: [UInt64]
    private var slotIDs: [Int32]
    private var mask: Int
    /// Every string's bytes back to back; `ranges[id - 1]` locates string `id`.
    private(set) var bytes: [UInt8] = []
    private var starts: [Int] = [0]
    var count: Int { starts.count - 1 }

    init(capacity: Int = 1 << 12) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slotHashes = [UInt64](repeating: 0, count: size)
        slotIDs = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    /// The id of `key`, and whether it was added now (the caller then stores it).
    @inline(__always)
    mutating func id(for key: UnsafeBufferPointer<UInt8>) -> (id: Int32, isNew: Bool) {
        let h = Self.hash(key)
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let existing = slotIDs[slot]
            if existing == 0 { break }
            if slotHashes[slot] == h && equals(existing, key) { return (existing, false) }
            slot = (slot + 1) & mask
        }
        bytes.append(contentsOf: key)
        starts.append(bytes.count)
        let id = Int32(count)
        slotHashes[slot] = h
        slotIDs[slot] = id
        if count * 2 > mask { grow() }
        return (id, true)
    }

    /// Adds a string read back from a shard under its stored id (ids are dense from 1).
    mutating func restore(id: Int32, _ key: UnsafeBufferPointer<UInt8>) {
        precondition(Int(id) == count + 1, "shard string ids must be dense and ascending")
        _ = self.id(for: key)
    }

    /// Forgets every string with an id above `count` (after a rolled-back transaction).
    mutating func truncate(toCount newCount: Int) {
        guard newCount < count else { return }
        let keptBytes = Array(bytes[0..<starts[newCount]])
        let keptStarts = Array(starts[1...newCount])
        var rebuilt = StringDictionary(capacity: max(newCount, 1 << 12))
        keptBytes.withUnsafeBufferPointer { all in
            var start = 0
            for end in keptStarts {
                _ = rebuilt.id(for: UnsafeBufferPointer(rebasing: all[start..<end]))
                start = end
            }
        }
        self = rebuilt
    }

    /// Runs `body` with every string's bytes and the offsets of each (`starts[id - 1]..<
    /// starts[id]`), in place: a reader of many rows looks strings up by pointer
    /// arithmetic inside it, with no closure per value.
    func withStorage<R>(_ body: (_ bytes: UnsafeBufferPointer<UInt8>, _ starts: UnsafeBufferPointer<Int>) throws -> R) rethrows -> R {
        try bytes.withUnsafeBufferPointer { bytes in try starts.withUnsafeBufferPointer { starts in try body(bytes, starts) } }
    }

    func withBytes<R>(of id: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let i = Int(id)
        return bytes.withUnsafeBufferPointer { all in body(UnsafeBufferPointer(rebasing: all[starts[i - 1]..<starts[i]])) }
    }

    private func equals(_ id: Int32, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let i = Int(id)
        let start = starts[i - 1], end = starts[i]
        guard end - start == key.count else { return false }
        return bytes.withUnsafeBufferPointer { all in
            key.count == 0 || memcmp(all.baseAddress! + start, key.baseAddress!, key.count) == 0
        }
    }

    private mutating func grow() {
        let size = (mask + 1) * 2
        var hashes = [UInt64](repeating: 0, count: size)
        var ids = [Int32](repeating: 0, count: size)
        let newMask = size - 1
        for slot in 0...mask where slotIDs[slot] != 0 {
            var s = Int(truncatingIfNeeded: slotHashes[slot]) & newMask
            while ids[s] != 0 { s = (s + 1) & newMask }
            hashes[s] = slotHashes[slot]
            ids[s] = slotIDs[slot]
        }
        slotHashes = hashes
        slotIDs = ids
        mask = newMask
    }

    /// 64-bit hash of bytes, eight at a time (a multiply-xorshift mix; not for adversaries,
    /// which is fine: a collision costs a compare, never a wrong answer).
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        guard let base = key.baseAddress else { return h | 1 }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= key.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < key.count {
            tail |= UInt64(base[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 29
        return h | 1  // never 0, so 0 can mean "empty" in callers that want it
    }
}

#if canImport(Glibc)
import Glibc
#endif
