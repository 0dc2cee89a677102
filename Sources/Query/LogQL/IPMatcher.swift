#if canImport(Glibc)
import Glibc
#endif

/// LogQL's `ip("...")` label filter: an address, a CIDR (`10.128.0.0/14`, `fd00::/8`) or a
/// range (`10.0.0.1-10.0.0.9`); a label value matches when it is an address inside it.
/// IPv4 and IPv6 never match each other (an IPv4-mapped IPv6 address is its IPv4 one).
package struct IPMatcher: Sendable, Equatable {
    /// Inclusive bounds, as 16-byte addresses (IPv4 in the IPv4-mapped form).
    let low: [UInt8]
    let high: [UInt8]

    package init?(_ spec: String) {
        if let slash = spec.firstIndex(of: "/") {
            guard let base = Self.address(String(spec[..<slash])), let bits = Int(spec[spec.index(after: slash)...]) else { return nil }
            let isV4 = Self.isIPv4Mapped(base)
            let prefix = isV4 ? bits + 96 : bits
            guard bits >= 0, prefix <= 128, !isV4 || bits <= 32 else { return nil }
            var low = base, high = base
            for bit in prefix..<128 {
                low[bit / 8] &= ~(0x80 >> UInt8(bit % 8))
                high[bit / 8] |= 0x80 >> UInt8(bit % 8)
            }
            self.low = low
            self.high = high
        } else if let dash = spec.firstIndex(of: "-") {
            guard let a = Self.address(String(spec[..<dash])), let b = Self.address(String(spec[spec.index(after: dash)...])),
                  Self.isIPv4Mapped(a) == Self.isIPv4Mapped(b), !a.lexicographicallyPrecedes(b) || a == b || true else { return nil }
            low = a.lexicographicallyPrecedes(b) ? a : b
            high = a.lexicographicallyPrecedes(b) ? b : a
        } else {
            guard let a = Self.address(spec) else { return nil }
            low = a
            high = a
        }
    }

    /// Whether `value` (a label's text) is an address inside this filter.
    package func contains(_ value: String) -> Bool {
        guard let a = Self.address(value) else { return false }
        return !a.lexicographicallyPrecedes(low) && !high.lexicographicallyPrecedes(a)
    }

    /// 16 bytes, IPv4 as ::ffff:a.b.c.d; nil for anything that is not an address.
    static func address(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let b = withUnsafeBytes(of: v4.s_addr) { Array($0) }
            return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + b
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }

    static func isIPv4Mapped(_ a: [UInt8]) -> Bool { a[0..<10].allSatisfy { $0 == 0 } && a[10] == 0xFF && a[11] == 0xFF }
}
