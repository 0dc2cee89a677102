package import StorageKit
package import ShardStore
import CSQLite
import FlowModel
import Foundation

/// A read-only SQL connection whose `flows` table spans every shard of a time range,
/// active and sealed, however many there are: `flowrec sql`.
///
/// `flows` is a virtual table. SQLite hands it the query's constraints on
/// `TimeFlowEndMs`; it intersects them with the command's range and opens only the
/// shards whose catalog time range overlaps, one at a time, reading each through its
/// own `flows` view (sealed ones in place, through the VFS). No ATTACH, so there is no
/// limit on the number of shards.
///
/// Nothing can be changed through it: the connection is in-memory, `flows` has no
/// update method, and an authorizer allows only reading (no INSERT, DELETE, ATTACH,
/// CREATE, PRAGMA...).
package final class FlowsAcrossShards {
    let store: ShardStore
    let fromMs: Int64?
    let toMs: Int64?
    private let db: SQLiteDatabase
    /// Shards opened by queries so far: what tests check the time push-down with.
    package private(set) var shardsOpened = 0
    /// What the scans read (shards ruled out, granules read): `--explain`.
    package let statistics: ScanStatistics
    var planner: ScanPlanner { ScanPlanner(store: store, statistics: statistics) }
    /// Set while `skipFilter(where:)` runs: scans record what was pushed down and read nothing.
    private var capturing = false
    private var captured = SkipFilter()
    /// Damaged shards the queries skipped, named in the answer's warning.
    package let unreadable = UnreadableShards()
    /// The texts pushed-down equalities hold columns to, NUL-terminated, handed to SQLite
    /// in place (SQLITE_STATIC) for every row: kept until the connection goes, since an
    /// aggregate may hold a value past the scan that produced it.
    private var fixedTexts: [String: UnsafeMutableBufferPointer<CChar>] = [:]

    /// `text` as a C string that lives as long as this connection.
    func fixedText(_ text: String) -> UnsafeBufferPointer<CChar> {
        if let kept = fixedTexts[text] { return UnsafeBufferPointer(kept) }
        let bytes = Array(text.utf8CString)
        let kept = UnsafeMutableBufferPointer<CChar>.allocate(capacity: bytes.count)
        _ = kept.initialize(from: bytes)
        fixedTexts[text] = kept
        return UnsafeBufferPointer(kept)
    }

    /// The columns of `flows`: NetObserv's field names, as in each shard's view.
    package static let columns: [String] = ShardSchema.viewFieldNames
    /// Also there, but hidden from `SELECT *`: the shard view's bookkeeping (`_nulls`,
    /// `_quoted`, `_extras`), for questions about how a flow was written (a JSON null,
    /// a number sent as a string, an unknown field).
    package static let hiddenColumns: [String] = ShardSchema.bookkeepingColumns.map(\.name)
    /// Every column, in the order of each shard view's expressions.
    static let allColumns = columns + hiddenColumns

    /// How many rows of a shard one worker reads at most: a bigger shard is cut into
    /// rowid ranges (`ScanPlanner.Part`) so that every core scans it.
    let rowsPerPart: Int64
    /// Whether merged shards may answer from their column blocks (`ColumnBlockScan`).
    let readsColumnBlocks: Bool

    /// `rowsPerPart` is a whole number of granules, so no granule is read by two workers.
    package init(store: ShardStore, fromMs: Int64?, toMs: Int64?, rowsPerPart: Int64 = ScanPlanner.rowsPerPart,
                 statistics: ScanStatistics = ScanStatistics(), readsColumnBlocks: Bool = true) throws {
        self.store = store
        self.readsColumnBlocks = readsColumnBlocks
        self.statistics = statistics
        self.rowsPerPart = max(1, rowsPerPart)
        self.fromMs = fromMs
        self.toMs = toMs
        db = try SQLiteDatabase(path: ":memory:")
        guard VirtualTableSupport.register(Self.makeModule(), as: "flowrec_flows", owner: self, on: db.handle) == SQLITE_OK else {
            throw QueryError(.store, "cannot register the flows virtual table: \(db.lastMessage)")
        }
        // Sorts and temporary tables in memory (bounded by `QueryLimits`), set before the
        // temp schema holds anything: changing it later would drop `temp.flows`.
        try db.execute("PRAGMA temp_store=MEMORY")
        try db.execute("CREATE VIRTUAL TABLE temp.flows USING flowrec_flows")
    }

    deinit {
        for text in fixedTexts.values { text.deallocate() }
        sqlite3_set_authorizer(db.handle, nil, nil)
    }

    /// Runs one read-only statement within `limits`; `row` gets each result row (return
    /// false to stop).
    package func query(_ sql: String, limits: QueryLimits = .commandLine, columns: ([String]) -> Void = { _ in },
                       row: (SQLiteStatement) throws -> Bool) throws {
        let guarding = QueryGuard(limits)
        guarding.install(on: db)
        defer { guarding.uninstall(from: db) }
        do {
            try run(sql, columns: columns, row: row)
        } catch {
            throw guarding.explain(error, "the statement is not valid SQL over the flows table")
        }
    }

    /// What a filter expression lets the skip index prune on (its time bounds and
    /// `field = value` terms), as SQLite itself pushes it into the `flows` table: the
    /// same terms `flowrec sql` prunes on, for readers that open shards one at a time
    /// (`flowrec query`, the JSON API). Reads no shard.
    package func skipFilter(where filter: WhereClause?) throws -> SkipFilter {
        capturing = true
        defer { capturing = false }
        captured = SkipFilter(fromMs: fromMs, toMs: toMs)
        try query("SELECT 1 FROM flows" + (filter.map { " WHERE (\($0.text))" } ?? "") + " LIMIT 1") { _ in false }
        return captured
    }

    private func run(_ sql: String, columns: ([String]) -> Void, row: (SQLiteStatement) throws -> Bool) throws {
        let statement: SQLiteStatement
        do {
            statement = try db.prepare(sql)
        } catch {
            let sqlite: SQLiteError = error
            guard sqlite.kind == .notAuthorized else { throw sqlite }
            throw QueryError(.notAllowed, "flowrec sql is read-only: only SELECT (and WITH ... SELECT) over the flows table is allowed; \(sqlite.message)",
                             cause: sqlite)
        }
        guard sqlite3_stmt_readonly(statement.handle) != 0 else {
            throw QueryError(.notAllowed, "flowrec sql is read-only: only SELECT (and WITH ... SELECT) over the flows table is allowed")
        }
        columns((0..<sqlite3_column_count(statement.handle)).map { statement.columnName($0) })
        while try statement.step() {
            if try !row(statement) { break }
        }
    }

    // MARK: The virtual table

    /// The bounds a scan asked for, from `TimeFlowEndMs` constraints.
    struct TimeBounds {
        var fromMs: Int64?
        var toMs: Int64?

        mutating func narrow(from: Int64?, to: Int64?) {
            if let from { fromMs = max(fromMs ?? from, from) }
            if let to { toMs = min(toMs ?? to, to) }
        }
    }

    /// What one scan reads from each shard: the columns the statement uses (the others
    /// are NULL, never computed) and `column = value` constraints, checked on the
    /// shard's integer rows (a string compared by its id) so rows that cannot match are
    /// skipped without decoding them. SQLite checks every constraint again on what the
    /// table returns, so a push-down only saves work, never changes an answer.
    struct ScanPlan {
        var columnsUsed: Set<Int> = []
        var equalities: [(column: Int, value: EqualityValue)] = []
    }

    enum EqualityValue {
        case integer(Int64)
        case text(String)
    }

    /// One scan over the shards of its bounds, read by `ParallelShardScan` and handed to
    /// SQLite shard after shard.
    final class Cursor {
        let owner: FlowsAcrossShards
        var parts: [ScanPlanner.Part] = []
        var shardIDs: [ShardID] = []
        var partIndex = 0
        var scan: ParallelShardScan?
        var batch = ParallelShardScan.Batch()
        var rowInBatch = 0
        var hasRow = false
        var rowid: Int64 = 0
        /// Per column of `flows`, its place among the columns the shards return, or -1
        /// for a column the statement does not use (NULL).
        var slots: [Int] = []
        /// Per column of `flows`, the text a pushed-down equality holds it to: every row
        /// the shards return has it, so it is given to SQLite from here, never copied per
        /// row (the shards return NULL in its place). Two such columns per row of a
        /// namespace-pair count were two allocations per row in the workers and two in
        /// SQLite's copy of the result, all under SQLite's global memory mutex.
        var fixed: [UnsafeBufferPointer<CChar>?] = []
        var usedCount = 0

        init(owner: FlowsAcrossShards) { self.owner = owner }
        deinit { stop() }

        func start(_ bounds: TimeBounds, plan: ScanPlan) throws {
            stop()
            var filter = SkipFilter(fromMs: bounds.fromMs, toMs: bounds.toMs)
            for (column, value) in plan.equalities {
                switch value {
                case .integer(let v): filter.require(FieldID(rawValue: UInt8(column)), equals: .integer(v))
                case .text(let t): filter.require(FieldID(rawValue: UInt8(column)), equals: .text(t))
                }
            }
            let shards: [ShardRecord]
            if owner.capturing {
                owner.captured = filter
                shards = []
            } else {
                shards = try owner.planner.shards(for: filter)
            }
            let used = plan.columnsUsed.sorted()
            slots = Array(repeating: -1, count: FlowsAcrossShards.allColumns.count)
            for (slot, column) in used.enumerated() { slots[column] = slot }
            usedCount = used.count
            fixed = FlowsAcrossShards.allColumns.indices.map { column in
                Self.textEquality(on: column, in: plan).map { owner.fixedText($0) }
            }
            let ids = shards.map(\.id), directory = owner.store.directory, statistics = owner.statistics, skip = filter
            let columnBlocks = owner.readsColumnBlocks
            let parts = ScanPlanner.parts(of: shards, rowsPerPart: owner.rowsPerPart)
            self.parts = parts
            shardIDs = ids
            partIndex = 0
            rowid = 0
            batch = ParallelShardScan.Batch()
            rowInBatch = 0
            scan = ParallelShardScan(partCount: parts.count, columnCount: Int32(max(used.count, 1))) { index in
                let part = parts[index]
                let reader = try ShardReader(path: ShardStore.currentPath(of: ids[part.shard], in: directory).path, reusable: true)
                // A merged shard answers from its column blocks when they hold all the statement uses.
                if columnBlocks, let blocks = try ColumnBlockScan(reader: reader, bounds: bounds, plan: plan, columns: used, part: part,
                                                    filter: skip, statistics: statistics) {
                    return (.columnBlocks(blocks), reader)
                }
                // Only the granules whose zone maps can hold the filter's values.
                let ranges = try ScanPlanner.rowRanges(reader, filter: skip, within: part.rowids, statistics: statistics)
                if ranges == nil, part.rowids.above == nil { statistics.add(\.shardsReadWhole, 1) }
                if let ranges, ranges.isEmpty { return (nil, reader) }
                return (.statement(try Self.select(from: reader, bounds: bounds, plan: plan, columns: used, part: part, ranges: ranges)), reader)
            }
            try advance()
        }

        /// Stops the workers of the current scan and counts the shards they opened.
        func stop() {
            guard let scan else { return }
            scan.cancel()
            let opened = Set(scan.openedParts.map { parts[$0].shard }).count
            owner.shardsOpened += opened
            owner.statistics.add(\.shardsOpened, opened)
            self.scan = nil
        }

        /// Moves to the next row, taking the next batch (or part) when one runs out.
        func advance() throws {
            while true {
                if rowInBatch + 1 < batch.rowCount {
                    rowInBatch += 1
                    hasRow = true
                    rowid += 1
                    return
                }
                guard let scan, partIndex < parts.count else {
                    hasRow = false
                    stop()
                    return
                }
                switch scan.take(part: partIndex) {
                case .batch(let next):
                    batch = next
                    rowInBatch = -1
                case .end:
                    partIndex += 1
                case .failure(let error):
                    // A damaged shard is skipped (and named in a warning); anything else
                    // ends the statement.
                    guard owner.unreadable.skip(shardIDs[parts[partIndex].shard], after: error) else {
                        stop()
                        throw error
                    }
                    partIndex += 1
                }
            }
        }

        /// Gives SQLite column `column` of the current row.
        func result(column: Int, to context: OpaquePointer?) {
            if column >= 0, column < fixed.count, let text = fixed[column] {
                sqlite3_result_text(context, text.baseAddress, Int32(text.count - 1), sqliteStatic)
                return
            }
            guard column >= 0, column < slots.count, slots[column] >= 0 else {
                sqlite3_result_null(context)
                return
            }
            batch.result(rowInBatch * max(usedCount, 1) + slots[column], to: context)
        }

        /// The text a string column is held equal to by a pushed-down constraint, if any.
        static func textEquality(on column: Int, in plan: ScanPlan) -> String? {
            guard FlowSchema.fields.indices.contains(column), FlowSchema.fields[column].kind.isTextStored else { return nil }
            for (constrained, value) in plan.equalities where constrained == column {
                if case .text(let text) = value { return text }
            }
            return nil
        }

        /// The statement over one shard's `flow_rows`: used columns decoded as the
        /// `flows` view decodes them, the time range and equalities on raw columns.
        ///
        /// A string column held equal to a text is returned as NULL, and the cursor gives
        /// SQLite the text instead (`fixed`): every row the statement yields has it, and
        /// looking each row's id up in `strings` again was most of what a namespace-pair
        /// count spent per matching row.
        static func select(from reader: ShardReader, bounds: TimeBounds, plan: ScanPlan, columns used: [Int],
                           part: ScanPlanner.Part, ranges: [ClosedRange<Int64>]? = nil) throws -> SQLiteStatement {
            let expressions = ShardSchema.viewColumnExpressions(timeEncoding: reader.timeEncoding)
            var parameters: [EqualityValue] = []
            var selected: [String] = []
            for column in used {
                if textEquality(on: column, in: plan) != nil {
                    selected.append("NULL AS \"\(FlowSchema.fields[column].name)\"")
                } else {
                    selected.append(expressions[column])
                }
            }
            let columns = used.isEmpty ? "NULL" : selected.joined(separator: ",\n")
            var conditions: [String] = []
            let end = "r.\"TimeFlowEndMs\""
            if let from = bounds.fromMs { conditions.append("\(end) >= \(from)") }
            if let to = bounds.toMs { conditions.append("\(end) < \(to)") }
            conditions += part.conditions(table: "r.")
            for (column, value) in plan.equalities {
                let spec = FlowSchema.fields[column]
                let raw = "r.\"\(spec.name)\""
                switch value {
                case .text(let text) where spec.kind.isTextStored:
                    switch try reader.stringID(of: text) {
                    case .id(let id):
                        conditions.append("\(raw) = ?\(parameters.count + 1)")
                        parameters.append(.integer(id))
                    case .absent:
                        conditions.append("0")
                    case .unknown:
                        conditions.append("\(raw) = (SELECT id FROM strings WHERE value = ?\(parameters.count + 1))")
                        parameters.append(value)
                    }
                    continue
                case .integer where !spec.kind.isTextStored && ShardSchema.storedExpression(spec, table: "r.", encoding: reader.timeEncoding) == raw:
                    conditions.append("\(raw) = ?\(parameters.count + 1)")
                default:
                    continue  // another type than the column stores: left to SQLite's own check
                }
                parameters.append(value)
            }
            let sql = "SELECT \(columns)\nFROM \(RowSelection(ranges).source(where: conditions))"
            let statement = try reader.db.prepare(sql)
            for (i, value) in parameters.enumerated() {
                switch value {
                case .integer(let v): statement.bind(Int32(i + 1), v)
                case .text(let t): statement.bind(Int32(i + 1), t)
                }
            }
            return statement
        }
    }

    /// Constraint operators pushed down, as packed into idxNum (one byte each).
    private enum PushedOperator: Int32 {
        case equal = 1, greater, greaterOrEqual, less, lessOrEqual
    }

    private static let timeColumn = Int32(columns.firstIndex(of: "TimeFlowEndMs") ?? 0)

    private static func makeModule() -> sqlite3_module {
        var m = sqlite3_module()
        m.iVersion = 0
        let connect: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?,
                                     UnsafeMutablePointer<UnsafeMutablePointer<sqlite3_vtab>?>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = {
            db, aux, _, _, vtabOut, _ in
            let declaration = "CREATE TABLE x(" + (FlowsAcrossShards.columns.map { "\"\($0)\"" }
                + FlowsAcrossShards.hiddenColumns.map { "\"\($0)\" HIDDEN" }).joined(separator: ", ") + ")"
            return VirtualTableSupport.connect(db, moduleData: aux, declaration: declaration, vtabOut)
        }
        m.xCreate = connect
        m.xConnect = connect
        m.xDisconnect = VirtualTableSupport.disconnect
        m.xDestroy = VirtualTableSupport.disconnect
        // Present only so that a statement writing to `flows` prepares (and is then
        // refused as not read-only, or by the authorizer) instead of failing with a
        // message the caller would have to recognise.
        m.xUpdate = { _, _, _, _ in SQLITE_READONLY }
        m.xBestIndex = { _, info in
            guard let info else { return SQLITE_ERROR }
            var packed: Int32 = 0
            var used: Int32 = 0
            var timeConstraints: Int32 = 0
            var equalityColumns: [Int32] = []
            // TimeFlowEndMs ranges first (at most 4), then equalities on other columns.
            for i in 0..<Int(info.pointee.nConstraint) {
                let constraint = info.pointee.aConstraint[i]
                guard constraint.usable != 0, constraint.iColumn == FlowsAcrossShards.timeColumn, timeConstraints < 4 else { continue }
                let op: PushedOperator?
                switch Int32(constraint.op) {
                case SQLITE_INDEX_CONSTRAINT_EQ: op = .equal
                case SQLITE_INDEX_CONSTRAINT_GT: op = .greater
                case SQLITE_INDEX_CONSTRAINT_GE: op = .greaterOrEqual
                case SQLITE_INDEX_CONSTRAINT_LT: op = .less
                case SQLITE_INDEX_CONSTRAINT_LE: op = .lessOrEqual
                default: op = nil
                }
                guard let op else { continue }
                used += 1
                timeConstraints += 1
                info.pointee.aConstraintUsage[i].argvIndex = used
                // SQLite still checks every constraint on the rows returned.
                info.pointee.aConstraintUsage[i].omit = 0
                packed |= op.rawValue << (8 * (timeConstraints - 1))
            }
            for i in 0..<Int(info.pointee.nConstraint) {
                let constraint = info.pointee.aConstraint[i]
                // Equalities on fields only (the hidden bookkeeping columns are checked by SQLite).
                guard constraint.usable != 0, constraint.iColumn >= 0, Int(constraint.iColumn) < FlowsAcrossShards.columns.count,
                      constraint.iColumn != FlowsAcrossShards.timeColumn,
                      Int32(constraint.op) == SQLITE_INDEX_CONSTRAINT_EQ, equalityColumns.count < 16 else { continue }
                used += 1
                info.pointee.aConstraintUsage[i].argvIndex = used
                info.pointee.aConstraintUsage[i].omit = 0
                equalityColumns.append(constraint.iColumn)
            }
            info.pointee.idxNum = packed
            // idxStr: "<columns used mask as 64-bit hex>;<time constraint count>;<equality columns>"
            let plan = String(info.pointee.colUsed, radix: 16) + ";\(timeConstraints);" + equalityColumns.map(String.init).joined(separator: ",")
            if let text = FlowsAcrossShards.sqliteString(plan) {
                info.pointee.idxStr = text
                info.pointee.needToFreeIdxStr = 1
            }
            info.pointee.estimatedCost = 1e9 / Double(1 + 10 * timeConstraints + 100 * Int32(equalityColumns.count))
            return SQLITE_OK
        }
        m.xOpen = { vtab, cursorOut in
            guard let owner = VirtualTableSupport.owner(of: vtab, as: FlowsAcrossShards.self) else { return SQLITE_ERROR }
            return VirtualTableSupport.openCursor(Cursor(owner: owner), cursorOut)
        }
        m.xClose = VirtualTableSupport.closeCursor
        m.xFilter = { raw, idxNum, idxStr, argc, argv in
            guard let cursor = FlowsAcrossShards.cursor(raw) else { return SQLITE_ERROR }
            let planText = idxStr.map { String(cString: $0) } ?? ""
            let parts = planText.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            let mask = parts.first.flatMap { UInt64($0, radix: 16) } ?? .max
            let timeCount = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            let equalityColumns = parts.count > 2 ? parts[2].split(separator: ",").compactMap { Int($0) } : []
            var plan = ScanPlan()
            for i in FlowsAcrossShards.allColumns.indices where mask & (1 << UInt64(min(i, 63))) != 0 { plan.columnsUsed.insert(i) }
            var bounds = TimeBounds(fromMs: cursor.owner.fromMs, toMs: cursor.owner.toMs)
            for k in 0..<min(Int(argc), timeCount) {
                guard let value = argv?[k], sqlite3_value_numeric_type(value) == SQLITE_INTEGER,
                      let op = PushedOperator(rawValue: (idxNum >> (8 * Int32(k))) & 0xFF) else { continue }
                let v = sqlite3_value_int64(value)
                switch op {
                case .equal: bounds.narrow(from: v, to: v == .max ? nil : v + 1)
                case .greater: bounds.narrow(from: v == .max ? v : v + 1, to: nil)
                case .greaterOrEqual: bounds.narrow(from: v, to: nil)
                case .less: bounds.narrow(from: nil, to: v)
                case .lessOrEqual: bounds.narrow(from: nil, to: v == .max ? nil : v + 1)
                }
            }
            for (offset, column) in equalityColumns.enumerated() {
                let k = timeCount + offset
                guard k < Int(argc), let value = argv?[k] else { continue }
                switch sqlite3_value_type(value) {
                case SQLITE_INTEGER: plan.equalities.append((column, .integer(sqlite3_value_int64(value))))
                case SQLITE_TEXT:
                    if let text = sqlite3_value_text(value) { plan.equalities.append((column, .text(String(cString: text)))) }
                default: continue  // NULL never equals; reals and blobs: SQLite checks
                }
            }
            return FlowsAcrossShards.report(raw) { try cursor.start(bounds, plan: plan) }
        }
        m.xNext = { raw in
            guard let cursor = FlowsAcrossShards.cursor(raw) else { return SQLITE_ERROR }
            return FlowsAcrossShards.report(raw) { try cursor.advance() }
        }
        m.xEof = { raw in
            guard let cursor = FlowsAcrossShards.cursor(raw) else { return 1 }
            return cursor.hasRow ? 0 : 1
        }
        m.xColumn = { raw, context, column in
            guard let cursor = FlowsAcrossShards.cursor(raw) else { return SQLITE_ERROR }
            cursor.result(column: Int(column), to: context)
            return SQLITE_OK
        }
        m.xRowid = { raw, rowid in
            guard let cursor = FlowsAcrossShards.cursor(raw) else { return SQLITE_ERROR }
            rowid?.pointee = cursor.rowid
            return SQLITE_OK
        }
        return m
    }

    /// A C string SQLite may free with sqlite3_free (idxStr, error messages), so it is
    /// allocated with sqlite3_malloc; nil when out of memory.
    static func sqliteString(_ text: String) -> UnsafeMutablePointer<CChar>? {
        let bytes = Array(text.utf8CString)
        guard let buffer = sqlite3_malloc(Int32(bytes.count)) else { return nil }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return buffer.assumingMemoryBound(to: CChar.self)
    }

    private static func cursor(_ raw: UnsafeMutablePointer<sqlite3_vtab_cursor>?) -> Cursor? {
        VirtualTableSupport.cursorState(raw, as: Cursor.self)
    }

    /// Runs `body`; an error becomes the virtual table's error message (a damaged
    /// shard's name and what to do reach the user through SQLite).
    private static func report(_ raw: UnsafeMutablePointer<sqlite3_vtab_cursor>?, _ body: () throws -> Void) -> Int32 {
        do {
            try body()
            return SQLITE_OK
        } catch {
            if let vtab = raw?.pointee.pVtab {
                sqlite3_free(vtab.pointee.zErrMsg)
                vtab.pointee.zErrMsg = sqliteString("\(error)")
            }
            return SQLITE_ERROR
        }
    }
}
