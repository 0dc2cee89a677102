import CSQLite
import FlowModel
import StorageKit

/// Builds a sealed shard's granules and skip summaries as the sealer copies its rows in
/// the seal order: SQLite hands each row's time and indexed columns to a SQL function
/// (in the copy's WHERE term, always true), so the index costs no second pass over the
/// rows. The n-th call is the n-th row of the copy, that is row id n of the sealed shard.
final class ShardIndexBuilder {
    static let functionName = "flowrec_index_row"

    private let ranks: StringRanks
    private let granuleRows: Int64
    /// Keeps the function's user-data pointer valid as long as the connection.
    private let database: SQLiteDatabase
    private let isText: [Bool] = SkipIndex.fields.map { $0.kind != .integer }

    // The state a row updates is exempt from dynamic exclusivity checks: they were a
    // sixth of the seal's copy by records (`perf`), and a builder is fed by one thread,
    // row after row, never re-entered.
    @exclusivity(unchecked) private(set) var granules: [Granule] = []
    @exclusivity(unchecked) private var rows: Int64 = 0
    @exclusivity(unchecked) private var granuleStart: Int64 = 1
    @exclusivity(unchecked) private var minTime = Int64.max, maxTime = Int64.min
    /// Per indexed field: the smallest and largest rank (text) or value (integer) of the
    /// granule so far; low > high when it has none.
    @exclusivity(unchecked) private var lows: [Int64]
    @exclusivity(unchecked) private var highs: [Int64]
    /// Per text field: the string ids the shard holds, as a bit set; per integer field the values.
    @exclusivity(unchecked) private var textIDs: [[UInt64]]
    @exclusivity(unchecked) private var integers: [Set<Int64>]
    /// Per integer field, the value last put in `integers` (neighbours mostly repeat it).
    @exclusivity(unchecked) private var lastInteger: [Int64?]
    /// Per field after the sort fields: the stored values (string ids or integers) of the
    /// granule so far, for its Bloom filter; and the last one seen (rows in the seal order
    /// repeat their neighbours' values, so most rows add nothing).
    @exclusivity(unchecked) private var granuleValues: [Set<Int64>]
    @exclusivity(unchecked) private var lastValue: [Int64?]
    private let bloomFrom = SkipIndex.sortFields.count
    /// The fields any row names in `_quoted` and in `_nulls` (`SkipIndex.BookkeepingFields`).
    @exclusivity(unchecked) private var quoted = FieldNameUnion()
    @exclusivity(unchecked) private var nulls = FieldNameUnion()
    /// The shard's per-second traffic per group, from the same rows.
    let series = TrafficSeriesBuilder()

    /// Registers the function on `db`; `ranks` are the strings of the rows about to be copied.
    init(ranks: StringRanks, registeredOn db: SQLiteDatabase, granuleRows: Int64 = SkipIndex.granuleRows) {
        self.ranks = ranks
        self.granuleRows = granuleRows
        database = db
        let count = SkipIndex.fields.count
        lows = [Int64](repeating: .max, count: count)
        highs = [Int64](repeating: .min, count: count)
        let words = (ranks.values.count + 63) / 64
        textIDs = SkipIndex.fields.map { $0.kind == .integer ? [] : [UInt64](repeating: 0, count: words) }
        integers = [Set<Int64>](repeating: [], count: count)
        granuleValues = [Set<Int64>](repeating: [], count: count)
        lastValue = [Int64?](repeating: nil, count: count)
        lastInteger = [Int64?](repeating: nil, count: count)
        // Not SQLITE_DETERMINISTIC: SQLite must call it for every row.
        sqlite3_create_function_v2(db.handle, Self.functionName, Self.argumentCount, SQLITE_UTF8,
                                   Unmanaged.passUnretained(self).toOpaque(), Self.call, nil, nil, nil)
    }

    deinit { sqlite3_create_function_v2(database.handle, Self.functionName, Self.argumentCount, SQLITE_UTF8, nil, nil, nil, nil, nil) }

