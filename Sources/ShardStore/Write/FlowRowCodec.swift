import StorageKit
import FlowModel

/// Moves flows in and out of a shard's `flow_rows` table: one integer column per field
/// (string and array fields as ids into the shard's `strings`), plus the bookkeeping
/// columns that make the stored row give back the exact JSON.
struct FlowRowCodec: Sendable {
    /// Field kinds by id, copied once: the bind loop runs for every field of every row.
    private let storesText: [Bool] = FlowSchema.fields.map { $0.kind.isTextStored }
    private let names: [String] = FlowSchema.fields.map(\.name)
    /// The first bookkeeping column (`_nulls`), and the row's column count.
    private let bookkeepingBase = FlowSchema.count
    private let columnCount = FlowSchema.count + ShardSchema.bookkeepingColumns.count

    /// Binds `flow` to a prepared `ShardSchema.insertFlowSQL` and runs it. Strings not
    /// yet in `dictionary` are added to it and to the shard (`insertString`) first.
    /// Returns the stored row's hash (`ShardChecksum.RowHasher` over the values bound),
    /// from which the shard keeps its content checksum as it is written.
    ///
    /// `flow` is a pointer into the batch, not a `Flow`: a `Flow` argument read from the
    /// batch's buffer was copied for the call (three retains and releases a row, 6.7% of
    /// the storing thread in `perf`), since the compiler cannot prove the buffer
    /// unchanged meanwhile.
    func insert(_ flow: UnsafePointer<Flow>, with statement: SQLiteStatement, dictionary: inout StringDictionary,
                insertString: SQLiteStatement) throws(SQLiteError) -> UInt64 {
        statement.clearBindings()
        defer { statement.reset() }
        var row = ShardChecksum.RowHasher()
        let base = bookkeepingBase
        let result: Result<Void, SQLiteError> = flow.pointee.withValues { values in
            // `present` iterates in field order, which is column order.
            for field in values.present where !values.nulls.contains(field) {
                let parameter = Int32(field.index + 1)
                if storesText[field.index] {
                    let text = values.text(field)
                    let (id, isNew) = dictionary.id(for: text)
                    if isNew {
                        insertString.bind(1, Int64(id))
                        insertString.bind(2, borrowedUTF8: text)
                        let stored = Result { () throws(SQLiteError) in _ = try insertString.step() }
                        insertString.reset()
                        if case .failure = stored { return stored }
                    }
                    statement.bind(parameter, Int64(id))
                    row.add(integer: Int64(id), column: field.index)
                } else {
                    let value = values.integer(field)
                    statement.bind(parameter, value)
                    row.add(integer: value, column: field.index)
                }
            }
            if !values.nulls.isEmpty {
                let names = joinedNames(values.nulls)
                statement.bind(ShardSchema.nullsParameter, names)
                row.add(text: names, column: base)
            }
            if !values.numericStrings.isEmpty {
                let names = joinedNames(values.numericStrings)
                statement.bind(ShardSchema.quotedParameter, names)
                row.add(text: names, column: base + 1)
            }
            if let extras = flow.pointee.extrasJSON {
                statement.bind(ShardSchema.extrasParameter, extras)
                row.add(text: extras, column: base + 2)
            }
            return Result { () throws(SQLiteError) in _ = try statement.step() }
        }
        try result.get()
        return row.finish(columns: columnCount)
    }

    private func joinedNames(_ set: FieldSet) -> String {
        set.map { names[$0.index] }.joined(separator: ",")
    }

    /// Reads a stored row (of `SELECT <selectColumns> FROM flow_rows`, or read in place)
    /// into `flow`, undoing the shard's time encoding.
    func read(_ row: StoredRow, dictionary: StringDictionary, timeEncoding: ShardSchema.TimeEncoding,
              into flow: inout Flow) {
        flow.removeAll()
        let end: Int64? = timeEncoding == .endRelative ? row.integerOrNull(ShardSchema.TimeEncoding.endColumn) : nil
        for (column, text) in storesText.enumerated() {
            guard var value = row.integerOrNull(column) else { continue }
            let field = FieldID(rawValue: UInt8(column))
            if text {
                dictionary.withBytes(of: Int32(value)) { flow.set(field, utf8: $0) }
            } else {
                if let end, timeEncoding.isRelative(column) {
                    value = ShardSchema.TimeEncoding.decode(value, column: column, end: end).value
                }
                flow.set(field, integer: value)
            }
        }
        let base = FlowSchema.count
        if let nulls = row.text(base) {
            for name in nulls.split(separator: ",") { if let f = FlowSchema.id(named: String(name)) { flow.setNull(f) } }
        }
        if let quoted = row.text(base + 1) {
            for name in quoted.split(separator: ",") { if let f = FlowSchema.id(named: String(name)) { flow.markNumericString(f) } }
        }
        _ = row.withText(base + 2) { flow.setExtras(objectJSON: $0) }
    }

    /// The column list that `read` expects.
    static let selectColumns: String = ShardSchema.allColumns.joined(separator: ", ")
}
