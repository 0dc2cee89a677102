import StorageKit
import CSQLite
import FlowModel

/// A content checksum of a shard that does not depend on row order: the wrapping sum
/// of a 64-bit hash of each row's columns, plus the same over the `strings` table.
///
/// Order independence is what lets the sealer reorder rows (for compression) and still
/// prove the sealed copy holds exactly the active shard's rows. The hashing runs inside
/// SQLite as SQL functions, so each value is read once from the record by the VDBE and
/// handed over as an `sqlite3_value`: reading 113 columns per row through
/// `sqlite3_column_*` from Swift cost twice as much.
enum ShardChecksum {
    /// Hashes the rows' original values, so shards with different time encodings (an
    /// active shard and its sealed copy) agree. `rollups`, when given, aggregates the
    /// same rows as they pass (the sealer's verification pass).
    static func compute(_ db: SQLiteDatabase, timeEncoding: ShardSchema.TimeEncoding,
                        aggregatingInto rollups: RollupAccumulator? = nil) throws -> (rows: Int64, checksum: UInt64) {
        let accumulator = RowAccumulator(registeredOn: db)
        accumulator.rollups = rollups
        let columns = ShardSchema.decodedColumns(encoding: timeEncoding).joined(separator: ", ")
        let rows = try db.scalarInteger("SELECT count(*) FROM flow_rows WHERE \(RowAccumulator.functionName)(\(columns))") ?? 0
        guard rows == accumulator.rows else {
            throw ShardStoreError(.verificationFailed, "hashed \(accumulator.rows) of \(rows) rows of \(db.path)")
        }
        return (rows, try stringsChecksum(db, table: "strings") &+ accumulator.sum)
    }

    /// `compute`'s checksum and rollups of a sealed shard's rows, read from its pages by
    /// `cursor` instead of through SQLite: the seal's verification pass read each row
    /// through the VDBE and a SQL function (21% of a seal, `bench/RESULTS.md`). nil, with
    /// `rollups` emptied again, when a row holds what only SQLite's own conversions define
    /// (a REAL or a text where an integer belongs, a time whose decoding overflows): the
    /// caller then runs `compute`, so both ways always agree.
    static func compute(_ cursor: TableCursor, strings db: SQLiteDatabase, timeEncoding: ShardSchema.TimeEncoding,
                        aggregatingInto rollups: RollupAccumulator? = nil) throws(SQLiteError) -> (rows: Int64, checksum: UInt64)? {
        let integerColumns = Self.integerColumns
        let columns = ShardSchema.allColumns.count
        let times = ShardSchema.TimeEncoding.RowDecoder(timeEncoding)
        // Each row's integer columns, decoded with its header in one pass (`decodeRecord`),
        // then the relative times decoded in place: every later read is a load.
        let values = UnsafeMutablePointer<Int64>.allocate(capacity: integerColumns)
        let present = UnsafeMutablePointer<Bool>.allocate(capacity: integerColumns)
        defer {
            values.deallocate()
            present.deallocate()
        }
        @inline(__always) func value(_ c: Int) -> Int64? { present[c] ? values[c] : nil }
        var rows: Int64 = 0, sum: UInt64 = 0
        cursor.decodesHeaders = false
        try cursor.seek(toRowID: .min)
        while try cursor.next() {
            // A REAL, a text or a blob where an integer belongs: SQLite's own conversions
            // define its hash and its rollups, so SQLite computes them (`unusual` below).
            var unusual = try !cursor.decodeRecord(into: values, present: present, stride: 1, columns: integerColumns)
            if times.decode(values: values, present: present) { unusual = true }
            var row = RowHasher()
            for c in 0..<integerColumns where present[c] { row.add(integer: values[c], column: c) }
            for c in integerColumns..<columns {
                if let text = cursor.bytes(c) {
                    row.add(text: text, column: c)
                } else if !cursor.isNull(c) {
                    unusual = true
                }
            }
            sum &+= row.finish(columns: columns)
            rows += 1
            rollups?.add { c in value(c) }
            if unusual {
                rollups?.removeAll()
                return nil
            }
        }
        return (rows, try stringsChecksum(db, table: "strings") &+ sum)
    }

    /// The `strings` part of the checksum (`table` may name an attached database's).
    static func stringsChecksum(_ db: SQLiteDatabase, table: String) throws(SQLiteError) -> UInt64 {
        register(on: db)
        let strings = try db.prepare("SELECT flowrec_strings_checksum(id, value) FROM \(table)")
        _ = try strings.step()
        return UInt64(bitPattern: strings.integer(0))
    }

    /// Adds the aggregate `flowrec_strings_checksum(id, value)` to the connection.
    static func register(on db: SQLiteDatabase) {
        sqlite3_create_function_v2(db.handle, "flowrec_strings_checksum", 2, SQLITE_UTF8, nil, nil,
                                   stringsStep, checksumFinal, nil)
    }

    /// Hashes rows as a statement passes them to a SQL function (in a WHERE term that is
    /// always true), so a copy can checksum what it reads without a second pass.
    final class RowAccumulator {
        static let functionName = "flowrec_accumulate_row_checksum"
        private(set) var rows: Int64 = 0
        private(set) var sum: UInt64 = 0
        /// Also aggregates the rows for rollups, when set.
        var rollups: RollupAccumulator?
        /// Keeps the function's user-data pointer valid as long as the connection.
        private let database: SQLiteDatabase

