package import StorageKit

/// One value of a result row.
package enum QueryValue: Sendable, Equatable {
    case null
    case integer(Int64)
    /// Only from `flowrec sql` (avg(), ratios): stored fields are integers or text.
    case real(Double)
    case text(String)

    /// The first `columns` values of a statement's current row.
    package static func row(of statement: SQLiteStatement, columns: Int32) -> [QueryValue] {
        var values: [QueryValue] = []
        values.reserveCapacity(Int(columns))
        for i in 0..<columns {
            switch statement.columnType(i) {
            case .null: values.append(.null)
            case .integer: values.append(.integer(statement.integer(i)))
            case .real: values.append(.real(statement.double(i)))
            case .text, .blob: values.append(.text(statement.text(i) ?? ""))
            }
        }
        return values
    }
}
