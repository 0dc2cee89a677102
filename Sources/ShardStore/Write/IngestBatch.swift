package import FlowModel

/// Where a message came from: a Kafka topic partition and offset, or a file and line.
package struct SourcePosition: Hashable, Sendable {
    /// Index into the batch's `sources` (topic names, or `file:<name>`).
    package var source: Int
    package var partition: Int32
    package var position: Int64

    package init(source: Int, partition: Int32, position: Int64) {
        self.source = source
        self.partition = partition
        self.position = position
    }
}

/// A message that is not a flow, kept with its reason.
package struct DeadLetter: Sendable {
    package var at: SourcePosition
    package var reason: String
    /// Byte in the payload where decoding failed, when known.
    package var errorOffset: Int?
    package var payload: [UInt8]

    package init(at: SourcePosition, reason: String, errorOffset: Int?, payload: [UInt8]) {
        self.at = at
        self.reason = reason
        self.errorOffset = errorOffset
        self.payload = payload
    }
}

/// A batch of decoded flows and dead letters, in source order, written as a unit.
///
/// The flows' storage is reused from batch to batch: `nextFlowSlot()` hands out a
/// `Flow` whose buffers already have capacity, so steady-state ingest allocates nothing
/// per message.
package struct IngestBatch: Sendable {
    /// Source names; positions refer to them by index.
    package private(set) var sources: [String] = []
    package private(set) var flows: [Flow] = []
    package private(set) var positions: [SourcePosition] = []
    package private(set) var flowCount = 0
    package private(set) var deadLetters: [DeadLetter] = []

    package init() {}

    package var isEmpty: Bool { flowCount == 0 && deadLetters.isEmpty }

    /// Forgets the contents, keeping every buffer for reuse.
    package mutating func removeAll() {
        flowCount = 0
        deadLetters.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
    }

    package mutating func sourceIndex(_ name: String) -> Int {
        if let i = sources.firstIndex(of: name) { return i }
        sources.append(name)
        return sources.count - 1
    }

    /// Appends a flow by letting `fill` decode into a reused `Flow`. If `fill` throws,
    /// nothing is appended and the error is rethrown (the caller records a dead letter).
    package mutating func appendFlow<E: Error>(at position: SourcePosition,
                                              _ fill: (inout Flow) throws(E) -> Void) throws(E) {
        if flowCount == flows.count { flows.append(Flow()) }
        try fill(&flows[flowCount])
        positions.append(position)
        flowCount += 1
    }

    package mutating func append(_ flow: Flow, at position: SourcePosition) {
        appendFlow(at: position) { (slot: inout Flow) throws(Never) in slot = flow }
    }

    package mutating func appendDeadLetter(_ letter: DeadLetter) {
        deadLetters.append(letter)
    }
}
