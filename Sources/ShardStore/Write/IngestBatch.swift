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

/// The lowest and highest position of each source partition among some of a batch's
/// positions, named by `SourcePartition` only at the end. A batch has a few partitions,
/// so a scan of them per position costs less than hashing a `String` key per flow
/// (`perf` of `flowrec ingest`: about 5% of the storing thread).
struct BatchPositionRanges {
    private var keys: [(source: Int, partition: Int32)] = []
    private var ranges: [(first: Int64, last: Int64)] = []

    init() {}

    init(_ positions: some Sequence<SourcePosition>) {
        for p in positions { add(p) }
    }

    mutating func add(_ p: SourcePosition) {
        if let k = keys.firstIndex(where: { $0.source == p.source && $0.partition == p.partition }) {
            ranges[k] = (min(ranges[k].first, p.position), max(ranges[k].last, p.position))
        } else {
            keys.append((p.source, p.partition))
            ranges.append((p.position, p.position))
        }
    }

    /// Each range keyed by its partition's name; `sources` are the batch's. Two indexes
    /// naming the same source (which a batch does not make) merge.
    func named(sources: [String]) -> [SourcePartition: (first: Int64, last: Int64)] {
        var named: [SourcePartition: (first: Int64, last: Int64)] = [:]
        for (k, key) in keys.enumerated() {
            let name = SourcePartition(source: sources[key.source], partition: key.partition)
            let range = ranges[k]
            named[name] = named[name].map { (min($0.first, range.first), max($0.last, range.last)) } ?? range
        }
        return named
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
/// The flows' storage is reused from batch to batch: `appendFlow` decodes into a `Flow`
/// whose buffers already have capacity, so steady-state ingest allocates nothing per
/// message.
package struct IngestBatch: Sendable {
    /// Source names; positions refer to them by index.
    package private(set) var sources: [String] = []
    package private(set) var flows: [Flow] = []
    package private(set) var positions: [SourcePosition] = []
    /// Each flow's `TimeFlowEndMs` (nil: absent), read once as the flow is filled in. The
    /// store routes and orders by it; reading it from `flows[i]` later copied the flow
    /// (three retains and releases: about 4% of the storing thread in `perf`).
    package private(set) var endTimesMs: [Int64?] = []
    package private(set) var flowCount = 0
    package private(set) var deadLetters: [DeadLetter] = []
    /// The positions are content keys, not offsets: entries of a source with no order
    /// and no offsets (Loki pushes), where a retried request sends the same entries
    /// again. A flow whose key its window's active shard holds is skipped (Loki, too,
    /// drops an entry equal to one it has), and dead letters are kept once per key.
    package private(set) var isContentKeyed = false
    /// The low 64 bits of each flow's 128-bit content key (the high bits are its
    /// position), when the batch is content-keyed.
    package private(set) var contentKeyLows: [Int64] = []
    /// Each flow's place in the seal order among the batch's flows, when the batch's
    /// producer ranked them (`rankInSealOrder()`); empty otherwise, and emptied by any
    /// change to the flows. The writer then orders a window's rows by these numbers, in
    /// one linear pass, instead of sorting the flows itself (`SealRun`).
    package private(set) var sealRanks: [Int32] = []

    package init() {}

    package var isEmpty: Bool { flowCount == 0 && deadLetters.isEmpty }

    /// Messages in the batch: its flows and its dead letters.
    package var entryCount: Int { flowCount + deadLetters.count }

    /// Forgets the contents, keeping every buffer for reuse.
    package mutating func removeAll() {
        flowCount = 0
        sealRanks.removeAll(keepingCapacity: true)
        contentKeyLows.removeAll(keepingCapacity: true)
        deadLetters.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
        endTimesMs.removeAll(keepingCapacity: true)
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
        if !sealRanks.isEmpty { sealRanks.removeAll(keepingCapacity: true) }
        positions.append(position)
        endTimesMs.append(Self.endTime(of: &flows[flowCount]))
        flowCount += 1
    }

    /// Ranks the flows in the seal order (`sealRanks`). Done by a producer that runs on a
    /// thread of its own (the file reader: `BatchPipeline`), it takes the sort off the
    /// store's one writer thread: by hand, about 0.7 µs of the writer's 8.7 µs per flow.
    package mutating func rankInSealOrder() {
        let count = flowCount
        let order = flows.withUnsafeBufferPointer { SealRun.order(Array(0..<count), of: $0, endTimesMs: endTimesMs) }
        sealRanks.removeAll(keepingCapacity: true)
        sealRanks.append(contentsOf: repeatElement(0, count: count))
        for (rank, i) in order.enumerated() { sealRanks[i] = Int32(rank) }
    }

    /// Removes every flow and dead letter of `source`'s `partition`, keeping the order of
    /// the rest (and every flow's buffers, for reuse); returns how many went. The recorder
    /// drops what it read of a partition the group took away before the batch was stored.
    @discardableResult
    package mutating func removeEntries(source: Int, partition: Int32) -> Int {
        precondition(!isContentKeyed, "content keys are not positions of a partition")
        var kept = 0
        for i in 0..<flowCount where positions[i].source != source || positions[i].partition != partition {
            if kept != i {
                flows.swapAt(kept, i)
                positions[kept] = positions[i]
                endTimesMs[kept] = endTimesMs[i]
            }
            kept += 1
        }
        let removedFlows = flowCount - kept
        positions.removeLast(removedFlows)
        endTimesMs.removeLast(removedFlows)
        flowCount = kept
        if removedFlows > 0 { sealRanks.removeAll(keepingCapacity: true) }
        let letters = deadLetters.count
        deadLetters.removeAll { $0.at.source == source && $0.at.partition == partition }
        return removedFlows + letters - deadLetters.count
    }

    /// Taken `inout`, so the slot is read in place: a `Flow` read from the array by value
    /// is a copy.
    private static func endTime(of flow: inout Flow) -> Int64? { flow.integer(FlowSchema.requiredField) }

    package mutating func append(_ flow: Flow, at position: SourcePosition) {
        appendFlow(at: position) { (slot: inout Flow) throws(Never) in slot = flow }
    }

    /// Makes this a batch of content-keyed entries (see `isContentKeyed`); before any
    /// flow is appended.
    package mutating func keyByContent() {
        precondition(flowCount == 0 && deadLetters.isEmpty, "a batch is content-keyed from its first entry")
        isContentKeyed = true
    }

    /// Decodes `payload` as the entry keyed `key` (its 128-bit content digest): a flow at
    /// position `key.high`, or a dead letter there (kept once per key).
    package mutating func decodeKeyedEntry<Bytes: Collection<UInt8>>(
        _ payload: Bytes, key: (high: UInt64, low: UInt64), source: Int, with decoder: FlowDecoder, maxPayloadBytes: Int
    ) {
        precondition(isContentKeyed, "keyByContent() first")
        let position = SourcePosition(source: source, partition: 0, position: Int64(bitPattern: key.high))
        if decodeFlowOrDeadLetter(payload, at: position, with: decoder, maxPayloadBytes: maxPayloadBytes) {
            contentKeyLows.append(Int64(bitPattern: key.low))
        }
    }

    package mutating func appendDeadLetter(_ letter: DeadLetter) {
        deadLetters.append(letter)
    }

    /// Appends every entry of `other`, a batch keyed the same way: Loki pushes waiting
    /// together are stored in one transaction per shard instead of one each. Content keys
    /// still drop an entry two of the pushes share.
    package mutating func absorb(_ other: IngestBatch) {
        precondition(isContentKeyed == other.isContentKeyed || isEmpty, "batches keyed differently cannot be stored as one")
        if isEmpty { isContentKeyed = other.isContentKeyed }
        let sourceMap = other.sources.map { sourceIndex($0) }
        for i in 0..<other.flowCount {
            var position = other.positions[i]
            position.source = sourceMap[position.source]
            append(other.flows[i], at: position)
        }
        contentKeyLows += other.contentKeyLows
        for var letter in other.deadLetters {
            letter.at.source = sourceMap[letter.at.source]
            deadLetters.append(letter)
        }
    }
}
