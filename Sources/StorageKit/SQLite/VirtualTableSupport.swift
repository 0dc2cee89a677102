package import CSQLite

/// The plumbing every flowrec virtual table shares: SQLite's vtab and cursor structs
/// extended with a pointer to the Swift object behind them (`flowrec_vtab`,
/// `flowrec_vtab_cursor` in the CSQLite shim), allocated and freed here so each table's
/// module only says what is particular to it.
package enum VirtualTableSupport {
    /// xCreate/xConnect's body: declares the table's columns and allocates the vtab that
    /// carries `owner` (the module's user data).
    package static func connect(_ db: OpaquePointer?, owner: UnsafeMutableRawPointer?, declaration: String,
                        _ vtabOut: UnsafeMutablePointer<UnsafeMutablePointer<sqlite3_vtab>?>?) -> Int32 {
        let rc = sqlite3_declare_vtab(db, declaration)
        guard rc == SQLITE_OK else { return rc }
        let table = UnsafeMutablePointer<flowrec_vtab>.allocate(capacity: 1)
        table.initialize(to: flowrec_vtab(base: sqlite3_vtab(), owner: owner))
        vtabOut?.pointee = UnsafeMutableRawPointer(table).assumingMemoryBound(to: sqlite3_vtab.self)
        return SQLITE_OK
    }

    /// xDisconnect and xDestroy: frees what `connect` allocated.
    package static let disconnect: @convention(c) (UnsafeMutablePointer<sqlite3_vtab>?) -> Int32 = { vtab in
        guard let vtab else { return SQLITE_OK }
        let table = UnsafeMutableRawPointer(vtab).assumingMemoryBound(to: flowrec_vtab.self)
        table.deinitialize(count: 1)
        table.deallocate()
        return SQLITE_OK
    }

    /// The object a vtab carries (not retained by it: it must outlive the connection).
    package static func owner<Owner: AnyObject>(of vtab: UnsafeMutablePointer<sqlite3_vtab>?, as _: Owner.Type) -> Owner? {
        guard let vtab, let raw = UnsafeMutableRawPointer(vtab).assumingMemoryBound(to: flowrec_vtab.self).pointee.owner else { return nil }
        return Unmanaged<Owner>.fromOpaque(raw).takeUnretainedValue()
    }

    /// xOpen's body: a cursor struct that retains `state` until `closeCursor`.
    package static func openCursor(_ state: AnyObject, _ cursorOut: UnsafeMutablePointer<UnsafeMutablePointer<sqlite3_vtab_cursor>?>?) -> Int32 {
        let cursor = UnsafeMutablePointer<flowrec_vtab_cursor>.allocate(capacity: 1)
        cursor.initialize(to: flowrec_vtab_cursor(base: sqlite3_vtab_cursor(), owner: Unmanaged.passRetained(state).toOpaque()))
        cursorOut?.pointee = UnsafeMutableRawPointer(cursor).assumingMemoryBound(to: sqlite3_vtab_cursor.self)
        return SQLITE_OK
    }

    /// xClose: releases the cursor's state and frees the struct.
    package static let closeCursor: @convention(c) (UnsafeMutablePointer<sqlite3_vtab_cursor>?) -> Int32 = { raw in
        guard let raw else { return SQLITE_OK }
        let cursor = UnsafeMutableRawPointer(raw).assumingMemoryBound(to: flowrec_vtab_cursor.self)
        if let state = cursor.pointee.owner { Unmanaged<AnyObject>.fromOpaque(state).release() }
        cursor.deinitialize(count: 1)
        cursor.deallocate()
        return SQLITE_OK
    }

    /// The state object `openCursor` stored, as `State`.
    package static func cursorState<State: AnyObject>(_ raw: UnsafeMutablePointer<sqlite3_vtab_cursor>?, as _: State.Type) -> State? {
        guard let raw, let state = UnsafeMutableRawPointer(raw).assumingMemoryBound(to: flowrec_vtab_cursor.self).pointee.owner else { return nil }
        return Unmanaged<State>.fromOpaque(state).takeUnretainedValue()
    }
}
