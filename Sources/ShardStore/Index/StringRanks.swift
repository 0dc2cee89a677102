import StorageKit

/// A shard's strings in value order: the rank of each string id, and the text of each.
///
/// Dictionary ids follow arrival order, which means nothing across shards; ranks follow
/// the values' bytes (SQLite's BINARY collation, ClickHouse's order for `String`), so
/// the seal order and the zone maps agree with what a query compares, and two shards
/// sorted by rank are sorted the same way.
struct StringRanks {
    /// By string id (ids are dense from 1; index 0 is unused): the rank, from 1.
    private(set) var rankOfID: [UInt32]
    /// By rank (index 0 is unused): the string id.
    private(set) var idOfRank: [Int32]
    /// By string id: the text.
    private(set) var values: [String]

    /// Reads `table` (a shard's `strings`, possibly of an attached database).
    init(table: String, in db: SQLiteDatabase) throws(SQLiteError) {
        var values = [""]
        let rows = try db.prepare("SELECT id, value FROM \(table) ORDER BY id")
        while try rows.step() {
            let id = Int(rows.integer(0))
            // Dense ids are what the writer produces; a gap (a hand-edited shard) is filled
            // with an empty placeholder that no row refers to.
            while values.count < id { values.append("") }
            values.append(rows.text(1) ?? "")
        }
        (rankOfID, idOfRank) = Self.byValue(ids: values.count - 1) { values[Int($0)].utf8 }
        self.values = values
    }

    /// Ids 1...`ids` ranked by their values' bytes: the order of the seal, the zone maps,
    /// and the writer's sorted runs (`SealRun`), which must all agree. Index 0 of both
    /// arrays is unused (rank 0 is NULL's).
    static func byValue<Bytes: Sequence<UInt8>>(ids: Int, _ value: (Int32) -> Bytes) -> (rankOfID: [UInt32], idOfRank: [Int32]) {
        var order = (0..<Int32(ids)).map { $0 + 1 }
        order.sort { value($0).lexicographicallyPrecedes(value($1)) }
        var ranks = [UInt32](repeating: 0, count: ids + 1)
        for (rank, id) in order.enumerated() { ranks[Int(id)] = UInt32(rank + 1) }
        return (ranks, [0] + order)
    }

    /// The rank of a stored id; 0 for NULL or an id the table does not hold.
    @inline(__always) func rank(_ id: Int64) -> UInt32 {
        id > 0 && id < Int64(rankOfID.count) ? rankOfID[Int(id)] : 0
    }

    /// The text of the string at `rank` (from 1).
    func value(ofRank rank: UInt32) -> String { values[Int(idOfRank[Int(rank)])] }

    func value(ofID id: Int64) -> String? { id > 0 && id < Int64(values.count) ? values[Int(id)] : nil }
}
