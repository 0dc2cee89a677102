package import FlowModel
import StorageKit

/// A column-oriented copy of a few fields of a merged shard, one block per granule and
/// field: what a needle question over weeks reads instead of the rows.
///
/// Why: a merged day is sorted by namespaces and owners, so one address or port is spread
/// over a quarter of the day's granules, and a row store decompresses every such granule
/// whole (about 350 KB) to read two columns of it: 70% of an address count over 30 days
/// went to zstd (bench/NOTES.md, "Long ranges"). MergeTree reads one column instead. The
/// blocks give flowrec the same: `SELECT count(*), sum(Bytes) ... WHERE DstAddr = ?`
/// decompresses the `DstAddr` blocks and the `Bytes` blocks of the granules that match,
/// a few hundred KB per day, and no rows.
///
/// What it costs: about 4.6 bytes per flow at level 19 on a merged day, 17% (the `Bytes`
/// column is half of it), which is why only merged shards carry it (and
/// `store.mergeColumnBlocks` can leave it out): hourly shards at seal are held to 30
/// bytes per flow, and a merge is where weeks-long questions get their shards.
///
/// Format (`column_blocks`, docs/on-disk-format.md): one row per field and granule of the
/// skip index (`granules`, same row ids), `data` the granule's values in row order as
/// varints: 0 for NULL, else `zigzag(value) + 1` (text fields: the string id). Rows are
/// written field by field, so each field's blocks are contiguous in the file and the
/// compressor puts a frame boundary where each field begins (`FrameLayout`): a question
/// decompresses the fields it reads, not the others. `meta.column_blocks` lists the fields
/// in this order; a shard without it (or with another list) is read through its rows.
package enum ColumnBlocks {
    /// Fields that needle questions filter on and what they aggregate: addresses, ports
    /// and protocol (what the granules' Bloom filters are weakest for, since the seal order
    /// scatters them) and the counters. Each is stored as an integer or a string id and
    /// read by the `flows` view as it is stored (checked by a test).
    package static let fields: [FieldID] = ["SrcAddr", "DstAddr", "SrcPort", "DstPort", "Proto", "Bytes", "Packets"]
        .map(FlowSchema.id(of:))

    /// `meta` key naming the fields a shard's blocks hold, in order.
    package static let metaKey = "column_blocks"
    package static var metaValue: String { fields.map(\.name).joined(separator: ",") }

    /// Where `field` is in `fields`, or nil.
    package static func position(of field: FieldID) -> Int? { fields.firstIndex(of: field) }

    /// The table and its index, after the skip index's tables: written to
    /// `migrations/shard/0004_column_blocks.sql` as well.
    package static var createSQL: String {
        """
        -- flowrec shard schema: the column blocks of a merged shard (created by the merger).
        -- Generated from ColumnBlocks (Sources/ShardStore/Index/ColumnBlocks.swift) by
        -- `flowrec schema --write-migrations`.

        -- Per field of meta.column_blocks and granule of `granules`: the granule's values of
        -- that field in row order, each a varint: 0 for NULL, else zigzag(value) + 1 (text
        -- fields: the id of the string in `strings`). Rows are in field order, then granule order.
        CREATE TABLE column_blocks (
            field TEXT NOT NULL,
            first_rowid INTEGER NOT NULL,
            last_rowid INTEGER NOT NULL,
            data BLOB NOT NULL
        );
        CREATE UNIQUE INDEX column_blocks_by_field ON column_blocks (field, first_rowid);

        """
    }

    static let insertSQL = "INSERT INTO column_blocks (field, first_rowid, last_rowid, data) VALUES (?1, ?2, ?3, ?4)"

    /// Appends one value's code to a block.
    @inline(__always)
    static func append(_ value: Int64?, to block: inout [UInt8]) {
        TrafficSeries.appendVarint(value.map { TrafficSeries.zigzag($0) &+ 1 } ?? 0, to: &block)
    }

    /// Whether `value` can be coded (zigzag(value) + 1 must not wrap to 0, the NULL code).
    @inline(__always)
    static func fits(_ value: Int64) -> Bool { value != .min }

    /// Decodes a block into `values` and `present` (cleared first), `rows` values exactly;
    /// false when the block is malformed or holds another number of values.
    package static func decode(_ block: UnsafeRawBufferPointer, rows: Int, values: inout [Int64], present: inout [Bool]) -> Bool {
        values.removeAll(keepingCapacity: true)
        present.removeAll(keepingCapacity: true)
        var offset = 0
        while offset < block.count {
            guard let code = TrafficSeries.readVarint(block, &offset) else { return false }
            if code == 0 {
                values.append(0)
                present.append(false)
            } else {
                values.append(TrafficSeries.unzigzag(code &- 1))
                present.append(true)
            }
        }
        return values.count == rows
    }

    /// A hash of a sequence of (row, field, value) the merge compares between the rows it
    /// copied and the blocks read back from the compressed file.
    struct ContentHash {
        private(set) var value: UInt64 = 0xC01B_1005

        mutating func add(row: Int64, field: Int, _ stored: Int64?) {
            var h = UInt64(bitPattern: row) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(field) &* 0xC2B2_AE3D_27D4_EB4F
            h ^= stored.map { UInt64(bitPattern: $0) &* 0x1656_67B1_9E37_79F9 ^ 1 } ?? 0
            h ^= h >> 31
            h &*= 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            value &+= h  // order-free, so rows and blocks may be visited in either order
        }

        /// Adds row `row`'s values of the blocks' fields, read from `statement` at
        /// `columns` (one per field of `ColumnBlocks.fields`, in order).
        mutating func add(row: Int64, of statement: SQLiteStatement, columns: [Int32]) {
            for (i, c) in columns.enumerated() { add(row: row, field: i, statement.isNull(c) ? nil : statement.integer(c)) }
        }
    }
}

