/// The rows of a shard a statement reads, as SQL over `flow_rows AS r`: every row, or
/// the row id ranges of the granules the skip index could not rule out.
///
/// Several ranges are read through a join with a `VALUES` list of them, not through
/// `r.rowid BETWEEN … OR r.rowid BETWEEN …`. SQLite answers an OR of ranges with its
/// multi-index OR: it gathers the row ids of every range into a RowSet, then seeks each
/// row again by its id, about half as much again per row as one range scan (by hand on
/// a merged day, 90 against 58 ns per row; bench/NOTES.md, "Long ranges"). The join
/// (the ranges outer, fixed by `CROSS JOIN`) seeks each range once and steps through its
/// rows, in row id order as before.
package struct RowSelection: Sendable, Equatable {
    /// nil: every row; else the ranges, ascending and disjoint (`SkipFilter.candidateRanges`).
    package let ranges: [ClosedRange<Int64>]?

    package init(_ ranges: [ClosedRange<Int64>]?) {
        self.ranges = ranges
    }

    /// Every row of the shard.
    package static let all = RowSelection(nil)

    /// Whether no row can match (every granule was ruled out).
    package var isEmpty: Bool { ranges?.isEmpty == true }

    /// Whether every row is read.
    package var isWhole: Bool { ranges == nil }

    /// The ranges' name in `from`: no column or table of a shard starts with an underscore
    /// and a `g`, so the statement's own names cannot collide with it.
    static let rangesAlias = "_granule_ranges"

    /// What a statement reads: `FROM` (without the keyword) these rows of `flow_rows AS r`,
    /// and `WHERE` they also satisfy every one of `conditions` (SQL over `r`). Every
    /// per-shard statement goes through it, so the ranges' join and their condition
    /// always come together, once.
    package func source(where conditions: [String] = []) -> String {
        let all = self.conditions + conditions
        return from + (all.isEmpty ? "" : " WHERE " + all.joined(separator: " AND "))
    }

    /// `flow_rows AS r`, joined to the ranges when there are several.
    private var from: String {
        guard let ranges, ranges.count > 1 else { return "flow_rows AS r" }
        let values = ranges.map { "(\($0.lowerBound),\($0.upperBound))" }.joined(separator: ",")
        return "(VALUES \(values)) AS \(Self.rangesAlias) CROSS JOIN flow_rows AS r"
    }

    /// What keeps `r` to the ranges (none when every row is read).
    private var conditions: [String] {
        guard let ranges else { return [] }
        switch ranges.count {
        case 0: return ["0"]
        case 1: return ["r.rowid BETWEEN \(ranges[0].lowerBound) AND \(ranges[0].upperBound)"]
        default: return ["r.rowid BETWEEN \(Self.rangesAlias).column1 AND \(Self.rangesAlias).column2"]
        }
    }
}
