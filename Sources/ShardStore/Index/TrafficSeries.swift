package import FlowModel
import StorageKit

/// Per-second traffic of every group of flows in a sealed shard: a projection, in
/// ClickHouse's sense, that the console's topology and overview rates read instead of the
/// rows.
///
/// Why per second and not the minute rollups: the console asks for windows `(t − d, t]`
/// with `t` and `d` whole seconds taken from the clock, so no cut of whole minutes gives
/// Loki's sums, while a cut of whole seconds does (each second `(s − 1, s]` lies in one
/// window bucket). Why per group and not per flow: one hour of the medium cluster is 3.6M
/// flows but 2.0M (group, second) entries over 55k groups, 3.2 bytes per flow in the
/// shard at level 3 (bench/NOTES.md, "Topology").
///
/// - `series_groups`: one row per distinct combination of `fields` (stored as in
///   `flow_rows`: string ids of the shard's dictionary, integers as they are), the
///   bookkeeping lists (`_quoted`, `_nulls`, `_extras`) and whether the flows carry each
///   of `values` (`_has_Bytes`, `_has_Packets`). Column names are `flow_rows`' own, so a
///   LogQL condition written for `flow_rows AS r` that names only these columns selects
///   exactly the groups whose flows it selects (every flow of a group has the same values).
/// - `series_data`: per group, its seconds (`ceil(TimeFlowEndMs / 1000)`), the number of
///   flows and the sum of each value in each second, as varints (below). A group may have
///   several chunks (one per run of the seal order); a reader adds them all.
///
/// Built while the sealer or the merger copies the rows (`TrafficSeriesBuilder`, no extra
/// pass); absent (and `meta.traffic_series` unset) when a shard cannot have one exactly:
/// a flow without an end time, a value that does not fit a signed 64-bit sum, or more
/// groups than `maximumGroups(rows:)` (sparse traffic, where it would cost more disk
/// than it saves time). Readers fall back to the rows then, as for older shards.
package enum TrafficSeries {
    /// `meta` key and value of a shard holding a complete projection in this format.
    package static let metaKey = "traffic_series"
    package static let version = "1"

    /// The fields a group is made of: everything the console groups topology by (cluster,
    /// zone, host, namespace, owner, resource) and filters it by without a user filter
    /// (direction, resource type), plus the low-cardinality fields users filter on. The
    /// seal order's fields come first: a group never spans two of its runs.
    package static let fields: [FieldID] = SkipIndex.sortFields + [
        "SrcK8S_OwnerType", "SrcK8S_Type", "SrcK8S_Name", "SrcK8S_HostName", "SrcK8S_HostIP", "SrcAddr", "SrcK8S_Zone",
        "SrcK8S_NetworkName", "SrcSubnetLabel",
        "DstK8S_OwnerType", "DstK8S_Type", "DstK8S_Name", "DstK8S_HostName", "DstK8S_HostIP", "DstAddr", "DstK8S_Zone",
        "DstK8S_NetworkName", "DstSubnetLabel",
        "FlowDirection", "K8S_FlowLayer", "K8S_ClusterName", "Duplicate", "Proto", "Etype", "Dscp", "Sampling", "AgentIP",
        "_RecordType",
    ].map(FlowSchema.id(of:))

    /// The bookkeeping columns a group also keeps (line filters consult them).
    package static let bookkeeping: [String] = ShardSchema.bookkeepingColumns.map(\.name)

    /// The values summed per second (what the console unwraps for topology); two, which
    /// the builder keeps in fixed-size arrays.
    package static let values: [FieldID] = ["Bytes", "Packets"].map(FlowSchema.id(of:))

    /// The group column saying whether a group's flows carry `value` (1) or not (0).
    package static func presenceColumn(_ value: FieldID) -> String { "_has_\(value.name)" }

    /// Every column of `series_groups` a condition may name, besides `group_id`.
    package static let groupColumns: Set<String> = Set(fields.map(\.name) + bookkeeping + values.map(presenceColumn))

    /// More groups than this and the shard gets no projection. A group row is wide (38
    /// columns), and sparse traffic has about one entry per flow: a day of one flow per
    /// second merged into one shard has a group per five flows, and a series there added
    /// 10 bytes per flow to 27 (at level 19) where the rows read fast anyway. One hour of
    /// the medium cluster at 1,000 flows/s has a group per 65 flows. Small shards (under
    /// 10,000 groups) always get one: they cost little either way.
    static func maximumGroups(rows: Int64) -> Int { max(10_000, Int(rows / 8)) }

    /// The tables (written to `migrations/shard/0003_traffic_series.sql` as well).
    package static var createSQL: String {
        var lines = [
            "-- flowrec shard schema: per-second traffic per group of a sealed shard (created by the",
            "-- sealer and the merger). Generated from TrafficSeries (Sources/ShardStore/Index/TrafficSeries.swift)",
            "-- by `flowrec schema --write-migrations`. meta.traffic_series = '\(version)' when complete.",
            "",
            "-- One row per distinct combination of the columns below, stored as in flow_rows.",
            "CREATE TABLE series_groups (",
            "    group_id INTEGER PRIMARY KEY,",
        ]
        var columns = fields.map { "    \"\($0.name)\" INTEGER" }
        columns += bookkeeping.map { "    \"\($0)\" TEXT" }
        columns += values.map { "    \"\(presenceColumn($0))\" INTEGER NOT NULL" }
        lines.append(columns.joined(separator: ",\n"))
        lines.append("    -- _has_X: 1 when the group's flows have X (every flow of a group has the same columns).")
        lines += [
            ");",
            "",
            "-- Per group (one or more chunks): its seconds, ceil(TimeFlowEndMs / 1000), as zigzag",
            "-- varint deltas (the first from 0); per second the flows (varint) and the sum of each",
            "-- value (varint; empty when the group's flows do not have it). See docs/on-disk-format.md.",
            "CREATE TABLE series_data (",
            "    group_id INTEGER NOT NULL,",
            "    seconds BLOB NOT NULL,",
            "    counts BLOB NOT NULL,",
        ]
        lines.append(values.map { "    \"\($0.name)\" BLOB NOT NULL" }.joined(separator: ",\n"))
        lines += [
            ");",
            "CREATE INDEX series_data_group ON series_data (group_id);",
            "",
        ]
        return lines.joined(separator: "\n")
    }

    // MARK: Varints

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// Reads the varint at `offset`, advancing it; nil past the end or on a malformed one.
    @inline(__always)
    static func readVarint(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }

    static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    static func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

    /// One chunk of a group's series, decoded: calls `body(second, flows, sums)` per entry,
    /// `sums` holding the chosen value's sum (0 when `value` is nil). False when a blob is
    /// malformed (a damaged shard: the caller reads rows instead, which report it).
    package static func forEachSecond(seconds: UnsafeRawBufferPointer, counts: UnsafeRawBufferPointer,
                                      value: UnsafeRawBufferPointer?,
                                      _ body: (_ second: Int64, _ flows: Int64, _ sum: UInt64) -> Void) -> Bool {
        var s = 0, c = 0, v = 0
        var second: Int64 = 0
        while s < seconds.count {
            guard let delta = readVarint(seconds, &s), let flows = readVarint(counts, &c) else { return false }
            second &+= unzigzag(delta)
            var sum: UInt64 = 0
            if let value {
                guard let read = readVarint(value, &v) else { return false }
                sum = read
            }
            body(second, Int64(truncatingIfNeeded: flows), sum)
        }
        return c == counts.count && (value == nil || v == value!.count)
    }
}

