/// Turns one Kafka message (NetObserv flow JSON) into a `Flow`.
///
/// It works on the raw bytes: keys are matched against `FlowSchema` by their bytes,
/// strings are copied into the flow's arena once (unescaped only when they contain a
/// backslash) and numbers are parsed in place. No Foundation parser is involved.
///
/// Everything that is not a flow fails with a `FlowDecodingError` naming the reason and
/// the byte offset; nothing is dropped and nothing traps. Tolerated variants (see
/// `FieldKind`) are accepted and remembered so that `FlowEncoder` gives them back.
///
/// ```swift
/// var flow = Flow()
/// try FlowDecoder().decode(messageBytes, into: &flow)   // reuses flow's buffers
/// let end = flow.integer(FlowSchema.requiredField)
/// ```
package struct FlowDecoder: Sendable {
    package struct Limits: Sendable {
        /// Larger messages are rejected before parsing. NetObserv flows are under 2 KiB.
        package var maxMessageBytes: Int
        /// Deepest nesting accepted inside unknown fields and arrays.
        package var maxDepth: Int
        /// `TimeFlowEndMs` values accepted; others fail with `.endTimeOutOfRange`. Any
        /// value by default (the decoder is a codec first); whatever stores flows narrows
        /// it to `EventTime.storableEndMs`, or around the wall clock with
        /// `EventTime.Plausibility` before each batch.
        package var acceptedEndMs: ClosedRange<Int64>

        package init(maxMessageBytes: Int = 1 << 20, maxDepth: Int = 32,
                     acceptedEndMs: ClosedRange<Int64> = Int64.min...Int64.max) {
            self.maxMessageBytes = maxMessageBytes
            self.maxDepth = maxDepth
            self.acceptedEndMs = acceptedEndMs
        }
    }

    package var limits: Limits

    package init(limits: Limits = Limits()) { self.limits = limits }

    /// Decodes `bytes` into `flow`, replacing its contents and reusing its buffers.
    package func decode(_ bytes: UnsafeRawBufferPointer, into flow: inout Flow) throws(FlowDecodingError) {
        flow.removeAll()
        guard bytes.count <= limits.maxMessageBytes else {
            throw FlowDecodingError(.tooLarge(size: bytes.count, limit: limits.maxMessageBytes), at: 0)
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw FlowDecodingError(.invalidJSON("empty message"), at: 0)
        }
        // The message is copied into the flow's arena once; string and array values
        // are then ranges into that copy, so no per-field copying happens.
        let message = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        flow.text.append(contentsOf: message)
        var parser = FlowJSONParser(
            base: message.baseAddress!, count: bytes.count,
            maxDepth: limits.maxDepth, keys: FieldKeyTable.shared)
        let outcome: Result<Void, FlowDecodingError> = flow.values.withUnsafeMutableBufferPointer { slots in
            Result { () throws(FlowDecodingError) in try parser.parseRecord(slots: slots.baseAddress!) }
        }
        try outcome.get()
        let endMs = flow.values[FlowSchema.requiredField.index]
        guard limits.acceptedEndMs.contains(endMs) else {
            throw FlowDecodingError(.endTimeOutOfRange(valueMs: endMs, accepted: limits.acceptedEndMs), at: 0)
        }
        flow.present = parser.present
        flow.nulls = parser.nulls
        flow.numericStrings = parser.numericStrings
        if !parser.escapedText.isEmpty { flow.text.append(contentsOf: parser.escapedText) }
        for (i, member) in parser.extraMembers.enumerated() {
            if i > 0 { flow.extras.append(UInt8(ascii: ",")) }
            flow.extras.append(contentsOf: message[member.start..<member.end])
        }
    }

    /// Decodes a message held in any contiguous byte collection (`[UInt8]`, `Data`, ...).
    /// Inlinable so callers in other modules get a specialized copy, not generic dispatch.
    @inlinable
    package func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(FlowDecodingError) -> Flow {
        var flow = Flow()
        try decode(bytes, into: &flow)
        return flow
    }

    @inlinable
    package func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, into flow: inout Flow) throws(FlowDecodingError) {
        let result: Result<Void, FlowDecodingError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(FlowDecodingError) in try decode(UnsafeRawBufferPointer(buffer), into: &flow) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        let copied: Result<Void, FlowDecodingError> = copy.withUnsafeBytes { raw in
            Result { () throws(FlowDecodingError) in try decode(raw, into: &flow) }
        }
        try copied.get()
    }
}

