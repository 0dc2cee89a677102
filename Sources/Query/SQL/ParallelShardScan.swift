import FlowModel
import StorageKit
import ShardStore
import CSQLite
import Foundation

/// Rows of one `flowrec sql` scan read from its shards on worker threads, handed to the
/// virtual table's cursor in order. The unit of work is a part: a shard, or a rowid
/// range of a big one.
///
/// Scanning one shard is one SQLite statement on one core; on small shards most of the
/// time goes to opening the shard, reading its seek table and decompressing its first
/// frames; a big shard is one long statement. Workers (one per core, at most
/// `workerLimit`) each take the next part, run its statement and copy the rows that pass
/// the pushed-down constraints into batches, while SQLite consumes the part before. A selective filter
/// leaves few rows to copy, so the scan runs on every core. Each part's queue holds at
/// most `queuedBatches` batches, so memory stays bounded whatever the statement reads.
final class ParallelShardScan: Sendable {
    /// Rows read from one part, row-major, only the columns the statement uses.
    struct Batch {
        var rowCount = 0
        /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL, per value.
        var types: [Int32] = []
        /// The integer, the double's bit pattern, or (offset << 32 | length) into `bytes`.
        var numbers: [Int64] = []
        var bytes: [UInt8] = []

        mutating func append(from statement: SQLiteStatement, columns: Int32) {
            for i in 0..<columns {
                let type = sqlite3_column_type(statement.handle, i)
                types.append(type)
                switch type {
                case SQLITE_INTEGER: numbers.append(sqlite3_column_int64(statement.handle, i))
                case SQLITE_FLOAT: numbers.append(Int64(bitPattern: sqlite3_column_double(statement.handle, i).bitPattern))
                case SQLITE_TEXT, SQLITE_BLOB:
                    let pointer = type == SQLITE_TEXT ? UnsafeRawPointer(sqlite3_column_text(statement.handle, i))
                                                      : sqlite3_column_blob(statement.handle, i)
                    let count = Int(sqlite3_column_bytes(statement.handle, i))
                    numbers.append(Int64(bytes.count) << 32 | Int64(count))
                    if let pointer, count > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: count)) }
                default: numbers.append(0)
                }
            }
            rowCount += 1
        }

        /// Values of a row built column by column (`ColumnBlockScan`), then `endRow()`.
        mutating func appendInteger(_ value: Int64) {
            types.append(SQLITE_INTEGER)
            numbers.append(value)
        }

        mutating func appendNull() {
            types.append(SQLITE_NULL)
            numbers.append(0)
        }

        mutating func appendText(_ text: String) {
            var text = text
            text.withUTF8 { utf8 in
                types.append(SQLITE_TEXT)
                numbers.append(Int64(bytes.count) << 32 | Int64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }

        mutating func endRow() { rowCount += 1 }

        /// Hands value `index` (row * columns + column) to SQLite as the column's result.
        func result(_ index: Int, to context: OpaquePointer?) {
            let number = numbers[index]
            switch types[index] {
            case SQLITE_INTEGER: sqlite3_result_int64(context, number)
            case SQLITE_FLOAT: sqlite3_result_double(context, Double(bitPattern: UInt64(bitPattern: number)))
            case let type where type == SQLITE_TEXT || type == SQLITE_BLOB:
                let offset = Int(number >> 32), count = Int(number & 0xFFFF_FFFF)
                bytes.withUnsafeBytes { buffer in
                    // An empty text still needs a non-NULL pointer (NULL would make it SQL NULL).
                    let empty: StaticString = ""
                    let start = count > 0 ? buffer.baseAddress.map { $0 + offset } : UnsafeRawPointer(empty.utf8Start)
                    if type == SQLITE_TEXT {
                        sqlite3_result_text(context, start?.assumingMemoryBound(to: CChar.self), Int32(count), sqliteTransient)
                    } else {
                        sqlite3_result_blob(context, start, Int32(count), sqliteTransient)
                    }
                }
            default: sqlite3_result_null(context)
            }
        }
    }

    /// Where a part's rows come from: a statement over the shard's rows, or its column
    /// blocks (`ColumnBlockScan`).
    enum PartRows {
        case statement(SQLiteStatement)
        case columnBlocks(ColumnBlockScan)

        /// Appends the next row to `batch`; false at the end of the part.
        func appendNext(to batch: inout Batch, columns: Int32) throws -> Bool {
            switch self {
            case .statement(let statement):
                guard try statement.step() else { return false }
                batch.append(from: statement, columns: columns)
                return true
            case .columnBlocks(let scan):
                return try scan.appendNext(to: &batch)
            }
        }
    }

    /// What a part's queue yields: a batch, the end of the part, or why it failed.
    enum Item {
        case batch(Batch)
        case end
        case failure(any Error)
    }

    /// With every column used (`SELECT *`), a batch is about 1.5 MiB and at most
    /// `lookahead` parts × `queuedBatches` of them wait: tens of MiB, whatever the range.
    static let rowsPerBatch = 1024
    static let queuedBatches = 4
    /// Read once: Foundation reads the cgroup's CPU quota files on every call, a
    /// measurable part of a needle query that opens thirty shards.
    static let workerLimit: Int = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))

    private let partCount: Int
    private let open: @Sendable (Int) throws -> (PartRows?, keep: AnyObject)
    private let columnCount: Int32
    private struct State {
        var queues: [[Item]]
        var nextToStart = 0
        /// The part the cursor reads; workers start no part more than `lookahead` past it,
        /// so a filter that keeps many rows cannot pile up the batches of every part.
        var consumerAt = 0
        var cancelled = false
        var running = 0
        var openedParts: [Int] = []
    }
    private let state: WaitableMutex<State>
    private var lookahead: Int { 2 * Self.workerLimit }
    /// Parts whose statement was prepared (tests check the time push-down with it).
    var openedParts: [Int] { state.withLock { $0.openedParts } }

    /// `open` prepares the rows of part `index` of the cursor's list; it runs on a worker
    /// thread and returns them (nil: nothing of the part can match) with what must stay
    /// alive while they are read (the reader).
    init(partCount: Int, columnCount: Int32, open: @escaping @Sendable (Int) throws -> (PartRows?, keep: AnyObject)) {
        self.partCount = partCount
        self.columnCount = columnCount
        self.open = open
        let workers = min(Self.workerLimit, partCount)
        state = WaitableMutex(State(queues: Array(repeating: [], count: partCount), running: workers))
        for _ in 0..<workers {
            NamedThread.start("flowrec-scan") { [self] in work() }
        }
    }

    /// The next item of part `index`, waiting for it if a worker is still reading.
    func take(part index: Int) -> Item {
        state.withLock { $0.consumerAt = index }
        return state.wait(until: { !$0.queues[index].isEmpty }) { $0.queues[index].removeFirst() }
    }

    /// Stops the workers (a LIMIT reached, the statement reset) and waits for them, so no
    /// thread still reads a shard when the cursor goes away.
    func cancel() {
        state.withLock { $0.cancelled = true }
        state.wait(until: { $0.running == 0 }) { _ in }
    }

    private func work() {
        while let index = claimShard() {
            do {
                // One binding per value: a second one (`let opened`) would keep the
                // statement alive to the end of the scope, past `rows = nil`, and the
                // reader's connection would then be closed instead of kept for the next
                // query (`ShardReader.deinit`).
                var (rows, keep) = try open(index)
                state.withLock { $0.openedParts.append(index) }
                var batch = Batch()
                while let current = rows, try current.appendNext(to: &batch, columns: columnCount) {
                    if batch.rowCount == Self.rowsPerBatch {
                        guard deliver(.batch(batch), to: index) else { break }
                        batch = Batch()
                    }
                }
                // Finalized before its reader goes: a shard's connection is kept for the
                // next query only when no statement on it is alive (`ShardReader.deinit`).
                rows = nil
                withExtendedLifetime(keep) {}
                if batch.rowCount > 0 { _ = deliver(.batch(batch), to: index) }
                _ = deliver(.end, to: index)
            } catch {
                _ = deliver(.failure(error), to: index)
            }
        }
        state.withLock { $0.running -= 1 }
    }

    private func claimShard() -> Int? {
        let lookahead = self.lookahead, partCount = self.partCount
        return state.wait(until: { $0.cancelled || $0.nextToStart < $0.consumerAt + lookahead }) { state in
            guard !state.cancelled, state.nextToStart < partCount else { return nil }
            state.nextToStart += 1
            return state.nextToStart - 1
        }
    }

    /// Queues an item, waiting while the part's queue is full; false once cancelled.
    private func deliver(_ item: Item, to index: Int) -> Bool {
        state.wait(until: { $0.cancelled || $0.queues[index].count < Self.queuedBatches }) { state in
            guard !state.cancelled else { return false }
            state.queues[index].append(item)
            return true
        }
    }
}
