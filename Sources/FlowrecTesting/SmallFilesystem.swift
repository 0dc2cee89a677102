import Foundation

/// A tmpfs of a few megabytes mounted for one test (needs root; `mounted` says whether
/// it worked), so a test can fill a disk or watch free space for real.
package final class SmallFilesystem {
    package let path: String
    package let mounted: Bool

    package init(megabytes: Int) {
        path = NSTemporaryDirectory() + "flowrec-small-fs-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        mounted = SmallFilesystem.sh("mount -t tmpfs -o size=\(megabytes)m tmpfs \(path)")
    }

    /// Grows or shrinks the filesystem in place.
    package func resize(megabytes: Int) -> Bool { SmallFilesystem.sh("mount -o remount,size=\(megabytes)m \(path)") }

    package func usedMegabytes() -> Int {
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: path)
        let size = (attributes?[.systemSize] as? NSNumber)?.int64Value ?? 0
        let free = (attributes?[.systemFreeSize] as? NSNumber)?.int64Value ?? 0
        return Int((size - free) >> 20)
    }

    deinit {
        if mounted { _ = SmallFilesystem.sh("umount \(path)") }
        try? FileManager.default.removeItem(atPath: path)
    }

    static func sh(_ command: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}

/// A read-only bind mount of a directory for one test (needs root; `mounted` says
/// whether it worked): what a reader sees of a store on a read-only volume (a snapshot,
/// a Kubernetes volume mounted `readOnly` beside the recorder's).
package final class ReadOnlyMount {
    package let path: String
    package let mounted: Bool

    package init(of directory: String) {
        path = NSTemporaryDirectory() + "flowrec-read-only-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // A bind mount takes `ro` only on a remount.
        mounted = SmallFilesystem.sh("mount --bind \(directory) \(path)")
            && SmallFilesystem.sh("mount -o remount,ro,bind \(path)")
    }

    deinit {
        _ = SmallFilesystem.sh("umount \(path)")
        try? FileManager.default.removeItem(atPath: path)
    }
}
