import CSQLite
import FlowModel
import Foundation

/// Per-minute, per-hour and per-day aggregates of sealed shards, in `rollups.sqlite`,
/// so top talkers and time series over weeks read thousands of rows instead of billions
/// of flows, and outlive the raw shards (they have their own, longer retention).
///
/// The sealer aggregates each shard while it copies it (no extra pass over the rows) and
/// adds the sums to every tier in one transaction that also records the shard in
/// `rollup_shards`; a shard already recorded is never added again, so a seal redone
/// after a crash cannot count twice.
package enum RollupSchema {
    /// A flow field the rollups group by, and its column in `rollup_groups`.
    package struct Dimension: Sendable {
        package let field: String
        package let column: String
        let isText: Bool
    }

    package static let dimensions: [Dimension] = [
        .init(field: "SrcK8S_Namespace", column: "src_namespace", isText: true),
        .init(field: "SrcK8S_OwnerName", column: "src_owner", isText: true),
        .init(field: "SrcK8S_OwnerType", column: "src_owner_type", isText: true),
        .init(field: "SrcK8S_Type", column: "src_type", isText: true),
        .init(field: "DstK8S_Namespace", column: "dst_namespace", isText: true),
        .init(field: "DstK8S_OwnerName", column: "dst_owner", isText: true),
        .init(field: "DstK8S_OwnerType", column: "dst_owner_type", isText: true),
        .init(field: "DstK8S_Type", column: "dst_type", isText: true),
        .init(field: "Proto", column: "proto", isText: false),
        .init(field: "DstPortClass", column: "dst_port_class", isText: true),
        .init(field: "K8S_FlowLayer", column: "flow_layer", isText: true),
        .init(field: "FlowDirection", column: "direction", isText: false),
    ]

    /// SQL for a dimension over the `flows` view (the port class is computed).
    package static func flowsExpression(_ field: String) -> String {
        field == "DstPortClass" ? """
            (CASE WHEN "DstPort" IS NULL THEN 'none' WHEN "DstPort" < 1024 THEN 'well-known'
                  WHEN "DstPort" < 49152 THEN 'registered' ELSE 'dynamic' END)
            """ : "\"\(field)\""
    }

    /// Rollup tiers: table, time column, bucket width.
    static let tiers: [(table: String, timeColumn: String, bucketMs: Int64)] = [
        ("minute_rollups", "minute_ms", 60_000), ("hour_rollups", "hour_ms", 3_600_000), ("day_rollups", "day_ms", 86_400_000),
    ]

    package static let measureColumns = [
        "flows", "bytes", "packets", "dropped_bytes", "dropped_packets", "rtt_min_ns", "rtt_max_ns", "rtt_sum_ns", "rtt_count",
        "dns_latency_sum_ms", "dns_latency_count", "dns_noerror", "dns_nxdomain", "dns_servfail", "dns_other_rcode",
    ]

    /// The measures of several rows combined (sums; min and max for RTT), aliased to
    /// their own column names, in `measureColumns` order.
    package static let mergedMeasuresSQL: String = measureColumns.map { c -> String in
        switch c {
        case "rtt_min_ns": "min(rtt_min_ns) AS rtt_min_ns"
        case "rtt_max_ns": "max(rtt_max_ns) AS rtt_max_ns"
        default: "sum(\(c)) AS \(c)"
        }
    }.joined(separator: ", ")

    package static let createSQL: String = {
        let dims = dimensions.map { "    \($0.column) \($0.isText ? "TEXT" : "INTEGER")" }.joined(separator: ",\n")
        let measures = measureColumns.map { "    \($0) INTEGER\($0.hasPrefix("rtt_m") ? "" : " NOT NULL")" }.joined(separator: ",\n")
        let tierTables = tiers.map { tier in
            """
            CREATE TABLE IF NOT EXISTS \(tier.table) (
                \(tier.timeColumn) INTEGER NOT NULL,
                group_id INTEGER NOT NULL REFERENCES rollup_groups (id),
            \(measures),
                PRIMARY KEY (\(tier.timeColumn), group_id)
            ) WITHOUT ROWID;
            """
        }.joined(separator: "\n\n")
        return """
            -- flowrec rollups, version 1. Generated from RollupSchema (Sources/ShardStore/Rollups.swift)
            -- by `flowrec schema --write-migrations`.
            -- Buckets are of TimeFlowEndMs. dst_port_class: well-known (< 1024), registered
            -- (< 49152), dynamic, none (no port). Averages: rtt_sum_ns / rtt_count and
            -- dns_latency_sum_ms / dns_latency_count. DNS counts are by DnsFlagsResponseCode.

            -- The shards whose flows the tiers hold (kept after retention deletes the shard).
            CREATE TABLE IF NOT EXISTS rollup_shards (
                shard_id TEXT PRIMARY KEY,
                window_start_ms INTEGER NOT NULL,
                window_end_ms INTEGER NOT NULL,
                flows INTEGER NOT NULL,
                rolled_up_ms INTEGER NOT NULL
            );

            -- Each distinct combination of dimensions, once.
            CREATE TABLE IF NOT EXISTS rollup_groups (
                id INTEGER PRIMARY KEY,
            \(dims)
            );
            CREATE UNIQUE INDEX IF NOT EXISTS rollup_groups_by_value ON rollup_groups (\(dimensions.map(\.column).joined(separator: ", ")));

            \(tierTables)

            """
    }()
}

