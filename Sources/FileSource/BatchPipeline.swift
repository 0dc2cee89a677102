package import ShardStore
import Foundation
import StorageKit

/// Overlaps filling batches (reading, decoding) with storing them, on two threads.
///
/// The producer fills a batch on a background thread while the caller's thread stores
/// the previous one; batches are handed back and forth, so their buffers are reused
/// and at most two exist. Order is kept: batches are stored in the order produced.
package final class BatchPipeline: Sendable {
    private struct State {
        var full: [IngestBatch] = []
        var empty: [IngestBatch] = [IngestBatch(), IngestBatch()]
        var finished = false
        var producerError: (any Error)?
    }
    private let state = WaitableMutex(State())

    package init() {}

    /// Runs `produce` on a new thread and `consume` on this one until `produce`
    /// returns false (no more input). `produce` fills the batch it is given and returns
    /// whether there may be more input. Errors from either side stop both and are rethrown.
    package func run(produce: @escaping @Sendable (inout IngestBatch) throws -> Bool,
                     consume: (IngestBatch) throws -> Void) throws {
        let producer = Thread { [self] in
            NamedThread.setCurrent("flowrec-read")
            while true {
                guard var batch = state.wait(until: { !$0.empty.isEmpty || $0.finished }, then: { state -> IngestBatch? in
                    state.finished ? nil : state.empty.removeLast()
                }) else { return }
                batch.removeAll()
                do {
                    let more = try produce(&batch)
                    state.withLock {
                        $0.full.append(batch)
                        if !more { $0.finished = true }
                    }
                    if !more { return }
                } catch {
                    state.withLock {
                        $0.producerError = error
                        $0.finished = true
                    }
                    return
                }
            }
        }
        producer.stackSize = 1 << 20
        producer.start()
        while true {
            let next: Result<IngestBatch, any Error>? = state.wait(until: { !$0.full.isEmpty || $0.finished }) { state in
                if let error = state.producerError { return .failure(error) }
                if state.full.isEmpty { return nil }  // finished, all stored
                return .success(state.full.removeFirst())
            }
            guard let next else { return }
            let batch = try next.get()
            do {
                try consume(batch)
            } catch {
                state.withLock { $0.finished = true }
                throw error
            }
            state.withLock { $0.empty.append(batch) }
        }
    }
}
