package import FlowModel
package import ShardStore
import StorageKit
import Foundation
import Synchronization

/// Turns lines into batches of decoded flows (and dead letters), positions by line number.
package final class FlowLineBatcher: @unchecked Sendable {  // used by one producer thread at a time
    private let reader: LineReader
    private let sourceName: String
    private let batchSize: Int
    private var decoder: FlowDecoder
    /// When set, the accepted `TimeFlowEndMs` range is moved with the wall clock at each batch.
    package var eventTimes: EventTime.Plausibility?
    /// Whether each batch is ranked in the seal order here, on the reading thread, so
    /// that the store's writer need not sort it (`IngestBatch.rankInSealOrder()`).
    /// False only for benchmark baselines that store in arrival order.
    package var ranksInSealOrder = true
    private var lineNumber: Int64 = 0
    private let linesReadSoFar = Atomic<Int64>(0)

    /// Lines read so far, for progress: the only member read from another thread.
    package var linesRead: Int64 { linesReadSoFar.load(ordering: .relaxed) }

    package init(reader: LineReader, sourceName: String, batchSize: Int, decoder: FlowDecoder) {
        self.reader = reader
        self.sourceName = sourceName
        self.batchSize = batchSize
        self.decoder = decoder
    }

    /// Fills `batch`; returns false at the end of input.
    package func fill(_ batch: inout IngestBatch) throws -> Bool {
        let source = batch.sourceIndex(sourceName)
        if let eventTimes {
            decoder.limits.acceptedEndMs = eventTimes.acceptedEndMs(nowMs: Int64(Date().timeIntervalSince1970 * 1000))
        }
        var more = true
        while batch.entryCount < batchSize {
            guard let line = try reader.nextLine() else {
                more = false
                break
            }
            lineNumber += 1
            if line.isEmpty { continue }
            let position = SourcePosition(source: source, partition: 0, position: lineNumber)
            batch.decodeFlowOrDeadLetter(line, at: position, with: decoder, maxPayloadBytes: .max)
        }
        linesReadSoFar.store(lineNumber, ordering: .relaxed)
        if ranksInSealOrder { batch.rankInSealOrder() }
        return more
    }
}

/// Reads lines from a file or stdin through a large buffer, without a String per line.
package final class LineReader: @unchecked Sendable {  // one reader thread at a time
    private let handle: FileHandle
    private let path: String
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false

    package init(path: String?) throws {
        self.path = path ?? "stdin"
        if let path {
            guard let h = FileHandle(forReadingAtPath: path) else {
                throw FileSourceError(.cannotOpen, path: path)
            }
            handle = h
        } else {
            handle = FileHandle.standardInput
        }
    }

    /// The next line without its newline; nil at the end of input.
    package func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            let found: Int? = buffer.withUnsafeBufferPointer { all in
                guard start < all.count, let base = all.baseAddress,
                      let hit = memchr(base + start, Int32(UInt8(ascii: "\n")), all.count - start) else { return nil }
                return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            }
            if let newline = found {
                let line = buffer[start..<newline]
                start = newline + 1
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return line
            }
            buffer.removeFirst(start)
            start = 0
            let chunk: Data
            do { chunk = try handle.read(upToCount: 4 << 20) ?? Data() } catch {
                throw FileSourceError(.readFailed, path: path, cause: error)
            }
            if chunk.isEmpty { eof = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}