/// Sums of one group over one bucket.
struct RollupMeasures {
    var flows: Int64 = 0, bytes: Int64 = 0, packets: Int64 = 0, droppedBytes: Int64 = 0, droppedPackets: Int64 = 0
    var rttMin: Int64?, rttMax: Int64?
    var rttSum: Int64 = 0, rttCount: Int64 = 0, dnsLatencySum: Int64 = 0, dnsLatencyCount: Int64 = 0
    var dnsNoError: Int64 = 0, dnsNXDomain: Int64 = 0, dnsServFail: Int64 = 0, dnsOther: Int64 = 0

    mutating func add(_ o: RollupMeasures) {
        flows &+= o.flows; bytes &+= o.bytes; packets &+= o.packets
        droppedBytes &+= o.droppedBytes; droppedPackets &+= o.droppedPackets
        if let m = o.rttMin { rttMin = min(rttMin ?? m, m) }
        if let m = o.rttMax { rttMax = max(rttMax ?? m, m) }
        rttSum &+= o.rttSum; rttCount &+= o.rttCount; dnsLatencySum &+= o.dnsLatencySum; dnsLatencyCount &+= o.dnsLatencyCount
        dnsNoError &+= o.dnsNoError; dnsNXDomain &+= o.dnsNXDomain; dnsServFail &+= o.dnsServFail; dnsOther &+= o.dnsOther
    }
}

/// A bucket of one tier and a group, ordered as the tiers' primary keys.
private struct TierKey: Hashable, Comparable {
    let bucketMs: Int64
    let groupID: Int64

    static func < (a: TierKey, b: TierKey) -> Bool { (a.bucketMs, a.groupID) < (b.bucketMs, b.groupID) }
}

/// A minute and group of one shard: dimension values as the shard stores them (string
/// ids for text; `Int64.min` for absent). Fixed size, so counting a row allocates nothing.
struct RollupKey: Hashable {
    var minute: Int64
    var d0: Int64 = 0, d1: Int64 = 0, d2: Int64 = 0, d3: Int64 = 0, d4: Int64 = 0, d5: Int64 = 0
    var d6: Int64 = 0, d7: Int64 = 0, d8: Int64 = 0, d9: Int64 = 0, d10: Int64 = 0, d11: Int64 = 0

    subscript(i: Int) -> Int64 {
        get {
            switch i {
            case 0: d0
            case 1: d1
            case 2: d2
            case 3: d3
            case 4: d4
            case 5: d5
            case 6: d6
            case 7: d7
            case 8: d8
            case 9: d9
            case 10: d10
            default: d11
            }
        }
        set {
            switch i {
            case 0: d0 = newValue
            case 1: d1 = newValue
            case 2: d2 = newValue
            case 3: d3 = newValue
            case 4: d4 = newValue
            case 5: d5 = newValue
            case 6: d6 = newValue
            case 7: d7 = newValue
            case 8: d8 = newValue
            case 9: d9 = newValue
            case 10: d10 = newValue
            default: d11 = newValue
            }
        }
    }

    /// One multiply-mix chain over the thirteen words: the key is hashed for every row a
    /// seal copies, and Hasher's SipHash over 104 bytes cost three times as much.
    func hash(into hasher: inout Hasher) {
        func mix(_ h: UInt64, _ d: Int64) -> UInt64 { ShardChecksum.mix(h, UInt64(bitPattern: d)) }
        let words = mix(mix(mix(mix(mix(mix(UInt64(bitPattern: minute), d0), d1), d2), d3), d4), d5)
        hasher.combine(mix(mix(mix(mix(mix(mix(words, d6), d7), d8), d9), d10), d11))
    }

