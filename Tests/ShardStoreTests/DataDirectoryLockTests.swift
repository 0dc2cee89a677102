import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// The data directory's lock within one process. (Two processes, one refusing the other,
/// are `FlowRecorderTests.DataDirectoryLockTests`.)
@Suite struct DataDirectoryLockReleaseTests {
    /// A child forked by another thread shares the lock file's open description until it
    /// calls `exec`. Here a child is started holding that description for good (what every
    /// child has for an instant after `fork`): the store released and taken again by this
    /// process must not find its own lock still held. With a `flock` it did, and the tests
    /// that reopen a store while others start `flowrec` failed now and then with "another
    /// flowrec process writes to …" naming their own pid.
    @Test func aChildHoldingTheLockFilesDescriptionDoesNotKeepTheLock() throws {
        let dir = TemporaryDirectory()
        var first: DataDirectoryLock? = try DataDirectoryLock(directory: dir.path)
        let descriptor = try #require(Self.descriptor(of: first!.path), "the lock file is open in this process")

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, descriptor, 3)  // dup2 clears close-on-exec
        var child: pid_t = 0
        let arguments = ["/bin/sleep", "30"]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        #expect(posix_spawn(&child, "/bin/sleep", &actions, nil, argv, environ) == 0)
        defer {
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
        }
        #expect(FileManager.default.fileExists(atPath: "/proc/\(child)/fd/3"), "the child holds the description")

        first = nil
        #expect(Self.descriptor(of: dir.path + "/LOCK") == nil, "released: this process no longer has the file open")
        let again = try DataDirectoryLock(directory: dir.path)
        #expect(again.path == dir.path + "/LOCK")
    }

    /// The descriptor through which this process has `path` open, from `/proc/self/fd`.
    private static func descriptor(of path: String) -> Int32? {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for entry in entries {
            guard let fd = Int32(entry),
                  let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)") else { continue }
            if link == target || link == path { return fd }
        }
        return nil
    }
}
