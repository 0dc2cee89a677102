/// Why a message is not a flow. The recorder stores the message in the dead-letter
/// table with this reason; `description` is what a user reads there.
package struct FlowDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Reason: Sendable, Equatable {
        /// The bytes are not JSON (or not one JSON object); the text says what was expected.
        case invalidJSON(String)
        /// A known field holds a value of the wrong JSON type.
        case wrongType(field: String, expected: String)
        /// An integer field's value does not fit its type (signed 64-bit, or unsigned 64-bit
        /// for NetObserv's uint64 counters) or is not integral.
        case numberOutOfRange(field: String)
        /// A known field appears twice in the object.
        case duplicateField(String)
        /// `TimeFlowEndMs` is missing or null: the flow cannot be placed in time.
        case missingRequiredField(String)
        /// A string is not valid UTF-8.
        case invalidUTF8
        /// Arrays and objects nest deeper than the decoder's limit.
        case tooDeep(limit: Int)
        /// The message is larger than the decoder's limit.
        case tooLarge(size: Int, limit: Int)
        /// `TimeFlowEndMs` is outside the accepted range (`FlowDecoder.Limits.acceptedEndMs`):
        /// not storable at all, or implausibly far from the wall clock.
        case endTimeOutOfRange(valueMs: Int64, accepted: ClosedRange<Int64>)
    }

    package let reason: Reason
    /// Byte offset in the message where the problem was found.
    package let offset: Int

    package init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    package var description: String {
        switch reason {
        case .invalidJSON(let what): "invalid JSON at byte \(offset): \(what)"
        case .wrongType(let field, let expected): "field \(field) at byte \(offset) must be \(expected)"
        case .numberOutOfRange(let field):
            "field \(field) at byte \(offset) is not an integer in the "
                + (FlowSchema.id(named: field)?.spec.isUnsigned64 == true ? "unsigned 64-bit range (0 to 18446744073709551615)" : "signed 64-bit range")
        case .duplicateField(let field): "field \(field) appears twice (second at byte \(offset))"
        case .missingRequiredField(let field): "the record has no \(field), so it cannot be placed in time"
        case .invalidUTF8: "a string at byte \(offset) is not valid UTF-8"
        case .tooDeep(let limit): "values nest deeper than \(limit) levels at byte \(offset)"
        case .tooLarge(let size, let limit): "message of \(size) bytes exceeds the \(limit)-byte limit"
        case .endTimeOutOfRange(let value, let accepted):
            "TimeFlowEndMs \(value) (\(EventTime.rfc3339(value))) is outside the accepted range "
                + "\(EventTime.rfc3339(accepted.lowerBound)) to \(EventTime.rfc3339(accepted.upperBound))"
                + (accepted == EventTime.storableEndMs ? " of shard windows" : " (store.maxEventAge and store.maxEventAhead around the clock)")
        }
    }

    /// A short machine-friendly label for metrics (`reason="invalid_json"`).
    package var metricLabel: String {
        switch reason {
        case .invalidJSON: "invalid_json"
        case .wrongType: "wrong_type"
        case .numberOutOfRange: "number_out_of_range"
        case .duplicateField: "duplicate_field"
        case .missingRequiredField: "missing_required_field"
        case .invalidUTF8: "invalid_utf8"
        case .tooDeep: "too_deep"
        case .tooLarge: "too_large"
        case .endTimeOutOfRange: "time_out_of_range"
        }
    }
}