    /// The same group without the minute.
    var group: RollupKey {
        var g = self
        g.minute = 0
        return g
    }
}

/// Aggregates rows per minute and group as a statement passes them by (see
/// `ShardChecksum.RowAccumulator`), reading only the columns it needs.
final class RollupAccumulator {
    private(set) var minutes: [RollupKey: RollupMeasures] = [:]
    private let dimensionColumns: [Int?]  // nil: the synthesized port class
    private let end = FlowSchema.requiredField.index
    private let dstPort = FlowSchema.id(of: "DstPort").index
    private let bytes = FlowSchema.id(of: "Bytes").index, packets = FlowSchema.id(of: "Packets").index
    private let dropBytes = FlowSchema.id(of: "PktDropBytes").index, dropPackets = FlowSchema.id(of: "PktDropPackets").index
    private let rtt = FlowSchema.id(of: "TimeFlowRttNs").index, dnsLatency = FlowSchema.id(of: "DnsLatencyMs").index
    private let rcode = FlowSchema.id(of: "DnsFlagsResponseCode").index
    /// The shard's string ids of NoError, NXDomain, ServFail (nil when absent).
    private let rcodeIDs: (Int64?, Int64?, Int64?)
    /// Port classes, as stand-in ids in the key.
    static let portClasses = ["none", "well-known", "registered", "dynamic"]

    init(rcodeIDs: (Int64?, Int64?, Int64?)) {
        self.rcodeIDs = rcodeIDs
        dimensionColumns = RollupSchema.dimensions.map { $0.field == "DstPortClass" ? nil : FlowSchema.id(of: $0.field).index }
    }

    func add(_ values: UnsafeMutablePointer<OpaquePointer?>) {
        func integer(_ column: Int) -> Int64? {
            let value = values[column]
            return sqlite3_value_type(value) == SQLITE_NULL ? nil : sqlite3_value_int64(value)
        }
        guard let endMs = integer(end) else { return }
        var key = RollupKey(minute: (endMs >= 0 ? endMs / 60_000 : (endMs - 59_999) / 60_000) * 60_000)
        for (i, column) in dimensionColumns.enumerated() {
            if let column {
                key[i] = integer(column) ?? .min
            } else {
                let port = integer(dstPort)
                key[i] = port == nil ? 0 : port! < 1024 ? 1 : port! < 49152 ? 2 : 3
            }
        }
        var m = RollupMeasures(flows: 1, bytes: integer(bytes) ?? 0, packets: integer(packets) ?? 0,
                               droppedBytes: integer(dropBytes) ?? 0, droppedPackets: integer(dropPackets) ?? 0)
        if let r = integer(rtt) { m.rttMin = r; m.rttMax = r; m.rttSum = r; m.rttCount = 1 }
        if let d = integer(dnsLatency) { m.dnsLatencySum = d; m.dnsLatencyCount = 1 }
        if let code = integer(rcode) {
            if code == rcodeIDs.0 { m.dnsNoError = 1 } else if code == rcodeIDs.1 { m.dnsNXDomain = 1 }
            else if code == rcodeIDs.2 { m.dnsServFail = 1 } else { m.dnsOther = 1 }
        }
        minutes[key, default: RollupMeasures()].add(m)
    }
}

