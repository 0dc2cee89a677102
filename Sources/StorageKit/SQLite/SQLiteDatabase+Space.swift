/// Giving deleted rows' space back to the volume: what retention needs of the store-wide
/// files (rollups, dead letters), which shrink by deleting rows rather than whole files.
extension SQLiteDatabase {
    /// Files of older flowrecs up to this size are vacuumed into incremental auto-vacuum
    /// when opened (a second or two); larger ones keep their mode: deleting from them
    /// frees pages for later rows but does not shrink the file.
    package static let autoVacuumConvertibleBytes: Int64 = 256 << 20

    /// Puts the file in incremental auto-vacuum, so `giveBackFreePages()` can shrink it.
    /// The mode can only be chosen before the first table, or by a VACUUM, which a file
    /// written by an older flowrec gets here when it is small. Call before creating tables.
    package func useIncrementalAutoVacuum() throws(SQLiteError) {
        if try scalarInteger("PRAGMA page_count") == 0 {
            try execute("PRAGMA auto_vacuum=INCREMENTAL;")
        } else if try scalarInteger("PRAGMA auto_vacuum") == 0, fileSize(path) < Self.autoVacuumConvertibleBytes {
            try execute("PRAGMA auto_vacuum=INCREMENTAL; VACUUM;")
        }
    }

    /// Whether deleting rows gives space back to the volume (incremental auto-vacuum).
    package var shrinksWhenRowsAreDeleted: Bool { (try? scalarInteger("PRAGMA auto_vacuum")) == 2 }

    /// Bytes the rows take: the file's pages less the free ones (what a size limit counts).
    package func liveBytes() throws(SQLiteError) -> Int64 {
        let pages = try scalarInteger("PRAGMA page_count") ?? 0
        let free = try scalarInteger("PRAGMA freelist_count") ?? 0
        return (pages - free) * (try scalarInteger("PRAGMA page_size") ?? 4096)
    }

    /// Returns free pages to the volume when the file allows it, and empties the WAL that
    /// the vacuum wrote, so the space is free on disk at once.
    package func giveBackFreePages() throws(SQLiteError) {
        guard shrinksWhenRowsAreDeleted else { return }
        try execute("PRAGMA incremental_vacuum;")
        try execute("PRAGMA wal_checkpoint(TRUNCATE);")
    }
}
