import Foundation
import StorageKit

/// The store-wide part of where each source partition resumes.
///
/// Most of a partition's checkpoint lives in the shards: each records, in the
/// transaction that stores its rows, the highest position it absorbed. Some marks have
/// no shard to live in: a batch of only dead letters, a batch of only replays, and the
/// marks of shards that retention deleted. They live here, in the `high_water` table of
/// `deadletters.sqlite` (so a batch of only dead letters commits its letters and its
/// mark in one transaction). A partition resumes after the larger of the two.
final class ResumeCheckpoint {
    private let db: SQLiteDatabase
    private let upsert: SQLiteStatement
    /// The marks as committed, kept in memory: window routing skips positions up to them.
    private(set) var marks: [SourcePartition: Int64] = [:]

    static let createSQL = """
        -- How far the store had processed where no shard records it: batches of only dead
        -- letters or only replays, and shards deleted by retention.
        CREATE TABLE IF NOT EXISTS high_water (
            source TEXT NOT NULL,
            partition INTEGER NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (source, partition)
        ) WITHOUT ROWID;
        """

    /// Uses `db` (the dead-letter store's connection), creating the table if needed (and
    /// if `db` can write).
    init(db: SQLiteDatabase) throws(SQLiteError) {
        self.db = db
        if !db.isReadOnly { try db.execute(Self.createSQL) }
        upsert = try db.prepare("""
            INSERT INTO high_water (source, partition, position) VALUES (?1, ?2, ?3)
            ON CONFLICT (source, partition) DO UPDATE SET position = max(position, excluded.position)
            """)
        marks = try Self.readMarks(db)
    }

    /// Every mark in `db`'s `high_water` table.
    private static func readMarks(_ db: SQLiteDatabase) throws(SQLiteError) -> [SourcePartition: Int64] {
        let rows = try db.prepare("SELECT source, partition, position FROM high_water")
        var marks: [SourcePartition: Int64] = [:]
        while try rows.step() {
            marks[SourcePartition(source: rows.text(0) ?? "", partition: Int32(rows.integer(1)))] = rows.integer(2)
        }
        return marks
    }

    /// Moves the marks forward (never back) in a transaction of their own.
    func advance(to newMarks: [SourcePartition: Int64]) throws(SQLiteError) {
        guard !newMarks.isEmpty else { return }
        try db.transaction { () throws(SQLiteError) in try write(newMarks) }
        committed(newMarks)
    }

    /// Writes marks inside the caller's open transaction on the same connection; call
    /// `committed` once it commits.
    func write(_ newMarks: [SourcePartition: Int64]) throws(SQLiteError) {
        for (key, position) in newMarks {
            upsert.bind(1, key.source)
            upsert.bind(2, Int64(key.partition))
            upsert.bind(3, position)
            try upsert.step()
            upsert.reset()
        }
    }

    func committed(_ newMarks: [SourcePartition: Int64]) {
        for (key, mark) in newMarks { marks[key] = max(marks[key] ?? mark, mark) }
    }

    /// Where each partition resumes given the shards' own marks: one past the larger.
    func resumePositions(shardMarks: [SourcePartition: Int64]) -> [SourcePartition: Int64] {
        shardMarks.merging(marks) { max($0, $1) }.mapValues { $0 + 1 }
    }
}

extension ResumeCheckpoint {
    /// The marks of the store in `directory`, read on a connection of their own (the
    /// background merger has no store open); none when there is no dead-letter file yet.
    static func marks(inStoreAt directory: URL) throws(SQLiteError) -> [SourcePartition: Int64] {
        let path = directory.appendingPathComponent(DeadLetterStore.fileName).path
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        let db = try SQLiteDatabase(path: path, mode: .readOnly)
        guard try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = 'high_water'") == 1 else { return [:] }
        return try readMarks(db)
    }
}

extension ShardStore {
    /// Where each source partition resumes: the position after the largest high-water
    /// mark. Partitions never seen are absent (start from the consumer's reset policy).
    package func resumePositions() throws -> [SourcePartition: Int64] {
        checkpoint.resumePositions(shardMarks: try catalog.highWater())
    }
}
