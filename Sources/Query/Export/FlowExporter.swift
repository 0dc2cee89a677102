import StorageKit
import FlowModel
import Foundation
package import ShardStore

/// Exports the flows of a time range for offline analysis.
///
/// - JSON lines: each flow re-encoded as NetObserv wrote it (unknown fields included),
///   so the export equals the ingested records.
/// - SQLite: one plain file with a flat `flows` table, NetObserv's column names and
///   explicit types (INTEGER is 64-bit for sqlite3, DuckDB and ClickHouse's `sqlite()`).
/// - Parquet (`ParquetWriter`) and CSV (`CSV`): the fields asked for, in time order.
package struct FlowExporter {
    package let store: ShardStore
    /// Flows read ahead per block when exports read whole flows (`forEachWholeFlow`):
    /// JSON lines hold about 1 KiB each, a Parquet row about 6 KiB.
    package var jsonLinesBlockRows = 32_768
    package var parquetBlockRows = 16_384

    package init(store: ShardStore) { self.store = store }

    /// Writes every flow of the range that passes `whereSQL`, in `TimeFlowEndMs` order,
    /// as one JSON object per line to `write` (exactly as NetObserv wrote it: unknown
    /// fields, JSON nulls and numbers sent as strings included); returns the count.
    @discardableResult
    package func exportJSONLines(fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil, progress: (Int) -> Void = { _ in },
                                write: ([UInt8]) throws -> Void) throws -> Int {
        let encoder = FlowEncoder()
        var count = 0
        var query = FlowQuery()
        query.fromMs = fromMs
        query.toMs = toMs
        query.whereSQL = whereSQL
        try forEachWholeFlow(query, blockRows: jsonLinesBlockRows) { flow -> [UInt8] in
            var line: [UInt8] = []
            line.reserveCapacity(1_024)
            encoder.encode(flow, into: &line)
            line.append(UInt8(ascii: "\n"))
            return line
        } emit: { line in
            try write(line)
            count += 1
            if count % 100_000 == 0 { progress(count) }
            return true
        }
        return count
    }

    /// What a Parquet export wrote.
    package struct ParquetExport: Sendable {
        package var rows = 0
        /// Per column, values that had no faithful form in it and were written as null
        /// (the command warns; jsonl keeps them as they came).
        package var unconverted: [String: Int] = [:]
    }

    /// Every field of NetObserv's schema and `_extras` (the unknown fields as one JSON
    /// object): what a Parquet export holds unless `--fields` picks.
    package static let parquetDefaultFields = ShardSchemaColumns.fieldNames + [ParquetFlows.extras.name]

    /// Writes the flows of the range that pass `whereSQL`, in `TimeFlowEndMs` order, as
    /// a Parquet file at `path` (`ParquetWriter`, `ParquetFlows`): the `fields` given (all
    /// of NetObserv's and `_extras` by default), row groups of `rowGroupRows`, zstd pages,
    /// and flowrec's facts (schema version, range, filter, values written as null) in the
    /// footer.
    @discardableResult
    package func exportParquet(to path: String, fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil, fields: [String] = [],
                               rowGroupRows: Int = 131_072, only shard: ShardID? = nil,
                               progress: (Int) -> Void = { _ in }) throws -> ParquetExport {
        if FileManager.default.fileExists(atPath: path) {
            throw QueryError(.outputFailed, "\(path) already exists; remove it or choose another --output")
        }
        var query = FlowQuery()
        query.fromMs = fromMs
        query.toMs = toMs
        query.whereSQL = whereSQL
        query.fields = fields.isEmpty ? Self.parquetDefaultFields : fields
        query.onlyShard = shard
        guard let columns = ParquetFlows.columns(for: query.fields) else {
            let unknown = query.fields.first { ParquetFlows.columns(for: [$0]) == nil } ?? ""
            throw QueryError(.unknownField, "unknown field \(unknown); fields are NetObserv's names, e.g. SrcK8S_Namespace, Bytes, or _extras (see `flowrec schema`)")
        }
        var facts = [("flowrec.shard_schema_version", String(ShardSchema.version))]
        if let fromMs { facts.append(("flowrec.from_ms", String(fromMs))) }
        if let toMs { facts.append(("flowrec.to_ms", String(toMs))) }
        if let whereSQL { facts.append(("flowrec.where", whereSQL)) }
        let writer = try ParquetWriter(path: path, columns: columns, rowsPerGroup: rowGroupRows, metadata: facts)
        var result = ParquetExport()
        var unconverted = [Int](repeating: 0, count: columns.count)
        func convert(_ values: [QueryValue], into row: inout [ParquetWriter.Value]) {
            row.removeAll(keepingCapacity: true)
            for (i, value) in values.enumerated() {
                if let converted = ParquetFlows.value(value, for: columns[i]) {
                    row.append(converted)
                } else {
                    row.append(.null)
                    unconverted[i] += 1
                }
            }
        }
        func append(_ row: [ParquetWriter.Value]) throws -> Bool {
            try writer.append(row)
            result.rows += 1
            if result.rows % 100_000 == 0 { progress(result.rows) }
            return true
        }
        var row: [ParquetWriter.Value] = []
        do {
            try forEachRow(query) { values in
                convert(values, into: &row)
                return try append(row)
            }
            for (i, n) in unconverted.enumerated() where n > 0 { result.unconverted[columns[i].name] = n }
            try writer.finish(more: result.unconverted.sorted { $0.key < $1.key }.map { ("flowrec.written_as_null.\($0.key)", String($0.value)) })
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return result
    }

    /// Writes the `fields` (every field by default) of the flows of the range that pass
    /// `whereSQL`, in `TimeFlowEndMs` order, as CSV with a header row to `write` (a
    /// block of lines at a time); returns the count.
    @discardableResult
    package func exportCSV(fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil, fields: [String] = [],
                           progress: (Int) -> Void = { _ in }, write: ([UInt8]) throws -> Void) throws -> Int {
        var query = FlowQuery()
        query.fromMs = fromMs
        query.toMs = toMs
        query.whereSQL = whereSQL
        query.fields = fields
        var lines: [UInt8] = []
        for (i, name) in FlowQueryRunner(store: store, limits: .export).columns(for: query).enumerated() {
            if i > 0 { lines.append(UInt8(ascii: ",")) }
            CSV.appendField(name, to: &lines)
        }
        lines.append(UInt8(ascii: "\n"))
        var count = 0
        try forEachRow(query) { values in
            CSV.appendRow(values, to: &lines)
            count += 1
            if lines.count >= 1 << 20 {
                try write(lines)
                lines.removeAll(keepingCapacity: true)
            }
            if count % 100_000 == 0 { progress(count) }
            return true
        }
        try write(lines)
        return count
    }

    /// Calls `row` with the values of `query.fields` (`_extras`: the unknown fields as one
    /// JSON object) of every flow of the query, in `TimeFlowEndMs` order, until it returns
    /// false: the Parquet and CSV exports.
    ///
    /// Many fields: each flow is read whole by its row id (one B-tree step, the shard's
    /// strings from its dictionary in memory), a block at a time, rather than through the
    /// view. Through the view, SQLite's sorter would hold every selected column of the
    /// range's rows (a CSV export of one active shard of 1.8M flows went past the 1 GiB
    /// query limit), and its per-column string lookups cost a cursor per text column per
    /// row: twice the time for every field. A few fields: the view reads only those, and
    /// the sorter puts them in time order.
    package func forEachRow(_ query: FlowQuery, row: ([QueryValue]) throws -> Bool) throws {
        let fields = FlowQueryRunner(store: store, limits: .export).columns(for: query)
        let picked = fields.map { FlowSchema.id(named: $0) }  // nil: `_extras`
        // A whole flow has NetObserv's fields and `_extras`; `_nulls`, `_quoted` and names
        // that are no field (refused with the reason) go through the view.
        let wholeFlowsServe = zip(fields, picked).allSatisfy { $1 != nil || $0 == ParquetFlows.extras.name }
        if fields.count > Self.fieldsReadThroughTheView && wholeFlowsServe {
            var query = query
            query.fields = fields
            try forEachWholeFlow(query, blockRows: parquetBlockRows) { flow in
                var values: [QueryValue] = []
                values.reserveCapacity(picked.count)
                Self.values(of: picked, in: flow, into: &values)
                return values
            } emit: { try row($0) }
        } else {
            try FlowQueryRunner(store: store, limits: .export).run(query, row: row)
        }
    }

    /// Up to this many fields, rows are read through the `flows` view and sorted by SQLite.
    static let fieldsReadThroughTheView = 12

    /// Calls `read` with every whole stored flow of `query` and `emit` with what it made,
    /// in `TimeFlowEndMs` order, a block of `blockRows` at a time.
    ///
    /// Why blocks: a sealed shard is stored in the seal order (namespaces and owners, then
    /// time), so the flows of a time order lie all over the file, and reading them one by
    /// one in that order decompresses a frame per flow once the shard is larger than the
    /// frame cache (an export of two 500k-flow shards ran at 10k flows/s). A block's
    /// flows are read in row id order instead, so each frame is decompressed at most once
    /// per block, and what `read` made of them is handed to `emit` in time order. Memory:
    /// one block of `Payload`s.
    private func forEachWholeFlow<Payload>(_ query: FlowQuery, blockRows: Int, read: (borrowing Flow) throws -> Payload,
                                           emit: (Payload) throws -> Bool) throws {
        var query = query
        query.fields = [FlowSchema.requiredField.name]
        var pending: [(reader: ShardReader, rowID: Int64)] = []
        pending.reserveCapacity(blockRows)
        var made: [Payload?] = []
        var flow = Flow()
        func flush() throws -> Bool {
            made = Array(repeating: nil, count: pending.count)
            let storageOrder = pending.indices.sorted {
                (ObjectIdentifier(pending[$0].reader), pending[$0].rowID) < (ObjectIdentifier(pending[$1].reader), pending[$1].rowID)
            }
            for i in storageOrder {
                try Self.read(pending[i].rowID, of: pending[i].reader, into: &flow)
                made[i] = try read(flow)
            }
            pending.removeAll(keepingCapacity: true)
            for payload in made where try !emit(payload!) { return false }
            return true
        }
        try FlowQueryRunner(store: store, limits: .export).run(query) { _, reader, rowID in
            pending.append((reader, rowID))
            return try pending.count < blockRows || flush()
        } afterLastRow: {
            _ = try flush()
        }
    }

    /// Reads the stored flow at `rowID`, which the query just returned from `reader`.
    private static func read(_ rowID: Int64, of reader: ShardReader, into flow: inout Flow) throws {
        guard try reader.readFlow(rowID: rowID, into: &flow) else {
            throw QueryError(.unreadableShard, "row \(rowID) of \(reader.path) was listed by the query but could not be read; run `flowrec fsck`")
        }
    }

    /// The `fields`' values in `flow` as the `flows` view would give them (a nil field:
    /// `_extras`). One call per flow: the flow is borrowed once, not copied per field.
    private static func values(of fields: [FieldID?], in flow: borrowing Flow, into values: inout [QueryValue]) {
        values.removeAll(keepingCapacity: true)
        for field in fields {
            guard let field else {
                values.append(flow.extrasJSON.map(QueryValue.text) ?? .null)
                continue
            }
            if field.spec.kind.isTextStored {
                values.append(flow.string(field).map(QueryValue.text) ?? .null)
            } else if let v = flow.integer(field) {
                // A uint64 counter at 2^63 or above is stored as its bit pattern; the view's
                // rows name it unsigned (`QueryValue.row`), and so do these.
                values.append(v < 0 && field.spec.isUnsigned64 ? .unsigned(UInt64(bitPattern: v)) : .integer(v))
            } else {
                values.append(.null)
            }
        }
    }

    /// Writes the range into a new SQLite file at `path` with a flat `flows` table.
    @discardableResult
    package func exportSQLite(to path: String, fromMs: Int64?, toMs: Int64?, whereSQL: String? = nil,
                             progress: (Int) -> Void = { _ in }) throws -> Int {
        if FileManager.default.fileExists(atPath: path) {
            throw QueryError(.outputFailed, "\(path) already exists; remove it or choose another --output")
        }
        let columns = FlowSchema.fields.map { "\"\($0.name)\" \($0.kind.isTextStored ? "TEXT" : "INTEGER")" }
            + ShardSchema.bookkeepingColumns.map { "\"\($0.name)\" TEXT" }
        let out = try SQLiteDatabase(path: path)
        try out.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=65536;")
        try out.execute("CREATE TABLE flows (\n  " + columns.joined(separator: ",\n  ") + "\n)")
        var conditions: [String] = []
        if let fromMs { conditions.append("TimeFlowEndMs >= \(fromMs)") }
        if let toMs { conditions.append("TimeFlowEndMs < \(toMs)") }
        if let filter = try WhereClause(whereSQL) { conditions.append("(\(filter.text))") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        var total = 0
        for shard in try store.shards(overlappingFromMs: fromMs, toMs: toMs) {
            let attach = try out.prepare("ATTACH DATABASE ?1 AS shard")
            attach.bind(1, store.readURI(for: shard.id))
            try attach.step()
            let copied: Result<Void, SQLiteError> = Result { () throws(SQLiteError) in
                try out.execute("BEGIN; INSERT INTO main.flows SELECT * FROM shard.flows\(filter); COMMIT;")
            }
            if case .failure(let error) = copied {
                try? out.execute("ROLLBACK")
                try? out.execute("DETACH DATABASE shard")
                throw QueryError(error.isDiskFull ? .outputFailed : .unreadableShard, "export failed on shard \(shard.id): \(error.message)", shard: shard.id, cause: error)
            }
            try out.execute("DETACH DATABASE shard")
            total = Int(try out.scalarInteger("SELECT count(*) FROM main.flows") ?? 0)
            progress(total)
        }
        try out.execute("CREATE INDEX flows_by_time ON flows (TimeFlowEndMs)")
        return total
    }
}
