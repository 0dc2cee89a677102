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
public final class FlowsAcrossShards {
    let store: ShardStore
    let fromMs: Int64?
    let toMs: Int64?
    private let db: SQLiteDatabase
    private let module: UnsafeMutablePointer<sqlite3_module>
    /// Shards opened by queries so far: what tests check the time push-down with.
    public private(set) var shardsOpened = 0

    /// The columns of `flows`: NetObserv's field names, as in each shard's view.
    public static let columns: [String] = ShardSchema.viewFieldNames

    public init(store: ShardStore, fromMs: Int64?, toMs: Int64?) throws {
        self.store = store
        self.fromMs = fromMs
        self.toMs = toMs
        db = try SQLiteDatabase(path: ":memory:")
        module = UnsafeMutablePointer<sqlite3_module>.allocate(capacity: 1)
        module.initialize(to: Self.makeModule())
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard sqlite3_create_module_v2(db.handle, "flowrec_flows", module, context, nil) == SQLITE_OK else {
            throw ShardStoreError("cannot register the flows virtual table: \(db.lastMessage)")
        }
        try db.execute("CREATE VIRTUAL TABLE temp.flows USING flowrec_flows")
        sqlite3_set_authorizer(db.handle, { _, action, _, _, _, _ in
            switch action {
            case SQLITE_SELECT, SQLITE_READ, SQLITE_FUNCTION, SQLITE_RECURSIVE: SQLITE_OK
            default: SQLITE_DENY
            }
        }, nil)
    }

    deinit {
        sqlite3_set_authorizer(db.handle, nil, nil)
        module.deinitialize(count: 1)
        module.deallocate()
    }

