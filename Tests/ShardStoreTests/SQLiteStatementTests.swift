import StorageKit
import Testing

/// `SQLiteStatement.integerOrNull` asks SQLite for a column's type only when its value
/// reads as 0: the cases where that shortcut could go wrong.
@Suite struct SQLiteStatementTests {
    @Test func integerOrNullTellsNullFromZero() throws {
        let db = try SQLiteDatabase(path: ":memory:")
        let select = try db.prepare("SELECT NULL, 0, -1, 9223372036854775807, '7', 0.0")
        #expect(try select.step())
        #expect(select.integerOrNull(0) == nil)
        #expect(select.integerOrNull(1) == 0)
        #expect(select.integerOrNull(2) == -1)
        #expect(select.integerOrNull(3) == Int64.max)
        #expect(select.integerOrNull(4) == 7, "a text column converts as sqlite3_column_int64 converts it")
        #expect(select.integerOrNull(5) == 0, "a real zero is not NULL")
    }
}
