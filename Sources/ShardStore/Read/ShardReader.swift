package import StorageKit
package import FlowModel
import CSQLite
import Foundation

/// Reads one shard, active or sealed, without writing to it. Sealed shards are read in
/// place through `SeekableZstdVFS`; a damaged one fails with an error naming the shard
/// and what is wrong with it.
package final class ShardReader {
    package let path: String
    package let db: SQLiteDatabase
    /// The shard's strings, loaded on first use: SQL over the `flows` view and the
    /// multi-shard table never need them in memory, and loading costs a full read of
    /// `strings` per shard opened.
    private var loadedDictionary: StringDictionary?
    private let codec = FlowRowCodec()
    package private(set) var timeEncoding = ShardSchema.TimeEncoding.plain
    /// `isInSealOrder()`, read once.
    private var sealOrdered: Bool?
    /// For `stringID(of:)`, read once: whether string ids follow the values' order, and
    /// the largest id (nil when the shard has no strings).
    private var stringsInValueOrder: (ordered: Bool, largest: Int64?)?
    /// Whether whole rows of a sealed shard are read from its pages (`TableCursor`)
    /// rather than through SQLite, where both can: true but in tests and benchmarks that
    /// compare the two.
    package var readsPagesDirectly = true
    /// `flow_rows`' root page when `rowCursor()` may read it in place, else 0; looked
    /// up once.
    private var rowTable: Int?
    /// The sealed file's pages for `rowCursor()`, opened once (a file descriptor and the
    /// seek table) and shared by the reader's cursors, which copy the pages they read.
    private var rowPages: DatabasePages?
    /// `readFlow(rowID:into:)`'s statement, prepared on first use.
    private var flowByRowID: SQLiteStatement?
    /// `hasColumnBlocks()`, read once, and `withColumnBlock`'s statement.
    private var columnBlocksPresent: Bool?
    private var columnBlockByGranule: SQLiteStatement?
    /// The sealed file this reader's connection was opened on, when the connection may
    /// serve the next query (`ReadConnectionPool`); nil otherwise.
    private let reusableOn: FileIdentity?

    /// Opens `path`: a `.sqlite.zst` sealed shard or a `.sqlite` active one.
    ///
    /// `reusable` (queries only): a sealed shard's connection comes from, and goes back
    /// to, `ReadConnectionPool`, so the next query need not open and parse it again.
    package init(path: String, reusable: Bool = false) throws {
        self.path = path
        let sealed = SeekableZstdVFS.handles(path)
        let identity = reusable && sealed ? FileIdentity(path: path) : nil
        if let identity, let kept = ReadConnectionPool.shared.take(path, identity: identity) {
            db = kept.db
            timeEncoding = kept.timeEncoding
            reusableOn = identity
            return
        }
        do {
            if sealed {
                SeekableZstdVFS.register()
                db = try SQLiteDatabase(path: SeekableZstdVFS.uri(for: path), mode: .readOnly, vfs: SeekableZstdVFS.name)
            } else {
                db = try SQLiteDatabase(path: path, mode: .readOnly)
            }
            timeEncoding = try Self.timeEncoding(of: db)
        } catch {
            throw Self.describe(error, path: path)
        }
        // Kept only if the path still names the file that was opened.
        reusableOn = identity != nil && FileIdentity(path: path) == identity ? identity : nil
    }

    deinit {
        guard let identity = reusableOn else { return }
        flowByRowID = nil
        columnBlockByGranule = nil
        // A statement still alive elsewhere would be finalized later on another thread:
        // such a connection is closed with its last statement instead of being kept.
        guard sqlite3_next_stmt(db.handle, nil) == nil else { return }
        // What a query installed (QueryGuard) does not carry over to the next one.
        sqlite3_progress_handler(db.handle, 0, nil, nil)
        sqlite3_set_authorizer(db.handle, nil, nil)
        sqlite3_limit(db.handle, SQLITE_LIMIT_LENGTH, Int32.max)
        _ = try? db.execute("PRAGMA shrink_memory")
        ReadConnectionPool.shared.give(path, db: db, timeEncoding: timeEncoding, identity: identity)
    }

    /// The shard's string table in memory (loaded once).
    func dictionary() throws(SQLiteError) -> StringDictionary {
        if let loadedDictionary { return loadedDictionary }
        var loaded = StringDictionary()
        try Self.loadDictionary(db, into: &loaded)
        loadedDictionary = loaded
        return loaded
    }

    static func loadDictionary(_ db: SQLiteDatabase, into dictionary: inout StringDictionary) throws(SQLiteError) {
        let strings = try db.prepare("SELECT id, value FROM strings ORDER BY id")
        while try strings.step() {
            let id = Int32(strings.integer(0))
            _ = strings.withText(1) { dictionary.restore(id: id, $0) }
        }
    }

    static func timeEncoding(of db: SQLiteDatabase) throws(SQLiteError) -> ShardSchema.TimeEncoding {
        let query = try db.prepare("SELECT value FROM meta WHERE key = ?1")
        query.bind(1, ShardSchema.TimeEncoding.metaKey)
        guard try query.step(), let value = query.text(0) else { return .plain }
        guard let encoding = ShardSchema.TimeEncoding(rawValue: value) else {
            throw SQLiteError(code: SQLITE_CORRUPT, message: "unknown time encoding '\(value)' in meta (written by a newer flowrec? upgrade to read this shard)",
                              sql: nil, path: db.path)
        }
        return encoding
    }

    /// Every flow, in the shard's row order.
    package func forEachFlow(_ body: (Flow) throws -> Void) throws {
        do {
            try Self.forEachFlow(db, dictionary: dictionary(), codec: codec, timeEncoding: timeEncoding, body)
        } catch let error as SQLiteError {
            throw describe(error)
        }
    }

    static func forEachFlow(_ db: SQLiteDatabase, dictionary: StringDictionary, codec: FlowRowCodec,
                            timeEncoding: ShardSchema.TimeEncoding, _ body: (Flow) throws -> Void) throws {
        let select = try db.prepare("SELECT \(FlowRowCodec.selectColumns) FROM flow_rows ORDER BY rowid")
        var flow = Flow()
        while try select.step() {
            codec.read(.statement(select), dictionary: dictionary, timeEncoding: timeEncoding, into: &flow)
            try body(flow)
        }
    }

    /// The first and last rowid of `flow_rows`, nil when the shard is empty. A sealed
    /// shard never changes, so rowid ranges name the same rows on every read: the
    /// forwarders cut their chunks by them.
    package func rowIDRange() throws -> ClosedRange<Int64>? {
        do {
            // One subquery each: SQLite finds a lone min() or max() at an end of the
            // B-tree, but scans the whole table for the two side by side (85 ms of a
            // 200,000-row sealed shard, decompressed for nothing, per forwarder plan).
            let q = try db.prepare("SELECT (SELECT min(rowid) FROM flow_rows), (SELECT max(rowid) FROM flow_rows)")
            guard try q.step(), !q.isNull(0) else { return nil }
            return q.integer(0)...q.integer(1)
        } catch { throw describe(error) }
    }

    /// The flows whose rowid is in `rowIDs`, sorted by `keys` (string fields by their
    /// text, as ClickHouse sorts them; absent values first), then by rowid, so the
    /// order is total and the same on every read.
    package func forEachFlow(rowIDs: ClosedRange<Int64>, orderedBy keys: [FieldID], _ body: (Flow) throws -> Void) throws {
        var flow = Flow()
        let dictionary = try describing { () throws(SQLiteError) in try self.dictionary() }
        try forEachOrderedRow(rowIDs: rowIDs, orderedBy: keys) { row in
            codec.read(row, dictionary: dictionary, timeEncoding: timeEncoding, into: &flow)
            try body(flow)
        }
    }

    /// As `forEachFlow(rowIDs:orderedBy:)`, without building a `Flow`: the rows are handed
    /// to `body` a batch at a time, column by column, their values read straight from the
    /// shard's records and string table (`ShardRowBatch`: for the ClickHouse forwarder's
    /// encoder, which copies every value once anyway). One batch is reused: it is valid
    /// only inside `body`.
    package func forEachBatch(rowIDs: ClosedRange<Int64>, orderedBy keys: [FieldID],
                              capacity: Int = ShardRowBatch.defaultCapacity, _ body: (ShardRowBatch) throws -> Void) throws {
        let batch = ShardRowBatch(capacity: capacity, timeEncoding: timeEncoding)
        let dictionary = try describing { () throws(SQLiteError) in try self.dictionary() }
        try dictionary.withStorage { bytes, starts in
            batch.strings = bytes
            batch.starts = starts
            try forEachOrderedRow(rowIDs: rowIDs, orderedBy: keys, decodingRecords: false) { row in
                try batch.append(row)
                if batch.isFull {
                    try body(batch)
                    batch.removeAll()
                }
            }
            if batch.count > 0 { try body(batch) }
        }
    }

    /// `decodingRecords` false: a row read from the pages comes with its record not yet
    /// decoded, for a reader that decodes it whole (`ShardRowBatch.append`).
    private func forEachOrderedRow(rowIDs: ClosedRange<Int64>, orderedBy keys: [FieldID], decodingRecords: Bool = true,
                                   _ body: (StoredRow) throws -> Void) throws {
        let columns = Self.allColumnsOfF
        // A shard sealed (or merged) in the seal order holds its rows sorted by exactly
        // these keys, strings by their bytes, NULL first, ties in row id order: reading
        // them in row id order is the same sequence without the sort (the forwarder's
        // chunks, whose table has the seal order as its ORDER BY).
        if keys == Self.sealOrderKeys, try isInSealOrder() {
            do {
                if readsPagesDirectly, let cursor = try rowCursor() {
                    cursor.decodesHeaders = decodingRecords
                    try cursor.seek(toRowID: rowIDs.lowerBound)
                    while try cursor.next(), cursor.rowID <= rowIDs.upperBound { try body(.record(cursor)) }
                    return
                }
                let select = try db.prepare("SELECT \(columns) FROM flow_rows f WHERE f.rowid BETWEEN ?1 AND ?2 ORDER BY f.rowid")
                select.bind(1, rowIDs.lowerBound)
                select.bind(2, rowIDs.upperBound)
                while try select.step() { try body(.statement(select)) }
                return
            } catch let error as SQLiteError {
                throw describe(error)
            }
        }
        var joins = ""
        var order: [String] = []
        for (i, key) in keys.enumerated() {
            let column = "f.\"\(key.name)\""
            if key.kind.isTextStored {
                joins += " LEFT JOIN strings k\(i) ON k\(i).id = \(column)"
                order.append("k\(i).value")
            } else {
                order.append(column)
            }
        }
        order.append("f.rowid")
        // Sort the rowids alone into a temporary table, then read whole rows in that
        // order: sorting 110-column rows costs twice as much as reading them.
        do {
            try db.execute("""
                PRAGMA temp_store = MEMORY;
                CREATE TEMP TABLE IF NOT EXISTS flowrec_chunk_order (n INTEGER PRIMARY KEY, r INTEGER NOT NULL);
                DELETE FROM temp.flowrec_chunk_order;
                """)
            let sort = try db.prepare("""
                INSERT INTO temp.flowrec_chunk_order (r) SELECT f.rowid FROM flow_rows f\(joins)
                WHERE f.rowid BETWEEN ?1 AND ?2 ORDER BY \(order.joined(separator: ", "))
                """)
            sort.bind(1, rowIDs.lowerBound)
            sort.bind(2, rowIDs.upperBound)
            _ = try sort.step()
            let select = try db.prepare(
                "SELECT \(columns) FROM temp.flowrec_chunk_order o CROSS JOIN flow_rows f ON f.rowid = o.r ORDER BY o.n")
            while try select.step() { try body(.statement(select)) }
        } catch let error as SQLiteError {
            throw describe(error)
        }
    }

    /// A cursor over `flow_rows` read from the shard's pages without SQLite, for a sealed
    /// shard (immutable, so its pages are what SQLite would read) whose table has exactly
    /// the columns this flowrec writes, in order; nil otherwise, and SQLite reads the rows.
    private func rowCursor() throws(SQLiteError) -> TableCursor? {
        guard let rootPage = try rowTableRoot() else { return nil }
        let pages: DatabasePages
        if let open = rowPages {
            pages = open
        } else {
            pages = try DatabasePages(path: path)
            rowPages = pages
        }
        return TableCursor(pages: pages, rootPage: rootPage)
    }

    /// `flow_rows`' root page when `rowCursor()` can read the table in place, else nil.
    private func rowTableRoot() throws(SQLiteError) -> Int? {
        guard SeekableZstdVFS.handles(path) else { return nil }
        if rowTable == nil {
            let root = try db.prepare("SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = 'flow_rows'")
            let page = try root.step() ? Int(root.integer(0)) : 0
            var names: [String] = []
            let info = try db.prepare("SELECT name FROM pragma_table_info('flow_rows')")
            while try info.step() { names.append(info.text(0) ?? "") }
            rowTable = names == ShardSchema.allColumnNames && page > 0 ? page : 0
        }
        guard let rootPage = rowTable, rootPage > 0 else { return nil }
        return rootPage
    }

    /// Whether whole rows would be read from the pages (tests check the fast path is
    /// taken, not only that both paths agree).
    func readsRowsFromPages() throws(SQLiteError) -> Bool {
        guard readsPagesDirectly else { return false }
        return try rowTableRoot() != nil
    }

    /// The seal order's keys: `SkipIndex.sortFields`, then the end time.
    static let sealOrderKeys = SkipIndex.sortFields + [FlowSchema.requiredField]

    /// Whether the shard's rows are in the seal order (its `meta` says so; active shards
    /// and shards sealed before the order existed do not).
    private func isInSealOrder() throws -> Bool {
        if let sealOrdered { return sealOrdered }
        let ordered = try meta(SkipIndex.sealOrderMetaKey) == SkipIndex.sealOrder
        sealOrdered = ordered
        return ordered
    }

    /// Every stored column of `flow_rows AS r`, as `forEachFlow(in:where:…)` selects them.
    private static let allColumnsOfR = ShardSchema.allColumns.map { "r.\($0)" }.joined(separator: ", ")
    /// The same of `flow_rows f`, as `forEachFlow(rowIDs:orderedBy:)` and `forEachBatch` select them.
    private static let allColumnsOfF = ShardSchema.allColumns.map { "f.\($0)" }.joined(separator: ", ")

    /// The flows of `flow_rows AS r` among `rows` that satisfy `condition` (SQL over `r`,
    /// parameters set by `bind`), in `order` (SQL over `r`; nil: stored order), at most
    /// `limit`, with their rowids; `body` returns false to stop. The LogQL engine reads
    /// the rows its plan lets through with it.
    package func forEachFlow(in rows: RowSelection = .all, where condition: String, orderBy order: String?, limit: Int?,
                             bind: (SQLiteStatement) -> Void = { _ in }, _ body: (Int64, Flow) throws -> Bool) throws {
        var sql = "SELECT \(Self.allColumnsOfR), r.rowid FROM \(rows.source(where: [condition]))"
        if let order { sql += " ORDER BY \(order)" }
        if let limit { sql += " LIMIT \(max(0, limit))" }
        var flow = Flow()
        let rowIDColumn = Int32(ShardSchema.allColumns.count)
        do {
            let dictionary = try dictionary()
            let statement = try db.prepare(sql)
            bind(statement)
            while try statement.step() {
                codec.read(.statement(statement), dictionary: dictionary, timeEncoding: timeEncoding, into: &flow)
                if try !body(statement.integer(rowIDColumn), flow) { return }
            }
        } catch let error as SQLiteError {
            throw describe(error)
        }
    }

    /// The text of a string id of this shard (`strings.value`), nil for an unknown id:
    /// grouped SQL returns ids, resolved here once per group rather than once per row.
    package func string(id: Int64) throws -> String? {
        let dictionary = try describing { () throws(SQLiteError) in try self.dictionary() }
        guard id >= 1, id <= Int64(dictionary.count) else { return nil }
        return dictionary.withBytes(of: Int32(id)) { String(decoding: $0, as: UTF8.self) }
    }

    /// The highest rowid of `flow_rows` (0 when empty): where following starts.
    package func lastRowID() throws -> Int64 {
        do { return try db.scalarInteger("SELECT max(rowid) FROM flow_rows") ?? 0 } catch { throw describe(error) }
    }

    /// Rows with a rowid in (after, through], as the `flows` view shows them, optionally
    /// filtered, by end time (ties in the order they were stored): `flowrec tail` reads an
    /// active shard's new rows with it. With `newestFirstLimit`, only the last rows stored
    /// of that range. Each write batch is stored in the seal order (`SealRun`), not as
    /// its flows arrived, so the time order is what makes a followed tail read
    /// chronologically; the range is what was stored since the previous poll, a small
    /// sort. `fields` are `flows` column names (quoted by the caller's list).
    package func forEachStoredRow(after: Int64, through: Int64, fields: [String], whereSQL: String?,
                                 newestFirstLimit: Int? = nil, _ body: (SQLiteStatement) throws -> Void) throws {
        let selected = Self.quoted(fields)
        let rows = viewRows(within: "r.rowid > ?1 AND r.rowid <= ?2", whereSQL: whereSQL)
        let byTime = "ORDER BY \"TimeFlowEndMs\", flowrec_rowid"
        let sql: String
        if let limit = newestFirstLimit {
            sql = "SELECT \(selected) FROM (SELECT * FROM \(rows) ORDER BY flowrec_rowid DESC LIMIT \(limit)) \(byTime)"
        } else {
            sql = "SELECT \(selected) FROM \(rows) \(byTime)"
        }
        let statement = try db.prepare(sql)
        statement.bind(1, after)
        statement.bind(2, through)
        while try statement.step() { try body(statement) }
    }

    /// The `limit` newest rows matching `whereSQL` by end time (ties by row id), handed
    /// over oldest first: `flowrec tail -n` in a sealed shard, whose rows are stored in
    /// the seal order rather than as they arrived.
    package func forEachNewestRow(fields: [String], whereSQL: String?, limit: Int,
                                  _ body: (SQLiteStatement) throws -> Void) throws {
        let statement = try db.prepare("""
            SELECT \(Self.quoted(fields)) FROM (SELECT * FROM \(viewRows(within: nil, whereSQL: whereSQL))
              ORDER BY "TimeFlowEndMs" DESC, flowrec_rowid DESC LIMIT \(max(0, limit)))
            ORDER BY "TimeFlowEndMs", flowrec_rowid
            """)
        while try statement.step() { try body(statement) }
    }

    /// The `flows` view's rows, with their row id as `flowrec_rowid`, among the stored rows
    /// `rowCondition` (SQL over `r`; nil: all) keeps, that satisfy the user's `whereSQL`
    /// (over the view's columns): what `forEachStoredRow` and `forEachNewestRow` order
    /// and limit.
    private func viewRows(within rowCondition: String?, whereSQL: String?) -> String {
        let columns = ShardSchema.viewColumnExpressions(timeEncoding: timeEncoding).joined(separator: ",\n")
        let rows = "(SELECT r.rowid AS flowrec_rowid,\n\(columns)\nFROM flow_rows AS r" + (rowCondition.map { " WHERE \($0)" } ?? "") + ")"
        guard let whereSQL, !whereSQL.trimmingCharacters(in: .whitespaces).isEmpty else { return rows }
        return "(SELECT * FROM \(rows) WHERE (\(whereSQL)))"
    }

    private static func quoted(_ fields: [String]) -> String { fields.map { "\"\($0)\"" }.joined(separator: ", ") }

    /// Runs a statement and hands each result row to `row`. The connection is read-only:
    /// a statement that would change the shard fails with SQLite's error.
    package func query(_ sql: String, bind: (SQLiteStatement) -> Void = { _ in },
                      _ row: (SQLiteStatement) throws -> Void) throws {
        let statement = try db.prepare(sql)
        bind(statement)
        while try statement.step() { try row(statement) }
    }

    /// Runs `PRAGMA quick_check`; nil when the shard is sound, else SQLite's report.
    package func quickCheck() throws -> String? {
        do {
            let check = try db.prepare("PRAGMA quick_check")
            guard try check.step() else { return "quick_check returned nothing" }
            let result = check.text(0) ?? ""
            return result == "ok" ? nil : result
        } catch {
            throw describe(error)
        }
    }

    /// Row count and content checksum, as the sealer, the merge, `compact` and `fsck`
    /// verify them (and the seal benchmark times them).
    package func contentChecksum() throws -> (rows: Int64, checksum: UInt64) {
        try contentChecksum(aggregatingInto: nil)
    }

    /// The same; `rollups`, when given, aggregates the same rows as they pass (the
    /// sealer's verification pass).
    func contentChecksum(aggregatingInto rollups: RollupAccumulator?) throws -> (rows: Int64, checksum: UInt64) {
        do {
            if readsPagesDirectly, let cursor = try rowCursor(),
               let result = try ShardChecksum.compute(cursor, strings: db, timeEncoding: timeEncoding, aggregatingInto: rollups) {
                return result
            }
            return try ShardChecksum.compute(db, timeEncoding: timeEncoding, aggregatingInto: rollups)
        } catch {
            throw describe(error)
        }
    }

    /// The shard's own positions table.
    func positions() throws -> [SourcePartition: PositionRange] {
        var result: [SourcePartition: PositionRange] = [:]
        try query("SELECT source, partition, first_position, last_position, high_water FROM positions") { r in
            result[SourcePartition(source: r.text(0) ?? "", partition: Int32(r.integer(1)))] = PositionRange(
                first: r.isNull(2) ? nil : r.integer(2), last: r.isNull(3) ? nil : r.integer(3),
                highWater: r.isNull(4) ? nil : r.integer(4))
        }
        return result
    }

    /// The flow stored at `rowID` (exactly as it came: unknown fields, JSON nulls and
    /// numbers sent as strings included); false when there is no such row.
    package func readFlow(rowID: Int64, into flow: inout Flow) throws -> Bool {
        do {
            if flowByRowID == nil { flowByRowID = try db.prepare("SELECT \(FlowRowCodec.selectColumns) FROM flow_rows WHERE rowid = ?1") }
            guard let statement = flowByRowID else { return false }
            statement.reset()
            statement.bind(1, rowID)
            guard try statement.step() else { return false }
            codec.read(.statement(statement), dictionary: try dictionary(), timeEncoding: timeEncoding, into: &flow)
            return true
        } catch {
            throw describe(error)
        }
    }

    /// The granules of a sealed shard's skip index, in row order; nil for a shard without
    /// one (active, or sealed by a flowrec before the skip index).
    /// A sealed shard's granules, or those holding rows in (above, atMost] (a part of the
    /// shard read by one worker, which need not parse the others' zone maps); nil for a
    /// shard without a skip index.
    ///
    /// With `filter`, each granule holds only what the filter tests (`Granule.selectSQL`):
    /// for `filter.candidateRanges`, not for showing the zone maps.
    package func granules(within rowids: (above: Int64?, atMost: Int64?) = (nil, nil), for filter: SkipFilter? = nil) throws -> [Granule]? {
        guard try hasTable("granules") else { return nil }
        // Seeks, not a scan: granules are ordered by `first_rowid` (the table's key), and
        // the first one a part needs is the one holding row `above + 1`.
        let bounds = (rowids.above.map {
            ["first_rowid >= (SELECT coalesce(max(first_rowid), 0) FROM granules WHERE first_rowid <= \($0 + 1))", "last_rowid > \($0)"]
        } ?? []) + (rowids.atMost.map { ["first_rowid <= \($0)"] } ?? [])
        return try describing { () throws(SQLiteError) in
            let rows = try db.prepare(Granule.selectSQL(where: bounds.isEmpty ? nil : bounds.joined(separator: " AND "), for: filter))
            var granules: [Granule] = []
            while try rows.step() { granules.append(Granule.read(rows)) }
            return granules
        }
    }

    /// A sealed shard's skip summaries; nil for a shard without a skip index.
    package func skipSummaries() throws -> [SkipSummary]? {
        guard try hasTable("skip_summaries") else { return nil }
        return try describing { () throws(SQLiteError) in
            let rows = try db.prepare("SELECT \(SkipSummary.columns) FROM skip_summaries")
            var summaries: [SkipSummary] = []
            while try rows.step() {
                if let summary = SkipSummary.read(rows, from: 0) { summaries.append(summary) }
            }
            return summaries
        }
    }

    /// Skip summaries computed from the rows (one `DISTINCT` pass per indexed field), for
    /// a shard sealed without them.
    package func computeSkipSummaries() throws -> [SkipSummary] {
        try describing { () throws(SQLiteError) in
            try SkipIndex.fields.map { field throws(SQLiteError) in
                let rows = try db.prepare("SELECT DISTINCT \"\(field.name)\" FROM flows WHERE \"\(field.name)\" IS NOT NULL")
                var values: [IndexValue] = []
                while try rows.step() {
                    if let value = SkipSummary.value(rows, 0), value.fits(field) { values.append(value) }
                }
                return SkipSummary(field: field, distinct: values)
            }
        }
    }

    /// Whether the shard holds column blocks of exactly `ColumnBlocks.fields` (merged
    /// shards since they have them); read once per reader.
    package func hasColumnBlocks() throws -> Bool {
        if let known = columnBlocksPresent { return known }
        let present = try meta(ColumnBlocks.metaKey) == ColumnBlocks.metaValue
        columnBlocksPresent = present
        return present
    }

    /// Calls `body` with the block of `field` (one of `ColumnBlocks.fields`) for the
    /// granule beginning at row `firstRowID`; false when the shard has no such block.
    /// The bytes are valid only inside `body`.
    func withColumnBlock(_ field: FieldID, firstRowID: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        let found = try describing { () throws(SQLiteError) -> SQLiteStatement? in
            let select: SQLiteStatement
            if let prepared = columnBlockByGranule {
                select = prepared
            } else {
                select = try db.prepare("SELECT data FROM column_blocks WHERE field = ?1 AND first_rowid = ?2")
                columnBlockByGranule = select
            }
            select.reset()
            select.bind(1, field.name)
            select.bind(2, firstRowID)
            return try select.step() ? select : nil
        }
        guard let found else { return false }
        try found.withBlob(0, body)
        return true
    }

    private func hasTable(_ name: String) throws -> Bool {
        try describing { () throws(SQLiteError) in
            let query = try db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")
            query.bind(1, name)
            return try query.step()
        }
    }

    /// The fields this shard's rows list as quoted or null, when it records them (sealed
    /// shards since they do; see `SkipIndex.BookkeepingFields`).
    package func bookkeepingFields() throws -> SkipIndex.BookkeepingFields? {
        try describing { () throws(SQLiteError) in try SkipIndex.BookkeepingFields.read(from: db) }
    }

    /// The `meta` key saying how a shard's string ids are ordered, and the value saying
    /// they follow the values' bytes (ids 1...n, as a merge writes them). Without it, ids
    /// follow arrival order.
    static let stringsOrderMetaKey = "strings_order"
    static let stringsInValueOrder = "value"

    /// What a shard's string table says of one text.
    package enum StringLookup: Equatable {
        /// Its id.
        case id(Int64)
        /// No row of the shard holds it.
        case absent
        /// Not known without a scan of `strings` (ids in arrival order).
        case unknown
    }

    /// The id of `text` in a shard whose ids follow the values' order, by binary search
    /// over `strings`' row ids (about a dozen page lookups), where
    /// `SELECT id FROM strings WHERE value = ?` reads every string: a tenth of a
    /// millisecond per filtered text per shard, a sixth of a namespace-pair count over
    /// 30 merged days.
    package func stringID(of text: String) throws -> StringLookup {
        do {
            if stringsInValueOrder == nil {
                let ordered = try meta(Self.stringsOrderMetaKey) == Self.stringsInValueOrder
                stringsInValueOrder = (ordered, ordered ? try db.scalarInteger("SELECT max(id) FROM strings") : nil)
            }
            guard let (ordered, largest) = stringsInValueOrder, ordered else { return .unknown }
            guard let count = largest else { return .absent }
            let probe = try db.prepare("SELECT value FROM strings WHERE id = ?1")
            var low: Int64 = 1, high = count
            while low <= high {
                let middle = low + (high - low) / 2
                probe.reset()
                probe.bind(1, middle)
                guard try probe.step(), let value = probe.text(0) else { return .unknown }  // a gap: not the merger's layout
                if value == text { return .id(middle) }
                if value.utf8.lexicographicallyPrecedes(text.utf8) { low = middle + 1 } else { high = middle - 1 }
            }
            return .absent
        } catch {
            throw describe(error)
        }
    }

    package func meta(_ key: String) throws -> String? {
        let q = try db.prepare("SELECT value FROM meta WHERE key = ?1")
        q.bind(1, key)
        return try q.step() ? q.text(0) : nil
    }

    private func describe(_ error: any Error) -> ShardStoreError { Self.describe(error, path: path) }

    /// Runs `body`, turning an SQLite error into one that names the shard.
    private func describing<T>(_ body: () throws(SQLiteError) -> T) throws -> T {
        do { return try body() } catch { throw describe(error) }
    }

    private static func describe(_ error: any Error, path: String) -> ShardStoreError {
        if let already = error as? ShardStoreError, already.kind == .unreadableShard { return already }
        let name = (path as NSString).lastPathComponent
        let id = ShardID(fileName: name)
        if let cause = SeekableZstdVFS.lastError(for: path) {
            return ShardStoreError(.unreadableShard, "shard \(name) cannot be read: \(cause). Run `flowrec fsck` to quarantine it; other shards are unaffected.",
                                   shard: id, cause: error)
        }
        return ShardStoreError(.unreadableShard, "shard \(name) cannot be read: \(error)", shard: id, cause: error)
    }
}

