package import FlowModel

/// The SQL layout of an active shard, derived from `FlowSchema.fields` so that a field
/// added there becomes a column here with no second list to keep in step.
///
/// `migrations/shard/0001_shard.sql` is this text, written by `flowrec schema
/// --write-migrations`; a test fails when the file and the code disagree.
package enum ShardSchema {
    /// Stored in each shard's `meta` table; a shard keeps the version it was created with.
    package static let version = 1

    /// Columns after the NetObserv fields: what a `Flow` needs besides field values to
    /// give back the exact JSON it came from.
    package static let bookkeepingColumns: [(name: String, comment: String)] = [
        ("_nulls", "names of fields whose JSON value was null, comma separated"),
        ("_quoted", "names of integer fields that arrived as numeric strings, comma separated"),
        ("_extras", "fields flowrec does not know, as one JSON object, verbatim"),
    ]

    package static func sqlType(_ kind: FieldKind) -> String {
        switch kind {
        case .integer, .bool: "INTEGER"
        case .string, .stringArray, .directionArray, .objectArray, .tcpFlags: "TEXT"
        }
    }

    /// How a shard stores its three time fields.
    ///
    /// Within a flow, `TimeFlowStartMs` and `TimeReceived` sit milliseconds or seconds
    /// from `TimeFlowEndMs`, but as absolute epoch values they are six-byte integers that
    /// differ in every row: row-wise compression cannot see they are redundant. Sealed
    /// shards therefore store them relative to `TimeFlowEndMs` (4-5% fewer bytes per flow
    /// after zstd); the `flows` view and every reader give back the original values.
    package enum TimeEncoding: String, Sendable {
        /// Values as received (active shards, and sealed shards whose times do not fit
        /// the relative form).
        case plain
        /// `TimeFlowStartMs` holds `TimeFlowEndMs - TimeFlowStartMs` and `TimeReceived`
        /// holds `TimeReceived - TimeFlowEndMs / 1000` wherever `TimeFlowEndMs` is not
        /// NULL. Only used when every time lies in [0, 2^53], so no arithmetic overflows.
        case endRelative = "end-relative"

        /// The `meta` key that records a shard's encoding (absent: plain).
        package static let metaKey = "time_encoding"

        static let startColumn = FlowSchema.id(of: "TimeFlowStartMs").index
        static let receivedColumn = FlowSchema.id(of: "TimeReceived").index
        static let endColumn = FlowSchema.requiredField.index

        /// Whether column `column` is stored relative to `TimeFlowEndMs` in this encoding.
        @inline(__always) func isRelative(_ column: Int) -> Bool {
            self == .endRelative && (column == Self.startColumn || column == Self.receivedColumn)
        }

        /// The original value of `stored`, read from relative column `column` of a row
        /// whose stored `TimeFlowEndMs` is `end`: `storedExpression`'s arithmetic, the one
        /// Swift copy every reader uses. `overflow` is true where 64-bit arithmetic
        /// overflows; SQLite turns that into a REAL. A seal stores times relative only
        /// when they all lie in [0, 2^53], so only a hand-edited shard gets there; the
        /// value is then wrapped (a reader never traps on a file), and the seal's checksum
        /// is computed through SQLite instead.
        @inline(__always) static func decode(_ stored: Int64, column: Int, end: Int64) -> (value: Int64, overflow: Bool) {
            decode(stored, isStart: column == startColumn, end: end)
        }

        /// As `decode(_:column:end:)`, for a caller that knows which of the two columns
        /// `stored` is from (`TimeFlowStartMs` when `isStart`, else `TimeReceived`).
        @inline(__always) static func decode(_ stored: Int64, isStart: Bool, end: Int64) -> (value: Int64, overflow: Bool) {
            let (value, overflow) = isStart ? end.subtractingReportingOverflow(stored) : stored.addingReportingOverflow(end / 1000)
            return (value, overflow)
        }

        /// The stored form of `value`, a row's `TimeFlowStartMs` (when `isStart`) or
        /// `TimeReceived`, in a row whose `TimeFlowEndMs` is `end`: the inverse of
        /// `decode`, the Swift copy of `storedExpression(encode: true)` for the seal's and
        /// the merge's record copies. Only called where every time lies in
        /// [0, `relativeTimeLimit`], so it cannot overflow.
        @inline(__always) static func encode(_ value: Int64, isStart: Bool, end: Int64) -> Int64 {
            isStart ? end - value : value - end / 1000
        }

        /// Decodes one row's relative times in place, in a row whose integer columns lie
        /// side by side (`values[c]`, `present[c]`: as `TableCursor.decodeRecord` writes
        /// them). Made once per batch or pass: it holds the column numbers, which as
        /// static `let`s cost a `swift_once` check at every read.
        struct RowDecoder {
            private let relative: Bool
            private let end = endColumn, start = startColumn, received = receivedColumn

            init(_ encoding: TimeEncoding) { relative = encoding == .endRelative }

            /// Replaces the row's relative times by their values (nothing in the plain
            /// encoding, or without an end time); true where the arithmetic overflowed
            /// (see `decode(_:column:end:)`), the wrapped value written all the same.
            @inline(__always) func decode(values: UnsafeMutablePointer<Int64>, present: UnsafeMutablePointer<Bool>) -> Bool {
                guard relative, present[end] else { return false }
                let endValue = values[end]
                @inline(__always) func decodeColumn(_ column: Int, isStart: Bool) -> Bool {
                    guard present[column] else { return false }
                    let decoded = TimeEncoding.decode(values[column], isStart: isStart, end: endValue)
                    values[column] = decoded.value
                    return decoded.overflow
                }
                let startOverflowed = decodeColumn(start, isStart: true)
                return decodeColumn(received, isStart: false) || startOverflowed
            }
        }
    }

    /// The largest time value the end-relative encoding accepts.
    static let relativeTimeLimit: Int64 = 1 << 53

    /// SQL that yields each field's original value from a `flow_rows` row (qualified by
    /// `table`), for views, checksums and copies. For the end-relative start time the
    /// same expression also encodes: `end - (end - start) = start`.
    package static func storedExpression(_ field: FieldSpec, table: String, encoding: TimeEncoding, encode: Bool = false) -> String {
        let column = "\(table)\"\(field.name)\""
        guard encoding == .endRelative else { return column }
        let end = "\(table)\"\(FlowSchema.requiredField.spec.name)\""
        switch field.name {
        case "TimeFlowStartMs":
            return "CASE WHEN \(end) IS NULL THEN \(column) ELSE \(end) - \(column) END"
        case "TimeReceived":
            return "CASE WHEN \(end) IS NULL THEN \(column) ELSE \(column) \(encode ? "-" : "+") \(end) / 1000 END"
        default:
            return column
        }
    }

    /// Every `flow_rows` column as its original value, in `allColumns` order.
    static func decodedColumns(table: String = "", encoding: TimeEncoding) -> [String] {
        FlowSchema.fields.map { storedExpression($0, table: table, encoding: encoding) }
            + bookkeepingColumns.map { "\(table)\"\($0.name)\"" }
    }

    /// The schema of a new active shard (written to `migrations/shard/`).
    package static let createSQL = createSQL(timeEncoding: .plain)

    /// The whole schema of a new shard; only the `flows` view depends on the encoding.
    static func createSQL(timeEncoding: TimeEncoding) -> String {
        var lines = [
            "-- flowrec shard schema, version \(version).",
            "-- Generated from FlowSchema.fields (Sources/FlowModel/FlowSchema.swift) by",
            "-- `flowrec schema --write-migrations`; edit the field list, not this file.",
            "",
            "-- Every distinct string value of the shard (names, addresses, labels, and the JSON",
            "-- text of array fields), stored once; rows refer to them by id.",
            "CREATE TABLE strings (",
            "    id INTEGER PRIMARY KEY,",
            "    value TEXT NOT NULL",
            ");",
            "",
            "-- One row per flow, integers only: integer fields hold their value, string and",
            "-- array fields the id of their text in `strings`. Absent fields are NULL.",
            "CREATE TABLE flow_rows (",
        ]
        var columns = FlowSchema.fields.map { spec in
            "    \"\(spec.name)\" INTEGER\(spec.kind.isTextStored ? "  -- strings.id" : "")"
        }
        columns += bookkeepingColumns.map { "    \"\($0.name)\" TEXT  -- \($0.comment)" }
        lines.append(commaSeparated(columns))
        lines.append(");")
        lines += [
            "",
            "-- The flows with NetObserv's own field names and values, for sqlite3, DuckDB, pandas.",
            "CREATE VIEW flows AS SELECT",
        ]
        lines.append(viewColumnExpressions(timeEncoding: timeEncoding).joined(separator: ",\n"))
        lines.append("FROM flow_rows AS r;")
        lines += [
            "",
            "-- Per source partition: the positions this shard absorbed, and (when this shard",
            "-- took a batch's final commit) how far the store had processed: every position",
            "-- up to high_water is stored somewhere, so a restart resumes after the largest.",
            "CREATE TABLE positions (",
            "    source TEXT NOT NULL,",
            "    partition INTEGER NOT NULL,",
            "    first_position INTEGER,          -- lowest position stored here (NULL: none yet)",
            "    last_position INTEGER,           -- highest position stored here",
            "    high_water INTEGER,              -- every position up to this one is stored in some shard",
            "    PRIMARY KEY (source, partition)",
            ") WITHOUT ROWID;",
            "",
            "-- Self-description: schema_version, window_start_ms, window_end_ms, part, created_ms;",
            "-- row_count, min_time_ms, max_time_ms (kept current by every batch); after sealing",
            "-- also bytes_total, packets_total, content_checksum, sealed_ms, time_encoding.",
            "CREATE TABLE meta (",
            "    key TEXT PRIMARY KEY,",
            "    value ANY",
            ") WITHOUT ROWID;",
            "",
        ]
        return lines.joined(separator: "\n")
    }

    /// The `flows` view's columns over `flow_rows AS r`: strings looked up, times decoded.
    package static func viewColumnExpressions(timeEncoding: TimeEncoding) -> [String] {
        switch timeEncoding {
        case .plain: plainViewExpressions
        case .endRelative: endRelativeViewExpressions
        }
    }

    /// Built once per encoding: every statement over a shard names them, and building
    /// 116 of them per shard opened showed in needle queries' profiles.
    private static let plainViewExpressions = makeViewColumnExpressions(timeEncoding: .plain)
    private static let endRelativeViewExpressions = makeViewColumnExpressions(timeEncoding: .endRelative)

    private static func makeViewColumnExpressions(timeEncoding: TimeEncoding) -> [String] {
        FlowSchema.fields.map { spec in
            spec.kind.isTextStored
                ? "    (SELECT value FROM strings WHERE id = r.\"\(spec.name)\") AS \"\(spec.name)\""
                : "    \(storedExpression(spec, table: "r.", encoding: timeEncoding)) AS \"\(spec.name)\""
        } + bookkeepingColumns.map { "    r.\"\($0.name)\" AS \"\($0.name)\"" }
    }

    /// The INSERT for one flow: every field column, then the bookkeeping columns.
    static let insertFlowSQL: String = {
        let params = (1...allColumns.count).map { "?\($0)" }
        return "INSERT INTO flow_rows (\(allColumns.joined(separator: ", "))) VALUES (\(params.joined(separator: ", ")))"
    }()

    /// The `flows` view's field columns (NetObserv's names), in order.
    package static let viewFieldNames: [String] = FlowSchema.fields.map(\.name)

    static let insertStringSQL = "INSERT INTO strings (id, value) VALUES (?1, ?2)"

    /// Column names of `flow_rows`, in order.
    static let allColumnNames: [String] = FlowSchema.fields.map(\.name) + bookkeepingColumns.map(\.name)

    /// Quoted column names of `flow_rows`, in order.
    static let allColumns: [String] = FlowSchema.fields.map { "\"\($0.name)\"" }
        + bookkeepingColumns.map { "\"\($0.name)\"" }

    /// Joins column definitions with commas placed before any trailing `--` comment.
    private static func commaSeparated(_ columns: [String]) -> String {
        columns.enumerated().map { i, column in
            guard i < columns.count - 1 else { return column }
            if let comment = column.range(of: "  --") {
                return column[..<comment.lowerBound] + "," + column[comment.lowerBound...]
            }
            return column + ","
        }.joined(separator: "\n")
    }

    /// Parameter (1-based) of the bookkeeping columns in `insertFlowSQL`.
    static var nullsParameter: Int32 { Int32(FlowSchema.count + 1) }
    static var quotedParameter: Int32 { Int32(FlowSchema.count + 2) }
    static var extrasParameter: Int32 { Int32(FlowSchema.count + 3) }
    /// Column (0-based) of `_extras` in `allColumns`.
    static var extrasColumn: Int { FlowSchema.count + 2 }
}
