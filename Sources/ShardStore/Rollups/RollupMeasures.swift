/// One aggregate the rollups keep per group and bucket: the one list of them, from
/// which the columns, the SQL that merges rows and the writer's bindings all follow.
package enum RollupMeasure: Int, CaseIterable, Sendable {
    case flows, bytes, packets, droppedBytes, droppedPackets
    case rttMin, rttMax, rttSum, rttCount
    case dnsLatencySum, dnsLatencyCount
    /// Flows by `DnsFlagsResponseCode`.
    case dnsNoError, dnsNXDomain, dnsServFail, dnsOtherRcode

    /// How two buckets' values combine.
    package enum Merge: Sendable { case sum, min, max }

    package var merge: Merge {
        switch self {
        case .rttMin: .min
        case .rttMax: .max
        default: .sum
        }
    }

    /// Its column in the tier tables.
    package var column: String {
        switch self {
        case .flows: "flows"
        case .bytes: "bytes"
        case .packets: "packets"
        case .droppedBytes: "dropped_bytes"
        case .droppedPackets: "dropped_packets"
        case .rttMin: "rtt_min_ns"
        case .rttMax: "rtt_max_ns"
        case .rttSum: "rtt_sum_ns"
        case .rttCount: "rtt_count"
        case .dnsLatencySum: "dns_latency_sum_ms"
        case .dnsLatencyCount: "dns_latency_count"
        case .dnsNoError: "dns_noerror"
        case .dnsNXDomain: "dns_nxdomain"
        case .dnsServFail: "dns_servfail"
        case .dnsOtherRcode: "dns_other_rcode"
        }
    }
}

/// Every measure of one group over one bucket, in a fixed-size value (no allocation per
/// row while a seal aggregates). Sums wrap (`&+`): a 64-bit overflow of bytes over a day
/// is not a reason to fail a seal. A min or max with no value yet is nil.
struct RollupMeasures: Equatable {
    private var values = SIMD16<Int64>()
    /// Which of the min and max measures hold a value.
    private var hasMin = false, hasMax = false

    init() {}

    subscript(measure: RollupMeasure) -> Int64? {
        get {
            switch measure.merge {
            case .min where !hasMin, .max where !hasMax: nil
            default: values[measure.rawValue]
            }
        }
        set {
            switch measure.merge {
            case .min: hasMin = newValue != nil
            case .max: hasMax = newValue != nil
            case .sum: break
            }
            values[measure.rawValue] = newValue ?? 0
        }
    }

    /// Adds one to a counting measure, or a value to a summed one.
    mutating func add(_ value: Int64, to measure: RollupMeasure) {
        values[measure.rawValue] &+= value
    }

    /// Folds in a value of the RTT (min, max, sum and count at once).
    mutating func addRTT(_ rtt: Int64) {
        self[.rttMin] = Swift.min(self[.rttMin] ?? rtt, rtt)
        self[.rttMax] = Swift.max(self[.rttMax] ?? rtt, rtt)
        add(rtt, to: .rttSum)
        add(1, to: .rttCount)
    }

    mutating func add(_ o: RollupMeasures) {
        for measure in RollupMeasure.allCases {
            switch measure.merge {
            case .sum: values[measure.rawValue] &+= o.values[measure.rawValue]
            case .min: if let m = o[measure] { self[measure] = Swift.min(self[measure] ?? m, m) }
            case .max: if let m = o[measure] { self[measure] = Swift.max(self[measure] ?? m, m) }
            }
        }
    }
}