/// Builds a shard's `TrafficSeries` from its rows in the seal order, as the sealer and
/// the merger copy them (`ShardIndexBuilder` hands each row on). Rows of one run of the
/// seal order are in time order, so each group's seconds come in order and a second's
/// flows are summed as they arrive; at the end of a run its groups' entries are encoded
/// and the run's state dropped, so memory holds the encoded chunks (about 4 bytes per
/// flow) and one run.
final class TrafficSeriesBuilder {
    private static let fieldCount = TrafficSeries.fields.count
    private static let textCount = TrafficSeries.bookkeeping.count
    private static let valueCount = 2
    /// Groups kept in memory at most while building (each key is a few hundred bytes).
    private static let groupCap = 2_000_000

    /// A group: the stored values (nil when NULL), text ids of the bookkeeping lists
    /// (0 when NULL), then one presence flag per value.
    private struct Key: Hashable {
        var stored: [Int64?]
        var texts: [Int]
        var present: [Bool]

        /// The values folded into one word (multiply and xor-shift per value), which the
        /// hasher then takes once. The synthesized hash fed the hasher two values per
        /// field (presence, then the integer): rows in the seal order change group often
        /// (a group names pods and addresses), and hashing was a third of adding a row.
        func hash(into hasher: inout Hasher) {
            var folded: UInt64 = 0x9E37_79B9_7F4A_7C15
            @inline(__always) func fold(_ value: UInt64) {
                folded = (folded ^ value) &* 0xFF51_AFD7_ED55_8CCD
                folded ^= folded >> 32
            }
            for value in stored { fold(value.map { UInt64(bitPattern: $0) &+ 1 } ?? 0) }
            for text in texts { fold(UInt64(bitPattern: Int64(text))) }
            for flag in present { fold(flag ? 1 : 0) }
            hasher.combine(folded)
        }
    }

