import FlowModel
import Foundation
import StorageKit

/// Merges consecutive sealed shards into one larger sealed shard: MergeTree's merge for
/// a store of sorted, immutable SQLite shards. Fewer, larger shards are opened and
/// indexed once instead of many times, and they compress better (more of a
/// conversation's flows side by side).
///
/// Steps, each leaving either the sources or the merged shard complete:
/// 1. one dictionary for all the sources, its ids in value order;
/// 2. the sources' rows streamed into a compact copy in the seal order (each source is
///    already in that order, so this is a k-way merge, not a sort), strings remapped,
///    with the skip index built on the way and the union of the sources' positions;
/// 3. compressed to `<id>.sqlite.zst.tmp` and verified in place: `quick_check`, the
///    content checksum of the compact copy, and the same rows as the sources' (row count,
///    and a sum of row hashes over the values, string ids resolved);
/// 4. (`ShardStore.commit`) a journal names the merge, the file is renamed, the catalog
///    swaps the sources for the merged shard in one transaction; the sources' files are
///    removed later
///    (`ShardStore.removeMergedSourceFiles`). A crash before the rename leaves the
///    sources (temporary files go at the next start); after it, the next start finishes
///    the swap from the journal.
struct ShardMerger {
    let directory: URL
    let level: Int32
    let frameSize: Int
    /// Whether the merged shard gets column blocks (`MergePolicy.columnBlocks`).
    var columnBlocks = true

    struct Cancelled: Error {}

    /// What a merge wrote, for the swap, the catalog and the report.
    struct Result {
        let merged: Catalog.MergedShard
        /// The verified compressed file, renamed into place by the swap.
        let verifiedPath: String
        let compactBytes: Int64
        let seconds: Double
    }