/// Builds a shard's column blocks from its rows in the shard's order, granule by granule
/// (the granules of `ShardIndexBuilder`, same size), then writes them field by field.
final class ColumnBlocksBuilder {
    private let granuleRows: Int64
    private var current: [[UInt8]]
    /// Per field, the finished blocks: (first row id, last row id, data).
    private var blocks: [[(Int64, Int64, [UInt8])]]
    private var rows: Int64 = 0
    private var granuleStart: Int64 = 1
    /// False once a value cannot be coded: the shard then gets no blocks (read by rows).
    private(set) var isComplete = true
    private let stored = ColumnBlocks.fields.map(\.index)
    /// Of the values added, for the merge's check against the file.
    private(set) var hash = ColumnBlocks.ContentHash()

    init(granuleRows: Int64 = SkipIndex.granuleRows) {
        self.granuleRows = granuleRows
        current = Array(repeating: [], count: ColumnBlocks.fields.count)
        blocks = Array(repeating: [], count: ColumnBlocks.fields.count)
    }

    /// The next row: `value(fieldIndex)` is the stored value of `FlowSchema.fields[fieldIndex]`
    /// (string ids for text), nil when NULL.
    func add(_ value: (Int) -> Int64?) {
        rows += 1
        for (i, field) in stored.enumerated() {
            let v = value(field)
            if let v, !ColumnBlocks.fits(v) { isComplete = false }
            ColumnBlocks.append(v, to: &current[i])
            hash.add(row: rows, field: i, v)
        }
        if rows - granuleStart + 1 == granuleRows { closeGranule() }
    }

    private func closeGranule() {
        guard rows >= granuleStart else { return }
        for i in current.indices {
            blocks[i].append((granuleStart, rows, current[i]))
            current[i] = []
            current[i].reserveCapacity(blocks[i].last!.2.count)
        }
        granuleStart = rows + 1
    }

    /// Creates `column_blocks` in `db` and fills it, unless a value could not be coded;
    /// true when it wrote them (and `meta.column_blocks`).
    func write(into db: SQLiteDatabase) throws(SQLiteError) -> Bool {
        closeGranule()
        guard isComplete else { return false }
        try db.execute(ColumnBlocks.createSQL)
        try db.transaction { () throws(SQLiteError) in
            let insert = try db.prepare(ColumnBlocks.insertSQL)
            for (i, field) in ColumnBlocks.fields.enumerated() {
                for (first, last, data) in blocks[i] {
                    insert.reset()
                    insert.bind(1, field.name)
                    insert.bind(2, first)
                    insert.bind(3, last)
                    data.withUnsafeBytes { insert.bind(4, blob: $0) }
                    try insert.step()
                }
            }
            let meta = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            meta.bind(1, ColumnBlocks.metaKey)
            meta.bind(2, ColumnBlocks.metaValue)
            try meta.step()
        }
        return true
    }
}

extension ShardReader {
    /// Decodes the block of `field` for `granule` into `values` and `present`; false when
    /// the shard has no such block or it does not hold the granule's rows.
    package func readColumnBlock(_ field: FieldID, of granule: Granule, values: inout [Int64], present: inout [Bool]) throws -> Bool {
        var decoded = false
        let found = try withColumnBlock(field, firstRowID: granule.firstRowID) { block in
            decoded = ColumnBlocks.decode(block, rows: Int(granule.rowCount), values: &values, present: &present)
        }
        return found && decoded
    }

    /// The content hash of every column block of the shard, visited granule by granule
    /// (`ColumnBlocks.ContentHash`); nil when a block is missing or malformed.
    func columnBlocksHash() throws -> UInt64? {
        guard try hasColumnBlocks(), let granules = try granules() else { return nil }
        var hash = ColumnBlocks.ContentHash()
        var values: [Int64] = [], present: [Bool] = []
        for granule in granules {
            for (i, field) in ColumnBlocks.fields.enumerated() {
                guard try readColumnBlock(field, of: granule, values: &values, present: &present) else { return nil }
                for k in values.indices { hash.add(row: granule.firstRowID + Int64(k), field: i, present[k] ? values[k] : nil) }
            }
        }
        return hash.value
    }

    /// Whether the shard's column blocks hold exactly its rows' values; true for a shard
    /// without blocks. `flowrec fsck` asks, since a query answered from the blocks never
    /// sees the rows.
    func columnBlocksMatchRows() throws -> Bool {
        guard try hasColumnBlocks() else { return true }
        var rows = ColumnBlocks.ContentHash(), rowID: Int64 = 0
        let names = ColumnBlocks.fields.map { "\"\($0.name)\"" }.joined(separator: ", ")
        let columns = ColumnBlocks.fields.indices.map { Int32($0) }
        try query("SELECT \(names) FROM flow_rows ORDER BY rowid") { row in
            rowID += 1
            rows.add(row: rowID, of: row, columns: columns)
        }
        return try columnBlocksHash() == rows.value
    }
}
