public import FlowModel

/// Where a message came from: a Kafka topic partition and offset, or a file and line.
public struct SourcePosition: Hashable, Sendable {
    /// Index into the batch's `sources` (topic names, or `file:<name>`).
    public var source: Int
    public var partition: Int32
    public var position: Int64

    public init(source: Int, partition: Int32, position: Int64) {
        self.source = source
        self.partition = partition
        self.position = position
    }
}

/// A message that is not a flow, kept with its reason.
public struct DeadLetter: Sendable {
    public var at: SourcePosition
    public var reason: String
    /// Byte in the payload where decoding failed, when known.
    public var errorOffset: Int?
    public var payload: [UInt8]

    public init(at: SourcePosition, reason: String, errorOffset: Int?, payload: [UInt8]) {
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
public struct IngestBatch: Sendable {
    /// Source names; positions refer to them by index.
    public private(set) var sources: [String] = []
    public private(set) var flows: [Flow] = []
    public private(set) var positions: [SourcePosition] = []
    public private(set) var flowCount = 0
    public private(set) var deadLetters: [DeadLetter] = []

    public init() {}

    public var isEmpty: Bool { flowCount == 0 && deadLetters.isEmpty }

    /// Forgets the contents, keeping every buffer for reuse.
    public mutating func removeAll() {
        flowCount = 0
        deadLetters.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
    }

    public mutating func sourceIndex(_ name: String) -> Int {
        if let i = sources.firstIndex(of: name) { return i }
        sources.append(name)
        return sources.count - 1
    }

    /// Appends a flow by letting `fill` decode into a reused `Flow`. If `fill` throws,
    /// nothing is appended and the error is rethrown (the caller records a dead letter).
    public mutating func appendFlow<E: Error>(at position: SourcePosition,
                                              _ fill: (inout Flow) throws(E) -> Void) throws(E) {
        if flowCount == flows.count { flows.append(Flow()) }
        try fill(&flows[flowCount])
        positions.append(position)
        flowCount += 1
    }

    public mutating func append(_ flow: Flow, at position: SourcePosition) {
        appendFlow(at: position) { (slot: inout Flow) throws(Never) in slot = flow }
    }

    public mutating func appendDeadLetter(_ letter: DeadLetter) {
        deadLetters.append(letter)
    }
}
