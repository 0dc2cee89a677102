import FlowModel
import Foundation

/// How flows become Parquet columns: NetObserv's field names, and types a dataframe
/// reads without help (`TimeFlowEndMs` a UTC timestamp, counters 64-bit integers, names
/// strings, `Interfaces` and `Flags` lists of strings, `IfDirections` a list of integers).
/// `NetworkEvents` (objects of strings) stays its JSON text, and so does `_extras`, the
/// fields flowrec does not know (one JSON object per flow, verbatim).
enum ParquetFlows {
    /// The bookkeeping column that keeps unknown fields: without it an export of every
    /// field would drop what a newer agent sent.
    static let extras = ParquetWriter.Column(name: "_extras", kind: .string, annotation: .string)

    /// The columns for `names`: NetObserv's field names, or `_extras`; nil for any other name.
    static func columns(for names: [String]) -> [ParquetWriter.Column]? {
        var columns: [ParquetWriter.Column] = []
        for name in names {
            if name == extras.name { columns.append(extras); continue }
            guard let id = FlowSchema.id(named: name) else { return nil }
            columns.append(column(for: id))
        }
        return columns
    }

    static func column(for field: FieldID) -> ParquetWriter.Column {
        let spec = field.spec
        switch spec.kind {
        case .integer:
            let annotation: ParquetWriter.Column.Annotation =
                spec.isUnsigned64 ? .unsigned64 : (spec.name == "TimeFlowEndMs" || spec.name == "TimeFlowStartMs" ? .timestampMillis : .none)
            return .init(name: spec.name, kind: .int64, annotation: annotation)
        case .bool: return .init(name: spec.name, kind: .boolean, annotation: .none)
        case .string, .objectArray: return .init(name: spec.name, kind: .string, annotation: .string)
        case .stringArray, .tcpFlags: return .init(name: spec.name, kind: .stringList, annotation: .string)
        case .directionArray: return .init(name: spec.name, kind: .int64List, annotation: .none)
        }
    }

    /// A field's value as its column takes it, from the `flows` view's value; nil when
    /// the stored value has no faithful form in the column (an array element that is
    /// not an integer in `IfDirections`, say): the exporter writes null and counts it.
    static func value(_ value: QueryValue, for column: ParquetWriter.Column) -> ParquetWriter.Value? {
        switch (column.kind, value) {
        case (_, .null): return .null
        case (.int64, .integer(let v)): return .int64(v)
        case (.int64, .unsigned(let v)): return .int64(Int64(bitPattern: v))
        case (.boolean, .integer(let v)): return .boolean(v != 0)
        case (.string, .text(let t)): return .string(t)
        case (.stringList, .text(let t)):
            if let items = JSONArray.parse(t) { return .strings(items.map { $0.string ?? $0.number.map(String.init) }) }
            // Flags written as a number (agents before 1.8): the names of its bits.
            if let bits = Int64(t) { return .strings(TCPFlagNames.names(bits)) }
            return nil
        case (.stringList, .integer(let bits)): return .strings(TCPFlagNames.names(bits))
        case (.int64List, .text(let t)):
            if let items = JSONArray.parse(t) {
                let numbers = items.compactMap { $0.number ?? $0.string.flatMap { Int64($0) } }
                return numbers.count == items.count ? .int64s(numbers) : nil
            }
            // A base64 string (the agent of January 2025): one direction per byte.
            if let quoted = JSONArray.parseString(t), let bytes = Data(base64Encoded: quoted) { return .int64s(bytes.map { Int64($0) }) }
            return nil
        default:
            return nil
        }
    }
}