    /// Merges `sources` (sealed, of one store) into shard `id`: a verified compressed
    /// file beside its final path, which `ShardStore.commit` renames and swaps in.
    func merge(_ sources: [ShardRecord], into id: ShardID, shouldCancel: () -> Bool = { false }) throws -> Result {
        let started = Date()
        let sealedPath = directory.appendingPathComponent(id.sealedRelativePath).path
        let compactPath = sealedPath + ".compact.tmp"
        let compressedPath = sealedPath + ".tmp"
        defer { try? FileManager.default.removeItem(atPath: compactPath) }
        try FileManager.default.createDirectory(atPath: (sealedPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        do {
            for path in [compactPath, compressedPath] { try? FileManager.default.removeItem(atPath: path) }
            let readers = try sources.map { try ShardReader(path: directory.appendingPathComponent($0.path).path) }
            let copy = try writeCompactCopy(readers, sources: sources, id: id, to: compactPath, shouldCancel: shouldCancel)
            CrashPoint.reached("merge.compacted")
            let compactBytes = fileSize(compactPath)
            try SeekableZstd.compress(source: compactPath, destination: compressedPath, level: level, frameSize: frameSize,
                                      boundaries: copy.frameBoundaries, shouldCancel: shouldCancel)
            if shouldCancel() { throw Cancelled() }
            CrashPoint.reached("merge.compressed")
            try verify(compressedPath, id: id, expected: copy)
            CrashPoint.reached("merge.verified")
            let merged = Catalog.MergedShard(
                id: id, relativePath: id.sealedRelativePath, rows: copy.rows, minTimeMs: copy.minTimeMs, maxTimeMs: copy.maxTimeMs,
                bytes: fileSize(compressedPath), checksum: copy.checksum, level: level, positions: copy.positions,
                summaries: copy.summaries, sources: sources)
            return Result(merged: merged, verifiedPath: compressedPath, compactBytes: compactBytes,
                          seconds: Date().timeIntervalSince(started))
        } catch {
            try? FileManager.default.removeItem(atPath: compressedPath)
            if error.isDiskFull {
                throw ShardStoreError(.other, "merging into \(id): the disk is full. The sources are kept and stay readable; the merge is tried again later",
                                      shard: id, cause: error)
            }
            throw error
        }
    }

    /// What the compact copy holds, for verifying the compressed file and for the catalog.
    struct Copy {
        var rows: Int64 = 0
        var checksum: UInt64 = 0
        /// The sum of the rows' value hashes (strings by their text): equal for the sources
        /// and the merged shard when they hold the same flows.
        var valueSum: UInt64 = 0
        var minTimeMs: Int64?
        var maxTimeMs: Int64?
        var positions: [SourcePartition: PositionRange] = [:]
        var summaries: [SkipSummary] = []
        /// Where the compressed shard's frames begin (`FrameLayout`).
        var frameBoundaries: [Int64] = []
        /// The column blocks' content hash, when the merged shard has them (`ColumnBlocks`).
        var columnBlocksHash: UInt64?
    }

    private func writeCompactCopy(_ readers: [ShardReader], sources: [ShardRecord], id: ShardID, to path: String,
                                  shouldCancel: () -> Bool) throws -> Copy {
        // 1. One dictionary, ids in value order (so they compare as the values do).
        var sourceStrings: [[String]] = []
        var all = Set<String>()
        for reader in readers {
            var strings = [""]
            try reader.query("SELECT id, value FROM strings ORDER BY id") { row in
                let id = Int(row.integer(0))
                while strings.count < id { strings.append("") }
                strings.append(row.text(1) ?? "")
            }
            all.formUnion(strings.dropFirst())
            sourceStrings.append(strings)
        }
        let values = all.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var mergedID: [String: Int64] = [:]
        mergedID.reserveCapacity(values.count)
        for (i, value) in values.enumerated() { mergedID[value] = Int64(i + 1) }
        let maps: [[Int64]] = sourceStrings.map { strings in strings.enumerated().map { $0.offset == 0 ? 0 : mergedID[$0.element] ?? 0 } }
        let valueHashes: [[UInt64]] = sourceStrings.map { $0.map(ValueRowHash.hash(text:)) }

        // The output keeps times end-relative when every source does (all values in range).
        let encoding: ShardSchema.TimeEncoding = readers.allSatisfy { $0.timeEncoding == .endRelative } ? .endRelative : .plain
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA secure_delete=OFF;")
        try db.execute(ShardSchema.createSQL(timeEncoding: encoding))
        var copy = Copy()
        try db.transaction { () throws(SQLiteError) in
            let insert = try db.prepare(ShardSchema.insertStringSQL)
            for (i, value) in values.enumerated() {
                insert.reset()
                insert.bind(1, Int64(i + 1))
                insert.bind(2, value)
                try insert.step()
            }
        }

        // 2. Rows, k-way merged in the seal order.
        let ranks = try StringRanks(table: "strings", in: db)
        let index = ShardIndexBuilder(ranks: ranks, registeredOn: db)
        let blocks = columnBlocks ? ColumnBlocksBuilder() : nil
        let cursors = try readers.enumerated().map { i, reader in
            try SourceCursor(reader: reader, map: maps[i], sealedInOrder: try reader.meta(SkipIndex.sealOrderMetaKey) == SkipIndex.sealOrder)
        }
        var heap = SourceHeap(cursors: cursors)
        let insert = try db.prepare(ShardSchema.insertFlowSQL)
        let columnCount = ShardSchema.allColumns.count
        let textStored = FlowSchema.fields.map(\.kind.isTextStored)
        // Locals: static `let`s cost a `swift_once` check at each of the 116 columns a row.
        let start = ShardSchema.TimeEncoding.startColumn, end = ShardSchema.TimeEncoding.endColumn
        let received = ShardSchema.TimeEncoding.receivedColumn
        let indexed = SkipIndex.fields.map(\.index)
        let quotedColumn = Int32(ShardSchema.allColumns.firstIndex(of: "\"_quoted\"")!)
        let nullsColumn = Int32(ShardSchema.allColumns.firstIndex(of: "\"_nulls\"")!)
        let seriesFields = TrafficSeries.fields.map(\.index), seriesValues = TrafficSeries.values.map(\.index)
        let seriesTexts = TrafficSeries.bookkeeping.map { name in Int32(ShardSchema.allColumns.firstIndex(of: "\"\(name)\"")!) }
        var stored = [Int64?](repeating: nil, count: FlowSchema.count)
        try db.execute("BEGIN")
        while let source = heap.next() {
            let cursor = cursors[source]
            let row = cursor.statement
            // Decoded values, strings remapped; the source's value hash on the way.
            var valueHash = ValueRowHash()
            for c in 0..<FlowSchema.count {
                let column = Int32(c)
                if row.isNull(column) { stored[c] = nil; continue }
                let value = row.integer(column)
                if textStored[c] {
                    guard value > 0, value < Int64(maps[source].count) else {
                        throw ShardStoreError(.verificationFailed, "merging into \(id): shard \(sources[source].id) refers to string \(value), which it does not hold; nothing was changed (run `flowrec fsck`)")
                    }
                    stored[c] = maps[source][Int(value)]
                    valueHash.add(integer: Int64(bitPattern: valueHashes[source][Int(value)]), column: c)
                } else {
                    stored[c] = value
                    valueHash.add(integer: value, column: c)
                }
            }
            for c in FlowSchema.count..<columnCount {
                if let text = row.text(Int32(c)) { valueHash.add(text: text, column: c) }
            }
            copy.valueSum &+= valueHash.finish(columns: columnCount)
            copy.rows += 1
            if let t = stored[end] {
                copy.minTimeMs = min(copy.minTimeMs ?? t, t)
                copy.maxTimeMs = max(copy.maxTimeMs ?? t, t)
            }
            index.addRow(end: stored[end]) { stored[indexed[$0]] }
            index.addBookkeeping(quoted: row.text(quotedColumn), nulls: row.text(nullsColumn))
            blocks?.add { stored[$0] }
            // SQLite's text stays valid until the cursor moves (after this row is copied).
            index.series.add(end: stored[end], stored: { stored[seriesFields[$0]] },
                             text: { i in row.withText(seriesTexts[i]) { UnsafeRawBufferPointer($0) } },
                             value: { stored[seriesValues[$0]] })
            // Encoded as the output stores times.
            insert.reset()
            for c in 0..<FlowSchema.count {
                guard var value = stored[c] else { insert.bindNull(Int32(c + 1)); continue }
                if encoding == .endRelative, let e = stored[end], c == start || c == received {
                    value = ShardSchema.TimeEncoding.encode(value, isStart: c == start, end: e)
                }
                insert.bind(Int32(c + 1), value)
            }
            for c in FlowSchema.count..<columnCount {
                if let text = row.text(Int32(c)) { insert.bind(Int32(c + 1), text) } else { insert.bindNull(Int32(c + 1)) }
            }
            try insert.step()
            try cursor.advance()
            if copy.rows % 65_536 == 0, shouldCancel() {
                try? db.execute("ROLLBACK")
                throw Cancelled()
            }
        }
        try db.execute("COMMIT")
        guard copy.rows == sources.reduce(0, { $0 + $1.rowCount }) else {
            throw ShardStoreError(.verificationFailed, "merging into \(id): read \(copy.rows) rows of sources the catalog says hold \(sources.reduce(0) { $0 + $1.rowCount }); nothing was changed")
        }
        copy.summaries = try index.write(into: db)
        if let blocks, try blocks.write(into: db) { copy.columnBlocksHash = blocks.hash.value }

        // Positions: per source partition, the union of the sources'.
        for reader in readers {
            for (key, range) in try reader.positions() {
                var merged = copy.positions[key] ?? PositionRange(first: nil, last: nil, highWater: nil)
                if let f = range.first { merged.first = min(merged.first ?? f, f) }
                if let l = range.last { merged.last = max(merged.last ?? l, l) }
                if let h = range.highWater { merged.highWater = max(merged.highWater ?? h, h) }
                copy.positions[key] = merged
            }
        }
        try db.transaction { () throws(SQLiteError) in
            let position = try db.prepare("INSERT INTO positions (source, partition, first_position, last_position, high_water) VALUES (?1, ?2, ?3, ?4, ?5)")
            for (key, range) in copy.positions {
                position.reset()
                position.bind(1, key.source)
                position.bind(2, Int64(key.partition))
                if let v = range.first { position.bind(3, v) } else { position.bindNull(3) }
                if let v = range.last { position.bind(4, v) } else { position.bindNull(4) }
                if let v = range.highWater { position.bind(5, v) } else { position.bindNull(5) }
                try position.step()
            }
        }
        copy.checksum = try ShardChecksum.compute(db, timeEncoding: encoding).checksum
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        var meta: [(String, String)] = [
            ("schema_version", String(ShardSchema.version)), ("window_start_ms", String(id.windowStartMs)),
            ("window_end_ms", String(id.windowEndMs)), ("part", String(id.part)), ("created_ms", String(nowMs)),
            ("row_count", String(copy.rows)), ("content_checksum", String(copy.checksum, radix: 16)), ("sealed_ms", String(nowMs)),
            (SkipIndex.sealOrderMetaKey, SkipIndex.sealOrder), ("merged_from", sources.map(\.id.description).joined(separator: ",")),
            (ShardReader.stringsOrderMetaKey, ShardReader.stringsInValueOrder),
        ]
        if let t = copy.minTimeMs { meta.append(("min_time_ms", String(t))) }
        if let t = copy.maxTimeMs { meta.append(("max_time_ms", String(t))) }
        if encoding != .plain { meta.append((ShardSchema.TimeEncoding.metaKey, encoding.rawValue)) }
        try db.transaction { () throws(SQLiteError) in
            let statement = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            for (key, value) in meta {
                statement.reset()
                statement.bind(1, key)
                if let number = Int64(value), key != "content_checksum" { statement.bind(2, number) } else { statement.bind(2, value) }
                try statement.step()
            }
            try db.execute("""
                INSERT OR REPLACE INTO meta (key, value)
                SELECT 'bytes_total', sum("Bytes") FROM flow_rows UNION ALL SELECT 'packets_total', sum("Packets") FROM flow_rows
                """)
        }
        copy.frameBoundaries = try FrameLayout.boundaries(of: db)
        return copy
    }

    /// The compressed file, opened as readers will open it, holds exactly the copy.
    private func verify(_ path: String, id: ShardID, expected: Copy) throws {
        let check = try ShardReader(path: path)
        if let problem = try check.quickCheck() {
            throw ShardStoreError(.verificationFailed, "merging into \(id): the compressed copy fails SQLite's quick_check (\(problem)); the sources are kept")
        }
        let (rows, checksum) = try check.contentChecksum()
        var strings = [UInt64(0)]
        try check.query("SELECT value FROM strings ORDER BY id") { strings.append(ValueRowHash.hash(text: $0.text(0) ?? "")) }
        var valueSum: UInt64 = 0
        let columnCount = ShardSchema.allColumns.count
        let textStored = FlowSchema.fields.map(\.kind.isTextStored)
        // The rows' values of the column blocks' fields, to hold the blocks to.
        var rowsBlockHash = ColumnBlocks.ContentHash(), rowID: Int64 = 0
        let blockColumns = ColumnBlocks.fields.map { Int32($0.index) }
        try check.query("SELECT \(ShardSchema.decodedColumns(encoding: check.timeEncoding).joined(separator: ", ")) FROM flow_rows ORDER BY rowid") { row in
            rowID += 1
            rowsBlockHash.add(row: rowID, of: row, columns: blockColumns)
            var hash = ValueRowHash()
            for c in 0..<FlowSchema.count where !row.isNull(Int32(c)) {
                let value = row.integer(Int32(c))
                hash.add(integer: textStored[c] ? Int64(bitPattern: strings[Int(value)]) : value, column: c)
            }
            for c in FlowSchema.count..<columnCount {
                if let text = row.text(Int32(c)) { hash.add(text: text, column: c) }
            }
            valueSum &+= hash.finish(columns: columnCount)
        }
        guard rows == expected.rows, checksum == expected.checksum, valueSum == expected.valueSum else {
            throw ShardStoreError(.verificationFailed, "merging into \(id): the compressed copy holds \(rows) rows (checksum \(String(checksum, radix: 16)), values \(String(valueSum, radix: 16))), the sources \(expected.rows) (\(String(expected.checksum, radix: 16)), \(String(expected.valueSum, radix: 16))); the sources are kept")
        }
        if let expectedHash = expected.columnBlocksHash {
            let found = try check.columnBlocksHash()
            guard found == expectedHash, rowsBlockHash.value == expectedHash else {
                throw ShardStoreError(.verificationFailed, "merging into \(id): the compressed copy's column blocks do not hold the rows' values (\(found.map { String($0, radix: 16) } ?? "unreadable"), expected \(String(expectedHash, radix: 16))); the sources are kept")
            }
        }
    }
}

/// A row hash over a flow's values, strings by their text (not their shard-local id),
/// so two shards holding the same flows under different dictionaries agree.
struct ValueRowHash {
    private var row = ShardChecksum.RowHasher()

    mutating func add(integer value: Int64, column: Int) { row.add(integer: value, column: column) }
    mutating func add(text: String, column: Int) { row.add(text: text, column: column) }
    mutating func finish(columns: Int) -> UInt64 { row.finish(columns: columns) }

    static func hash(text: String) -> UInt64 {
        var text = text
        return text.withUTF8 { ShardChecksum.hashBytes(0x5641_4C55_4553_0000, $0) }
    }
}

/// One source of a merge, read in the seal order: a sealed shard already in it is read
/// straight through; one sealed in an older order is sorted first (its keys in memory,
/// then its rows by row id).
final class SourceCursor {
    let statement: SQLiteStatement
    private let reader: ShardReader
    /// For a source read by row id: its row ids in the seal order, and where we are.
    private let order: [Int64]?
    private var position = 0
    private(set) var key = SortKey()
    private(set) var isDone = false
    private let map: [Int64]
    private let sortColumns = SkipIndex.sortFields.map { Int32($0.index) }
    private let endColumn = Int32(FlowSchema.requiredField.index)

    /// The seal order's key of a row, with merged (value-ordered) string ids.
    struct SortKey: Comparable {
        var fields: (Int64, Int64, Int64, Int64) = (0, 0, 0, 0)
        var time: Int64 = .min

        static func < (a: SortKey, b: SortKey) -> Bool {
            if a.fields != b.fields { return a.fields < b.fields }
            return a.time < b.time
        }

        static func == (a: SortKey, b: SortKey) -> Bool { a.fields == b.fields && a.time == b.time }
    }

    init(reader: ShardReader, map: [Int64], sealedInOrder: Bool) throws {
        self.reader = reader
        self.map = map
        let columns = ShardSchema.decodedColumns(encoding: reader.timeEncoding).joined(separator: ", ")
        if sealedInOrder {
            order = nil
            statement = try reader.db.prepare("SELECT \(columns) FROM flow_rows ORDER BY rowid")
        } else {
            var keyed: [(SortKey, Int64)] = []
            let names = SkipIndex.sortFields.map { "\"\($0.name)\"" }.joined(separator: ", ")
            try reader.query("SELECT rowid, \(names), \"TimeFlowEndMs\" FROM flow_rows") { row in
                func id(_ c: Int32) -> Int64 { row.isNull(c) ? 0 : map[Int(row.integer(c))] }
                keyed.append((SortKey(fields: (id(1), id(2), id(3), id(4)), time: row.isNull(5) ? .min : row.integer(5)), row.integer(0)))
            }
            keyed.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            order = keyed.map(\.1)
            statement = try reader.db.prepare("SELECT \(columns) FROM flow_rows WHERE rowid = ?1")
        }
        try advance()
    }

    /// Moves to the next row (or the end) and computes its key.
    func advance() throws {
        if let order {
            guard position < order.count else { isDone = true; return }
            statement.reset()
            statement.bind(1, order[position])
            position += 1
            guard try statement.step() else { isDone = true; return }
        } else {
            guard try statement.step() else { isDone = true; return }
        }
        func id(_ c: Int32) -> Int64 { statement.isNull(c) ? 0 : map[Int(statement.integer(c))] }
        key = SortKey(fields: (id(sortColumns[0]), id(sortColumns[1]), id(sortColumns[2]), id(sortColumns[3])),
                      time: statement.isNull(endColumn) ? .min : statement.integer(endColumn))
    }
}

/// The sources whose current row comes first in the seal order (ties: the earlier source).
struct SourceHeap {
    private let cursors: [SourceCursor]
    private var heap: [Int]

    init(cursors: [SourceCursor]) {
        self.cursors = cursors
        heap = []
        for i in cursors.indices where !cursors[i].isDone { push(i) }
    }

    private func before(_ a: Int, _ b: Int) -> Bool {
        let x = cursors[a].key, y = cursors[b].key
        return x != y ? x < y : a < b
    }

    private mutating func push(_ i: Int) {
        heap.append(i)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// The source to take the next row from; the caller advances it. Re-sorts the source
    /// taken last time first (its key changed).
    private var pending: Int?

    mutating func next() -> Int? {
        if let last = pending {
            pending = nil
            if !cursors[last].isDone { push(last) }
        }
        guard !heap.isEmpty else { return nil }
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count, before(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count, before(heap[right], heap[smallest]) { smallest = right }
                guard smallest != parent else { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        pending = top
        return top
    }
}
