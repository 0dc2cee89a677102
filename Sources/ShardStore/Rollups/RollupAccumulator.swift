import CSQLite
import FlowModel

/// A bucket of one tier and a group, ordered as the tiers' primary keys.
struct TierKey: Hashable, Comparable {
    let bucketMs: Int64
    let groupID: Int64

    static func < (a: TierKey, b: TierKey) -> Bool { (a.bucketMs, a.groupID) < (b.bucketMs, b.groupID) }
}

/// A minute and group of one shard: dimension values as the shard stores them (string
/// ids for text; `Int64.min` for absent). Fixed size, so counting a row allocates nothing.
struct RollupKey: Hashable {
    var minute: Int64
    var d0: Int64 = 0, d1: Int64 = 0, d2: Int64 = 0, d3: Int64 = 0, d4: Int64 = 0, d5: Int64 = 0
    var d6: Int64 = 0, d7: Int64 = 0, d8: Int64 = 0, d9: Int64 = 0, d10: Int64 = 0, d11: Int64 = 0

    subscript(i: Int) -> Int64 {
        get {
            switch i {
            case 0: d0
            case 1: d1
            case 2: d2
            case 3: d3
            case 4: d4
            case 5: d5
            case 6: d6
            case 7: d7
            case 8: d8
            case 9: d9
            case 10: d10
            default: d11
            }
        }
        set {
            switch i {
            case 0: d0 = newValue
            case 1: d1 = newValue
            case 2: d2 = newValue
            case 3: d3 = newValue
            case 4: d4 = newValue
            case 5: d5 = newValue
            case 6: d6 = newValue
            case 7: d7 = newValue
            case 8: d8 = newValue
            case 9: d9 = newValue
            case 10: d10 = newValue
            default: d11 = newValue
            }
        }
    }

    /// One multiply-mix chain over the thirteen words: the key is hashed for every row a
    /// seal copies, and Hasher's SipHash over 104 bytes cost three times as much.
    func hash(into hasher: inout Hasher) {
        func mix(_ h: UInt64, _ d: Int64) -> UInt64 { ShardChecksum.mix(h, UInt64(bitPattern: d)) }
        let words = mix(mix(mix(mix(mix(mix(UInt64(bitPattern: minute), d0), d1), d2), d3), d4), d5)
        hasher.combine(mix(mix(mix(mix(mix(mix(words, d6), d7), d8), d9), d10), d11))
    }

    /// The same group without the minute.
    var group: RollupKey {
        var g = self
        g.minute = 0
        return g
    }
}

/// Aggregates rows per minute and group as a statement passes them by (see
/// `ShardChecksum.RowAccumulator`), reading only the columns it needs.
final class RollupAccumulator {
    private(set) var minutes: [RollupKey: RollupMeasures] = [:]
    private let dimensionColumns: [Int?]  // nil: the synthesized port class
    private let end = FlowSchema.requiredField.index
    private let dstPort = FlowSchema.id(of: "DstPort").index
    private let bytes = FlowSchema.id(of: "Bytes").index, packets = FlowSchema.id(of: "Packets").index
    private let dropBytes = FlowSchema.id(of: "PktDropBytes").index, dropPackets = FlowSchema.id(of: "PktDropPackets").index
    private let rtt = FlowSchema.id(of: "TimeFlowRttNs").index, dnsLatency = FlowSchema.id(of: "DnsLatencyMs").index
    private let rcode = FlowSchema.id(of: "DnsFlagsResponseCode").index
    /// The shard's string ids of NoError, NXDomain, ServFail (nil when absent).
    private let rcodeIDs: (Int64?, Int64?, Int64?)
    /// Port classes, as stand-in ids in the key.
    static let portClasses = ["none", "well-known", "registered", "dynamic"]

    init(rcodeIDs: (Int64?, Int64?, Int64?)) {
        self.rcodeIDs = rcodeIDs
        dimensionColumns = RollupSchema.dimensions.map { $0.field == "DstPortClass" ? nil : FlowSchema.id(of: $0.field).index }
    }

    func add(_ values: UnsafeMutablePointer<OpaquePointer?>) {
        add { column in
            let value = values[column]
            return sqlite3_value_type(value) == SQLITE_NULL ? nil : sqlite3_value_int64(value)
        }
    }

    /// Forgets every row added (a pass that is started again from the first row).
    func removeAll() { minutes.removeAll() }

    /// Adds one row, whose integer columns (original values, time encoding undone)
    /// `integer` returns by index; nil for NULL.
    @inline(__always) func add(_ integer: (Int) -> Int64?) {
        guard let endMs = integer(end) else { return }
        var key = RollupKey(minute: (endMs >= 0 ? endMs / 60_000 : (endMs - 59_999) / 60_000) * 60_000)
        for (i, column) in dimensionColumns.enumerated() {
            if let column {
                key[i] = integer(column) ?? .min
            } else {
                let port = integer(dstPort)
                key[i] = port == nil ? 0 : port! < 1024 ? 1 : port! < 49152 ? 2 : 3
            }
        }
        var m = RollupMeasures()
        m.add(1, to: .flows)
        m.add(integer(bytes) ?? 0, to: .bytes)
        m.add(integer(packets) ?? 0, to: .packets)
        m.add(integer(dropBytes) ?? 0, to: .droppedBytes)
        m.add(integer(dropPackets) ?? 0, to: .droppedPackets)
        if let r = integer(rtt) { m.addRTT(r) }
        if let d = integer(dnsLatency) {
            m.add(d, to: .dnsLatencySum)
            m.add(1, to: .dnsLatencyCount)
        }
        if let code = integer(rcode) {
            m.add(1, to: code == rcodeIDs.0 ? .dnsNoError : code == rcodeIDs.1 ? .dnsNXDomain : code == rcodeIDs.2 ? .dnsServFail : .dnsOtherRcode)
        }
        minutes[key, default: RollupMeasures()].add(m)
    }
}
