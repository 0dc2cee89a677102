package import CSQLite

/// The plumbing every flowrec virtual table shares: SQLite's vtab and cursor structs
/// extended with a pointer to the Swift object behind them (`flowrec_vtab`,
/// `flowrec_vtab_cursor` in the CSQLite shim), allocated and freed here so each table's
/// module only says what is particular to it.
package enum VirtualTableSupport {
    /// A module's functions and the object its tables serve, in one allocation that
    /// SQLite owns once registered.
    private struct RegisteredModule {
        var module: sqlite3_module
        /// Not retained: the owner holds the connection (a retain would be a cycle).
        let owner: UnsafeMutableRawPointer
    }

    /// Registers `module` as `name` on `db`, for tables served by `owner`.
    ///
    /// SQLite calls through the module until the connection is closed for good, which
    /// can be after its Swift owner is gone: a table is disconnected while the connection
    /// closes (or, closed with statements alive, when the last one is finalized). So the
    /// module is not the owner's to free: SQLite frees it (`releaseModule`) when it is
    /// done with it, as it does when registering fails. It was freed by the owner's
    /// `deinit`, before its connection closed, and the close then called a function
    /// pointer read from freed memory: a rare crash, under load, in the console plugin's
    /// test (`flowrec sql` crashes every time with `MALLOC_PERTURB_` and no tcache).
    package static func register(_ module: sqlite3_module, as name: String, owner: AnyObject, on db: OpaquePointer) -> Int32 {
        let registered = UnsafeMutablePointer<RegisteredModule>.allocate(capacity: 1)
        registered.initialize(to: RegisteredModule(module: module, owner: Unmanaged.passUnretained(owner).toOpaque()))
        let functions = (UnsafeMutableRawPointer(registered) + MemoryLayout<RegisteredModule>.offset(of: \.module)!)
            .assumingMemoryBound(to: sqlite3_module.self)
        return sqlite3_create_module_v2(db, name, functions, registered, releaseModule)
    }

    /// The destructor of `register`'s allocation, called by SQLite.
    private static let releaseModule: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
        guard let registered = raw?.assumingMemoryBound(to: RegisteredModule.self) else { return }
        registered.deinitialize(count: 1)
        registered.deallocate()
    }

    /// xCreate/xConnect's body: declares the table's columns and allocates the vtab that
    /// carries the owner `register` was given (`moduleData` is xConnect's `pAux`).
    package static func connect(_ db: OpaquePointer?, moduleData: UnsafeMutableRawPointer?, declaration: String,
                        _ vtabOut: UnsafeMutablePointer<UnsafeMutablePointer<sqlite3_vtab>?>?) -> Int32 {
        guard let moduleData else { return SQLITE_ERROR }
        let rc = sqlite3_declare_vtab(db, declaration)
        guard rc == SQLITE_OK else { return rc }
        let owner = moduleData.assumingMemoryBound(to: RegisteredModule.self).pointee.owner
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

    /// The object a vtab carries (not retained by it: it must outlive every statement
    /// that reads the table).
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