    /// One second of a group: its flows and the sum of each value (`TrafficSeries.values`,
    /// two of them: a fixed-size array, so a row allocates nothing).
    private struct Entry {
        var second: Int64
        var flows: UInt64
        var sums: [2 of UInt64]
    }

    /// One group's entries in the current run, encoded but for the last second. Kept in
    /// an array and mutated in place (a copy out of a dictionary and back would copy
    /// its buffers on every append).
    private struct Accumulator {
        var group: Int
        var last: Entry
        var previousSecond: Int64 = 0
        var seconds: [UInt8] = []
        var counts: [UInt8] = []
        var sums: [[UInt8]] = [[], []]

        mutating func encodeLast() {
            TrafficSeries.appendVarint(TrafficSeries.zigzag(last.second &- previousSecond), to: &seconds)
            previousSecond = last.second
            TrafficSeries.appendVarint(last.flows, to: &counts)
            for i in 0..<2 { TrafficSeries.appendVarint(last.sums[i], to: &sums[i]) }
        }
    }

    // Exempt from dynamic exclusivity checks, as `ShardIndexBuilder`'s state: one thread
    // adds the rows, never re-entering.
    @exclusivity(unchecked) private var groups: [Key: Int] = [:]
    @exclusivity(unchecked) private var keys: [Key] = []
    @exclusivity(unchecked) private var texts: [String: Int] = [:]
    @exclusivity(unchecked) private var textValues: [String] = []
    /// The current run's accumulators, and each group's slot among them (-1: none yet).
    @exclusivity(unchecked) private var run: [Accumulator] = []
    @exclusivity(unchecked) private var runSlot: [Int] = []
    @exclusivity(unchecked) private var chunks: [(group: Int, seconds: [UInt8], counts: [UInt8], sums: [[UInt8]])] = []
    @exclusivity(unchecked) private var rows: Int64 = 0
    /// Why the shard gets no projection, once known (then rows are only counted).
    @exclusivity(unchecked) private(set) var unusable: String?

    /// The row being added: filled in place, compared with the previous row's key (rows
    /// in the seal order mostly repeat their neighbour's group).
    @exclusivity(unchecked) private var key = Key(stored: Array(repeating: nil, count: fieldCount), texts: Array(repeating: 0, count: textCount),
                          present: Array(repeating: false, count: valueCount))
    @exclusivity(unchecked) private var lastGroup = -1
    @exclusivity(unchecked) private var lastTexts: [[UInt8]?] = Array(repeating: nil, count: textCount)

