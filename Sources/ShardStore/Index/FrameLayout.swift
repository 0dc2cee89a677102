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
        guard !granuleStarts.isEmpty, let rows = try leaves(of: "flow_rows", holding: granuleStarts, in: db) else { return [] }
        // The page where a granule begins also holds the end of the one before: it is a
        // frame of its own, so reading either granule decompresses one page of the other,
        // not a whole frame.
        let granulePages = rows.holding.flatMap { [($0 - 1) * pageSize, $0 * pageSize] }
        return [(rows.first - 1) * pageSize] + granulePages + [rows.last * pageSize]
            + (try columnBlockBoundaries(of: db, pageSize: pageSize))
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
        guard let blocks = try leaves(of: "column_blocks", holding: fieldStarts, in: db) else { return [] }
        return blocks.holding.map { ($0 - 1) * pageSize } + [blocks.last * pageSize]
    }

    /// The leaf pages of `table` that hold each of `rows` (ascending row ids), and its
    /// first and last leaf page; nil when it has no leaves. The table's rows were inserted
    /// in row id order from 1, so its leaves in b-tree order, with their cell counts
    /// added up, give each leaf's first row id (SQLite's `dbstat`).
    private static func leaves(of table: String, holding rows: [Int64], in db: SQLiteDatabase)
        throws(SQLiteError) -> (holding: [Int64], first: Int64, last: Int64)? {
        let leaves = try db.prepare("SELECT pageno, ncell FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY path")
        leaves.bind(1, table)
        var holding: [Int64] = []
        var first: Int64?, last: Int64 = 0
        var firstRow: Int64 = 1
        var next = rows[...]
        while try leaves.step() {
            let page = leaves.integer(0), cells = leaves.integer(1)
            if first == nil { first = page }
            while let row = next.first, row < firstRow + cells {
                holding.append(page)
                next = next.dropFirst()
            }
            firstRow += cells
            last = max(last, page)
        }
        return first.map { (holding, $0, last) }
    }
}
