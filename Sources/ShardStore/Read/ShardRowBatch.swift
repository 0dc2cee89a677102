public import FlowModel  // public: the batch's inlinable readers take `FieldID`s
import StorageKit

/// Up to `capacity` consecutive stored rows of one shard, each field's value (times
/// decoded) or its string id for a text field, for the encoder to take column by
/// column. Valid only inside the callback that receives it (`ShardReader.forEachBatch`).
///
/// Why a batch: the forwarder's encoder wrote each row's 116 values in turn, choosing
/// how to write each one per value; that choice (an indirect branch taken to a
/// different place for every value) and the per-field checks around it were most of
/// the encoder's time (`perf`). Column by column the choice is made once per column per
/// batch, and each column's loop writes into one buffer. The rows are read once into
/// this batch, each record decoded in one pass (`TableCursor.decodeRecord`): read +
/// Native encoding went 1.4x faster (`flowrec-bench forward --encode-only`,
/// bench/NOTES.md).
///
/// The values are held row by row: decoding a record writes its values side by side,
/// where a column-major batch spread each row's writes over 116 cache lines; the
/// encoder's column loops then read with a stride, which costs less than strided
/// writes did (measured within a few percent of each other, bench/NOTES.md).
///
/// Public, with its readers `@inlinable public`, only so that the encoder (another
/// module) inlines them: Swift 6.3 does not serialize `@inlinable package` bodies.
public final class ShardRowBatch {
    /// Rows a batch holds: 256 rows of every column (about 270 KB) stay in a core's L2
    /// cache between the read and the encoder's pass over each column.
    package static let defaultCapacity = 256

    @usableFromInline let capacity: Int
    /// Values per row.
    @usableFromInline let columns = FlowSchema.count
    /// Rows in the batch.
    @exclusivity(unchecked) public private(set) var count = 0
    /// Per row, `columns` values (`[row * columns + field]`): integers with their times
    /// decoded, string ids for text fields; 0 where `present` is false.
    @usableFromInline let values: UnsafeMutablePointer<Int64>
    /// Whether the value is there (false: absent or JSON null, both NULL in a column
    /// store; the shard itself keeps the difference).
    @usableFromInline let present: UnsafeMutablePointer<Bool>
    // The batch's own state is exempt from dynamic exclusivity checks (`perf`: 0.7% of
    // the encode benchmark's samples were in the runtime's access set): a batch is
    // filled and read by one thread, one after the other, never re-entered.

    /// The unknown fields' members of each row (the stored object without its braces),
    /// one after another; a row without any has an empty range.
    @exclusivity(unchecked) private var extras: [UInt8] = []
    @exclusivity(unchecked) private var extrasEnds: [Int]
    @usableFromInline let textStored: [Bool] = FlowSchema.fields.map { $0.kind.isTextStored }
    /// The shard's strings, in place, while the batch is handed out.
    @usableFromInline var strings = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    @usableFromInline var starts = UnsafeBufferPointer<Int>(start: nil, count: 0)
    private let times: ShardSchema.TimeEncoding.RowDecoder
    /// Looked up once per batch rather than once per row (a static `let` costs a
    /// `swift_once` check at every read).
    private let extrasColumn = ShardSchema.extrasColumn

    init(capacity: Int = defaultCapacity, timeEncoding: ShardSchema.TimeEncoding) {
        self.capacity = max(1, capacity)
        values = .allocate(capacity: FlowSchema.count * self.capacity)
        present = .allocate(capacity: FlowSchema.count * self.capacity)
        extrasEnds = []
        extrasEnds.reserveCapacity(self.capacity)
        times = .init(timeEncoding)
    }

    deinit {
        values.deallocate()
        present.deallocate()
    }

    var isFull: Bool { count == capacity }

    func removeAll() {
        count = 0
        extras.removeAll(keepingCapacity: true)
        extrasEnds.removeAll(keepingCapacity: true)
    }

    // MARK: Reading

    /// An integer or boolean field of row `row`; nil when absent, null, or a text field.
    @inlinable @inline(__always) public func integer(_ field: FieldID, row: Int) -> Int64? {
        let column = field.index
        guard !textStored[column] else { return nil }
        return stored(column, row: row)
    }

    /// A text field's UTF-8 in row `row` (strings, and the JSON text of arrays and
    /// objects), valid as long as the batch; nil when absent, null, or an id the shard's
    /// strings do not have (a damaged shard: fsck reports those).
    @inlinable @inline(__always) public func utf8(_ field: FieldID, row: Int) -> UnsafeBufferPointer<UInt8>? {
        let column = field.index
        guard textStored[column] else { return nil }
        // String ids start at 1, and an absent value is held as 0.
        let id = Int(values[row * columns + column])
        guard id >= 1, id < starts.count else { return nil }
        return UnsafeBufferPointer(rebasing: strings[starts[id - 1]..<starts[id]])
    }

    /// Row `row`'s unknown fields' members (`"key":value` joined by commas, as
    /// `Flow.extrasBytes`), nil when none.
    package func withExtras<R>(row: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        let start = row == 0 ? 0 : extrasEnds[row - 1], end = extrasEnds[row]
        guard end > start else { return nil }
        return extras.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[start..<end])) }
    }

    // MARK: Filling

    /// Adds `row` as the batch's next row; the batch must not be full. A cursor's row comes
    /// undecoded (`ShardReader.forEachBatch` turns `TableCursor.decodesHeaders` off) and is
    /// decoded here, its header and values in one pass, straight into the batch.
    func append(_ row: StoredRow) throws(SQLiteError) {
        let r = count
        switch row {
        case .record(let cursor):
            try cursor.decodeRecord(into: values + r * columns, present: present + r * columns, stride: 1, columns: columns)
        case .statement:
            for column in 0..<columns { set(row.integerOrNull(column), column: column, row: r) }
        }
        // An overflow (only in a hand-edited shard) leaves the wrapped value, as every reader does.
        _ = times.decode(values: values + r * columns, present: present + r * columns)
        _ = row.withText(extrasColumn) { object in
            // Stored as one JSON object; the members without the braces, as `Flow` keeps them.
            if object.count >= 2, object.first == UInt8(ascii: "{"), object.last == UInt8(ascii: "}") {
                extras.append(contentsOf: object[1..<(object.count - 1)])
            } else {
                extras.append(contentsOf: object)
            }
        }
        extrasEnds.append(extras.count)
        count += 1
    }

    @inline(__always) private func set(_ value: Int64?, column: Int, row: Int) {
        let at = row * columns + column
        values[at] = value ?? 0
        present[at] = value != nil
    }

    /// Column `column`'s value in row `row` as the batch holds it; nil when not present.
    @inlinable @inline(__always) func stored(_ column: Int, row: Int) -> Int64? {
        let at = row * columns + column
        return present[at] ? values[at] : nil
    }
}
