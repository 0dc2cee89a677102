/// One NetObserv flow record, decoded.
///
/// A `Flow` keeps every field of the JSON it came from: known fields as typed values
/// (integers, UTF-8 strings, or the JSON text of arrays and objects), unknown fields
/// verbatim as extras, and the few spellings NetObserv has varied over time (a `null`,
/// `FlowDirection` as a string) so that `FlowEncoder` gives back the same JSON value.
///
/// Storage is flat on purpose: one `Int64` slot per known field and one byte arena for
/// all text. Decoding into an existing `Flow` with `FlowDecoder.decode(_:into:)` reuses
/// both buffers, so the ingest hot path allocates nothing per message.
///
/// Public only so that its readers are inlined into other modules (see `FieldID`).
public struct Flow: Sendable, Equatable {
    /// Known fields that the record carries (with a value or `null`).
    @usableFromInline package internal(set) var present = FieldSet()
    /// Known fields whose JSON value was `null`.
    @usableFromInline package internal(set) var nulls = FieldSet()
    /// Integer fields that arrived as numeric strings (`"FlowDirection":"1"`).
    @usableFromInline package internal(set) var numericStrings = FieldSet()
    /// Per field id: the integer (integer and bool kinds) or a `TextRange` into `text`.
    @usableFromInline var values: [Int64]
    /// UTF-8 bytes of string values and JSON text of array values.
    @usableFromInline var text: [UInt8]
    /// Unknown members, verbatim and in input order: `"key":value,"key":value`.
    @usableFromInline var extras: [UInt8]

    package init() {
        values = Array(repeating: 0, count: FlowSchema.count)
        text = []
        extras = []
    }

    /// Forgets every field but keeps the buffers' capacity for the next record.
    package mutating func removeAll() {
        present = FieldSet()
        nulls = FieldSet()
        numericStrings = FieldSet()
        text.removeAll(keepingCapacity: true)
        extras.removeAll(keepingCapacity: true)
    }

    // MARK: Reading

    @inlinable public func has(_ field: FieldID) -> Bool { present.contains(field) }

    @inlinable public func isNull(_ field: FieldID) -> Bool { nulls.contains(field) }

    /// The value of an integer or bool field; `nil` when absent or null.
    @inlinable public func integer(_ field: FieldID) -> Int64? {
        guard present.contains(field), !nulls.contains(field), !field.kind.isTextStored else { return nil }
        return values[field.index]
    }

    /// A string field's value, or the JSON text of an array field; `nil` when absent or null.
    package func string(_ field: FieldID) -> String? {
        withUTF8(field) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with a text field's UTF-8 bytes without creating a `String`.
    @inlinable public func withUTF8<R>(_ field: FieldID, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        guard present.contains(field), !nulls.contains(field), field.kind.isTextStored else { return nil }
        let range = TextRange(packed: values[field.index])
        return try text.withUnsafeBufferPointer { all in
            try body(UnsafeBufferPointer(rebasing: all[range.start..<range.end]))
        }
    }

    /// The unknown fields as one JSON object (`{"NewField":1}`), or `nil` when there are none.
    package var extrasJSON: String? {
        extras.isEmpty ? nil : "{" + String(decoding: extras, as: UTF8.self) + "}"
    }

    /// The unknown members' bytes, `"key":value` joined by commas, as they came.
    package var extrasBytes: [UInt8] { extras }

    // MARK: Writing (the generator and tests build flows this way)

    package mutating func set(_ field: FieldID, integer value: Int64) {
        precondition(!field.kind.isTextStored, "\(field) holds text")
        markPresent(field)
        values[field.index] = value
    }

    /// Sets a string field, or an array field from its JSON text (which must be valid
    /// for the field's kind: `FlowDecoder` is the place that checks JSON from outside).
    package mutating func set(_ field: FieldID, text value: String) {
        precondition(field.kind.isTextStored, "\(field) holds an integer")
        markPresent(field)
        let start = text.count
        var value = value
        value.withUTF8 { text.append(contentsOf: $0) }
        values[field.index] = TextRange(start: start, end: text.count).packed
    }

    /// Sets a text field from UTF-8 bytes (a string, or JSON text for array kinds).
    package mutating func set(_ field: FieldID, utf8 bytes: UnsafeBufferPointer<UInt8>) {
        precondition(field.kind.isTextStored, "\(field) holds an integer")
        markPresent(field)
        let start = text.count
        text.append(contentsOf: bytes)
        values[field.index] = TextRange(start: start, end: text.count).packed
    }

    /// Records that an integer field arrived as a numeric string (`"FlowDirection":"1"`).
    package mutating func markNumericString(_ field: FieldID) {
        precondition(field.spec.acceptsNumericString, "\(field) is never a numeric string")
        numericStrings.insert(field)
    }

    /// Replaces the unknown fields with the members of `object`, a JSON object's text
    /// (`{"A":1,"B":[2]}`) as stored by flowrec; the braces are dropped.
    package mutating func setExtras(objectJSON object: UnsafeBufferPointer<UInt8>) {
        extras.removeAll(keepingCapacity: true)
        guard object.count >= 2 else { return }
        extras.append(contentsOf: UnsafeBufferPointer(rebasing: object[1..<(object.count - 1)]))
    }

    /// Gives `body` direct, read-only access to every value, for storage code that
    /// binds dozens of fields per row and cannot afford a closure per field.
    @inlinable
    public func withValues<R>(_ body: (FlowValues) throws -> R) rethrows -> R {
        try values.withUnsafeBufferPointer { slots in
            try text.withUnsafeBufferPointer { arena in
                try body(FlowValues(present: present, nulls: nulls, numericStrings: numericStrings,
                                    slots: slots, arena: arena))
            }
        }
    }

    package mutating func setNull(_ field: FieldID) {
        markPresent(field)
        nulls.insert(field)
    }

    /// Appends an unknown member; `rawJSONValue` is kept verbatim.
    package mutating func appendExtra(key: String, rawJSONValue: String) {
        if !extras.isEmpty { extras.append(UInt8(ascii: ",")) }
        JSONEscaping.appendQuoted(key.utf8, to: &extras)
        extras.append(UInt8(ascii: ":"))
        extras.append(contentsOf: rawJSONValue.utf8)
    }

    @inline(__always)
    mutating func markPresent(_ field: FieldID) {
        present.insert(field)
        nulls.remove(field)
        numericStrings.remove(field)
    }

    // MARK: Equality is by JSON value, not by buffer layout

    public static func == (a: Flow, b: Flow) -> Bool {
        guard a.present == b.present, a.nulls == b.nulls, a.numericStrings == b.numericStrings,
              a.extras == b.extras else { return false }
        for field in a.present where !a.nulls.contains(field) {
            if field.kind.isTextStored {
                if a.string(field) != b.string(field) { return false }
            } else if a.values[field.index] != b.values[field.index] {
                return false
            }
        }
        return true
    }
}

extension FieldKind {
    /// Kinds whose slot holds a `TextRange` into the flow's text arena.
    @inlinable public var isTextStored: Bool {
        switch self {
        case .integer, .bool: false
        case .string, .stringArray, .directionArray, .objectArray, .tcpFlags: true
        }
    }
}

/// A flow's values, valid only inside `Flow.withValues`. Public to be inlined (`FieldID`).
public struct FlowValues {
    public let present: FieldSet
    public let nulls: FieldSet
    public let numericStrings: FieldSet
    @usableFromInline let slots: UnsafeBufferPointer<Int64>
    @usableFromInline let arena: UnsafeBufferPointer<UInt8>

