import Foundation

/// Starts flowrec's own threads under names the operating system shows.
///
/// Foundation's `Thread.name` on Linux names the thread for Foundation only: `top -H`,
/// `perf` and `/proc/PID/task/*/comm` showed every thread of `flowrec record` as
/// "flowrec", so a busy background merge looked like the main thread at full speed.
/// The kernel keeps 15 bytes of a name; longer ones are cut there.
package enum NamedThread {
    /// Starts `body` on a new thread called `name`.
    package static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            setCurrent(name)
            body()
        }
        thread.name = name
        thread.start()
    }

    /// Names the calling thread for the kernel (at most its first 15 bytes), best effort.
    ///
    /// Through `/proc/thread-self/comm` (Linux 3.17+): Glibc's `pthread_setname_np` is a
    /// GNU extension Swift does not import.
    package static func setCurrent(_ name: String) {
        let bytes = Array(name.utf8.prefix(kernelNameBytes))
        let fd = open(commPath, O_WRONLY)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The calling thread's name as the kernel shows it ("" where it cannot be read).
    package static func current() -> String {
        guard let text = try? String(contentsOfFile: commPath, encoding: .utf8) else { return "" }
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    /// Linux's TASK_COMM_LEN less the terminating NUL.
    package static let kernelNameBytes = 15

    private static let commPath = "/proc/thread-self/comm"
}
