import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Recompresses one sealed shard at a higher zstd level: decompress, recompress frame by
/// frame, verify the new file in place against the shard's recorded content checksum,
/// rename it over the old one, update the catalog. A crash or a cancel at any point
/// leaves the old file (temporary files are removed by the next start).
struct ShardCompactor {
    let directory: URL
    let level: Int32
    let frameSize: Int

    struct Cancelled: Error {}

    func compact(id: ShardID, relativePath relative: String, checksum: String?, catalog: Catalog,
                 shouldCancel: () -> Bool = { false }) throws -> ShardStore.CompactionSummary {
        let started = Date()
        let path = directory.appendingPathComponent(relative).path
        let plain = path + ".compact.tmp"
        let recompressed = path + ".tmp"
        defer { for p in [plain, recompressed] { try? FileManager.default.removeItem(atPath: p) } }
        let before = fileSize(path)
        try SeekableZstd.decompress(source: path, destination: plain)
        try SeekableZstd.compress(source: plain, destination: recompressed, level: level, frameSize: frameSize,
                                  shouldCancel: shouldCancel)
        if shouldCancel() { throw Cancelled() }
        let check = try ShardReader(path: recompressed)
        if let problem = try check.quickCheck() { throw ShardStoreError("compacting \(id): quick_check failed (\(problem)); the shard is unchanged") }
        let (_, sum) = try check.contentChecksum()
        if let checksum, checksum != String(sum, radix: 16) {
            throw ShardStoreError("compacting \(id): content checksum \(String(sum, radix: 16)) differs from the recorded \(checksum); the shard is unchanged")
        }
        let after: Int64 = try ShardFiles.lock.withLock {
            // Retention may have deleted the shard meanwhile: do not bring it back.
            guard try catalog.contains(id) else { throw Cancelled() }
            guard rename(recompressed, path) == 0 else {
                throw ShardStoreError("compacting \(id): cannot replace \(relative) (errno \(errno)); the shard is unchanged")
            }
            fsyncDirectory((path as NSString).deletingLastPathComponent)
            let after = fileSize(path)
            try catalog.markSealed(id, relativePath: relative, bytes: after, checksum: sum, level: level)
            return after
        }
        return ShardStore.CompactionSummary(id: id, bytesBefore: before, bytesAfter: after,
                                            seconds: Date().timeIntervalSince(started))
    }
}

/// Deep compaction while the recorder is idle: a thread at the lowest CPU priority
/// (Linux SCHED_IDLE) recompresses sealed shards below the target level, oldest first, one at a
/// time, whenever it is told the source is quiet. Ingest preempts it through the
/// scheduler; `stop()` cancels the shard in progress (between frames) so shutdown stays
/// quick, and that shard is simply compacted again another time.
package final class IdleCompactor: @unchecked Sendable {  // all state behind `condition`
    private let condition = NSCondition()
    private var idle = false
    private var stopping = false
    private var thread: Thread?
    private let compactor: ShardCompactor
    private let catalogPath: String
    private let log: @Sendable (String) -> Void
    private var compactedCount = 0
    private var failureCount = 0

    package init(directory: String, level: Int32 = 19, frameSize: Int = 1 << 20, log: @escaping @Sendable (String) -> Void = { _ in }) {
        let url = URL(fileURLWithPath: directory)
        compactor = ShardCompactor(directory: url, level: level, frameSize: frameSize)
        catalogPath = url.appendingPathComponent("catalog.sqlite").path
        self.log = log
    }

    /// Shards compacted and compactions failed since start.
    package var counts: (compacted: Int, failed: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (compactedCount, failureCount)
    }

    /// Tells the compactor whether the source is quiet. Idle starts (or resumes) the pass.
    package func setIdle(_ isIdle: Bool) {
        condition.lock()
        defer { condition.unlock() }
        guard idle != isIdle else { return }
        idle = isIdle
        if isIdle && thread == nil && !stopping {
            let t = Thread { [self] in run() }
            t.name = "flowrec-compactor"
            thread = t
            t.start()
        }
        condition.broadcast()
    }

    /// Cancels the shard in progress and waits for the thread to end.
    package func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while thread != nil { condition.wait() }
        condition.unlock()
    }

    private var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    private func run() {
        // SCHED_IDLE (5 in <sched.h>; Swift does not import the GNU macro): the thread
        // runs only when a core would otherwise be idle, below even nice 19.
        var parameters = sched_param(sched_priority: 0)
        if pthread_setschedparam(pthread_self(), 5, &parameters) != 0 {
            log("deep compaction runs at normal priority: SCHED_IDLE was refused")
        }
        defer {
            condition.lock()
            thread = nil
            condition.broadcast()
            condition.unlock()
        }
        guard let catalog = try? Catalog(path: catalogPath) else {
            log("deep compaction disabled: cannot open \(catalogPath)")
            return
        }
        var failedShards: Set<ShardID> = []
        while true {
            condition.lock()
            while !idle && !stopping { condition.wait() }
            let stop = stopping
            condition.unlock()
            if stop { return }

            let next = (try? catalog.sealedBelow(level: compactor.level))?.first { !failedShards.contains($0.id) }
            guard let next else {
                // Nothing left: sleep until the next idle period (new shards get sealed meanwhile).
                condition.lock()
                while idle && !stopping { condition.wait() }
                condition.unlock()
                continue
            }
            do {
                let summary = try compactor.compact(id: next.id, relativePath: next.path, checksum: next.checksum,
                                                    catalog: catalog, shouldCancel: { isStopping })
                condition.lock()
                compactedCount += 1
                condition.unlock()
                log("compacted \(summary.id) at level \(compactor.level): \(summary.bytesBefore) → \(summary.bytesAfter) bytes in \(String(format: "%.1f", summary.seconds)) s")
            } catch is ShardCompactor.Cancelled {
                return
            } catch {
                // Left as it was; not retried until the next start, so one bad shard cannot spin.
                failedShards.insert(next.id)
                condition.lock()
                failureCount += 1
                condition.unlock()
                log("deep compaction of \(next.id) failed, shard unchanged: \(error)")
            }
        }
    }
}
