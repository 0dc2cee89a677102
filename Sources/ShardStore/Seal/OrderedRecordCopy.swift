import StorageKit
import FlowModel

/// The seal's ordered copy record by record: each active row's record is read from the
/// active shard's pages (`TableCursor`), its two relative times re-encoded in place
/// (`TableCursor.copyRecord`), and appended to the compact copy's `flow_rows` B-tree,
/// which `TableTreeWriter` lays down page after page. The skip index and the `meta`
/// totals are fed from the same records.
///
/// Why: copying through SQLite (`INSERT ... SELECT ... ORDER BY`) decoded all 116
/// columns of every row in the VDBE, evaluated them, encoded a new record and walked the
/// B-tree to place it: 60% of a seal (`bench/NOTES.md`). Here the rows' bytes move with a
/// few `memcpy`s. What is written is checked as before: the seal's `quick_check` walks
/// every page, and its checksum reads every row back through SQLite's own VFS.
///
/// The copy reads the active shard's sorted runs (`SealRun`) side by side, a cursor per
/// run, each front to back; a row that does not continue a run is found by a seek.
/// Anything it does not handle (`Unsupported`) is copied through SQLite instead, the
/// result being the same shard.
struct OrderedRecordCopy {
    /// Why this shard's rows are copied through SQLite instead.
    struct Unsupported: Error {
        let reason: String
    }

    /// What `meta` records of the copied rows: their count, the range of their end times
    /// and the sums of bytes and packets (nil where every row's value is NULL, as SQL's
    /// `min` and `sum` give).
    struct Totals {
        var rows: Int64 = 0
        var minTime: Int64?
        var maxTime: Int64?
        var bytes: Int64?
        var packets: Int64?
    }

    /// The most sorted runs the copy reads side by side: a cursor each, about 18 KiB
    /// with the active shard's 4 KiB pages. A shard written in more, shorter runs (rows
    /// in arrival order) is copied through SQLite, whose page cache serves it as well.
    static let maximumRuns = 1024

    private static let end = ShardSchema.TimeEncoding.endColumn
    private static let start = ShardSchema.TimeEncoding.startColumn
    private static let received = ShardSchema.TimeEncoding.receivedColumn
    private static let bytes = FlowSchema.id(of: "Bytes").index
    private static let packets = FlowSchema.id(of: "Packets").index

