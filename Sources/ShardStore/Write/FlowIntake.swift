package import FlowModel

/// Where a message becomes a flow, or a dead letter with its reason: the one decode step
/// every source shares (Kafka, JSON-lines files, Loki pushes, dead-letter replay).
extension IngestBatch {
    /// Decodes `payload` into the batch's next flow slot at `position`; when it is not a
    /// flow, appends a dead letter instead, keeping the first `maxPayloadBytes` of it (the
    /// reason says when it was cut). Returns whether a flow was appended.
    @inlinable @discardableResult
    package mutating func decodeFlowOrDeadLetter<Bytes: Collection<UInt8>>(
        _ payload: Bytes, at position: SourcePosition, with decoder: FlowDecoder, maxPayloadBytes: Int
    ) -> Bool {
        // Contiguous bytes (every source's) take one concrete, specialized path in this
        // module: a generic call across modules per message costs more than the decode.
        let done = payload.withContiguousStorageIfAvailable { buffer in
            decodeFlowOrDeadLetter(bytes: UnsafeRawBufferPointer(buffer), at: position, with: decoder, maxPayloadBytes: maxPayloadBytes)
        }
        if let done { return done }
        return Array(payload).withUnsafeBytes {
            decodeFlowOrDeadLetter(bytes: $0, at: position, with: decoder, maxPayloadBytes: maxPayloadBytes)
        }
    }

    /// `decodeFlowOrDeadLetter` for bytes in memory.
    @discardableResult
    package mutating func decodeFlowOrDeadLetter(
        bytes payload: UnsafeRawBufferPointer, at position: SourcePosition, with decoder: FlowDecoder, maxPayloadBytes: Int
    ) -> Bool {
        do {
            try appendFlow(at: position) { (flow: inout Flow) throws(FlowDecodingError) in try decoder.decode(payload, into: &flow) }
            return true
        } catch {
            var reason = error.description
            if payload.count > maxPayloadBytes {
                reason += "; only its first \(maxPayloadBytes) bytes are kept"
            }
            appendDeadLetter(DeadLetter(at: position, reason: reason, errorOffset: error.offset,
                                        payload: Array(payload.prefix(maxPayloadBytes))))
            return false
        }
    }

    /// Decodes `payload` into the batch's next flow slot, or throws and appends nothing.
    @inlinable
    package mutating func appendDecodedFlow<Bytes: Collection<UInt8>>(
        _ payload: Bytes, at position: SourcePosition, with decoder: FlowDecoder
    ) throws(FlowDecodingError) {
        try appendFlow(at: position) { (flow: inout Flow) throws(FlowDecodingError) in try decoder.decode(payload, into: &flow) }
    }
}