    @inlinable init(present: FieldSet, nulls: FieldSet, numericStrings: FieldSet,
                    slots: UnsafeBufferPointer<Int64>, arena: UnsafeBufferPointer<UInt8>) {
        self.present = present
        self.nulls = nulls
        self.numericStrings = numericStrings
        self.slots = slots
        self.arena = arena
    }

    /// The value of a present, non-null integer or bool field.
    @inlinable @inline(__always) public func integer(_ field: FieldID) -> Int64 { slots[field.index] }

    /// The UTF-8 bytes of a present, non-null text field.
    @inlinable @inline(__always) public func text(_ field: FieldID) -> UnsafeBufferPointer<UInt8> {
        let range = TextRange(packed: slots[field.index])
        return UnsafeBufferPointer(rebasing: arena[range.start..<range.end])
    }
}

/// A half-open byte range in a flow's text arena, packed into one Int64 slot.
@usableFromInline struct TextRange {
    @usableFromInline let start: Int
    @usableFromInline let end: Int

    @inlinable init(start: Int, end: Int) { self.start = start; self.end = end }
    @inlinable init(packed: Int64) {
        start = Int(packed >> 32)
        end = Int(packed & 0xFFFF_FFFF)
    }
    @inlinable var packed: Int64 { Int64(start) << 32 | Int64(end) }
}

/// A set of known fields, one bit per `FieldID`. Public to be inlined (`FieldID`).
public struct FieldSet: Sendable, Hashable, Sequence {
    @usableFromInline var low: UInt64 = 0
    @usableFromInline var high: UInt64 = 0

    package init() {}
    package init(_ fields: some Sequence<FieldID>) { for f in fields { insert(f) } }

    @inlinable @inline(__always) public func contains(_ f: FieldID) -> Bool {
        f.rawValue < 64 ? (low >> UInt64(f.rawValue)) & 1 == 1 : (high >> UInt64(f.rawValue - 64)) & 1 == 1
    }
    @inlinable @inline(__always) public mutating func insert(_ f: FieldID) {
        if f.rawValue < 64 { low |= 1 << UInt64(f.rawValue) } else { high |= 1 << UInt64(f.rawValue - 64) }
    }
    @inlinable public mutating func remove(_ f: FieldID) {
        if f.rawValue < 64 { low &= ~(1 << UInt64(f.rawValue)) } else { high &= ~(1 << UInt64(f.rawValue - 64)) }
    }
    package var count: Int { low.nonzeroBitCount + high.nonzeroBitCount }
    package var isEmpty: Bool { low == 0 && high == 0 }

    public func makeIterator() -> Iterator { Iterator(low: low, high: high) }

    public struct Iterator: IteratorProtocol {
        var low: UInt64
        var high: UInt64
        public mutating func next() -> FieldID? {
            if low != 0 {
                let bit = low.trailingZeroBitCount
                low &= low - 1
                return FieldID(rawValue: UInt8(bit))
            }
            if high != 0 {
                let bit = high.trailingZeroBitCount
                high &= high - 1
                return FieldID(rawValue: UInt8(64 + bit))
            }
            return nil
        }
    }
}
