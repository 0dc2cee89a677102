import FlowModel
package import StorageKit

/// One value of a result row.
package enum QueryValue: Sendable, Equatable {
    case null
    case integer(Int64)
    /// A uint64 counter (`Bytes`, `Packets`, ...) at 2^63 or above: SQLite holds it as the
    /// bit pattern (a negative integer); results name it by its unsigned value.
    case unsigned(UInt64)
    /// Only from `flowrec sql` (avg(), ratios): stored fields are integers or text.
    case real(Double)
    case text(String)

    /// The first `columns` values of a statement's current row. Integer columns whose
    /// result name is a uint64 field (`SELECT Bytes ...`) are read back unsigned.
    package static func row(of statement: SQLiteStatement, columns: Int32, unsigned: UnsignedColumns = .none) -> [QueryValue] {
        var values: [QueryValue] = []
        values.reserveCapacity(Int(columns))
        for i in 0..<columns {
            switch statement.columnType(i) {
            case .null: values.append(.null)
            case .integer:
                let v = statement.integer(i)
                values.append(v < 0 && unsigned.contains(Int(i)) ? .unsigned(UInt64(bitPattern: v)) : .integer(v))
            case .real: values.append(.real(statement.double(i)))
            case .text, .blob: values.append(.text(statement.text(i) ?? ""))
            }
        }
        return values
    }

    /// Which result columns hold a uint64 field, found by name once per statement.
    package struct UnsignedColumns: Sendable {
        private let indexes: Set<Int>

        package static let none = UnsignedColumns(indexes: [])

        private init(indexes: Set<Int>) { self.indexes = indexes }

        /// The columns named like a uint64 field.
        package init(names: [String]) {
            indexes = Set(names.enumerated().compactMap { i, name in
                FlowSchema.id(named: name)?.spec.isUnsigned64 == true ? i : nil
            })
        }

        func contains(_ index: Int) -> Bool { !indexes.isEmpty && indexes.contains(index) }
    }

    /// The value as text, as tables and CSV print it ("" for NULL).
    package var text: String {
        switch self {
        case .null: ""
        case .integer(let v): String(v)
        case .unsigned(let v): String(v)
        case .real(let v): String(v)
        case .text(let t): t
        }
    }
}
