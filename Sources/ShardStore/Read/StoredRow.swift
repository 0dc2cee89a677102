public import StorageKit  // public: `ShardRow`'s inlinable readers reach `TableCursor`'s through this

/// One stored row of `flow_rows`, its columns by position in the table's order: the
/// current row of a statement selecting every column (`ShardSchema.allColumns`), or the
/// record a `TableCursor` decoded from a sealed shard's pages (whole rows in row id
/// order, where SQLite's per-column calls were most of the cost).
///
/// `@usableFromInline` for `ShardRow`'s inlinable readers: the cursor's values are read
/// inline in the caller's module; a statement's go through one call (`StatementValues`).
@usableFromInline enum StoredRow {
    case sqlite(StatementValues)
    case record(TableCursor)

    /// The current row of `statement`.
    static func statement(_ statement: SQLiteStatement) -> StoredRow { .sqlite(StatementValues(statement: statement)) }

    /// An integer column; nil when NULL.
    @inlinable @inline(__always) func integerOrNull(_ column: Int) -> Int64? {
        switch self {
        case .sqlite(let statement): statement.integerOrNull(column)
        case .record(let cursor): cursor.integerOrNull(column)
        }
    }

    /// An integer column, 0 when NULL: one call into SQLite where 0 means absent anyway
    /// (string ids start at 1).
    @inlinable @inline(__always) func integerOrZero(_ column: Int) -> Int64 {
        switch self {
        case .sqlite(let statement): statement.integerOrZero(column)
        case .record(let cursor): cursor.integerOrNull(column) ?? 0
        }
    }

    /// A text column's UTF-8, valid only inside `body`; nil when NULL.
    @inline(__always) func withText<R>(_ column: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        switch self {
        case .sqlite(let values): values.statement.withText(Int32(column), body)
        case .record(let cursor): cursor.bytes(column).map(body)
        }
    }

    func text(_ column: Int) -> String? {
        withText(column) { String(decoding: $0, as: UTF8.self) }
    }
}

/// A statement's current row, behind calls an inlinable body may make (the statement
/// itself is a package type, which such a body cannot name).
@usableFromInline struct StatementValues {
    let statement: SQLiteStatement

    @usableFromInline func integerOrNull(_ column: Int) -> Int64? { statement.integerOrNull(Int32(column)) }
    @usableFromInline func integerOrZero(_ column: Int) -> Int64 { statement.integer(Int32(column)) }
}
