import StorageKit
import CSQLite

/// The order in which the sealer copies an active shard's rows: by source and destination
/// namespace and owner (by value), then time — the modern ClickHouse table's `ORDER BY`
/// (`SkipIndex.sortFields`). Flows of one conversation sit side by side and compress
/// together, and a filter on the leading fields reads a few granules of the shard.
///
/// The order is computed in Swift and handed to SQLite as a virtual table of row ids
/// (`temp.seal_order`), not with `CREATE TEMP TABLE ... ORDER BY`: SQLite's sorter and
/// the temporary B-tree it fills cost about 1.8 µs per row, a quarter of a seal, where
/// sorting packed keys in memory costs a tenth of that. The order affects how well the
/// shard compresses and how much of it a filter reads, never what it holds (the seal's
/// checksum is independent of row order, and the zone maps hold whatever the order).
final class SealOrder {
    /// Sort keys in copy order; their row ids are what the table hands out (32 bytes per
    /// row of the shard while it is sealed, with no second array of ids).
    private let keys: [SealKey]
    /// The source's ascending runs in row id order: one per write batch (`SealRun`), or
    /// about one per row for a shard written in arrival order. The copy reads every run
    /// at once, one page each, so this sizes the source's page cache (`ShardSealer`).
    var runs: Int { runStarts.count }
    /// The row id where each run begins, ascending.
    let runStarts: [Int64]
    /// The source's rows.
    var rows: Int { keys.count }
    /// The source's row ids in copy order (the record-by-record copy reads them).
    var sourceRowIDs: LazyMapSequence<[SealKey], Int64> { keys.lazy.map(\.tiebreak) }

