package import Foundation
package import ShardStore

/// Options of the directory forwarder.
package struct DirectoryForwarderOptions: Sendable {
    package var name = "directory"
    /// The target root, typically an NFS or object-store mount.
    package var path: String

    package init(path: String) {
        self.path = path
    }
}

/// The JSON manifest written beside each copied shard; its presence means the copy is
/// complete and verified.
package struct ShardManifest: Codable, Sendable, Equatable {
    package var shard: String
    /// The copy's path, relative to the manifest's directory.
    package var file: String
    package var windowStartMs: Int64
    package var windowEndMs: Int64
    package var part: Int
    package var rows: Int64
    package var minTimeMs: Int64?
    package var maxTimeMs: Int64?
    package var bytes: Int64
    /// SHA-256 of the file: `sha256sum` checks it.
    package var sha256: String
    /// The shard's own content checksum (its `meta` table), as `flowrec fsck` checks it.
    package var contentChecksum: String?
    package var schemaVersion: Int?

    enum CodingKeys: String, CodingKey {
        case shard, file, part, rows, bytes, sha256
        case windowStartMs = "window_start_ms", windowEndMs = "window_end_ms"
        case minTimeMs = "min_time_ms", maxTimeMs = "max_time_ms"
        case contentChecksum = "content_checksum", schemaVersion = "schema_version"
    }

    /// Pretty, key-sorted JSON, ending in a newline.
    package func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }
}

/// Copies sealed shards, as they are (`.sqlite.zst`, readable in place by flowrec or
/// restored by `zstd -d`), into a directory, each with a manifest. The copy is written
/// to a temporary name, fsynced, read back and compared by SHA-256, then renamed into
/// place; the manifest follows the same way. A crash leaves at worst a temporary file,
/// which the next attempt replaces.
package struct DirectoryForwarder: Forwarder {
    package let options: DirectoryForwarderOptions

    package init(options: DirectoryForwarderOptions) {
        self.options = options
    }

    package var name: String { options.name }

    package func prepare() async throws {
        do {
            try FileManager.default.createDirectory(atPath: options.path, withIntermediateDirectories: true)
        } catch {
            throw ForwarderError(.configuration, "cannot create the target directory \(options.path): \(error.localizedDescription)")
        }
    }

    package func plan(_ shard: SealedShard, resuming: DeliveryState?) throws -> DeliveryPlan { .whole }

    /// Where a shard's copy and manifest go: the store's own layout, under the target.
    package func destination(of id: ShardID) -> (file: String, manifest: String) {
        let relative = String(id.sealedRelativePath.dropFirst("shards/".count))
        let file = (options.path as NSString).appendingPathComponent(relative)
        return (file, String(file.dropLast(".sqlite.zst".count)) + ".manifest.json")
    }

    package func deliver(_ shard: SealedShard, plan: DeliveryPlan, fromChunk first: Int,
                        delivered: (_ chunk: Int, _ rows: Int) throws -> Void) async throws {
        guard first == 0 else { return }
        let (file, manifestPath) = destination(of: shard.id)
        let folder = (file as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ForwarderError(.unavailable, "cannot create \(folder): \(error.localizedDescription)")
        }
        let reader = try ShardReader(path: shard.path)
        let sourceDigest = try FileCopy.copy(from: shard.path, to: file)
        let manifest = ShardManifest(
            shard: shard.id.description, file: (file as NSString).lastPathComponent,
            windowStartMs: shard.id.windowStartMs, windowEndMs: shard.id.windowEndMs, part: shard.id.part,
            rows: shard.rowCount, minTimeMs: shard.minTimeMs, maxTimeMs: shard.maxTimeMs,
            bytes: sourceDigest.bytes, sha256: sourceDigest.sha256,
            contentChecksum: try reader.meta("content_checksum"),
            schemaVersion: try reader.meta("schema_version").flatMap { Int($0) })
        try FileCopy.writeAtomically(try manifest.encoded(), to: manifestPath)
        try delivered(0, Int(shard.rowCount))
    }
}

/// Durable file copies with POSIX calls: errors keep their errno (a full target says so).
enum FileCopy {
    struct Digest {
        let bytes: Int64
        let sha256: String
    }

    /// Copies `source` to `target` through `target.tmp`, fsyncs, reads the copy back and
    /// compares digests, renames, and fsyncs the folder.
    static func copy(from source: String, to target: String) throws(ForwarderError) -> Digest {
        let temporary = target + ".tmp"
        let input = open(source, O_RDONLY)
        guard input >= 0 else { throw failure("cannot open \(source)") }
        defer { close(input) }
        let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard output >= 0 else { throw failure("cannot create \(temporary)") }
        var hash = SHA256()
        var total: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        do throws(ForwarderError) {
            while true {
                let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                guard count >= 0 else { throw failure("cannot read \(source)") }
                if count == 0 { break }
                let complete = buffer.withUnsafeBytes { raw in
                    let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<count])
                    hash.update(chunk)
                    var written = 0
                    while written < count {
                        let n = write(output, raw.baseAddress! + written, count - written)
                        guard n > 0 else { return false }
                        written += n
                    }
                    return true
                }
                guard complete else { throw failure("cannot write \(temporary)") }
                total += Int64(count)
            }
            guard fsync(output) == 0 else { throw failure("cannot fsync \(temporary)") }
            close(output)
        } catch {
            close(output)
            unlink(temporary)
            throw error
        }
        let digest = Digest(bytes: total, sha256: hash.hexDigest())
        let copied = try sha256(of: temporary)
        guard copied == digest.sha256 else {
            unlink(temporary)
            throw ForwarderError(.unavailable, "the copy \(temporary) reads back with SHA-256 \(copied), the shard has \(digest.sha256): the target corrupts data")
        }
        guard rename(temporary, target) == 0 else {
            let error = failure("cannot rename \(temporary) to \(target)")
            unlink(temporary)
            throw error
        }
        try syncFolder(of: target)
        return digest
    }

    /// Writes `data` to `target` through a fsynced temporary file and a rename.
    static func writeAtomically(_ data: Data, to target: String) throws(ForwarderError) {
        let temporary = target + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw failure("cannot create \(temporary)") }
        let ok = data.withUnsafeBytes { raw in write(fd, raw.baseAddress, raw.count) == raw.count } && fsync(fd) == 0
        let error = ok ? nil : failure("cannot write \(temporary)")
        close(fd)
        if let error {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, target) == 0 else { throw failure("cannot rename \(temporary)") }
        try syncFolder(of: target)
    }

    static func sha256(of path: String) throws(ForwarderError) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw failure("cannot open \(path)") }
        defer { close(fd) }
        var hash = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count >= 0 else { throw failure("cannot read \(path)") }
            if count == 0 { break }
            buffer.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return hash.hexDigest()
    }

    private static func syncFolder(of path: String) throws(ForwarderError) {
        let folder = (path as NSString).deletingLastPathComponent
        let fd = open(folder, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw failure("cannot open \(folder)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("cannot fsync \(folder)") }
    }

    /// The current errno as a forwarder error; a full disk gets its own advice.
    private static func failure(_ what: String) -> ForwarderError {
        let code = errno
        let reason = String(cString: strerror(code))
        if code == ENOSPC || code == EDQUOT {
            return ForwarderError(.unavailable, "\(what): \(reason). The target is full: free space there or point the forwarder elsewhere; the shard will be copied again.")
        }
        return ForwarderError(.unavailable, "\(what): \(reason)")
    }
}