    /// Copies the rows of the table rooted at `sourceRoot` in `sourcePath` (an active
    /// shard, checkpointed, that nothing writes to) in `order` into `writer`, numbered
    /// from 1, times stored as `encoding` says, and hands each to `index`.
    static func copy(from sourcePath: String, sourceRoot: Int, order: SealOrder, into writer: TableTreeWriter,
                     encoding: ShardSchema.TimeEncoding, index: ShardIndexBuilder) throws -> Totals {
        guard order.runs <= maximumRuns else {
            throw Unsupported(reason: "the active shard holds \(order.runs) sorted runs (more than \(maximumRuns))")
        }
        let pages = try DatabasePages(path: sourcePath)
        let end = Self.end, start = Self.start, received = Self.received, bytes = Self.bytes, packets = Self.packets
        let indexed = SkipIndex.fields.map(\.index)
        let seriesFields = TrafficSeries.fields.map(\.index), seriesValues = TrafficSeries.values.map(\.index)
        let bookkeeping = Dictionary(uniqueKeysWithValues: ShardSchema.bookkeepingColumns.enumerated().map { ($1.name, FlowSchema.count + $0) })
        let quotedColumn = bookkeeping["_quoted"]!, nullsColumn = bookkeeping["_nulls"]!
        let seriesTexts = TrafficSeries.bookkeeping.map { bookkeeping[$0]! }
        // The two relative columns in column order, as `copyRecord` takes them.
        let relative = [start, received].sorted()
        let replacements = UnsafeMutableBufferPointer<TableCursor.Replacement>.allocate(capacity: relative.count)
        defer { replacements.deallocate() }
        var out = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { out.deallocate() }

        // Per run, the cursor that reads it (made at the run's first row) and the row id
        // after the one it last returned.
        var cursors = [TableCursor?](repeating: nil, count: order.runs)
        var following = [Int64](repeating: 0, count: order.runs)
        var totals = Totals()
        for sourceRowID in order.sourceRowIDs {
            let run = order.run(holding: sourceRowID)  // the first row is a run's first
            let cursor: TableCursor
            if let reading = cursors[run] {
                cursor = reading
            } else {
                cursor = TableCursor(pages: pages, rootPage: sourceRoot)
                cursors[run] = cursor
            }
            // Within a run rows come in row id order; a gap in the row ids costs a seek.
            if following[run] != sourceRowID { try cursor.seek(toRowID: sourceRowID) }
            guard try cursor.next(), cursor.rowID == sourceRowID else {
                throw ShardStoreError(.verificationFailed, "the active shard's pages have no row \(sourceRowID), which SQLite listed; the active shard is kept")
            }
            following[run] = sourceRowID + 1

            // An integer column as the index's SQL function is given it: nil unless an INTEGER.
            @inline(__always) func argument(_ c: Int) -> Int64? { cursor.isReal(c) ? nil : cursor.integerOrNull(c) }
            // A column whose value the copy computes with: NULL or an INTEGER, or the copy
            // goes through SQLite, which gives other types their SQL meaning.
            func integer(_ c: Int) throws -> Int64? {
                guard !cursor.isNull(c) else { return nil }
                guard !cursor.isReal(c), let value = cursor.integerOrNull(c) else {
                    throw Unsupported(reason: "row \(sourceRowID)'s \(FlowSchema.fields[c].name) is not an integer")
                }
                return value
            }
            @inline(__always) func text(_ c: Int) -> UnsafeRawBufferPointer? {
                cursor.isText(c) ? cursor.bytes(c).map(UnsafeRawBufferPointer.init) : nil
            }

            let endTime = try integer(end)
            index.addRow(end: endTime) { argument(indexed[$0]) }
            index.addBookkeeping(quoted: text(quotedColumn), nulls: text(nullsColumn))
            index.series.add(end: endTime, stored: { argument(seriesFields[$0]) }, text: { text(seriesTexts[$0]) },
                             value: { argument(seriesValues[$0]) })

            totals.rows += 1
            if let t = endTime {
                totals.minTime = min(totals.minTime ?? t, t)
                totals.maxTime = max(totals.maxTime ?? t, t)
            }
            totals.bytes = try add(integer(bytes), to: totals.bytes)
            totals.packets = try add(integer(packets), to: totals.packets)

            do {
                guard encoding == .endRelative, let endTime else {
                    try writer.append(rowID: totals.rows, record: cursor.record)
                    continue
                }
                for (i, column) in relative.enumerated() {
                    let value = try integer(column)
                    replacements[i] = .init(column: column, value: value.map {
                        ShardSchema.TimeEncoding.encode($0, isStart: column == start, end: endTime)
                    })
                }
                let needed = cursor.record.count + 8 * relative.count
                if out.count < needed {
                    out.deallocate()
                    out = .allocate(byteCount: needed * 2, alignment: 8)
                }
                guard let size = cursor.copyRecord(to: out.baseAddress!, replacing: UnsafeBufferPointer(replacements)) else {
                    throw Unsupported(reason: "row \(sourceRowID)'s record has a long text before its times")
                }
                try writer.append(rowID: totals.rows, record: UnsafeRawBufferPointer(rebasing: out[0..<size]))
            } catch let error as SQLiteError where error.kind == .tooBig {
                throw Unsupported(reason: error.message)
            }
        }
        try writer.finish()
        return totals
    }

    /// `sum` as SQL's: NULLs skipped, nil when every value is NULL; an overflow is left to
    /// SQLite to report.
    private static func add(_ value: Int64?, to sum: Int64?) throws -> Int64? {
        guard let value else { return sum }
        guard let sum else { return value }
        let (total, overflow) = sum.addingReportingOverflow(value)
        if overflow { throw Unsupported(reason: "a sum of bytes or packets overflows") }
        return total
    }
}
