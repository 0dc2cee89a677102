import Foundation
import StorageKit

/// User + system CPU seconds from getrusage: of this process (`RUSAGE_SELF`, every
/// thread), or of the children it has reaped (`RUSAGE_CHILDREN`; the benchmarks run one
/// child at a time, so a difference around one child's run is that child's).
func cpuSeconds(children: Bool = false) -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue), &usage)
    let seconds = { (t: timeval) in Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// User + system seconds a running process (every thread) has used so far, from
/// /proc/PID/stat: a child that is still running, which getrusage cannot see.
func cpuSeconds(ofRunning pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command: state is field 3, utime 14 and stime 15 (1-based, whole line).
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The one running process whose command line starts with a program named `program`
/// (its file name, any directory), or nil when there is none or more than one: the
/// benchmarks that talk to a local server (ClickHouse) read its CPU time with
/// `cpuSeconds(ofRunning:)`, and an ambiguous match would measure the wrong one.
func runningProcessID(program: String) -> Int32? {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
    var found: [Int32] = []
    for entry in entries {
        guard let pid = Int32(entry), let line = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
              let first = line.split(separator: 0).first else { continue }
        if String(decoding: first, as: UTF8.self).split(separator: "/").last.map(String.init) == program { found.append(pid) }
    }
    return found.count == 1 ? found[0] : nil
}

/// CPU seconds of one timed run, split between this process (the forwarder, or the
/// benchmark's own HTTP client) and a local server, beside the run's wall time.
struct CPUSplit {
    var wall: Double
    var own: Double
    var server: Double

    /// Started at init; `read()` is the split since then. Without a server pid the
    /// server's share reads 0 (and `budget` is not printed).
    struct Meter {
        let server: Int32?
        private let start: CPUSplit

        init(server: Int32?) {
            self.server = server
            start = CPUSplit(wall: monotonicSeconds(), own: cpuSeconds(), server: server.map(cpuSeconds(ofRunning:)) ?? 0)
        }

        func read() -> CPUSplit {
            CPUSplit(wall: monotonicSeconds() - start.wall, own: cpuSeconds() - start.own,
                     server: (server.map(cpuSeconds(ofRunning:)) ?? 0) - start.server)
        }
    }

    /// The CPU table of the forwarder's default runs beside the server alone taking the
    /// same bodies (medians of the rounds, per million rows), and what it means for the
    /// 0.9× target: two processes sharing 2 cores cannot finish before their CPU seconds
    /// together, halved, have passed.
    static func budget(forwarder: [CPUSplit], serverAlone: [CPUSplit], rows: Double, server: String) -> String {
        let perMillion = 1_000_000 / rows
        func row(_ runs: [CPUSplit]) -> (wall: Double, own: Double, server: Double) {
            (median(runs.map(\.wall)) * perMillion, median(runs.map(\.own)) * perMillion, median(runs.map(\.server)) * perMillion)
        }
        let f = row(forwarder), a = row(serverAlone)
        func line(_ label: String, _ r: (wall: Double, own: Double, server: Double)) -> String {
            "| \(label) | \(String(format: "%.2f", r.wall)) | \(String(format: "%.2f", r.own)) | \(String(format: "%.2f", r.server)) | \(String(format: "%.2f", (r.own + r.server) / r.wall)) |"
        }
        // The 0.9× target: the forwarder's run may last wall_alone / 0.9; with the server's
        // CPU as in the forwarder's runs, flowrec's share of 2 cores over that time is what
        // is left.
        let allowedWall = a.wall / 0.9
        let allowedOwn = 2 * allowedWall - f.server
        return """
            CPU of the default variant's runs and of the server alone taking the same bodies (seconds per million rows, medians of the rounds; flowrec's column is this process: the forwarder's threads, or the benchmark's HTTP client when the server runs alone; the server's is \(server), from /proc):

            | run | wall | flowrec CPU | server CPU | cores busy (of 2) |
            |---|---:|---:|---:|---:|
            \(line("forwarder, Native, zstd blocks (default)", f))
            \(line("server alone, the same bodies", a))

            On 2 cores the two processes cannot finish before their CPU seconds together, halved, have passed: \(String(format: "%.2f", (f.own + f.server) / 2)) s per million rows for the forwarder's run, against its \(String(format: "%.2f", f.wall)) s. The 0.9× target allows \(String(format: "%.2f", allowedWall)) s; with the server's CPU as in the forwarder's runs, that leaves flowrec at most \(String(format: "%.2f", allowedOwn)) CPU µs per row, where it spends \(String(format: "%.2f", f.own)) now.

            """
    }
}