        init(registeredOn db: SQLiteDatabase) {
            database = db
            // Not SQLITE_DETERMINISTIC: SQLite must call it for every row.
            sqlite3_create_function_v2(db.handle, Self.functionName, -1, SQLITE_UTF8,
                                       Unmanaged.passUnretained(self).toOpaque(), Self.accumulate, nil, nil, nil)
        }

        deinit { sqlite3_create_function_v2(database.handle, Self.functionName, -1, SQLITE_UTF8, nil, nil, nil, nil, nil) }

        private static let accumulate: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, count, values in
            if let values, let user = sqlite3_user_data(context) {
                let accumulator = Unmanaged<RowAccumulator>.fromOpaque(user).takeUnretainedValue()
                accumulator.rows += 1
                accumulator.sum &+= rowHash(count, values)
                accumulator.rollups?.add(values)
            }
            sqlite3_result_int(context, 1)
        }
    }

    /// Columns below this index are integers (string fields hold dictionary ids); the
    /// rest (`_nulls`, `_quoted`, `_extras`) are text.
    private static let integerColumns = FlowSchema.count

    /// The hash of one stored row, fed its non-NULL columns in column order. The SQL
    /// functions feed it `sqlite3_value`s; the active shard's writer feeds it the values
    /// it binds, so a shard keeps its checksum as it is written. One definition for both
    /// is what makes the two agree.
    struct RowHasher {
        private(set) var hash: UInt64 = 0x464C_4F57_0000_0000
        private var nextColumn = 0

        /// Columns between the last one added and `column` are NULL.
        @inline(__always) private mutating func skipNulls(upTo column: Int) {
            while nextColumn < column {
                hash = mix(hash, 0xDEAD_BEEF_0000_0000 &+ UInt64(nextColumn))
                nextColumn += 1
            }
        }

        @inline(__always) mutating func add(integer value: Int64, column: Int) {
            skipNulls(upTo: column)
            hash = mix(hash, UInt64(bitPattern: value) &+ UInt64(column) << 56)
            nextColumn = column + 1
        }

        @inline(__always) mutating func add(text: UnsafeBufferPointer<UInt8>, column: Int) {
            skipNulls(upTo: column)
            hash = hashBytes(mix(hash, UInt64(column)), text)
            nextColumn = column + 1
        }

        /// A text SQLite could not hand over (out of memory): the column counts, its bytes not.
        mutating func add(unreadableTextAt column: Int) {
            skipNulls(upTo: column)
            hash = mix(hash, UInt64(column))
            nextColumn = column + 1
        }

        mutating func add(text: String, column: Int) {
            var text = text
            text.withUTF8 { add(text: $0, column: column) }
        }

        /// The hash of a row of `columns` columns (the rest NULL).
        @inline(__always) mutating func finish(columns: Int) -> UInt64 {
            skipNulls(upTo: columns)
            return hash
        }
    }

    private static func rowHash(_ count: Int32, _ values: UnsafeMutablePointer<OpaquePointer?>) -> UInt64 {
        var row = RowHasher()
        let integerColumns = Self.integerColumns  // read once: a static's lazy check per column was 2% of a seal
        for c in 0..<Int(count) {
            let value = values[c]
            switch sqlite3_value_type(value) {
            case SQLITE_NULL:
                continue
            case _ where c < integerColumns:
                row.add(integer: sqlite3_value_int64(value), column: c)
            default:
                if let text = sqlite3_value_text(value) {
                    row.add(text: UnsafeBufferPointer(start: text, count: Int(sqlite3_value_bytes(value))), column: c)
                } else {
                    row.add(unreadableTextAt: c)
                }
            }
        }
        return row.finish(columns: Int(count))
    }

    private static let stringsStep: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, _, values in
        guard let values, let sum = runningSum(context) else { return }
        let h = mix(0x5157_5249_4E47_5300, UInt64(bitPattern: sqlite3_value_int64(values[0])))
        sum.pointee &+= sqlite3_value_type(values[1]) == SQLITE_NULL ? h : hashText(values[1], seed: h)
    }

    private static let checksumFinal: @convention(c) (OpaquePointer?) -> Void = { context in
        let sum = runningSum(context)?.pointee ?? 0
        sqlite3_result_int64(context, Int64(bitPattern: sum))
    }

    /// The aggregate's state: SQLite allocates it zeroed on the first row.
    private static func runningSum(_ context: OpaquePointer?) -> UnsafeMutablePointer<UInt64>? {
        sqlite3_aggregate_context(context, Int32(MemoryLayout<UInt64>.size))?.assumingMemoryBound(to: UInt64.self)
    }

    private static func hashText(_ value: OpaquePointer?, seed: UInt64) -> UInt64 {
        guard let text = sqlite3_value_text(value) else { return seed }
        return hashBytes(seed, UnsafeBufferPointer(start: text, count: Int(sqlite3_value_bytes(value))))
    }

    @inline(__always) static func mix(_ h: UInt64, _ v: UInt64) -> UInt64 {
        var x = (h ^ v) &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 31
        return x &* 0x94D0_49BB_1331_11EB
    }

    static func hashBytes(_ seed: UInt64, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = seed ^ UInt64(bytes.count)
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return mix(h, 0)
    }
}
