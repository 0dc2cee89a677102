/// xoshiro256** seeded through SplitMix64: fast, deterministic for a seed on every
/// platform, and never touching the system entropy source (a syscall per call would
/// cost more than the rest of a generated flow).
package struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    package init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    package mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in `0..<bound` (bound > 0), with a multiply instead of a division.
    @inline(__always)
    package mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    package mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// True with probability `p`.
    @inline(__always)
    package mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// A log-normal value around `median`, spread by `sigma` (natural-log units).
    package mutating func logNormal(median: Double, sigma: Double) -> Double {
        // Box-Muller on two uniforms.
        let u1 = max(unit(), 1e-12), u2 = unit()
        let z = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        return median * exp(sigma * z)
    }

    package mutating func element<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Picks ranks 0..<n with probability proportional to 1/(rank+1)^exponent: a few
/// pairs of endpoints carry most of the traffic, as in real clusters.
package struct ZipfSampler: Sendable {
    private let cumulative: [Double]

    package init(count: Int, exponent: Double) {
        var total = 0.0
        var cdf = [Double]()
        cdf.reserveCapacity(count)
        for rank in 0..<count {
            total += 1 / pow(Double(rank + 1), exponent)
            cdf.append(total)
        }
        cumulative = cdf.map { $0 / total }
    }

    package func sample(_ random: inout SeededRandom) -> Int {
        let u = random.unit()
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
