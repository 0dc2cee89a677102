import CSnappy
import Foundation
import SwiftProtobuf

/// One stream of a push: its labels and entries, as the client sent them.
package struct PushedStream: Sendable, Equatable {
    package var labels: [LabelPair]
    package var entries: [PushedEntry]

    package init(labels: [LabelPair], entries: [PushedEntry]) {
        self.labels = labels
        self.entries = entries
    }
}

package struct LabelPair: Sendable, Equatable {
    package var name: String
    package var value: String

    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

package struct PushedEntry: Sendable, Equatable {
    package var nanos: Int64
    package var line: String
    /// Loki 3's structured metadata, when a client sends it.
    package var metadata: [LabelPair]

    package init(nanos: Int64, line: String, metadata: [LabelPair] = []) {
        self.nanos = nanos
        self.line = line
        self.metadata = metadata
    }
}

/// A push body flowrec cannot read: the HTTP status (400, 413, 415) and why.
package struct PushError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// Not snappy, not protobuf, not JSON, or labels that do not parse.
        case malformed
        /// Larger than the configured bound, before or after decompression.
        case tooLarge
        /// A content type or encoding flowrec does not read.
        case unsupported
    }

    package let kind: Kind
    package let message: String

    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    package var status: Int {
        switch kind {
        case .malformed: 400
        case .tooLarge: 413
        case .unsupported: 415
        }
    }

    package var description: String { message }
}

/// Reads the body of `POST /loki/api/v1/push`: a snappy-compressed protobuf
/// `PushRequest` (what FLP and Promtail send, `Content-Type: application/x-protobuf`),
/// or Loki's JSON form (`application/json`: `{"streams":[{"stream":{...},"values":[["ns","line"]]}]}`).
package enum PushBody {
    package static func decode(_ body: [UInt8], contentType: String?, contentEncoding: String?,
                               maxDecompressedBytes: Int) throws(PushError) -> [PushedStream] {
        let type = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if let encoding = contentEncoding?.lowercased(), !encoding.isEmpty, encoding != "identity" {
            throw PushError(.unsupported, "Content-Encoding \(encoding) is not supported; send the protobuf body snappy-compressed (as Loki clients do) or JSON uncompressed")
        }
        switch type {
        case "application/json":
            return try json(body)
        case "application/x-protobuf", "", "application/octet-stream":
            return try protobuf(try Snappy.uncompress(body, maxBytes: maxDecompressedBytes))
        default:
            throw PushError(.unsupported, "Content-Type \(type) is not supported; Loki's push API takes application/x-protobuf (snappy) or application/json")
        }
    }

    /// What a Loki client sends for `streams`: the snappy-compressed protobuf (tests,
    /// the benchmark's load generator).
    package static func protobufBody(_ streams: [PushedStream]) -> [UInt8] {
        var request = Logproto_PushRequest()
        request.streams = streams.map { stream in
            var adapter = Logproto_StreamAdapter()
            adapter.labels = "{" + stream.labels.map { "\($0.name)=\"\(LabelSetText.escape($0.value))\"" }.joined(separator: ", ") + "}"
            adapter.entries = stream.entries.map { entry in
                var e = Logproto_EntryAdapter()
                e.timestamp = .init(seconds: entry.nanos / 1_000_000_000, nanos: Int32(entry.nanos % 1_000_000_000))
                e.line = entry.line
                e.structuredMetadata = entry.metadata.map { pair in
                    var p = Logproto_LabelPairAdapter()
                    p.name = pair.name
                    p.value = pair.value
                    return p
                }
                return e
            }
            return adapter
        }
        // Serializing messages built here cannot fail (no required fields, valid UTF-8).
        let bytes: [UInt8] = (try? request.serializedBytes()) ?? []
        return Snappy.compress(bytes)
    }

    static func protobuf(_ bytes: [UInt8]) throws(PushError) -> [PushedStream] {
        let request: Logproto_PushRequest
        do {
            request = try Logproto_PushRequest(serializedBytes: bytes)
        } catch {
            throw PushError(.malformed, "the body is not a logproto.PushRequest: \(error)")
        }
        var streams: [PushedStream] = []
        streams.reserveCapacity(request.streams.count)
        for stream in request.streams {
            let labels = try LabelSetText.parse(stream.labels)
            streams.append(PushedStream(labels: labels, entries: stream.entries.map { entry in
                PushedEntry(nanos: entry.timestamp.seconds &* 1_000_000_000 &+ Int64(entry.timestamp.nanos), line: entry.line,
                            metadata: entry.structuredMetadata.map { LabelPair($0.name, $0.value) })
            }))
        }
        return streams
    }

    static func json(_ body: [UInt8]) throws(PushError) -> [PushedStream] {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(body))
        } catch {
            throw PushError(.malformed, "the body is not JSON: \(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any], let streams = object["streams"] as? [Any] else {
            throw PushError(.malformed, #"the JSON body must be {"streams":[{"stream":{...},"values":[["<unix ns>","<line>"], ...]}]}"#)
        }
        var result: [PushedStream] = []
        for (i, item) in streams.enumerated() {
            guard let stream = item as? [String: Any], let labels = stream["stream"] as? [String: Any],
                  let values = stream["values"] as? [Any] else {
                throw PushError(.malformed, "streams[\(i)] needs \"stream\" (an object of labels) and \"values\" (an array)")
            }
            var pairs: [LabelPair] = []
            for (name, value) in labels {
                guard let text = value as? String else { throw PushError(.malformed, "streams[\(i)].stream.\(name) must be a string") }
                pairs.append(LabelPair(name, text))
            }
            var entries: [PushedEntry] = []
            for (j, value) in values.enumerated() {
                guard let entry = value as? [Any], entry.count >= 2, let ts = entry[0] as? String, let nanos = Int64(ts),
                      let line = entry[1] as? String else {
                    throw PushError(.malformed, "streams[\(i)].values[\(j)] must be [\"<unix nanoseconds>\", \"<line>\"]")
                }
                var metadata: [LabelPair] = []
                if entry.count > 2, let extra = entry[2] as? [String: Any] {
                    for (name, value) in extra { if let text = value as? String { metadata.append(LabelPair(name, text)) } }
                }
                entries.append(PushedEntry(nanos: nanos, line: line, metadata: metadata.sorted { $0.name < $1.name }))
            }
            result.append(PushedStream(labels: pairs.sorted { $0.name < $1.name }, entries: entries))
        }
        return result
    }
}

