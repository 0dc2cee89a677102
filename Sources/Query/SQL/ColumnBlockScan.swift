import FlowModel
import ShardStore
import StorageKit

/// One part of a `flowrec sql` scan answered from a merged shard's column blocks
/// (`ColumnBlocks`) instead of its rows: the plan for a needle question over weeks.
///
/// It applies when every column the statement uses is one of the blocks' fields and
/// every candidate granule lies wholly inside the scan's time bounds (the blocks hold no
/// time). Then, per candidate granule of the skip index, it decodes the blocks of the
/// pushed-down equalities, keeps the rows that hold every value, and decodes the used
/// columns of those rows only. The rows it yields are the ones the SQL path
/// (`FlowsAcrossShards.Cursor.select`) yields, in the same order, with the same values,
/// and SQLite checks every constraint again on them, as it does for that path.
final class ColumnBlockScan {
    private let reader: ShardReader
    private let granules: [Granule]
    /// Per used column (in the scan's order): its field, and whether a pushed-down
    /// equality holds it to a text (never decoded: the cursor returns the text).
    private let outputs: [(field: FieldID, isFixed: Bool)]
    /// Per pushed-down equality this part can check on the blocks: (field, stored value).
    private let checks: [(field: FieldID, stored: Int64)]
    private var granuleIndex = 0
    /// The current granule's matching rows (offsets in it) and the used columns' values.
    private var matches: [Int] = []
    private var matchIndex = 0
    private var columns: [[Int64]]
    private var present: [[Bool]]
    private var scratchValues: [Int64] = []
    private var scratchPresent: [Bool] = []

    /// The scan of `part` from column blocks, or nil when the shard has none or the
    /// statement needs what they do not hold (then the rows are read). Counts the
    /// granules it reads in `statistics` as the row path does.
    init?(reader: ShardReader, bounds: FlowsAcrossShards.TimeBounds, plan: FlowsAcrossShards.ScanPlan, columns used: [Int],
          part: ScanPlanner.Part, filter: SkipFilter, statistics: ScanStatistics) throws {
        var outputs: [(FieldID, Bool)] = []
        for column in used {
            guard FlowSchema.fields.indices.contains(column) else { return nil }
            let field = FieldID(rawValue: UInt8(column))
            guard ColumnBlocks.position(of: field) != nil else { return nil }
            outputs.append((field, FlowsAcrossShards.Cursor.textEquality(on: column, in: plan) != nil))
        }
        // Asked last: the columns alone rule most statements out without reading `meta`.
        guard plan.equalities.allSatisfy({ ColumnBlocks.position(of: FieldID(rawValue: UInt8($0.column))) != nil }),
              try reader.hasColumnBlocks() else { return nil }
        var checks: [(FieldID, Int64)] = []
        for (column, value) in plan.equalities {
            let field = FieldID(rawValue: UInt8(column))
            switch value {
            case .text(let text) where field.kind.isTextStored:
                switch try reader.stringID(of: text) {
                case .id(let id): checks.append((field, id))
                case .absent: checks.append((field, 0))  // no row holds it: string ids start at 1
                case .unknown: return nil
                }
            case .integer(let v) where !field.kind.isTextStored:
                checks.append((field, v))
            default:
                continue  // another type than the column stores: SQLite decides, as on the row path
            }
        }
        guard let all = try reader.granules(within: part.rowids, for: filter) else { return nil }
        let candidates = all.filter { $0.mayMatch(filter) }
        // The blocks hold no time: every granule read must lie inside the bounds.
        if bounds.fromMs != nil || bounds.toMs != nil {
            for granule in candidates {
                guard let low = granule.minTimeMs, let high = granule.maxTimeMs,
                      bounds.fromMs.map({ low >= $0 }) ?? true, bounds.toMs.map({ high < $0 }) ?? true else { return nil }
            }
        }
        self.reader = reader
        self.granules = candidates
        self.outputs = outputs
        self.checks = checks
        self.columns = Array(repeating: [], count: outputs.count)
        self.present = Array(repeating: [], count: outputs.count)
        statistics.add(\.granules, all.count)
        statistics.add(\.granulesRead, candidates.count)
        statistics.add(\.granulesFromColumnBlocks, candidates.count)
    }

    /// Appends the next matching row's used columns to `batch`; false at the end.
    func appendNext(to batch: inout ParallelShardScan.Batch) throws -> Bool {
        while matchIndex == matches.count {
            guard granuleIndex < granules.count else { return false }
            try load(granules[granuleIndex])
            granuleIndex += 1
        }
        let row = matches[matchIndex]
        matchIndex += 1
        for (i, output) in outputs.enumerated() {
            if output.isFixed {
                batch.appendNull()  // given to SQLite by the cursor (`FlowsAcrossShards.Cursor.fixed`)
            } else if !present[i][row] {
                batch.appendNull()
            } else if output.field.kind.isTextStored {
                if let text = try reader.string(id: columns[i][row]) { batch.appendText(text) } else { batch.appendNull() }
            } else {
                batch.appendInteger(columns[i][row])
            }
        }
        batch.endRow()
        return true
    }

    /// Decodes `granule`'s equality blocks, finds its matching rows, and decodes the used
    /// columns when any row matches.
    private func load(_ granule: Granule) throws {
        let rows = Int(granule.rowCount)
        matches = Array(0..<rows)
        matchIndex = 0
        for check in checks where !matches.isEmpty {
            try decode(check.field, granule)
            matches = matches.filter { scratchPresent[$0] && scratchValues[$0] == check.stored }
        }
        guard !matches.isEmpty else { return }
        for (i, output) in outputs.enumerated() where !output.isFixed {
            try decode(output.field, granule)
            swap(&columns[i], &scratchValues)
            swap(&present[i], &scratchPresent)
        }
    }

    private func decode(_ field: FieldID, _ granule: Granule) throws {
        guard try reader.readColumnBlock(field, of: granule, values: &scratchValues, present: &scratchPresent) else {
            throw ShardStoreError(.unreadableShard, "\(reader.path): the column block of \(field.name) for rows \(granule.firstRowID)-\(granule.lastRowID) is missing or damaged; run `flowrec fsck`")
        }
    }
}
