package import StorageKit

/// Where a sealed shard's zstd frames begin, so that each run of `granulesPerFrame`
/// granules is decompressed on its own, and the schema and dictionary (what every query
/// reads first) apart from the rows: a needle query then decompresses the small head,
/// the small tail (the skip index, `meta`) and the granules it reads, instead of whole
/// 1 MiB frames around each.
///
/// Rows inserted in row id order fill leaf pages in order, so a granule's rows are one
/// run of pages; SQLite's `dbstat` table gives each leaf page's cells in row order.
package enum FrameLayout {
    /// Byte offsets in the uncompressed shard at `db` (its compact copy) where a frame
    /// should begin: the first and last page of `flow_rows`' leaves, and around the page
    /// holding each granule's first row. Empty when the shard has no granules.
    package static func boundaries(of db: SQLiteDatabase) throws(SQLiteError) -> [Int64] {
        guard let pageSize = try db.scalarInteger("PRAGMA page_size") else { return [] }
        var granuleStarts: [Int64] = []
        let granules = try db.prepare("SELECT first_rowid FROM granules ORDER BY first_rowid")
        var index = 0
        while try granules.step() {
            if index % SkipIndex.granulesPerFrame == 0 { granuleStarts.append(granules.integer(0)) }
            index += 1
        }
        guard !granuleStarts.isEmpty else { return [] }
        // Leaves of flow_rows in row order: cumulative cells give each one's first row id.
        let leaves = try db.prepare("SELECT pageno, ncell FROM dbstat WHERE name = 'flow_rows' AND pagetype = 'leaf' ORDER BY path")
        var boundaries: [Int64] = []
        var firstRow: Int64 = 1
        var next = granuleStarts[...]
        var lastPage: Int64 = 0
        while try leaves.step() {
            let page = leaves.integer(0), cells = leaves.integer(1)
            if boundaries.isEmpty { boundaries.append((page - 1) * pageSize) }
            // The page where a granule begins also holds the end of the one before: it
            // is a frame of its own, so reading either granule decompresses one page of
            // the other, not a whole frame.
            while let start = next.first, start < firstRow + cells {
                boundaries.append((page - 1) * pageSize)
                boundaries.append(page * pageSize)
                next = next.dropFirst()
            }
            firstRow += cells
            lastPage = max(lastPage, page)
        }
        if lastPage > 0 { boundaries.append(lastPage * pageSize) }
        return boundaries + (try columnBlockBoundaries(of: db, pageSize: pageSize))
    }

    /// Where each field's column blocks begin, and where they end (`ColumnBlocks`): a
    /// needle question decompresses the two or three fields it reads, not all seven.
    /// Empty when the shard has none.
    private static func columnBlockBoundaries(of db: SQLiteDatabase, pageSize: Int64) throws(SQLiteError) -> [Int64] {
        guard try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'column_blocks'") == 1 else { return [] }
        // Rows are written field by field: the row id where each field's blocks begin.
        var fieldStarts: [Int64] = []
        let starts = try db.prepare("SELECT min(rowid) FROM column_blocks GROUP BY field ORDER BY 1")
        while try starts.step() { fieldStarts.append(starts.integer(0)) }
        let leaves = try db.prepare("SELECT pageno, ncell FROM dbstat WHERE name = 'column_blocks' AND pagetype = 'leaf' ORDER BY path")
        var boundaries: [Int64] = []
        var firstRow: Int64 = 1
        var next = fieldStarts[...]
        var lastPage: Int64 = 0
        while try leaves.step() {
            let page = leaves.integer(0), cells = leaves.integer(1)
            while let start = next.first, start < firstRow + cells {
                boundaries.append((page - 1) * pageSize)
                next = next.dropFirst()
            }
            firstRow += cells
            lastPage = max(lastPage, page)
        }
        if lastPage > 0 { boundaries.append(lastPage * pageSize) }
        return boundaries
    }
}
