package import FlowModel
package import ShardStore
import StorageKit

/// Where a pushed Loki entry becomes a flow again: FLP splits each flow into stream
/// labels (the label fields, stringified, plus the static `app` label) and a line (the
/// rest, as JSON). The intake puts the labels back into the line with their field's
/// JSON type (`"FlowDirection":"1"` becomes `"FlowDirection":1`), drops the static
/// labels, and decodes the result like any Kafka message: a flow, or a dead letter with
/// the reason.
///
/// Each entry is keyed by a 128-bit digest of its labels, timestamp and line: FLP
/// retries a batch that failed or timed out, and the store skips an entry whose key its
/// window already holds (`IngestBatch.isContentKeyed`), as Loki skips an entry equal
/// to one it has.
package struct PushIntake: Sendable {
    /// Labels every stream carries that are not flow fields (`app="netobserv-flowcollector"`).
    package var staticLabels: [String: String]
    package var decoder: FlowDecoder
    package var maxPayloadBytes: Int
    /// The source name pushed entries are stored under (dead letters name it).
    package static let sourceName = "loki-push"

    package init(staticLabels: [String: String], decoder: FlowDecoder, maxPayloadBytes: Int) {
        self.staticLabels = staticLabels
        self.decoder = decoder
        self.maxPayloadBytes = maxPayloadBytes
    }

    /// The entries of `streams` as a content-keyed batch.
    package func batch(_ streams: [PushedStream]) -> IngestBatch {
        var batch = IngestBatch()
        batch.keyByContent()
        let source = batch.sourceIndex(Self.sourceName)
        var payload: [UInt8] = []
        payload.reserveCapacity(2048)
        for stream in streams {
            // The label members are the same for every entry of the stream.
            var members: [UInt8] = []
            var identity = SipHash128()
            for pair in stream.labels {
                identity.combine(utf8: pair.name)
                identity.combine(byte: 0)
                identity.combine(utf8: pair.value)
                identity.combine(byte: 0)
                if staticLabels[pair.name] == pair.value { continue }
                Self.appendMember(pair, to: &members)
            }
            for entry in stream.entries {
                var key = identity
                key.combine(byte: 1)
                withUnsafeBytes(of: entry.nanos.littleEndian) { key.combine($0) }
                key.combine(utf8: entry.line)
                var entryMembers = members
                for pair in entry.metadata {
                    key.combine(byte: 2)
                    key.combine(utf8: pair.name)
                    key.combine(byte: 0)
                    key.combine(utf8: pair.value)
                    Self.appendMember(pair, to: &entryMembers)
                }
                let digest = key.finalize()
                payload.removeAll(keepingCapacity: true)
                Self.merge(members: entryMembers, into: entry.line, to: &payload)
                batch.decodeKeyedEntry(payload, key: (digest.0, digest.1), source: source, with: decoder, maxPayloadBytes: maxPayloadBytes)
            }
        }
        return batch
    }

    /// A body that could not be read at all, kept as one dead letter (once per body) so
    /// that what a client sent is never lost, even when it is refused.
    package static func unreadableBody(_ body: [UInt8], reason: String, maxPayloadBytes: Int) -> IngestBatch {
        var batch = IngestBatch()
        batch.keyByContent()
        let source = batch.sourceIndex(sourceName)
        var digest = SipHash128()
        digest.combine(body)
        let key = digest.finalize()
        var why = "the push body was refused: \(reason)"
        if body.count > maxPayloadBytes { why += "; only its first \(maxPayloadBytes) bytes are kept" }
        batch.appendDeadLetter(DeadLetter(at: SourcePosition(source: source, partition: 0, position: Int64(bitPattern: key.0)),
                                          reason: why, errorOffset: nil, payload: Array(body.prefix(maxPayloadBytes))))
        return batch
    }

    /// `{labels..., line members...}`; a line that is not a JSON object is left as it is
    /// (the decoder then says why it is not a flow).
    static func merge(members: [UInt8], into line: String, to out: inout [UInt8]) {
        // On the line's bytes in place: appending a String's UTF-8 view (or a slice of it)
        // to an array goes byte by byte through the generic path, and was most of a push.
        var line = line
        line.withUTF8 { bytes in
            func isSpace(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\t") }
            var start = 0
            while start < bytes.count, isSpace(bytes[start]) { start += 1 }
            guard !members.isEmpty, start < bytes.count, bytes[start] == UInt8(ascii: "{") else {
                out.append(contentsOf: bytes)
                return
            }
            out.append(UInt8(ascii: "{"))
            out.append(contentsOf: members)
            let rest = UnsafeBufferPointer(rebasing: bytes[(start + 1)...])
            // `{}` or `{ }`: nothing to separate from.
            if let firstNonSpace = rest.first(where: { !isSpace($0) }), firstNonSpace != UInt8(ascii: "}") {
                out.append(UInt8(ascii: ","))
            }
            out.append(contentsOf: rest)
        }
    }

    /// One `"name":value,`-less member: integers and booleans of known fields bare, the
    /// rest as JSON strings.
    static func appendMember(_ pair: LabelPair, to out: inout [UInt8]) {
        if !out.isEmpty { out.append(UInt8(ascii: ",")) }
        JSONEscaping.appendQuoted(pair.name.utf8, to: &out)
        out.append(UInt8(ascii: ":"))
        if let field = FlowSchema.id(named: pair.name) {
            switch field.kind {
            case .integer where Int64(pair.value).map(String.init) == pair.value
                || (field.spec.isUnsigned64 && UInt64(pair.value).map(String.init) == pair.value):
                out += pair.value.utf8
                return
            case .bool where pair.value == "true" || pair.value == "false":
                out += pair.value.utf8
                return
            default:
                break
            }
        }
        JSONEscaping.appendQuoted(pair.value.utf8, to: &out)
    }
}
