import Foundation
import Synchronization

/// One writer per data directory: an exclusive lock on `<data>/LOCK`, held for as long
/// as anything in this process writes the store (`record`, `ingest`, `compact`, `prune`,
/// `fsck`, `deadletters replay`, `sync`). A second process that tries to write gets a
/// `.locked` error at once, naming the holder's PID and command from the file; readers
/// (`query`, `sql`, `top`, `tail`, `export`, `shards`, `deadletters list` and `export`,
/// the HTTP API) take no lock and keep
/// working beside the writer.
///
/// Within one process the lock is shared (counted per directory): the recorder's store,
/// its forwarding thread and its compactor all write the same directory, and share one
/// descriptor of the file (see `lockWholeFile`).
package final class DataDirectoryLock: Sendable {
    package let path: String

    private struct Held {
        let descriptor: Int32
        var holders: Int
    }
    private static let held = Mutex<[String: Held]>([:])

    /// Takes the lock of `directory` (created if needed), or throws who holds it.
    package init(directory: String) throws(ShardStoreError) {
        let url = URL(fileURLWithPath: directory).standardizedFileURL
        path = url.appendingPathComponent("LOCK").path
        let lockPath = path
        try Self.held.withLock { (held: inout [String: Held]) throws(ShardStoreError) in
            if var mine = held[lockPath] {
                mine.holders += 1
                held[lockPath] = mine
                return
            }
            let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw ShardStoreError(.notADataDirectory, "cannot open \(lockPath) (errno \(errno)): check that \(directory) is a directory you may write")
            }
            guard Self.lockWholeFile(fd) else {
                let holder = Self.holder(fd)
                close(fd)
                throw ShardStoreError(.locked, "another flowrec process writes to \(directory)\(holder.map { " (\($0))" } ?? ""): "
                                      + "stop it first, or point --data at another directory; commands that only read (query, sql, top, tail, export, shards, deadletters list) work beside it")
            }
            // Who holds it, for the next one to be refused.
            let me = "pid \(getpid()), \(Self.commandLine())\n"
            _ = ftruncate(fd, 0)
            _ = me.withCString { pwrite(fd, $0, strlen($0), 0) }
            held[lockPath] = Held(descriptor: fd, holders: 1)
        }
    }

    deinit {
        let lockPath = path
        Self.held.withLock { held in
            guard var mine = held[lockPath] else { return }
            mine.holders -= 1
            if mine.holders > 0 {
                held[lockPath] = mine
            } else {
                // Leave the file (its content is only advice); closing releases the lock.
                close(mine.descriptor)
                held[lockPath] = nil
            }
        }
    }

    /// A POSIX record lock on the whole file, not `flock`: a record lock belongs to the
    /// process and is not inherited by a child. A `flock` belongs to the open file, which a
    /// child forked by another thread (a test running `flowrec`, the command forwarder)
    /// shares until it calls `exec`; a store closed and reopened in that instant found its
    /// own lock still held and refused itself ("another flowrec process", naming this pid).
    /// A second descriptor in this process would not conflict with a record lock, and
    /// closing it would drop the lock: `held` keeps this file's one descriptor per process.
    private static func lockWholeFile(_ fd: Int32) -> Bool {
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 0  // to the end of the file, however long it grows
        return fcntl(fd, F_SETLK, &request) == 0
    }

    private static func holder(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `flowrec record --data ...` as this process was started (no secrets are taken on
    /// the command line, by design of the settings).
    private static func commandLine() -> String {
        let arguments = CommandLine.arguments
        let name = (arguments.first.map { ($0 as NSString).lastPathComponent } ?? "flowrec")
        return ([name] + arguments.dropFirst().prefix(6)).joined(separator: " ")
    }
}
