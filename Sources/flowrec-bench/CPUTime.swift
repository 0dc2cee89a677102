import Foundation

/// User + system CPU seconds from getrusage: of this process (`RUSAGE_SELF`, every
/// thread), or of the children it has reaped (`RUSAGE_CHILDREN`; the benchmarks run one
/// child at a time, so a difference around one child's run is that child's).
func cpuSeconds(children: Bool = false) -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue), &usage)
    let seconds = { (t: timeval) in Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