/// The byte-level parser behind `FlowDecoder`. One instance parses one message.
struct FlowJSONParser {
    let base: UnsafePointer<UInt8>
    let end: Int
    let maxDepth: Int
    let keys: FieldKeyTable
    let tables = FlowSchema.tables
    var pos = 0
    /// Scratch space for keys and strings that contain escapes (rare).
    var unescaped: [UInt8] = []
    /// The flow's value slots, written in place while parsing.
    var slots: UnsafeMutablePointer<Int64>!
    var present = FieldSet()
    var nulls = FieldSet()
    var numericStrings = FieldSet()
    /// Unescaped strings; they land in the flow's arena after the message copy.
    var escapedText: [UInt8] = []
    /// Unknown members as byte ranges of the message (`"key":value`).
    var extraMembers: [(start: Int, end: Int)] = []

    init(base: UnsafePointer<UInt8>, count: Int, maxDepth: Int, keys: FieldKeyTable) {
        self.base = base
        self.end = count
        self.maxDepth = maxDepth
        self.keys = keys
    }

    // MARK: The record

    mutating func parseRecord(slots: UnsafeMutablePointer<Int64>) throws(FlowDecodingError) {
        self.slots = slots
        skipWhitespace()
        guard peek() == UInt8(ascii: "{") else { throw invalid("a flow record must be a JSON object") }
        pos += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            pos += 1
        } else {
            while true {
                try parseMember()
                skipWhitespace()
                guard pos < end else { throw invalid("unterminated object") }
                let c = base[pos]
                pos += 1
                if c == UInt8(ascii: ",") { skipWhitespace(); continue }
                if c == UInt8(ascii: "}") { break }
                pos -= 1
                throw invalid("expected ',' or '}' after a value")
            }
        }
        skipWhitespace()
        guard pos == end else { throw invalid("unexpected bytes after the JSON object") }
        let required = FlowSchema.requiredField
        guard present.contains(required), !nulls.contains(required) else {
            throw FlowDecodingError(.missingRequiredField(required.name), at: pos)
        }
    }

    @inline(__always)
    private mutating func parseMember() throws(FlowDecodingError) {
        let keyStart = pos
        guard peek() == UInt8(ascii: "\"") else { throw invalid("expected a quoted key") }
        pos += 1
        let field: FieldID?
        let rawKeyStart = pos
        if let (found, length) = fastKey() {
            field = found
            pos = rawKeyStart + length + 1
        } else if let length = try scanPlainString() {
            field = keys.lookup(base + rawKeyStart, length: length, available: end - rawKeyStart)
        } else {
            // The key has escapes: compare its unescaped bytes.
            pos = rawKeyStart
            var key = takeScratch()
            try scanEscapedString(into: &key)
            unescaped = key
            field = key.withUnsafeBufferPointer { buf in
                buf.baseAddress.flatMap { keys.lookup($0, length: buf.count, available: buf.count) }
            }
        }
        let keyEnd = pos
        skipWhitespace()
        guard peek() == UInt8(ascii: ":") else { throw invalid("expected ':' after a key") }
        pos += 1
        skipWhitespace()
        if let field {
            guard !present.contains(field) else { throw FlowDecodingError(.duplicateField(field.name), at: keyStart) }
            try parseKnownValue(field)
        } else {
            _ = keyEnd
            try skipValue(depth: 0)
            extraMembers.append((keyStart, pos))
        }
    }

    @inline(__always)
    private mutating func parseKnownValue(_ field: FieldID) throws(FlowDecodingError) {
        guard pos < end else { throw invalid("missing value") }
        let first = base[pos]
        if first == UInt8(ascii: "n") {
            try expectLiteral("null")
            present.insert(field)
            nulls.insert(field)
            return
        }
        let kind = tables.kinds[field.index]
        switch kind {
        case .integer:
            if first == UInt8(ascii: "\""), tables.acceptsNumericString[field.index] {
                pos += 1
                let value = try parseInteger(field)
                guard peek() == UInt8(ascii: "\"") else { throw wrongType(field, "an integer or a numeric string") }
                pos += 1
                numericStrings.insert(field)
                present.insert(field)
                slots[field.index] = value
                return
            }
            slots[field.index] = try parseInteger(field)
            present.insert(field)
        case .bool:
            if first == UInt8(ascii: "t") {
                try expectLiteral("true")
                slots[field.index] = 1
            } else if first == UInt8(ascii: "f") {
                try expectLiteral("false")
                slots[field.index] = 0
            } else {
                throw wrongType(field, "true or false")
            }
            present.insert(field)
        case .string:
            guard first == UInt8(ascii: "\"") else { throw wrongType(field, "a string") }
            pos += 1
            let contentStart = pos
            if let length = try scanPlainString() {
                slots[field.index] = TextRange(start: contentStart, end: contentStart + length).packed
            } else {
                pos = contentStart
                var text = takeEscapedText()
                let start = text.count
                try scanEscapedString(into: &text)
                // Escaped strings sit after the message copy in the flow's arena.
                slots[field.index] = TextRange(start: end + start, end: end + text.count).packed
                escapedText = text
            }
            present.insert(field)
        case .stringArray, .directionArray, .objectArray, .tcpFlags:
            let valueStart = pos
            try validateShape(of: field, kind: kind)
            slots[field.index] = TextRange(start: valueStart, end: pos).packed
            present.insert(field)
        }
    }

    private mutating func takeEscapedText() -> [UInt8] {
        var text: [UInt8] = []
        swap(&text, &escapedText)
        return text
    }

    /// The common case for keys: the key and its closing quote fit in the next 24
    /// bytes and hold only plain ASCII. Finds the quote with word-wide compares and
    /// looks the key up from the same words. Returns nil to take the general path.
    @inline(__always)
    private func fastKey() -> (FieldID?, Int)? {
        guard pos + 24 <= end else { return nil }
        let raw = UnsafeRawPointer(base + pos)
        let w0 = raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        let w1 = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let w2 = raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        // Bit position of the first special byte across the three words (192 when none),
        // computed without branches: key lengths vary, so branches would mispredict.
        let z0 = Self.specialMask(w0).trailingZeroBitCount
        let z1 = Self.specialMask(w1).trailingZeroBitCount
        let z2 = Self.specialMask(w2).trailingZeroBitCount
        let bit = z0 < 64 ? z0 : (z1 < 64 ? 64 + z1 : 128 + z2)
        guard bit < 192 else { return nil }  // longer than any known key: an unknown field
        let length = bit >> 3
        // The first special byte must be the closing quote (not a backslash, control or non-ASCII byte).
        guard base[pos + length] == UInt8(ascii: "\"") else { return nil }
        let keep = FieldKeyTable.keep
        return (keys.lookup(w0 & keep(length), w1 & keep(length - 8), w2 & keep(length - 16), length: length), length)
    }

    /// The high bit of each byte of `w` that is a quote, a backslash, a control
    /// character or non-ASCII. Only the lowest set bit is exact (borrows can mark bytes
    /// after it), which is all the caller uses.
    @inline(__always)
    private static func specialMask(_ w: UInt64) -> UInt64 {
        let quote = w ^ 0x2222_2222_2222_2222
        let slash = w ^ 0x5C5C_5C5C_5C5C_5C5C
        return (((quote &- 0x0101_0101_0101_0101) & ~quote)
            | ((slash &- 0x0101_0101_0101_0101) & ~slash)
            | ((w &- 0x2020_2020_2020_2020) & ~w) | w) & 0x8080_8080_8080_8080
    }

    /// Checks that an array-like field has the shape its kind allows; leaves `pos` after it.
    private mutating func validateShape(of field: FieldID, kind: FieldKind) throws(FlowDecodingError) {
        let first = base[pos]
        switch kind {
        case .tcpFlags where first != UInt8(ascii: "["):
            _ = try parseInteger(field)
            return
        case .directionArray where first == UInt8(ascii: "\""):
            // January 2025 agents marshalled []uint8, which Go writes as base64.
            pos += 1
            guard let length = try scanPlainString(), isBase64(base + pos - length - 1, length) else {
                throw wrongType(field, "an array of integers or a base64 string")
            }
            return
        default:
            break
        }
        guard first == UInt8(ascii: "[") else { throw wrongType(field, Self.expectation(kind)) }
        pos += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos += 1; return }
        var sawNumber = false, sawString = false
        while true {
            guard pos < end else { throw invalid("unterminated array") }
            let c = base[pos]
            switch kind {
            case .stringArray, .tcpFlags:
                guard c == UInt8(ascii: "\"") else { throw wrongType(field, Self.expectation(kind)) }
                try skipString()
            case .directionArray:
                if c == UInt8(ascii: "\"") {
                    pos += 1
                    _ = try parseInteger(field)
                    guard peek() == UInt8(ascii: "\"") else { throw wrongType(field, Self.expectation(kind)) }
                    pos += 1
                    sawString = true
                } else {
                    _ = try parseInteger(field)
                    sawNumber = true
                }
                if sawNumber && sawString {
                    throw wrongType(field, "integers or numeric strings, not a mix of both")
                }
            case .objectArray:
                guard c == UInt8(ascii: "{") else { throw wrongType(field, Self.expectation(kind)) }
                try skipValue(depth: 1)
            case .integer, .string, .bool:
                preconditionFailure("scalar kind in validateShape")
            }
            skipWhitespace()
            guard pos < end else { throw invalid("unterminated array") }
            let sep = base[pos]
            pos += 1
            if sep == UInt8(ascii: "]") { return }
            guard sep == UInt8(ascii: ",") else { pos -= 1; throw invalid("expected ',' or ']' in an array") }
            skipWhitespace()
        }
    }

    private static func expectation(_ kind: FieldKind) -> String {
        switch kind {
        case .stringArray: "an array of strings"
        case .directionArray: "an array of integers or numeric strings"
        case .objectArray: "an array of objects"
        case .tcpFlags: "an array of flag names, a number or null"
        case .integer: "an integer"
        case .string: "a string"
        case .bool: "true or false"
        }
    }

    // MARK: Numbers

    /// Parses a JSON number that must be an integer in Int64's range. Integral values
    /// written with a fraction or exponent (`1.0`, `1e3`) are accepted.
    @inline(__always)
    private mutating func parseInteger(_ field: FieldID) throws(FlowDecodingError) -> Int64 {
        let start = pos
        var negative = false
        if pos < end && base[pos] == UInt8(ascii: "-") { negative = true; pos += 1 }
        let digitsStart = pos
        var magnitude: UInt64 = 0
        var overflow = false
        // 18 digits always fit in a UInt64; only longer numbers need overflow checks.
        let fastEnd = min(end, pos + 18)
        while pos < fastEnd {
            let d = base[pos] &- UInt8(ascii: "0")
            if d > 9 { break }
            magnitude = magnitude &* 10 &+ UInt64(d)
            pos += 1
        }
        while pos < end {
            let d = base[pos] &- UInt8(ascii: "0")
            if d > 9 { break }
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            overflow = overflow || o1 || o2
            magnitude = s
            pos += 1
        }
        let digits = pos - digitsStart
        guard digits > 0 else {
            pos = start
            throw wrongType(field, Self.expectation(field.kind == .integer ? .integer : field.kind))
        }
        if digits > 1 && base[digitsStart] == UInt8(ascii: "0") { throw invalid("numbers must not have leading zeros") }
        if pos < end, base[pos] == UInt8(ascii: ".") || base[pos] | 0x20 == UInt8(ascii: "e") {
            return try parseIntegralFloat(field, from: start)
        }
        if overflow { throw FlowDecodingError(.numberOutOfRange(field: field.name), at: start) }
        if tables.unsigned64[field.index] {
            // A uint64 counter: the whole unsigned range, as its bit pattern; no negatives.
            guard !negative || magnitude == 0 else { throw FlowDecodingError(.numberOutOfRange(field: field.name), at: start) }
            return Int64(bitPattern: magnitude)
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw FlowDecodingError(.numberOutOfRange(field: field.name), at: start) }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw FlowDecodingError(.numberOutOfRange(field: field.name), at: start) }
        return Int64(magnitude)
    }

    /// The slow path for `1.0` or `1.5e+06`: conntrack sums are float64 in flowlogs-pipeline.
    private mutating func parseIntegralFloat(_ field: FieldID, from start: Int) throws(FlowDecodingError) -> Int64 {
        pos = start
        try skipNumber()
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
        guard let value = Double(text), value.rounded() == value else {
            throw FlowDecodingError(.numberOutOfRange(field: field.name), at: start)
        }
        if tables.unsigned64[field.index] {
            guard value >= 0, value < 1.8446744073709551616e19 else { throw FlowDecodingError(.numberOutOfRange(field: field.name), at: start) }
            return Int64(bitPattern: UInt64(value))
        }
        guard value >= -9.223372036854775808e18, value < 9.223372036854775808e18 else {
            throw FlowDecodingError(.numberOutOfRange(field: field.name), at: start)
        }
        return Int64(value)
    }

    /// Validates JSON number grammar and moves past it.
    private mutating func skipNumber() throws(FlowDecodingError) {
        if peek() == UInt8(ascii: "-") { pos += 1 }
        let intStart = pos
        while pos < end, base[pos] &- UInt8(ascii: "0") <= 9 { pos += 1 }
        guard pos > intStart else { throw invalid("expected a value") }
        if pos - intStart > 1 && base[intStart] == UInt8(ascii: "0") { throw invalid("numbers must not have leading zeros") }
        if peek() == UInt8(ascii: ".") {
            pos += 1
            let fracStart = pos
            while pos < end, base[pos] &- UInt8(ascii: "0") <= 9 { pos += 1 }
            guard pos > fracStart else { throw invalid("expected digits after '.'") }
        }
        if let e = peek(), e | 0x20 == UInt8(ascii: "e") {
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            let expStart = pos
            while pos < end, base[pos] &- UInt8(ascii: "0") <= 9 { pos += 1 }
            guard pos > expStart else { throw invalid("expected digits in an exponent") }
        }
    }

    // MARK: Strings

    /// Scans string content after the opening quote. Returns its length and moves past
    /// the closing quote when the string has no escapes; returns `nil` (position
    /// unspecified) when it has one, so the caller can take the unescaping path.
    /// Validates UTF-8 and rejects raw control characters.
    @inline(__always)
    private mutating func scanPlainString() throws(FlowDecodingError) -> Int? {
        let start = pos
        // Eight bytes at a time while they are plain printable ASCII.
        // and then straight to the first byte that is not.
        while pos + 8 <= end {
            let special = Self.specialMask(UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self))
            if special != 0 {
                pos += special.trailingZeroBitCount >> 3
                break
            }
            pos += 8
        }
        while pos < end {
            let c = base[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return pos - 1 - start
            }
            if c == UInt8(ascii: "\\") { return nil }
            if c < 0x20 { throw invalid("control character in a string") }
            if c >= 0x80 { try skipUTF8Sequence() } else { pos += 1 }
        }
        throw invalid("unterminated string")
    }

    /// Skips a whole string (opening quote at `pos`), escapes included, validating it.
    private mutating func skipString() throws(FlowDecodingError) {
        pos += 1
        let contentStart = pos
        if try scanPlainString() != nil { return }
        pos = contentStart
        var scratch = takeScratch()
        try scanEscapedString(into: &scratch)
        unescaped = scratch
    }

    /// The scratch buffer, emptied, moved out of `self` so it can be filled while
    /// `self` is being mutated; the caller puts it back to keep its capacity.
    private mutating func takeScratch() -> [UInt8] {
        var scratch: [UInt8] = []
        swap(&scratch, &unescaped)
        scratch.removeAll(keepingCapacity: true)
        return scratch
    }

    /// Decodes string content (after the opening quote) with escapes into `out`,
    /// moving past the closing quote.
    private mutating func scanEscapedString(into out: inout [UInt8]) throws(FlowDecodingError) {
        while pos < end {
            let c = base[pos]
            switch c {
            case UInt8(ascii: "\""):
                pos += 1
                return
            case UInt8(ascii: "\\"):
                pos += 1
                guard pos < end else { throw invalid("unterminated escape") }
                let e = base[pos]
                pos += 1
                if let byte = JSONEscape.byte(for: e) {
                    out.append(byte)
                    continue
                }
                switch e {
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard pos + 1 < end, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u") else {
                            throw FlowDecodingError(.invalidUTF8, at: pos)
                        }
                        pos += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw FlowDecodingError(.invalidUTF8, at: pos) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        throw FlowDecodingError(.invalidUTF8, at: pos)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw FlowDecodingError(.invalidUTF8, at: pos) }
                    out.append(contentsOf: UTF8.encode(u)!)
                default:
                    throw invalid("unknown escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            default:
                if c < 0x20 { throw invalid("control character in a string") }
                if c >= 0x80 {
                    let s = pos
                    try skipUTF8Sequence()
                    out.append(contentsOf: UnsafeBufferPointer(start: base + s, count: pos - s))
                } else {
                    out.append(c)
                    pos += 1
                }
            }
        }
        throw invalid("unterminated string")
    }

    private mutating func hex4() throws(FlowDecodingError) -> UInt32 {
        guard pos + 4 <= end else { throw invalid("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base[pos]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw invalid("bad hex digit in a \\u escape")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    /// Validates one multi-byte UTF-8 sequence starting at `pos` (RFC 3629: no
    /// overlongs, no surrogates, nothing above U+10FFFF) and moves past it.
    private mutating func skipUTF8Sequence() throws(FlowDecodingError) {
        let b0 = base[pos]
        let length: Int
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: throw FlowDecodingError(.invalidUTF8, at: pos)
        }
        guard pos + length <= end else { throw FlowDecodingError(.invalidUTF8, at: pos) }
        let b1 = base[pos + 1]
        guard b1 >= lower && b1 <= upper else { throw FlowDecodingError(.invalidUTF8, at: pos) }
        for i in 2..<max(length, 2) where base[pos + i] & 0xC0 != 0x80 {
            throw FlowDecodingError(.invalidUTF8, at: pos)
        }
        pos += length
    }

    private func isBase64(_ p: UnsafePointer<UInt8>, _ length: Int) -> Bool {
        guard length % 4 == 0 else { return false }
        for i in 0..<length {
            let c = p[i]
            let ok = (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "+") || c == UInt8(ascii: "/")
                || (c == UInt8(ascii: "=") && i >= length - 2)
            if !ok { return false }
        }
        return true
    }

    // MARK: Any value (unknown fields, network events)

    /// Validates any JSON value and moves past it.
    private mutating func skipValue(depth: Int) throws(FlowDecodingError) {
        guard depth <= maxDepth else { throw FlowDecodingError(.tooDeep(limit: maxDepth), at: pos) }
        guard pos < end else { throw invalid("missing value") }
        switch base[pos] {
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "{"):
            pos += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { pos += 1; return }
            while true {
                guard peek() == UInt8(ascii: "\"") else { throw invalid("expected a quoted key") }
                try skipString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw invalid("expected ':' after a key") }
                pos += 1
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard pos < end else { throw invalid("unterminated object") }
                let c = base[pos]
                pos += 1
                if c == UInt8(ascii: "}") { return }
                guard c == UInt8(ascii: ",") else { pos -= 1; throw invalid("expected ',' or '}' after a value") }
                skipWhitespace()
            }
        case UInt8(ascii: "["):
            pos += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { pos += 1; return }
            while true {
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard pos < end else { throw invalid("unterminated array") }
                let c = base[pos]
                pos += 1
                if c == UInt8(ascii: "]") { return }
                guard c == UInt8(ascii: ",") else { pos -= 1; throw invalid("expected ',' or ']' in an array") }
                skipWhitespace()
            }
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        default: try skipNumber()
        }
    }

    // MARK: Small helpers

    @inline(__always)
    private func peek() -> UInt8? { pos < end ? base[pos] : nil }

    @inline(__always)
    private mutating func skipWhitespace() {
        while pos < end {
            let c = base[pos]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos += 1
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(FlowDecodingError) {
        let n = literal.utf8CodeUnitCount
        guard pos + n <= end, memcmp(base + pos, literal.utf8Start, n) == 0 else {
            throw invalid("expected \(literal)")
        }
        pos += n
    }

    private func invalid(_ what: String) -> FlowDecodingError {
        FlowDecodingError(.invalidJSON(what), at: pos)
    }

    private func wrongType(_ field: FieldID, _ expected: String) -> FlowDecodingError {
        FlowDecodingError(.wrongType(field: field.name, expected: expected), at: pos)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FlowJSONParser {
    /// The whole text as a JSON array of strings, each unescaped.
    mutating func parseStringArray() throws(FlowDecodingError) -> [[UInt8]] {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "[") else { throw invalid("expected an array") }
        pos += 1
        var elements: [[UInt8]] = []
        skipWhitespace()
        if pos < end, base[pos] == UInt8(ascii: "]") {
            pos += 1
        } else {
            while true {
                skipWhitespace()
                guard pos < end, base[pos] == UInt8(ascii: "\"") else { throw invalid("expected a string") }
                pos += 1
                let start = pos
                if let length = try scanPlainString() {
                    elements.append(Array(UnsafeBufferPointer(start: base + start, count: length)))
                } else {
                    var element = Array(UnsafeBufferPointer(start: base + start, count: pos - start))
                    try scanEscapedString(into: &element)
                    elements.append(element)
                }
                skipWhitespace()
                guard pos < end else { throw invalid("unterminated array") }
                if base[pos] == UInt8(ascii: "]") {
                    pos += 1
                    break
                }
                guard base[pos] == UInt8(ascii: ",") else { throw invalid("expected , or ]") }
                pos += 1
            }
        }
        skipWhitespace()
        guard pos == end else { throw invalid("text after the array") }
        return elements
    }
}

/// The elements of a JSON array of strings (`["eth0","br-ex"]`), as flows keep
/// Interfaces, Udns and TLSTypes; the decoder's own string scanner, so escapes and
/// UTF-8 are handled exactly as when the flow was decoded.
package enum JSONStringArray {
    /// The unescaped elements, or nil when the text is not an array of strings.
    package static func parse(_ text: UnsafeBufferPointer<UInt8>) -> [[UInt8]]? {
        guard let base = text.baseAddress else { return nil }
        var parser = FlowJSONParser(base: base, count: text.count, maxDepth: 2, keys: FieldKeyTable.shared)
        return try? parser.parseStringArray()
    }
}
