/// The median of paired rounds' figures: one noisy round (this machine is shared) moves
/// it less than it moves a mean or a best-of.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// "1.7x (1.6-1.9)": the median ratio of paired rounds and their range, as the result
/// tables print it; `digits` decimals (two where rounds differ by hundredths).
func ratioWithRange(_ ratios: [Double], digits: Int = 1) -> String {
    medianWithRange(ratios, digits: digits, unit: "x")
}

/// "8.4 (8.1-9.0)": the median of rounds' figures and their range, followed by `unit`.
func medianWithRange(_ values: [Double], digits: Int = 1, unit: String = "") -> String {
    let f = "%.\(digits)f"
    return String(format: "\(f)\(unit) (\(f)-\(f))", median(values), values.min() ?? 0, values.max() ?? 0)
}
