package import FlowModel
import Foundation

/// Reading dead letters back, and replaying them after an upgrade that accepts more.
extension ShardStore {
    package func deadLetterCount() throws -> Int64 { try deadLetters.count() }

    /// Bytes the dead letters take in `deadletters.sqlite` (what the size limits count).
    package func deadLetterBytes() throws -> Int64 { try deadLetters.liveBytes() }

    package struct ReplaySummary: Sendable {
        package var examined = 0
        package var stored = 0
        package var stillInvalid = 0
    }

    /// Decodes every dead letter again (after an upgrade that accepts more variants) and
    /// stores the ones that now decode. They are stored under the source
    /// `deadletter:<original source>` at their original position, so the usual skip rule
    /// makes a repeated or interrupted replay store each flow once; the dead letters that
    /// were stored are then removed.
    @discardableResult
    package func replayDeadLetters(decoder: FlowDecoder = FlowDecoder(limits: .init(acceptedEndMs: EventTime.storableEndMs))) throws -> ReplaySummary {
        var summary = ReplaySummary()
        var batch = IngestBatch()
        var replayed: [(source: String, partition: Int32, position: Int64)] = []
        try deadLetters.forEach { source, partition, position, _, payload in
            summary.examined += 1
            let at = SourcePosition(source: batch.sourceIndex("deadletter:" + source), partition: partition, position: position)
            do {
                try batch.appendDecodedFlow(payload, at: at, with: decoder)
                replayed.append((source, partition, position))
            } catch {
                summary.stillInvalid += 1  // still not a flow: it stays a dead letter
            }
        }
        if batch.flowCount > 0 {
            summary.stored = try append(batch).stored
            try deadLetters.remove(replayed)
        }
        return summary
    }

    /// Dead letters in position order: source, partition, position, reason, payload.
    package func forEachDeadLetter(_ body: (String, Int32, Int64, String, [UInt8]) throws -> Void) throws {
        try deadLetters.forEach(body)
    }
}
