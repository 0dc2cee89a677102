import StorageKit

/// Prepares a shard's chunks (read, encode, compress) on worker threads ahead of their
/// INSERTs, and hands them over in chunk order.
///
/// Reading a chunk through SQLite and encoding it costs the forwarder several times
/// what the server spends inserting it (bench/RESULTS.md, "Forwarding"): one thread
/// preparing chunks while the previous INSERT runs leaves the second core mostly to the
/// server's short bursts. Each worker prepares the chunks `k ≡ worker (mod workers)`
/// with its own reader and encoder (neither is shared between threads), and at most
/// `workers + 1` prepared chunks wait, so memory stays at a few encoders' buffers
/// whatever the shard's size. The forwarder still sends and records chunks one by one,
/// in order: only the preparation runs ahead.
final class ChunkPreparer<Prepared: Sendable>: Sendable {
    private struct State {
        var ready: [Int: Result<Prepared, any Error>] = [:]
        /// The chunk the forwarder waits for next; workers stay within `window` of it.
        var consumerAt: Int
        var cancelled = false
        var running: Int
    }
    private let state: WaitableMutex<State>
    private let window: Int

    /// Starts `workers` threads over `chunks`; `makeWorker` runs on each worker's thread
    /// and returns what prepares one chunk there (it may keep state, such as a reader).
    init(chunks: Range<Int>, workers: Int, name: String,
         makeWorker: @escaping @Sendable () throws -> (Int) throws -> Prepared) {
        let workers = max(1, min(workers, chunks.count))
        window = workers + 1
        state = WaitableMutex(State(consumerAt: chunks.lowerBound, running: workers))
        for worker in 0..<workers {
            NamedThread.start(name) { [self] in
                defer { state.withLock { $0.running -= 1 } }
                let prepare: (Int) throws -> Prepared
                do {
                    prepare = try makeWorker()
                } catch {
                    // Every chunk of this worker fails the same way; the first one the
                    // forwarder waits for reports it.
                    state.withLock { $0.ready[chunks.lowerBound + worker] = .failure(error) }
                    return
                }
                for chunk in stride(from: chunks.lowerBound + worker, to: chunks.upperBound, by: workers) {
                    guard wait(toPrepare: chunk) else { return }
                    let result = Result { try prepare(chunk) }
                    state.withLock { $0.ready[chunk] = result }
                    if case .failure = result { return }
                }
            }
        }
    }

    /// Waits until `chunk` is within the window ahead of the forwarder; false once cancelled.
    private func wait(toPrepare chunk: Int) -> Bool {
        let window = self.window
        return state.wait(until: { $0.cancelled || chunk < $0.consumerAt + window }) { !$0.cancelled }
    }

    /// Chunk `chunk`, prepared, or the error preparing it threw; waits for it. Chunks are
    /// taken in order. Blocks the calling thread (the forwarder's own, in the recorder).
    func take(_ chunk: Int) throws -> Prepared {
        try state.wait(until: { $0.ready[chunk] != nil || $0.running == 0 }) { state in
            state.consumerAt = chunk + 1
            guard let result = state.ready.removeValue(forKey: chunk) else {
                // Workers stop early only when cancelled, or after a chunk's failure that
                // comes before any later chunk of theirs: not reached in order.
                throw ForwarderError(.unavailable, "chunk \(chunk + 1) was never prepared: its worker stopped")
            }
            return try result.get()
        }
    }

    /// Stops the workers after the chunk each is preparing, and waits for them.
    func cancel() {
        state.withLock { $0.cancelled = true }
        state.wait(until: { $0.running == 0 }) { $0.ready.removeAll() }
    }
}
