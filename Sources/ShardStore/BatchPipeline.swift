import Foundation

/// Overlaps filling batches (reading, decoding) with storing them, on two threads.
///
/// The producer fills a batch on a background thread while the caller's thread stores
/// the previous one; batches are handed back and forth, so their buffers are reused
/// and at most two exist. Order is kept: batches are stored in the order produced.
package final class BatchPipeline: @unchecked Sendable {
    private let lock = NSCondition()
    private var full: [IngestBatch] = []
    private var empty: [IngestBatch] = [IngestBatch(), IngestBatch()]
    private var finished = false
    private var producerError: (any Error)?

    package init() {}

    /// Runs `produce` on a new thread and `consume` on this one until `produce`
    /// returns false (no more input). `produce` fills the batch it is given and returns
    /// whether there may be more input. Errors from either side stop both and are rethrown.
    package func run(produce: @escaping @Sendable (inout IngestBatch) throws -> Bool,
                    consume: (IngestBatch) throws -> Void) throws {
        let producer = Thread { [self] in
            while true {
                lock.lock()
                while empty.isEmpty && !finished { lock.wait() }
                if finished { lock.unlock(); return }
                var batch = empty.removeLast()
                lock.unlock()
                batch.removeAll()
                do {
                    let more = try produce(&batch)
                    lock.lock()
                    full.append(batch)
                    if !more { finished = true }
                    lock.broadcast()
                    lock.unlock()
                    if !more { return }
                } catch {
                    lock.lock()
                    producerError = error
                    finished = true
                    lock.broadcast()
                    lock.unlock()
                    return
                }
            }
        }
        producer.stackSize = 1 << 20
        producer.start()
        while true {
            lock.lock()
            while full.isEmpty && !finished { lock.wait() }
            if let error = producerError { lock.unlock(); throw error }
            if full.isEmpty && finished { lock.unlock(); return }
            let batch = full.removeFirst()
            lock.unlock()
            do {
                try consume(batch)
            } catch {
                lock.lock()
                finished = true
                lock.broadcast()
                lock.unlock()
                throw error
            }
            lock.lock()
            empty.append(batch)
            lock.broadcast()
            lock.unlock()
        }
    }
}