    /// The next row in the seal order: its end time, each of `TrafficSeries.fields`'
    /// stored value, each bookkeeping list's bytes, each value's stored integer.
    func add(end: Int64?, stored: (Int) -> Int64?, text: (Int) -> UnsafeRawBufferPointer?, value: (Int) -> Int64?) {
        rows += 1
        guard unusable == nil else { return }
        guard let end else {
            unusable = "a flow has no TimeFlowEndMs"
            return
        }
        var changed = lastGroup < 0
        var runChanged = lastGroup < 0
        for i in 0..<Self.fieldCount {
            let v = stored(i)
            if v != key.stored[i] {
                key.stored[i] = v
                changed = true
                if i < SkipIndex.sortFields.count { runChanged = true }
            }
        }
        for i in 0..<Self.textCount {
            let bytes = text(i)
            if let bytes {
                if let last = lastTexts[i], last.elementsEqual(bytes) { continue }
                let string = String(decoding: bytes, as: UTF8.self)
                lastTexts[i] = Array(bytes)
                key.texts[i] = textID(string)
            } else {
                if lastTexts[i] == nil { continue }
                lastTexts[i] = nil
                key.texts[i] = 0
            }
            changed = true
        }
        var sums: [2 of UInt64] = [0, 0]
        for i in 0..<Self.valueCount {
            let v = value(i)
            if let v, v < 0 {
                unusable = "a flow's \(TrafficSeries.values[i].name) is above 2^63"
                return
            }
            if (v != nil) != key.present[i] {
                key.present[i] = v != nil
                changed = true
            }
            sums[i] = UInt64(v ?? 0)
        }
        if runChanged { closeRun() }
        if changed {
            if let known = groups[key] {
                lastGroup = known
            } else {
                lastGroup = keys.count
                groups[key] = lastGroup
                keys.append(key)
                runSlot.append(-1)
                if keys.count > Self.groupCap {
                    unusable = "more than \(Self.groupCap) groups"
                    return
                }
            }
        }
        let second = floorDiv(end + 999, 1000)
        let slot = runSlot[lastGroup]
        guard slot >= 0 else {
            runSlot[lastGroup] = run.count
            run.append(Accumulator(group: lastGroup, last: Entry(second: second, flows: 1, sums: sums)))
            return
        }
        if run[slot].last.second == second {
            run[slot].last.flows += 1
            for i in 0..<Self.valueCount {
                let (sum, overflow) = run[slot].last.sums[i].addingReportingOverflow(sums[i])
                guard !overflow, sum <= UInt64(Int64.max) else {
                    unusable = "a second's \(TrafficSeries.values[i].name) does not fit 63 bits"
                    return
                }
                run[slot].last.sums[i] = sum
            }
        } else {
            run[slot].encodeLast()
            run[slot].last = Entry(second: second, flows: 1, sums: sums)
        }
    }

    private func textID(_ string: String) -> Int {
        if let id = texts[string] { return id }
        textValues.append(string)
        texts[string] = textValues.count
        return textValues.count
    }

    /// Encodes the run's groups as chunks and forgets the run.
    private func closeRun() {
        for var accumulator in run {
            accumulator.encodeLast()
            chunks.append((accumulator.group, accumulator.seconds, accumulator.counts, accumulator.sums))
            runSlot[accumulator.group] = -1
        }
        run.removeAll(keepingCapacity: true)
    }

    /// Creates the tables in `db` (the compact copy, inside the caller's transaction) and
    /// fills them, with `meta.traffic_series`; nothing at all when the shard cannot have
    /// a projection (`unusable`).
    func write(into db: SQLiteDatabase) throws(SQLiteError) {
        closeRun()
        if keys.count > TrafficSeries.maximumGroups(rows: rows) { unusable = "\(keys.count) groups for \(rows) flows" }
        guard unusable == nil, !keys.isEmpty else { return }
        try db.execute(TrafficSeries.createSQL)
        let columns = ["group_id"] + TrafficSeries.fields.map { "\"\($0.name)\"" } + TrafficSeries.bookkeeping.map { "\"\($0)\"" }
            + TrafficSeries.values.map { "\"\(TrafficSeries.presenceColumn($0))\"" }
        let insertGroup = try db.prepare("INSERT INTO series_groups (\(columns.joined(separator: ", "))) VALUES ("
                                         + (1...columns.count).map { "?\($0)" }.joined(separator: ", ") + ")")
        for (id, key) in keys.enumerated() {
            insertGroup.reset()
            insertGroup.bind(1, Int64(id))
            var column: Int32 = 2
            for v in key.stored {
                if let v { insertGroup.bind(column, v) } else { insertGroup.bindNull(column) }
                column += 1
            }
            for t in key.texts {
                if t > 0 { insertGroup.bind(column, textValues[t - 1]) } else { insertGroup.bindNull(column) }
                column += 1
            }
            for p in key.present {
                insertGroup.bind(column, p ? 1 : 0)
                column += 1
            }
            try insertGroup.step()
        }
        let valueColumns = TrafficSeries.values.map { "\"\($0.name)\"" }.joined(separator: ", ")
        let insertData = try db.prepare("INSERT INTO series_data (group_id, seconds, counts, \(valueColumns)) VALUES (?1, ?2, ?3, "
                                        + (0..<Self.valueCount).map { "?\($0 + 4)" }.joined(separator: ", ") + ")")
        for chunk in chunks {
            insertData.reset()
            insertData.bind(1, Int64(chunk.group))
            let present = keys[chunk.group].present
            chunk.seconds.withUnsafeBytes { insertData.bind(2, blob: $0) }
            chunk.counts.withUnsafeBytes { insertData.bind(3, blob: $0) }
            for i in 0..<Self.valueCount {
                // A group without the value stores no sums (they are all 0).
                let sums = present[i] ? chunk.sums[i] : []
                sums.withUnsafeBytes { insertData.bind(Int32(4 + i), blob: $0) }
            }
            try insertData.step()
        }
        let meta = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        meta.bind(1, TrafficSeries.metaKey)
        meta.bind(2, TrafficSeries.version)
        try meta.step()
    }
}