    /// The run (an index into `runStarts`) that holds source row `rowID`.
    func run(holding rowID: Int64) -> Int {
        var lo = 0, hi = runStarts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runStarts[mid] <= rowID { lo = mid + 1 } else { hi = mid }
        }
        return lo - 1
    }
    private weak var database: SQLiteDatabase?

    /// Reads the sort columns of `table` (in `db`) and sorts its row ids; `ranks` order
    /// the strings of the shard by value.
    init(of table: String, in db: SQLiteDatabase, ranks: StringRanks) throws(SQLiteError) {
        let columns = SkipIndex.sortFields.map { "\"\($0.name)\"" }.joined(separator: ", ")
        let rows = try db.prepare("SELECT rowid, \(columns), \"TimeFlowEndMs\" FROM \(table)")
        var keys: [SealKey] = []
        if let count = try db.scalarInteger("SELECT max(rowid) FROM \(table)") { keys.reserveCapacity(Int(clamping: count)) }
        var runStarts: [Int64] = []
        var previous: SealKey?
        while try rows.step() {
            // Two ranks per word (NULL ranks 0, first, as an absent value does in ClickHouse).
            let namespaces = UInt64(ranks.rank(rows.integer(1))) << 32 | UInt64(ranks.rank(rows.integer(2)))
            let owners = UInt64(ranks.rank(rows.integer(3))) << 32 | UInt64(ranks.rank(rows.integer(4)))
            let key = SealKey(namespaces: namespaces, owners: owners, time: rows.integer(5), tiebreak: rows.integer(0))
            if previous.map({ key < $0 }) ?? true { runStarts.append(key.tiebreak) }
            previous = key
            keys.append(key)
        }
        keys.sort()
        self.keys = keys
        self.runStarts = runStarts
    }

    /// Creates `temp.seal_order(source_rowid)` on `db`, whose rowid is the copy position
    /// (so `ORDER BY seal_order.rowid` is the sorted order and costs nothing). `self`
    /// must outlive every statement that reads the table; `drop` removes it.
    func createTable(on db: SQLiteDatabase) throws(SQLiteError) {
        guard VirtualTableSupport.register(Self.makeModule(), as: "flowrec_seal_order", owner: self, on: db.handle) == SQLITE_OK else {
            throw SQLiteError(code: SQLITE_ERROR, message: "cannot register the seal order table: \(db.lastMessage)", sql: nil, path: db.path)
        }
        database = db
        try db.execute("CREATE VIRTUAL TABLE temp.seal_order USING flowrec_seal_order")
    }

    func drop() throws(SQLiteError) {
        try database?.execute("DROP TABLE temp.seal_order")
    }

    private final class Cursor {
        let order: SealOrder
        var position = 0
        init(order: SealOrder) { self.order = order }
    }

    private static func cursor(_ raw: UnsafeMutablePointer<sqlite3_vtab_cursor>?) -> Cursor? {
        VirtualTableSupport.cursorState(raw, as: Cursor.self)
    }

    private static func makeModule() -> sqlite3_module {
        var m = sqlite3_module()
        let connect: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?,
                                     UnsafeMutablePointer<UnsafeMutablePointer<sqlite3_vtab>?>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = {
            db, aux, _, _, vtabOut, _ in
            VirtualTableSupport.connect(db, moduleData: aux, declaration: "CREATE TABLE x(source_rowid INTEGER)", vtabOut)
        }
        m.xCreate = connect
        m.xConnect = connect
        m.xDisconnect = VirtualTableSupport.disconnect
        m.xDestroy = VirtualTableSupport.disconnect
        m.xBestIndex = { _, info in
            guard let info else { return SQLITE_ERROR }
            // Rows come out in rowid order: an ORDER BY rowid needs no sort.
            if info.pointee.nOrderBy == 1, info.pointee.aOrderBy[0].iColumn == -1, info.pointee.aOrderBy[0].desc == 0 {
                info.pointee.orderByConsumed = 1
            }
            info.pointee.estimatedCost = 1e6
            return SQLITE_OK
        }
        m.xOpen = { vtab, cursorOut in
            guard let order = VirtualTableSupport.owner(of: vtab, as: SealOrder.self) else { return SQLITE_ERROR }
            return VirtualTableSupport.openCursor(Cursor(order: order), cursorOut)
        }
        m.xClose = VirtualTableSupport.closeCursor
        m.xFilter = { raw, _, _, _, _ in
            guard let cursor = SealOrder.cursor(raw) else { return SQLITE_ERROR }
            cursor.position = 0
            return SQLITE_OK
        }
        m.xNext = { raw in
            guard let cursor = SealOrder.cursor(raw) else { return SQLITE_ERROR }
            cursor.position += 1
            return SQLITE_OK
        }
        m.xEof = { raw in
            guard let cursor = SealOrder.cursor(raw) else { return 1 }
            return cursor.position < cursor.order.keys.count ? 0 : 1
        }
        m.xColumn = { raw, context, _ in
            guard let cursor = SealOrder.cursor(raw), cursor.position < cursor.order.keys.count else { return SQLITE_ERROR }
            sqlite3_result_int64(context, cursor.order.keys[cursor.position].tiebreak)
            return SQLITE_OK
        }
        m.xRowid = { raw, rowid in
            guard let cursor = SealOrder.cursor(raw) else { return SQLITE_ERROR }
            rowid?.pointee = Int64(cursor.position + 1)
            return SQLITE_OK
        }
        return m
    }
}

/// One row's place in the seal order: two ranks per word (the source's and destination's
/// namespace, then owner; 0 for absent), then end time, then `tiebreak` (the row id in
/// `SealOrder`, the position in its batch in `SealRun`).
struct SealKey: Comparable {
    let namespaces: UInt64
    let owners: UInt64
    let time: Int64
    let tiebreak: Int64

    static func < (a: SealKey, b: SealKey) -> Bool {
        if a.namespaces != b.namespaces { return a.namespaces < b.namespaces }
        if a.owners != b.owners { return a.owners < b.owners }
        return a.time != b.time ? a.time < b.time : a.tiebreak < b.tiebreak
    }
}
