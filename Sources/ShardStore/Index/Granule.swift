package import FlowModel
import StorageKit

/// One granule of a sealed shard: consecutive rows in the seal order, with their time
/// range and the smallest and largest value of every indexed field (a zone map).
package struct Granule: Sendable, Equatable {
    package let firstRowID: Int64
    package let lastRowID: Int64
    package let minTimeMs: Int64?
    package let maxTimeMs: Int64?
    /// Per field of `SkipIndex.fields`, in that order; nil where the granule has no value.
    package let bounds: [ClosedRange<IndexValue>?]
    /// The values of the fields after the seal order's leading ones (names, addresses,
    /// ports...), each hashed with its field's position: a zone map of a field the rows
    /// are not sorted by is wide, a Bloom filter is not. Nil in a shard sealed without it.
    package let bloom: BloomFilter?

    package var rowCount: Int64 { lastRowID - firstRowID + 1 }

    /// Whether a row of this granule may have every `field = value` and a time in
    /// [fromMs, toMs).
    package func mayMatch(_ filter: SkipFilter) -> Bool {
        if let from = filter.fromMs, let maxTime = maxTimeMs, maxTime < from { return false }
        if let to = filter.toMs, let minTime = minTimeMs, minTime >= to { return false }
        if filter.fromMs != nil || filter.toMs != nil, minTimeMs == nil { return false }
        for (position, value) in filter.equalities {
            guard let range = bounds[position] else { return false }
            if !range.contains(value) { return false }
            if position >= SkipIndex.sortFields.count, let bloom, !bloom.mightContain(value, field: position) { return false }
        }
        return true
    }
}

/// What a scan asks of the rows, in the terms the skip index can check: a time range
/// on `TimeFlowEndMs` and `field = value` terms that must all hold. Terms on fields that
/// are not indexed, or of another type than the field, are dropped (never pruned on).
package struct SkipFilter: Sendable {
    package var fromMs: Int64?
    package var toMs: Int64?
    /// (position in `SkipIndex.fields`, value).
    package private(set) var equalities: [(Int, IndexValue)] = []

    package init(fromMs: Int64? = nil, toMs: Int64? = nil) {
        self.fromMs = fromMs
        self.toMs = toMs
    }

    /// Adds `field = value`; ignored unless the field is indexed and the value's type is the field's.
    package mutating func require(_ field: FieldID, equals value: IndexValue) {
        guard let position = SkipIndex.position(of: field), value.fits(field) else { return }
        equalities.append((position, value))
    }

    /// Whether anything can be pruned on at all.
    package var isEmpty: Bool { fromMs == nil && toMs == nil && equalities.isEmpty }

    /// Whether the shard summarised by `summaries` may hold a matching flow.
    package func mayMatch(_ summaries: [SkipSummary]) -> Bool {
        for (position, value) in equalities {
            let field = SkipIndex.fields[position]
            if let summary = summaries.first(where: { $0.field == field }), !summary.mayContain(value) { return false }
        }
        return true
    }

    /// The row id ranges of `granules` that may hold matching rows, adjacent ones joined.
    package func candidateRanges(_ granules: [Granule]) -> [ClosedRange<Int64>] {
        var ranges: [ClosedRange<Int64>] = []
        for granule in granules where granule.mayMatch(self) {
            if let last = ranges.last, last.upperBound + 1 == granule.firstRowID {
                ranges[ranges.count - 1] = last.lowerBound...granule.lastRowID
            } else {
                ranges.append(granule.firstRowID...granule.lastRowID)
            }
        }
        return ranges
    }
}

extension Granule {
    /// The columns of `granules`, in table order.
    static var columns: [String] {
        ["first_rowid", "last_rowid", "min_time_ms", "max_time_ms"]
            + SkipIndex.fields.flatMap { ["\"\(SkipIndex.minColumn($0))\"", "\"\(SkipIndex.maxColumn($0))\""] } + ["bloom"]
    }

    static var insertSQL: String {
        "INSERT INTO granules (\(columns.joined(separator: ", "))) VALUES ("
            + (1...columns.count).map { "?\($0)" }.joined(separator: ", ") + ")"
    }

    static var selectSQL: String { selectSQL(where: nil) }

    /// The granules that `condition` (over `first_rowid` and `last_rowid`) keeps, in order.
    /// With `filter`, only what it can check is read (its fields' bounds, the Bloom filter
    /// if it tests a field after the sort fields); the other bounds read as NULL, which
    /// `mayMatch` never consults for that filter. A needle query's zone maps were a tenth
    /// of its time, mostly text bounds made into strings for nothing.
    static func selectSQL(where condition: String?, for filter: SkipFilter? = nil) -> String {
        var selected = columns
        if let filter {
            let tested = Set(filter.equalities.map(\.0))
            for i in SkipIndex.fields.indices where !tested.contains(i) {
                selected[4 + 2 * i] = "NULL"
                selected[5 + 2 * i] = "NULL"
            }
            if !tested.contains(where: { $0 >= SkipIndex.sortFields.count }) { selected[selected.count - 1] = "NULL" }
        }
        return "SELECT \(selected.joined(separator: ", ")) FROM granules" + (condition.map { " WHERE " + $0 } ?? "") + " ORDER BY first_rowid"
    }

    func bind(to statement: SQLiteStatement) {
        statement.bind(1, firstRowID)
        statement.bind(2, lastRowID)
        if let minTimeMs { statement.bind(3, minTimeMs) } else { statement.bindNull(3) }
        if let maxTimeMs { statement.bind(4, maxTimeMs) } else { statement.bindNull(4) }
        for (i, range) in bounds.enumerated() {
            SkipSummary.bind(range?.lowerBound, to: statement, at: Int32(5 + 2 * i))
            SkipSummary.bind(range?.upperBound, to: statement, at: Int32(6 + 2 * i))
        }
        let bloomColumn = Int32(5 + 2 * bounds.count)
        if let bloom { bloom.serialized.withUnsafeBytes { statement.bind(bloomColumn, blob: $0) } } else { statement.bindNull(bloomColumn) }
    }

    static func read(_ statement: SQLiteStatement) -> Granule {
        var bounds: [ClosedRange<IndexValue>?] = []
        for i in SkipIndex.fields.indices {
            if let low = SkipSummary.value(statement, Int32(4 + 2 * i)), let high = SkipSummary.value(statement, Int32(5 + 2 * i)),
               !(high < low) {
                bounds.append(low...high)
            } else {
                bounds.append(nil)
            }
        }
        let bloomColumn = Int32(4 + 2 * SkipIndex.fields.count)
        return Granule(firstRowID: statement.integer(0), lastRowID: statement.integer(1),
                       minTimeMs: statement.isNull(2) ? nil : statement.integer(2),
                       maxTimeMs: statement.isNull(3) ? nil : statement.integer(3), bounds: bounds,
                       bloom: statement.isNull(bloomColumn) ? nil : BloomFilter(serialized: statement.blob(bloomColumn)))
    }
}
