import StorageKit

/// One stored row of `flow_rows`, its columns by position in the table's order: the
/// current row of a statement selecting every column (`ShardSchema.allColumns`), or the
/// record a `TableCursor` decoded from a sealed shard's pages (whole rows in row id
/// order, where SQLite's per-column calls were most of the cost).
enum StoredRow {
    case statement(SQLiteStatement)
    case record(TableCursor)

    /// An integer column; nil when NULL.
    @inline(__always) func integerOrNull(_ column: Int) -> Int64? {
        switch self {
        case .statement(let statement): statement.integerOrNull(Int32(column))
        case .record(let cursor): cursor.integerOrNull(column)
        }
    }

    /// A text column's UTF-8, valid only inside `body`; nil when NULL.
    @inline(__always) func withText<R>(_ column: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        switch self {
        case .statement(let statement): statement.withText(Int32(column), body)
        case .record(let cursor): cursor.bytes(column).map(body)
        }
    }

    func text(_ column: Int) -> String? {
        withText(column) { String(decoding: $0, as: UTF8.self) }
    }
}