    /// The function's arguments over `table` (the copy's source rows): the end time, each
    /// indexed field's stored value, `_quoted` and `_nulls`, then what the traffic series
    /// groups by and sums (`TrafficSeries`).
    static func arguments(table: String) -> String {
        (["\(table)\"TimeFlowEndMs\""] + SkipIndex.fields.map { "\(table)\"\($0.name)\"" }
            + ["\(table)\"_quoted\"", "\(table)\"_nulls\""]
            + TrafficSeries.fields.map { "\(table)\"\($0.name)\"" } + TrafficSeries.bookkeeping.map { "\(table)\"\($0)\"" }
            + TrafficSeries.values.map { "\(table)\"\($0.name)\"" }).joined(separator: ", ")
    }

    private static let seriesFrom = 3 + SkipIndex.fields.count
    private static let argumentCount = Int32(seriesFrom + TrafficSeries.fields.count + TrafficSeries.bookkeeping.count
                                             + TrafficSeries.values.count)

    private static let call: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, count, values in
        if let values, let user = sqlite3_user_data(context) {
            Unmanaged<ShardIndexBuilder>.fromOpaque(user).takeUnretainedValue().add(values)
        }
        sqlite3_result_int(context, 1)
    }

    private func add(_ values: UnsafeMutablePointer<OpaquePointer?>) {
        let end = Self.integer(values[0])
        let bookkeeping = 1 + SkipIndex.fields.count
        quoted.add(Self.text(values[bookkeeping]))
        nulls.add(Self.text(values[bookkeeping + 1]))
        addRow(end: end) { Self.integer(values[$0 + 1]) }
        let texts = Self.seriesFrom + TrafficSeries.fields.count
        let sums = texts + TrafficSeries.bookkeeping.count
        series.add(end: end, stored: { Self.integer(values[Self.seriesFrom + $0]) }, text: { Self.text(values[texts + $0]) },
                   value: { Self.integer(values[sums + $0]) })
    }

    /// An integer argument, nil when NULL (or, never here, another type).
    private static func integer(_ value: OpaquePointer?) -> Int64? {
        sqlite3_value_type(value) == SQLITE_INTEGER ? sqlite3_value_int64(value) : nil
    }

    /// A text argument's bytes (valid until the function returns), nil when NULL.
    private static func text(_ value: OpaquePointer?) -> UnsafeRawBufferPointer? {
        guard sqlite3_value_type(value) == SQLITE_TEXT, let bytes = sqlite3_value_text(value) else { return nil }
        return UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_value_bytes(value)))
    }

    /// A row's `_quoted` and `_nulls` lists (for a copy that does not go through the SQL
    /// function: the merge).
    func addBookkeeping(quoted quotedList: String?, nulls nullList: String?) {
        quoted.add(quotedList)
        nulls.add(nullList)
    }

    /// As `addBookkeeping(quoted:nulls:)`, with the lists' bytes as a record holds them
    /// (the seal's copy by records).
    func addBookkeeping(quoted quotedList: UnsafeRawBufferPointer?, nulls nullList: UnsafeRawBufferPointer?) {
        quoted.add(quotedList)
        nulls.add(nullList)
    }

    /// The next row in the shard's order: its end time and, per field of
    /// `SkipIndex.fields`, the stored value (a string id for text fields), nil when NULL.
    func addRow(end: Int64?, stored value: (Int) -> Int64?) {
        rows += 1
        if let end {
            minTime = min(minTime, end)
            maxTime = max(maxTime, end)
        }
        for i in 0..<lows.count {
            guard let stored = value(i) else { continue }
            let key: Int64
            if isText[i] {
                let rank = ranks.rank(stored)
                guard rank > 0 else { continue }
                key = Int64(rank)
                textIDs[i][Int(stored) >> 6] |= 1 << UInt64(stored & 63)
            } else {
                key = stored
                if lastInteger[i] != stored {
                    lastInteger[i] = stored
                    integers[i].insert(stored)
                }
            }
            if key < lows[i] { lows[i] = key }
            if key > highs[i] { highs[i] = key }
            if i >= bloomFrom, lastValue[i] != stored {
                lastValue[i] = stored
                granuleValues[i].insert(stored)
            }
        }
        if rows - granuleStart + 1 == granuleRows { closeGranule() }
    }

    private func closeGranule() {
        guard rows >= granuleStart else { return }
        var bounds: [ClosedRange<IndexValue>?] = []
        for i in 0..<lows.count {
            if lows[i] > highs[i] {
                bounds.append(nil)
            } else if isText[i] {
                bounds.append(.text(ranks.value(ofRank: UInt32(lows[i])))...IndexValue.text(ranks.value(ofRank: UInt32(highs[i]))))
            } else {
                bounds.append(.integer(lows[i])...IndexValue.integer(highs[i]))
            }
        }
        var bloom = BloomFilter(expected: granuleValues.reduce(0) { $0 + $1.count })
        for i in bloomFrom..<lows.count {
            for stored in granuleValues[i] {
                if isText[i] {
                    if let text = ranks.value(ofID: stored) { bloom.insert(.text(text), field: i) }
                } else {
                    bloom.insert(.integer(stored), field: i)
                }
            }
            granuleValues[i].removeAll(keepingCapacity: true)
            lastValue[i] = nil
        }
        granules.append(Granule(firstRowID: granuleStart, lastRowID: rows, minTimeMs: minTime == .max ? nil : minTime,
                                maxTimeMs: maxTime == .min ? nil : maxTime, bounds: bounds, bloom: bloom))
        granuleStart = rows + 1
        minTime = .max
        maxTime = .min
        for i in 0..<lows.count {
            lows[i] = .max
            highs[i] = .min
        }
    }

    /// The skip summary of every indexed field over all rows seen.
    func summaries() -> [SkipSummary] {
        SkipIndex.fields.enumerated().map { i, field in
            var distinct: [IndexValue] = []
            if isText[i] {
                for (w, word) in textIDs[i].enumerated() where word != 0 {
                    for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 {
                        if let text = ranks.value(ofID: Int64(w * 64 + bit)) { distinct.append(.text(text)) }
                    }
                }
            } else {
                distinct = integers[i].map { .integer($0) }
            }
            return SkipSummary(field: field, distinct: distinct)
        }
    }

    /// Creates the skip-index tables in `db` (the compact copy) and fills them.
    func write(into db: SQLiteDatabase) throws(SQLiteError) -> [SkipSummary] {
        closeGranule()
        let summaries = summaries()
        try db.execute(SkipIndex.createSQL)
        try db.transaction { () throws(SQLiteError) in
            let insert = try db.prepare(Granule.insertSQL)
            for granule in granules {
                insert.reset()
                granule.bind(to: insert)
                try insert.step()
            }
            try Self.insert(summaries, into: db, table: "skip_summaries")
            try SkipIndex.BookkeepingFields(quoted: quoted.names, nulls: nulls.names).write(into: db)
            try series.write(into: db)
        }
        return summaries
    }

    static func insert(_ summaries: [SkipSummary], into db: SQLiteDatabase, table: String, shard: String? = nil) throws(SQLiteError) {
        let leading = shard == nil ? "" : "shard_id, "
        let offset: Int32 = shard == nil ? 1 : 2
        let insert = try db.prepare("INSERT OR REPLACE INTO \(table) (\(leading)\(SkipSummary.columns)) VALUES ("
                                    + (1...(Int(offset) + 5)).map { "?\($0)" }.joined(separator: ", ") + ")")
        for summary in summaries {
            insert.reset()
            if let shard { insert.bind(1, shard) }
            summary.bind(to: insert, from: offset)
            try insert.step()
        }
    }
}

/// The field names a shard's rows list in one bookkeeping column (comma-separated lists,
/// mostly NULL; rows in the seal order repeat their neighbours' lists, so only a list
/// that differs from the previous one is split).
private struct FieldNameUnion {
    private(set) var names = Set<String>()
    private var last: [UInt8] = []

    mutating func add(_ list: UnsafeRawBufferPointer?) {
        guard let list, !list.isEmpty, !last.elementsEqual(list) else { return }
        last = Array(list)
        for name in last.split(separator: UInt8(ascii: ",")) { names.insert(String(decoding: name, as: UTF8.self)) }
    }

    mutating func add(_ list: String?) {
        guard var list else { return }
        list.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }
}