extension ShardReader {
    /// Whether the shard's traffic series is exactly the one its rows make; true for a
    /// shard without one. `flowrec fsck` asks, since the console's topology over a shard
    /// with a series never reads its rows: a series that decodes but disagrees with
    /// them (a count or a sum changed) would be a wrong answer nothing else catches.
    ///
    /// The series is rebuilt from the rows in row id order, the order the sealer and the
    /// merger fed their builder as they wrote those rows, so a sound shard gives the same
    /// groups with the same ids and the same chunks, byte for byte.
    func trafficSeriesMatchesRows() throws -> Bool {
        guard try meta(TrafficSeries.metaKey) == TrafficSeries.version else { return true }
        let builder = TrafficSeriesBuilder()
        let texts = 1 + TrafficSeries.fields.count, values = texts + TrafficSeries.bookkeeping.count
        let columns = ["TimeFlowEndMs"] + TrafficSeries.fields.map(\.name) + TrafficSeries.bookkeeping + TrafficSeries.values.map(\.name)
        try query("SELECT \(columns.map { "\"\($0)\"" }.joined(separator: ", ")) FROM flow_rows ORDER BY rowid") { row in
            builder.add(end: row.integerOrNull(0), stored: { row.integerOrNull(Int32(1 + $0)) },
                        text: { i in row.withText(Int32(texts + i)) { UnsafeRawBufferPointer($0) } },
                        value: { row.integerOrNull(Int32(values + $0)) })
        }
        let rebuilt = try SQLiteDatabase(path: ":memory:")
        try rebuilt.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        try builder.write(into: rebuilt)
        guard try rebuilt.scalarInteger("SELECT count(*) FROM meta WHERE key = '\(TrafficSeries.metaKey)' AND value = '\(TrafficSeries.version)'") == 1 else {
            return false  // the rows make no series (too many groups, say), yet the shard has one
        }
        for table in ["series_groups", "series_data"] {
            let expected = try rebuilt.prepare("SELECT * FROM \(table) ORDER BY rowid")
            var same = true
            try query("SELECT * FROM \(table) ORDER BY rowid") { stored in
                guard same else { return }
                same = try expected.step() && Self.sameRow(stored, expected)
            }
            guard same, try !expected.step() else { return false }
        }
        return true
    }

    /// Whether two statements' current rows hold the same values, type and bytes.
    private static func sameRow(_ a: SQLiteStatement, _ b: SQLiteStatement) -> Bool {
        guard a.columnCount == b.columnCount else { return false }
        for i in 0..<a.columnCount {
            let type = a.columnType(i)
            guard type == b.columnType(i) else { return false }
            switch type {
            case .null: continue
            case .integer: if a.integer(i) != b.integer(i) { return false }
            case .real: if a.double(i) != b.double(i) { return false }
            case .text, .blob: if !a.withBlob(i, { x in b.withBlob(i) { y in x.elementsEqual(y) } }) { return false }
            }
        }
        return true
    }
}
