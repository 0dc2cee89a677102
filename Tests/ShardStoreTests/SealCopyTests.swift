import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
@testable import ShardStore
import StorageKit
import Testing

/// The seal copies an active shard's rows record by record (`OrderedRecordCopy`); a
/// shard it does not handle goes through SQLite instead, and the seal says why. Either
/// way the sealed shard holds every flow as ingested, passes SQLite's checks, and its
/// `meta` totals are what SQL computes over its rows.
@Suite struct SealCopyTests {
    /// What the active shard holds before its seal.
    enum Shard: Sendable {
        /// As the writer left it: sorted runs, integers only.
        case asWritten
        /// A REAL where the copy sums bytes.
        case realBytes
        /// A REAL where the copy re-encodes a time.
        case realTime
        /// A text in a time: the shard keeps its times plain, and the copy takes the
        /// records as they are.
        case textTime
        /// Rows in arrival order: more sorted runs than the copy reads side by side.
        case arrivalOrder
    }

    @Test(arguments: [Shard.asWritten, .realBytes, .realTime, .textTime, .arrivalOrder])
    func rowsAreCopiedByRecordsOrElseThroughSQLite(_ shard: Shard) throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 3_600_000, graceMs: 0))
        let lines = generatedLines(3000, rate: 5000, features: Set(GeneratorOptions.Feature.allCases))
        try store.append(batch(lines[...], firstLine: 1))
        let edit = switch shard {
        case .asWritten: ""
        // Not integral, so the column's INTEGER affinity keeps it a REAL.
        case .realBytes: #"UPDATE flow_rows SET "Bytes" = "Bytes" + 0.5 WHERE rowid = 11"#
        case .realTime: #"UPDATE flow_rows SET "TimeFlowStartMs" = "TimeFlowStartMs" + 0.5 WHERE rowid = 12"#
        case .textTime: #"UPDATE flow_rows SET "TimeFlowStartMs" = 'at ' || "TimeFlowStartMs" WHERE rowid = 12"#
        case .arrivalOrder: """
            CREATE TEMP TABLE shuffled AS SELECT * FROM flow_rows ORDER BY random();
            DELETE FROM flow_rows;
            INSERT INTO flow_rows SELECT * FROM shuffled;
            """
        }
        if !edit.isEmpty {
            for active in try store.shards() where active.state == .active {
                let db = try SQLiteDatabase(path: dir.path + "/" + active.path)
                try db.execute(edit)
                // The checksum the writer keeps, made the edited rows' again: otherwise the
                // seal would find it wrong and hash the rows as it copies them through SQLite.
                let rows = RowAccumulator(registeredOn: db)
                _ = try db.scalarInteger("SELECT count(*) FROM flow_rows WHERE \(ShardChecksum.RowAccumulator.functionName)(\(ShardSchema.allColumns.joined(separator: ", ")))")
                let update = try db.prepare("UPDATE meta SET value = ?1 WHERE key = '\(ActiveShard.rowsChecksumKey)'")
                update.bind(1, Int64(bitPattern: rows.sum))
                try update.step()
            }
        }
        let sealed = try store.sealClosedWindows(watermarkMs: .max)
        #expect(sealed.count == 2, "the flows begin a few seconds before an hour")
        let large = try #require(sealed.max { $0.rows < $1.rows })
        #expect(large.rows > 2000)
        let reason = large.copiedThroughSQLiteBecause
        switch shard {
        case .asWritten, .textTime: #expect(reason == nil)
        case .realBytes: #expect(reason?.contains("Bytes is not an integer") == true, "\(reason ?? "by records")")
        case .realTime: #expect(reason?.contains("TimeFlowStartMs is not an integer") == true, "\(reason ?? "by records")")
        case .arrivalOrder: #expect(reason?.contains("sorted runs") == true, "\(reason ?? "by records")")
        }
        if shard == .asWritten || shard == .arrivalOrder {
            #expect(try storedFlows(store).sorted() == lines.map { String(decoding: $0, as: UTF8.self) }.sorted())
        }
        if shard == .textTime {
            let reader = try store.reader(for: large.id)
            #expect(try reader.db.scalarInteger("SELECT count(*) FROM flows WHERE \"TimeFlowStartMs\" LIKE 'at %'") == 1)
        }
        for sealedShard in try store.shards() {
            let reader = try store.reader(for: sealedShard.id)
            #expect(try reader.quickCheck() == nil)
            #expect(try reader.contentChecksum().checksum == ReadingPagesDirectlyTests.catalogChecksum(dir, sealedShard.id))
            let totals = try reader.db.prepare("""
                SELECT count(*) IS (SELECT value FROM meta WHERE key = 'row_count'),
                       min("TimeFlowEndMs") IS (SELECT value FROM meta WHERE key = 'min_time_ms'),
                       max("TimeFlowEndMs") IS (SELECT value FROM meta WHERE key = 'max_time_ms'),
                       sum("Bytes") IS (SELECT value FROM meta WHERE key = 'bytes_total'),
                       sum("Packets") IS (SELECT value FROM meta WHERE key = 'packets_total')
                FROM flow_rows
                """)
            #expect(try totals.step())
            #expect((0..<5).map { totals.integer(Int32($0)) } == [1, 1, 1, 1, 1], "meta's totals of \(sealedShard.id)")
        }
    }
}

private typealias RowAccumulator = ShardChecksum.RowAccumulator