    /// Runs one read-only statement; `row` gets each result row (return false to stop).
    public func query(_ sql: String, columns: ([String]) -> Void = { _ in }, row: (SQLiteStatement) throws -> Bool) throws {
        let prepared = Result { () throws(SQLiteError) in try db.prepare(sql) }
        if case .failure(let error) = prepared, error.code == SQLITE_AUTH || error.message.contains("may not be modified") {
            throw ShardStoreError("flowrec sql is read-only: only SELECT (and WITH ... SELECT) over the flows table is allowed; \(error.message)")
        }
        let statement = try prepared.get()
        guard sqlite3_stmt_readonly(statement.handle) != 0 else {
            throw ShardStoreError("flowrec sql is read-only: only SELECT (and WITH ... SELECT) over the flows table is allowed")
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

    /// One scan over the shards of its bounds, shard after shard.
    final class Cursor {
        let owner: FlowsAcrossShards
        var shards: [ShardStore.ShardInfo] = []
        var next = 0
        var reader: ShardReader?
        var statement: SQLiteStatement?
        var hasRow = false
        var rowid: Int64 = 0
        var bounds = TimeBounds()

        init(owner: FlowsAcrossShards) { self.owner = owner }

        func start(_ bounds: TimeBounds) throws {
            self.bounds = bounds
            if let from = bounds.fromMs, let to = bounds.toMs, from >= to {
                shards = []
            } else {
                shards = try owner.store.shards(overlappingFromMs: bounds.fromMs, toMs: bounds.toMs)
            }
            next = 0
            rowid = 0
            try advance()
        }

        /// Moves to the next row, opening the next shard when one runs out.
        func advance() throws {
            while true {
                if let statement, try statement.step() {
                    hasRow = true
                    rowid += 1
                    return
                }
                statement = nil
                reader = nil
                guard next < shards.count else {
                    hasRow = false
                    return
                }
                let shard = shards[next]
                next += 1
                let opened = try owner.store.reader(for: shard.id)
                owner.shardsOpened += 1
                var conditions: [String] = []
                if bounds.fromMs != nil { conditions.append("TimeFlowEndMs >= ?1") }
                if bounds.toMs != nil { conditions.append("TimeFlowEndMs < ?2") }
                let columns = FlowsAcrossShards.columns.map { "\"\($0)\"" }.joined(separator: ", ")
                let select = try opened.db.prepare("SELECT \(columns) FROM flows"
                                                   + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")))
                if let from = bounds.fromMs { select.bind(1, from) }
                if let to = bounds.toMs { select.bind(2, to) }
                reader = opened
                statement = select
            }
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
            let declaration = "CREATE TABLE x(" + FlowsAcrossShards.columns.map { "\"\($0)\"" }.joined(separator: ", ") + ")"
            let rc = sqlite3_declare_vtab(db, declaration)
            guard rc == SQLITE_OK else { return rc }
            let table = UnsafeMutablePointer<flowrec_vtab>.allocate(capacity: 1)
            table.initialize(to: flowrec_vtab(base: sqlite3_vtab(), owner: aux))
            vtabOut?.pointee = UnsafeMutableRawPointer(table).assumingMemoryBound(to: sqlite3_vtab.self)
            return SQLITE_OK
        }
        m.xCreate = connect
        m.xConnect = connect
        let disconnect: @convention(c) (UnsafeMutablePointer<sqlite3_vtab>?) -> Int32 = { vtab in
            guard let vtab else { return SQLITE_OK }
            let table = UnsafeMutableRawPointer(vtab).assumingMemoryBound(to: flowrec_vtab.self)
            table.deinitialize(count: 1)
            table.deallocate()
            return SQLITE_OK
        }
        m.xDisconnect = disconnect
        m.xDestroy = disconnect
        m.xBestIndex = { _, info in
            guard let info else { return SQLITE_ERROR }
            var packed: Int32 = 0
            var used: Int32 = 0
            for i in 0..<Int(info.pointee.nConstraint) {
                let constraint = info.pointee.aConstraint[i]
                guard constraint.usable != 0, constraint.iColumn == FlowsAcrossShards.timeColumn, used < 4 else { continue }
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
                info.pointee.aConstraintUsage[i].argvIndex = used
                // SQLite still checks the constraint: a value that is not an integer
                // is simply not pushed down.
                info.pointee.aConstraintUsage[i].omit = 0
                packed |= op.rawValue << (8 * (used - 1))
            }
            info.pointee.idxNum = packed
            info.pointee.estimatedCost = used > 0 ? 1e6 : 1e9
            return SQLITE_OK
        }
        m.xOpen = { vtab, cursorOut in
            guard let vtab else { return SQLITE_ERROR }
            let table = UnsafeMutableRawPointer(vtab).assumingMemoryBound(to: flowrec_vtab.self)
            guard let aux = table.pointee.owner else { return SQLITE_ERROR }
            let owner = Unmanaged<FlowsAcrossShards>.fromOpaque(aux).takeUnretainedValue()
            let cursor = UnsafeMutablePointer<flowrec_vtab_cursor>.allocate(capacity: 1)
            cursor.initialize(to: flowrec_vtab_cursor(base: sqlite3_vtab_cursor(), owner: Unmanaged.passRetained(Cursor(owner: owner)).toOpaque()))
            cursorOut?.pointee = UnsafeMutableRawPointer(cursor).assumingMemoryBound(to: sqlite3_vtab_cursor.self)
            return SQLITE_OK
        }
        m.xClose = { raw in
            guard let raw else { return SQLITE_OK }
            let cursor = UnsafeMutableRawPointer(raw).assumingMemoryBound(to: flowrec_vtab_cursor.self)
            if let owner = cursor.pointee.owner { Unmanaged<Cursor>.fromOpaque(owner).release() }
            cursor.deinitialize(count: 1)
            cursor.deallocate()
            return SQLITE_OK
        }
        m.xFilter = { raw, idxNum, _, argc, argv in
            guard let cursor = FlowsAcrossShards.cursor(raw) else { return SQLITE_ERROR }
            var bounds = TimeBounds(fromMs: cursor.owner.fromMs, toMs: cursor.owner.toMs)
            for k in 0..<Int(argc) {
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
            return FlowsAcrossShards.report(raw) { try cursor.start(bounds) }
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
            guard let cursor = FlowsAcrossShards.cursor(raw), let statement = cursor.statement else { return SQLITE_ERROR }
            sqlite3_result_value(context, sqlite3_column_value(statement.handle, column))
            return SQLITE_OK
        }
        m.xRowid = { raw, rowid in
            guard let cursor = FlowsAcrossShards.cursor(raw) else { return SQLITE_ERROR }
            rowid?.pointee = cursor.rowid
            return SQLITE_OK
        }
        return m
    }

    private static func cursor(_ raw: UnsafeMutablePointer<sqlite3_vtab_cursor>?) -> Cursor? {
        guard let raw else { return nil }
        let cursor = UnsafeMutableRawPointer(raw).assumingMemoryBound(to: flowrec_vtab_cursor.self)
        guard let owner = cursor.pointee.owner else { return nil }
        return Unmanaged<Cursor>.fromOpaque(owner).takeUnretainedValue()
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
                // SQLite frees the message with sqlite3_free: allocate it with sqlite3_malloc.
                let text = Array("\(error)".utf8CString)
                if let buffer = sqlite3_malloc(Int32(text.count)) {
                    text.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    vtab.pointee.zErrMsg = buffer.assumingMemoryBound(to: CChar.self)
                }
            }
            return SQLITE_ERROR
        }
    }
}