/// libsnappy's block format (what Loki's push uses; not the framing format).
enum Snappy {
    static func uncompress(_ input: [UInt8], maxBytes: Int) throws(PushError) -> [UInt8] {
        var length = 0
        let status = input.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { snappy_uncompressed_length($0.baseAddress, buffer.count, &length) }
        }
        guard status == SNAPPY_OK else {
            throw PushError(.malformed, "the body is not snappy-compressed (Loki's push API takes a snappy-compressed protobuf, or JSON with Content-Type: application/json)")
        }
        guard length <= maxBytes else {
            throw PushError(.tooLarge, "the body decompresses to \(length) bytes; at most \(maxBytes) are accepted per push (send smaller batches)")
        }
        var output = [UInt8](repeating: 0, count: length)
        var outputLength = length
        let result = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                source.withMemoryRebound(to: CChar.self) { s in
                    target.withMemoryRebound(to: CChar.self) { t in
                        snappy_uncompress(s.baseAddress, source.count, t.baseAddress, &outputLength)
                    }
                }
            }
        }
        guard result == SNAPPY_OK else { throw PushError(.malformed, "the snappy body is corrupt") }
        return Array(output.prefix(outputLength))
    }

    /// For tests and the load generator: what a client sends.
    static func compress(_ input: [UInt8]) -> [UInt8] {
        var length = snappy_max_compressed_length(input.count)
        var output = [UInt8](repeating: 0, count: length)
        _ = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                source.withMemoryRebound(to: CChar.self) { s in
                    target.withMemoryRebound(to: CChar.self) { t in snappy_compress(s.baseAddress, source.count, t.baseAddress, &length) }
                }
            }
        }
        return Array(output.prefix(length))
    }
}

/// A label set in Prometheus text form, as a push's `labels` field holds it:
/// `{app="netobserv-flowcollector", FlowDirection="1"}` (Go-style escapes in values).
package enum LabelSetText {
    package static func parse(_ text: String) throws(PushError) -> [LabelPair] {
        let bytes = Array(text.utf8)
        var i = 0
        func fail(_ why: String) -> PushError { PushError(.malformed, "the stream labels \(text) do not parse: \(why)") }
        func skipSpace() { while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 } }
        skipSpace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { throw fail("a label set starts with {") }
        i += 1
        var pairs: [LabelPair] = []
        while true {
            skipSpace()
            guard i < bytes.count else { throw fail("missing }") }
            if bytes[i] == UInt8(ascii: "}") { i += 1; break }
            let start = i
            while i < bytes.count, isNameByte(bytes[i]) { i += 1 }
            guard i > start else { throw fail("expected a label name at byte \(i)") }
            let name = String(decoding: bytes[start..<i], as: UTF8.self)
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { throw fail("expected = after \(name)") }
            i += 1
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a quoted value for \(name)") }
            i += 1
            var value: [UInt8] = []
            var closed = false
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { closed = true; i += 1; break }
                if c == UInt8(ascii: "\\"), i + 1 < bytes.count {
                    let n = bytes[i + 1]
                    switch n {
                    case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                    case UInt8(ascii: "t"): value.append(UInt8(ascii: "\t"))
                    case UInt8(ascii: "r"): value.append(UInt8(ascii: "\r"))
                    default: value.append(n)
                    }
                    i += 2
                    continue
                }
                value.append(c)
                i += 1
            }
            guard closed else { throw fail("unterminated value of \(name)") }
            pairs.append(LabelPair(name, String(decoding: value, as: UTF8.self)))
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "}") else { throw fail("expected , or } after \(name)") }
            i += 1
            break
        }
        skipSpace()
        guard i == bytes.count else { throw fail("unexpected text after }") }
        return pairs.sorted { $0.name < $1.name }
    }

    /// A value escaped for the text form (`\\`, `\"`, `\n`).
    package static func escape(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    private static func isNameByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
    }
}