/// Writes and reads `rollups.sqlite`.
package final class RollupStore {
    let db: SQLiteDatabase

    package init(path: String) throws(SQLiteError) {
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        try db.execute(RollupSchema.createSQL)
    }

    /// Group ids by dimension values, shared by every seal in the process: after the
    /// first shards, almost every group is already known and costs no query.
    private nonisolated(unsafe) static var knownGroups: [String: [[String?]: Int64]] = [:]
    private static let knownGroupsLock = NSLock()

    /// Adds one shard's aggregates to every tier, unless the shard is already in.
    /// `text(id)` gives the shard's string for a dimension id.
    func add(shard: ShardID, minutes: [RollupKey: RollupMeasures], text: (Int64) throws -> String?) throws {
        let present = try db.prepare("SELECT 1 FROM rollup_shards WHERE shard_id = ?1")
        present.bind(1, shard.description)
        if try present.step() { return }

        try Self.knownGroupsLock.withLock {
            try db.transaction { () throws(SQLiteError) in
                do {
                    try addLocked(shard: shard, minutes: minutes, text: text)
                } catch let error as SQLiteError {
                    Self.knownGroups[db.path] = nil  // it may hold ids of rolled-back rows
                    throw error
                } catch {
                    Self.knownGroups[db.path] = nil
                    throw SQLiteError(code: SQLITE_ERROR, message: "\(error)", sql: nil, path: db.path)
                }
            }
        }
    }

    private func addLocked(shard: ShardID, minutes: [RollupKey: RollupMeasures], text: (Int64) throws -> String?) throws {
        let dims = RollupSchema.dimensions
        var known = Self.knownGroups[db.path] ?? [:]
        if known.isEmpty {
            let all = try db.prepare("SELECT id, \(dims.map(\.column).joined(separator: ", ")) FROM rollup_groups")
            while try all.step() {
                known[(0..<dims.count).map { all.isNull(Int32($0 + 1)) ? nil : all.text(Int32($0 + 1)) }] = all.integer(0)
            }
        }
        let insertGroup = try db.prepare("""
            INSERT INTO rollup_groups (\(dims.map(\.column).joined(separator: ", "))) VALUES (\((1...dims.count).map { "?\($0)" }.joined(separator: ", ")))
            """)
        var textCache: [Int64: String?] = [:]
        var groupIDs: [RollupKey: Int64] = [:]
        func groupID(_ key: RollupKey) throws -> Int64 {
            if let id = groupIDs[key] { return id }
            var values: [String?] = []
            for (i, d) in dims.enumerated() {
                let raw = key[i]
                if d.field == "DstPortClass" {
                    values.append(RollupAccumulator.portClasses[Int(raw)])
                } else if raw == .min {
                    values.append(nil)
                } else if d.isText {
                    if textCache[raw] == nil { textCache[raw] = .some(try text(raw)) }
                    values.append(textCache[raw] ?? nil)
                } else {
                    values.append(String(raw))
                }
            }
            let id: Int64
            if let existing = known[values] {
                id = existing
            } else {
                for (i, value) in values.enumerated() {
                    if let value { insertGroup.bind(Int32(i + 1), value) } else { insertGroup.bindNull(Int32(i + 1)) }
                }
                try insertGroup.step()
                insertGroup.reset()
                id = sqlite3_last_insert_rowid(db.handle)
                known[values] = id
            }
            groupIDs[key] = id
            return id
        }

        // Every tier aggregated here, then upserted in key order (appends to each tier's
        // B-tree): through a temporary table and SQL's GROUP BY, which sorts, the same
        // writes took three times as long.
        var tiers = RollupSchema.tiers.map { _ in [TierKey: RollupMeasures]() }
        var flows: Int64 = 0
        for (key, m) in minutes {
            let group = try groupID(key.group)
            for (t, tier) in RollupSchema.tiers.enumerated() {
                tiers[t][TierKey(bucketMs: (key.minute / tier.bucketMs) * tier.bucketMs, groupID: group), default: RollupMeasures()].add(m)
            }
            flows += m.flows
        }
        let measures = RollupSchema.measureColumns
        let updates = measures.map { c -> String in
            switch c {
            case "rtt_min_ns": "rtt_min_ns = coalesce(min(rtt_min_ns, excluded.rtt_min_ns), rtt_min_ns, excluded.rtt_min_ns)"
            case "rtt_max_ns": "rtt_max_ns = coalesce(max(rtt_max_ns, excluded.rtt_max_ns), rtt_max_ns, excluded.rtt_max_ns)"
            default: "\(c) = \(c) + excluded.\(c)"
            }
        }.joined(separator: ", ")
        for (t, tier) in RollupSchema.tiers.enumerated() {
            let upsert = try db.prepare("""
                INSERT INTO \(tier.table) (\(tier.timeColumn), group_id, \(measures.joined(separator: ", ")))
                VALUES (\((1...(measures.count + 2)).map { "?\($0)" }.joined(separator: ", ")))
                ON CONFLICT (\(tier.timeColumn), group_id) DO UPDATE SET \(updates)
                """)
            for (key, m) in tiers[t].sorted(by: { $0.key < $1.key }) {
                upsert.bind(1, key.bucketMs)
                upsert.bind(2, key.groupID)
                let values: [Int64?] = [m.flows, m.bytes, m.packets, m.droppedBytes, m.droppedPackets, m.rttMin, m.rttMax, m.rttSum,
                                        m.rttCount, m.dnsLatencySum, m.dnsLatencyCount, m.dnsNoError, m.dnsNXDomain, m.dnsServFail, m.dnsOther]
                for (i, v) in values.enumerated() {
                    if let v { upsert.bind(Int32(i + 3), v) } else { upsert.bindNull(Int32(i + 3)) }
                }
                try upsert.step()
                upsert.reset()
            }
        }
        let record = try db.prepare("""
            INSERT INTO rollup_shards (shard_id, window_start_ms, window_end_ms, flows, rolled_up_ms) VALUES (?1, ?2, ?3, ?4, ?5)
            """)
        record.bind(1, shard.description)
        record.bind(2, shard.windowStartMs)
        record.bind(3, shard.windowEndMs)
        record.bind(4, flows)
        record.bind(5, Int64(Date().timeIntervalSince1970 * 1000))
        try record.step()
        Self.knownGroups[db.path] = known
    }

    // MARK: Reading

    /// The part of [fromMs, toMs) the rollups answer exactly: minute-aligned, and before
    /// the window of any shard in `unrolled` (active shards, or sealed ones without
    /// rollups), whose flows the tiers do not hold. nil when there is no such span.
    package static func span(fromMs: Int64, toMs: Int64, unrolledWindowStarts: [Int64]) -> (fromMs: Int64, toMs: Int64)? {
        let start = ((fromMs + 59_999) / 60_000) * 60_000
        var end = (toMs / 60_000) * 60_000
        if let firstUnrolled = unrolledWindowStarts.filter({ $0 < end }).min() { end = max(start, min(end, firstUnrolled)) }
        return end > start ? (start, end) : nil
    }

    /// Which tier rows cover [fromMs, toMs) exactly: whole days from the day tier, whole
    /// hours from the hour tier, the rest from minutes. As SQL over `tier_rows`.
    static func coveringRowsSQL(fromMs: Int64, toMs: Int64) -> String {
        var parts: [String] = []
        let day: Int64 = 86_400_000, hour: Int64 = 3_600_000
        let dayStart = ((fromMs + day - 1) / day) * day, dayEnd = (toMs / day) * day
        let hourStart = ((fromMs + hour - 1) / hour) * hour, hourEnd = (toMs / hour) * hour
        func select(_ table: String, _ column: String, _ from: Int64, _ to: Int64) {
            if to > from { parts.append("SELECT * FROM \(table) WHERE \(column) >= \(from) AND \(column) < \(to)") }
        }
        if dayEnd > dayStart {
            select("day_rollups", "day_ms", dayStart, dayEnd)
            select("hour_rollups", "hour_ms", hourStart, dayStart)
            select("hour_rollups", "hour_ms", dayEnd, hourEnd)
        } else if hourEnd > hourStart {
            select("hour_rollups", "hour_ms", hourStart, hourEnd)
        }
        if hourEnd > hourStart {
            select("minute_rollups", "minute_ms", fromMs, hourStart)
            select("minute_rollups", "minute_ms", hourEnd, toMs)
        } else {
            select("minute_rollups", "minute_ms", fromMs, toMs)
        }
        return parts.map { $0.replacingOccurrences(of: "SELECT *", with: "SELECT group_id, flows, bytes, packets") }
            .joined(separator: " UNION ALL ")
    }

    /// Sums of flows, bytes and packets per group of `fields` (flow field names that are
    /// rollup dimensions) over [fromMs, toMs), which must be minute-aligned.
    package func totals(by fields: [String], fromMs: Int64, toMs: Int64) throws -> [(group: [String], flows: Int64, bytes: Int64, packets: Int64)] {
        let columns = try fields.map { try Self.column(for: $0) }
        let keys = columns.map { "coalesce(CAST(g.\($0) AS TEXT), '')" }
        let rows = try db.prepare("""
            SELECT \(keys.joined(separator: ", ")), sum(t.flows), sum(t.bytes), sum(t.packets)
            FROM (SELECT group_id, sum(flows) AS flows, sum(bytes) AS bytes, sum(packets) AS packets
                  FROM (\(Self.coveringRowsSQL(fromMs: fromMs, toMs: toMs))) GROUP BY group_id) AS t
            JOIN rollup_groups AS g ON g.id = t.group_id
            GROUP BY \((1...columns.count).map(String.init).joined(separator: ", "))
            """)
        var result: [(group: [String], flows: Int64, bytes: Int64, packets: Int64)] = []
        let n = Int32(columns.count)
        while try rows.step() {
            result.append(((0..<n).map { rows.text($0) ?? "" }, rows.integer(n), rows.integer(n + 1), rows.integer(n + 2)))
        }
        return result
    }

    /// Per-bucket sums over [fromMs, toMs) (minute-aligned; `stepMs` a multiple of a
    /// minute) for groups matching `filter` (field = value).
    package func series(stepMs: Int64, fromMs: Int64, toMs: Int64, filter: [(field: String, value: String)]) throws -> [(bucketMs: Int64, flows: Int64, bytes: Int64, packets: Int64)] {
        let tier = RollupSchema.tiers.last { stepMs % $0.bucketMs == 0 && fromMs % $0.bucketMs == 0 } ?? RollupSchema.tiers[0]
        let conditions = try filter.enumerated().map { i, f in "CAST(g.\(try Self.column(for: f.field)) AS TEXT) = ?\(i + 4)" }
        let rows = try db.prepare("""
            SELECT ((t.\(tier.timeColumn) - ?2) / ?1) * ?1 + ?2 AS bucket, sum(t.flows), sum(t.bytes), sum(t.packets)
            FROM \(tier.table) AS t JOIN rollup_groups AS g ON g.id = t.group_id
            WHERE t.\(tier.timeColumn) >= ?2 AND t.\(tier.timeColumn) < ?3\(conditions.isEmpty ? "" : " AND " + conditions.joined(separator: " AND "))
            GROUP BY bucket ORDER BY bucket
            """)
        rows.bind(1, stepMs)
        rows.bind(2, fromMs)
        rows.bind(3, toMs)
        for (i, f) in filter.enumerated() { rows.bind(Int32(i + 4), f.value) }
        var result: [(bucketMs: Int64, flows: Int64, bytes: Int64, packets: Int64)] = []
        while try rows.step() { result.append((rows.integer(0), rows.integer(1), rows.integer(2), rows.integer(3))) }
        return result
    }

    /// Deletes tier rows and shard records of windows that ended before `cutoffMs`.
    @discardableResult
    package func prune(endedBeforeMs cutoffMs: Int64) throws -> Int {
        var dropped = 0
        try db.transaction { () throws(SQLiteError) in
            for tier in RollupSchema.tiers {
                // A bucket that straddles the cutoff is kept whole.
                let delete = try db.prepare("DELETE FROM \(tier.table) WHERE \(tier.timeColumn) + \(tier.bucketMs) <= ?1")
                delete.bind(1, cutoffMs)
                try delete.step()
            }
            let delete = try db.prepare("DELETE FROM rollup_shards WHERE window_end_ms <= ?1")
            delete.bind(1, cutoffMs)
            try delete.step()
            dropped = Int(sqlite3Changes(db))
        }
        return dropped
    }

    package func isRolledUp(_ shard: ShardID) throws -> Bool {
        let query = try db.prepare("SELECT 1 FROM rollup_shards WHERE shard_id = ?1")
        query.bind(1, shard.description)
        return try query.step()
    }

    /// The oldest bucket the rollups hold, if any.
    package func oldestMinuteMs() throws -> Int64? { try db.scalarInteger("SELECT min(minute_ms) FROM minute_rollups") }
    package func newestMinuteMs() throws -> Int64? { try db.scalarInteger("SELECT max(minute_ms) FROM minute_rollups") }

    /// Rows per tier and bytes on disk, for reports.
    package func size() throws -> (minuteRows: Int64, hourRows: Int64, dayRows: Int64, groups: Int64, bytes: Int64) {
        (try db.scalarInteger("SELECT count(*) FROM minute_rollups") ?? 0, try db.scalarInteger("SELECT count(*) FROM hour_rollups") ?? 0,
         try db.scalarInteger("SELECT count(*) FROM day_rollups") ?? 0, try db.scalarInteger("SELECT count(*) FROM rollup_groups") ?? 0,
         fileSize(db.path) + fileSize(db.path + "-wal"))
    }

    /// Whether every field is a rollup dimension (so rollups can answer a grouping).
    package static func covers(_ fields: [String]) -> Bool {
        fields.allSatisfy { f in RollupSchema.dimensions.contains { $0.field == f } }
    }

    static func column(for field: String) throws(ShardStoreError) -> String {
        guard let d = RollupSchema.dimensions.first(where: { $0.field == field }) else {
            throw ShardStoreError("\(field) is not a rollup dimension; rollups group by \(RollupSchema.dimensions.map(\.field).joined(separator: ", "))")
        }
        return d.column
    }
}
