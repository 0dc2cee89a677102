/// Maps a JSON key's raw bytes to a `FieldID` without creating a `String`.
///
/// Every known name fits in 24 bytes, so a key is compared as three little-endian
/// words plus its length. The table is open-addressed with room for four times the
/// field count, so a lookup is usually one multiply, one probe and three compares.
final class FieldKeyTable: @unchecked Sendable {  // immutable after init
    static let shared = FieldKeyTable(FlowSchema.fields.map(\.name))

    static let maxKeyLength = 24
    private static let bits = 8
    private static let mask = (1 << bits) - 1

    /// 32 bytes, so the whole table (8 KiB) stays in L1 beside the message being parsed.
    private struct Entry {
        var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0
        /// length << 8 | id; `empty` marks a free slot.
        var lengthAndID: UInt64 = Entry.empty
        static let empty = UInt64.max
    }

    /// The table, allocated once for the life of the process (the instance is a
    /// static singleton), so lookups index it without array checks or closures.
    private let entries: UnsafeMutablePointer<Entry>

    init(_ names: [String]) {
        var entries = [Entry](repeating: Entry(), count: 1 << Self.bits)
        for (index, name) in names.enumerated() {
            let bytes = Array(name.utf8)
            precondition(bytes.count <= Self.maxKeyLength, "field name \(name) is longer than \(Self.maxKeyLength) bytes")
            let (w0, w1, w2) = bytes.withUnsafeBufferPointer { Self.words($0.baseAddress!, bytes.count, available: bytes.count) }
            var slot = Self.hash(w0, w1, w2, bytes.count)
            while entries[slot].lengthAndID != Entry.empty { slot = (slot + 1) & Self.mask }
            entries[slot] = Entry(w0: w0, w1: w1, w2: w2, lengthAndID: UInt64(bytes.count) << 8 | UInt64(index))
        }
        let table = UnsafeMutablePointer<Entry>.allocate(capacity: entries.count)
        table.initialize(from: entries, count: entries.count)
        self.entries = table
    }

    deinit { entries.deallocate() }

    /// The field whose name is exactly these bytes, if any. `available` is how many
    /// bytes may be read from `key` (at least `length`), which lets the common case
    /// load whole words.
    @inline(__always)
    func lookup(_ key: UnsafePointer<UInt8>, length: Int, available: Int) -> FieldID? {
        guard length <= Self.maxKeyLength else { return nil }
        let (w0, w1, w2) = Self.words(key, length, available: available)
        return lookup(w0, w1, w2, length: length)
    }

    /// Lookup by a key's zero-padded words, for callers that already loaded them.
    @inline(__always)
    func lookup(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, length: Int) -> FieldID? {
        var slot = Self.hash(w0, w1, w2, length)
        let wanted = UInt64(length) << 8
        while true {
            let e = entries[slot]
            if e.lengthAndID == Entry.empty { return nil }
            if e.lengthAndID & ~0xFF == wanted && e.w0 == w0 && e.w1 == w1 && e.w2 == w2 {
                return FieldID(rawValue: UInt8(truncatingIfNeeded: e.lengthAndID))
            }
            slot = (slot + 1) & Self.mask
        }
    }

    @inline(__always)
    private static func hash(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ length: Int) -> Int {
        let h = (w0 &* 0x9E37_79B9_7F4A_7C15) ^ (w1 &* 0xC2B2_AE3D_27D4_EB4F) ^ w2 ^ UInt64(length)
        return Int(truncatingIfNeeded: ((h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9) >> UInt64(64 - bits)) & mask
    }

    /// The key's bytes as three zero-padded little-endian words.
    @inline(__always)
    private static func words(_ p: UnsafePointer<UInt8>, _ length: Int, available: Int) -> (UInt64, UInt64, UInt64) {
        if available >= 24 {
            let raw = UnsafeRawPointer(p)
            return (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self) & keep(length),
                    raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self) & keep(length - 8),
                    raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self) & keep(length - 16))
        }
        var w: (UInt64, UInt64, UInt64) = (0, 0, 0)
        for i in 0..<min(length, 24) {
            let b = UInt64(p[i]) << UInt64((i & 7) * 8)
            switch i >> 3 {
            case 0: w.0 |= b
            case 1: w.1 |= b
            default: w.2 |= b
            }
        }
        return w
    }

    /// A mask keeping the low `count` bytes of a word (all of them from 8 up, none below 1).
    @inline(__always)
    static func keep(_ count: Int) -> UInt64 {
        if count >= 8 { return ~0 }
        if count <= 0 { return 0 }
        return (1 << UInt64(count * 8)) &- 1
    }
}
