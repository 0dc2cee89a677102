import Foundation

/// Seals detached shards on its own thread, one at a time, so the writer never waits
/// for compression. It has its own catalog connection; SQLite serializes the two.
final class BackgroundSealer: @unchecked Sendable {  // all state behind `condition`
    struct Job: Sendable {
        let id: ShardID
        let activePath: String
        let sealedPath: String
    }

    private let condition = NSCondition()
    private var queue: [Job] = []
    private var busy = false
    private var stopping = false
    private var thread: Thread?
    private let sealer: ShardSealer
    private let catalogPath: String
    private(set) var completed: [ShardStore.SealSummary] = []
    private(set) var failures: [String] = []

    private let observer: (@Sendable (ShardStore.SealSummary) -> Void)?

    init(sealer: ShardSealer, catalogPath: String, observer: (@Sendable (ShardStore.SealSummary) -> Void)?) {
        self.sealer = sealer
        self.catalogPath = catalogPath
        self.observer = observer
    }

    func enqueue(_ job: Job) {
        condition.lock()
        queue.append(job)
        if thread == nil {
            let t = Thread { [self] in run() }
            t.name = "flowrec-sealer"
            t.qualityOfService = .utility
            thread = t
            t.start()
        }
        condition.signal()
        condition.unlock()
    }

    /// Waits until every queued shard is sealed (or failed); returns what happened
    /// since the last call.
    func drain() -> (sealed: [ShardStore.SealSummary], failures: [String]) {
        condition.lock()
        defer { condition.unlock() }
        while !queue.isEmpty || busy { condition.wait() }
        let result = (completed, failures)
        completed = []
        failures = []
        return result
    }

    func stop() {
        _ = drain()
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        let catalog = try? Catalog(path: catalogPath)
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping { condition.unlock(); return }
            let job = queue.removeFirst()
            busy = true
            condition.unlock()

            let started = Date()
            var summary: ShardStore.SealSummary?
            var failure: String?
            do {
                let result = try sealer.seal(activePath: job.activePath, sealedPath: job.sealedPath, id: job.id)
                try catalog?.markSealed(job.id, relativePath: job.id.sealedRelativePath, bytes: result.sealedBytes,
                                        checksum: result.checksum, level: sealer.level)
                summary = ShardStore.SealSummary(id: job.id, rows: result.rows, compactBytes: result.compactBytes,
                                                 sealedBytes: result.sealedBytes, seconds: Date().timeIntervalSince(started),
                                                 steps: result.steps)
            } catch {
                // The active shard is intact; the next start picks it up and seals it again.
                failure = "sealing \(job.id) failed: \(error)"
            }

            if let summary { observer?(summary) }
            condition.lock()
            if let summary { completed.append(summary) }
            if let failure { failures.append(failure) }
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
