package import FlowModel
import StorageKit

/// What a sealed shard knows about itself so that a query can leave it, or most of it,
/// unread: MergeTree's lesson applied to sorted, immutable SQLite shards.
///
/// - The seal order: rows sorted by `sortFields` (by value, as ClickHouse's modern
///   table is ordered), then time. Flows of one namespace pair and owner pair sit side
///   by side, so a filter on them touches a few granules, and they compress together.
/// - Granules: every `granuleRows` rows in that order, the range of row ids, the time
///   range and the smallest and largest value of each of `fields` (a zone map), in the
///   shard's `granules` table. A filter reads only the granules whose ranges can hold
///   its values.
/// - Skip summaries: per shard and field, the distinct values themselves when there are
///   few (`valueSetLimit`), a Bloom filter otherwise, with the smallest and largest
///   value; in the shard's `skip_summaries` table and copied into the catalog, so a
///   shard that cannot hold a value is never opened.
///
/// All three are built while the sealer copies the rows (`ShardIndexBuilder`) and are
/// rebuilt by `flowrec fsck` from the shard itself when the catalog is lost.
package enum SkipIndex {
    /// The fields investigations filter on: namespaces, owners, names, nodes, addresses,
    /// ports, protocol, flow layer, record type. The first four lead the seal order.
    package static let fields: [FieldID] = [
        "SrcK8S_Namespace", "DstK8S_Namespace", "SrcK8S_OwnerName", "DstK8S_OwnerName",
        "SrcK8S_Name", "DstK8S_Name", "SrcK8S_OwnerType", "DstK8S_OwnerType", "SrcK8S_Type", "DstK8S_Type",
        "SrcK8S_HostName", "DstK8S_HostName", "SrcAddr", "DstAddr", "SrcPort", "DstPort", "Proto",
        "K8S_FlowLayer", "_RecordType",
    ].map(FlowSchema.id(of:))

    /// The seal order's leading fields (then `TimeFlowEndMs`): the modern ClickHouse
    /// table's `ORDER BY` (`migrations/clickhouse/0001_flows.modern.sql`).
    package static let sortFields: [FieldID] = Array(fields.prefix(4))

    /// The `meta` key naming the order a sealed shard's rows are in, and its value for
    /// the current order (a merge streams shards in this order; others it sorts first).
    static let sealOrderMetaKey = "seal_order"
    static var sealOrder: String { (sortFields.map(\.name) + [FlowSchema.requiredField.name]).joined(separator: ",") }

    /// Which fields any row of a sealed shard lists in `_quoted` (integers that arrived as
    /// numeric strings) and in `_nulls` (JSON nulls), in its `meta` table.
    ///
    /// Loki's line filters tell `"Proto":6` from `"Proto":"6"` and a null from an absent
    /// field, so their SQL must consult those lists, which are the last columns of a
    /// 116-column row: SQLite parses the whole record header of every candidate row to
    /// reach them (half of the console's flow-table query). Most shards list nothing; for
    /// a field none of its rows lists, the check is left out. Active shards and shards
    /// sealed before these keys existed have no entry: every check stays.
    package struct BookkeepingFields: Sendable, Equatable {
        package var quoted: Set<String>
        package var nulls: Set<String>

        static let quotedMetaKey = "quoted_fields"
        static let nullsMetaKey = "null_fields"

        package init(quoted: Set<String>, nulls: Set<String>) {
            self.quoted = quoted
            self.nulls = nulls
        }

        /// Reads them from a shard's `meta`; nil when the shard does not record them.
        static func read(from db: SQLiteDatabase) throws(SQLiteError) -> BookkeepingFields? {
            let select = try db.prepare("SELECT key, value FROM meta WHERE key IN ('\(quotedMetaKey)', '\(nullsMetaKey)')")
            var found: [String: Set<String>] = [:]
            while try select.step() {
                found[select.text(0) ?? ""] = Set((select.text(1) ?? "").split(separator: ",").map(String.init))
            }
            guard let quoted = found[quotedMetaKey], let nulls = found[nullsMetaKey] else { return nil }
            return BookkeepingFields(quoted: quoted, nulls: nulls)
        }

        func write(into db: SQLiteDatabase) throws(SQLiteError) {
            let insert = try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            for (key, names) in [(Self.quotedMetaKey, quoted), (Self.nullsMetaKey, nulls)] {
                insert.reset()
                insert.bind(1, key)
                insert.bind(2, names.sorted().joined(separator: ","))
                try insert.step()
            }
        }
    }

    /// Rows per granule: the unit a filtered scan reads or skips. Smaller granules mean
    /// fewer rows stepped through for a needle (SQLite decodes every row it passes), more
    /// zone maps and filters to keep (bench/NOTES.md, "Granules").
    package static let granuleRows: Int64 = 2048

    /// Granules per zstd frame: a frame of one granule (2,048 rows of about 175 bytes,
    /// about 350 KB) is what a needle query decompresses per granule it reads. Four per
    /// frame compressed 1.4% better on merged days, but an address or port needle reads
    /// a quarter of a day's granules, scattered, and so decompressed three quarters of
    /// every frame; over 30 merged days that was 70% of its time (bench/NOTES.md, "Long
    /// ranges").
    static let granulesPerFrame = 1

    /// A field with at most this many distinct values in a shard is summarised by the
    /// values themselves, more than that by a Bloom filter.
    package static let valueSetLimit = 64

    /// Bits per distinct value of a Bloom filter: about 1% false positives with 7 hashes.
    static let bloomBitsPerValue = 10

    /// Where `field` is in `fields`, or nil when it is not indexed.
    package static func position(of field: FieldID) -> Int? { positions[field.index] }

    private static let positions: [Int?] = {
        var table = [Int?](repeating: nil, count: FlowSchema.count)
        for (i, field) in fields.enumerated() { table[field.index] = i }
        return table
    }()

    /// Column names of a field's zone-map bounds in the `granules` table.
    static func minColumn(_ field: FieldID) -> String { "\(field.name)_min" }
    static func maxColumn(_ field: FieldID) -> String { "\(field.name)_max" }

    /// The tables a sealed shard gets (after `ShardSchema.createSQL`): written to
    /// `migrations/shard/0002_skip_index.sql` as well.
    package static var createSQL: String {
        var lines = [
            "-- flowrec shard schema: the skip index of a sealed shard (created by the sealer).",
            "-- Generated from SkipIndex.fields (Sources/ShardStore/Index/SkipIndex.swift) by",
            "-- `flowrec schema --write-migrations`.",
            "",
            "-- Every \(granuleRows) rows in the seal order (SrcK8S_Namespace, DstK8S_Namespace,",
            "-- SrcK8S_OwnerName, DstK8S_OwnerName, then TimeFlowEndMs): their row ids, time range",
            "-- and the smallest and largest value of each indexed field (NULL: none in the granule).",
            "CREATE TABLE granules (",
            "    first_rowid INTEGER PRIMARY KEY,",
            "    last_rowid INTEGER NOT NULL,",
            "    min_time_ms INTEGER,",
            "    max_time_ms INTEGER,",
        ]
        var columns: [String] = []
        for field in fields {
            let type = field.kind == .integer ? "INTEGER" : "TEXT"
            columns.append("    \"\(minColumn(field))\" \(type)")
            columns.append("    \"\(maxColumn(field))\" \(type)")
        }
        columns.append("    bloom BLOB  -- the values of the fields after the first four, each with its field (see docs/on-disk-format.md)")
        lines.append(columns.joined(separator: ",\n"))
        lines += [
            ");",
            "",
            "-- Per indexed field: how many distinct values the shard holds, the smallest and",
            "-- largest, and either the values themselves ('values': a JSON array, at most",
            "-- \(valueSetLimit)) or a Bloom filter of them ('bloom', see docs/on-disk-format.md).",
            "CREATE TABLE skip_summaries (",
            "    field TEXT PRIMARY KEY,",
            "    distinct_count INTEGER NOT NULL,",
            "    min_value ANY,",
            "    max_value ANY,",
            "    kind TEXT NOT NULL CHECK (kind IN ('values', 'bloom')),",
            "    data BLOB NOT NULL",
            ") WITHOUT ROWID;",
            "",
        ]
        return lines.joined(separator: "\n")
    }
}

/// One value of an indexed field, as a query compares it: text compares byte by byte
/// (SQLite's BINARY collation), integers as signed 64-bit numbers.
package enum IndexValue: Hashable, Sendable, Comparable {
    case integer(Int64)
    case text(String)

    package static func < (a: IndexValue, b: IndexValue) -> Bool {
        switch (a, b) {
        case let (.integer(x), .integer(y)): x < y
        case let (.text(x), .text(y)): x.utf8.lexicographicallyPrecedes(y.utf8)
        case (.integer, .text): true  // SQLite: numbers sort before text
        case (.text, .integer): false
        }
    }

    /// Whether a value of this type can equal a value stored in `field` (a text compared
    /// with an integer column never matches, and is not pruned on: SQLite decides).
    func fits(_ field: FieldID) -> Bool {
        switch self {
        case .integer: field.kind == .integer
        case .text: field.kind == .string
        }
    }
}
