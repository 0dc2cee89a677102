import StorageKit
import Foundation

/// `deadletters.sqlite`: every message that was not a flow, with its reason.
///
/// Store-wide rather than per shard because a message that is not a flow has no event
/// time to choose a shard by; keyed by source position, so a replayed message is
/// stored once (`INSERT OR IGNORE`).
final class DeadLetterStore {  // internal: the store owns it
    static let createSQL = """
        CREATE TABLE IF NOT EXISTS dead_letters (
            source TEXT NOT NULL,            -- Kafka topic, or file:<name> for ingest
            partition INTEGER NOT NULL,
            position INTEGER NOT NULL,       -- Kafka offset, or line number
            received_ms INTEGER NOT NULL,
            reason TEXT NOT NULL,
            error_offset INTEGER,            -- byte in the payload where decoding failed
            payload BLOB NOT NULL,
            PRIMARY KEY (source, partition, position)
        ) WITHOUT ROWID;
        """

    private let db: SQLiteDatabase
    private let insert: SQLiteStatement
    /// Kept in this file's `high_water` table, on this connection (see `ResumeCheckpoint`).
    let checkpoint: ResumeCheckpoint

    init(path: String) throws(SQLiteError) {
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        try db.execute(Self.createSQL)
        insert = try db.prepare("""
            INSERT OR IGNORE INTO dead_letters (source, partition, position, received_ms, reason, error_offset, payload)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """)
        checkpoint = try ResumeCheckpoint(db: db)
    }

    /// Stores dead letters (positions index `sources`) and, in the same transaction,
    /// moves the checkpoint to `highWater` when given; returns how many letters were new.
    func write(_ letters: [DeadLetter], sources: [String], receivedMs: Int64,
               highWater: [SourcePartition: Int64]?) throws(SQLiteError) -> Int {
        var added = 0
        try db.transaction { () throws(SQLiteError) in
            for letter in letters {
                insert.bind(1, sources[letter.at.source])
                insert.bind(2, Int64(letter.at.partition))
                insert.bind(3, letter.at.position)
                insert.bind(4, receivedMs)
                insert.bind(5, letter.reason)
                if let offset = letter.errorOffset { insert.bind(6, Int64(offset)) } else { insert.bindNull(6) }
                letter.payload.withUnsafeBytes { insert.bind(7, blob: $0) }
                try insert.step()
                insert.reset()
                added += db.changes
            }
            if let highWater { try checkpoint.write(highWater) }
        }
        if let highWater { checkpoint.committed(highWater) }
        return added
    }

    /// Removes the dead letters at these positions (after a replay stored them as flows).
    func remove(_ positions: [(source: String, partition: Int32, position: Int64)]) throws(SQLiteError) {
        let delete = try db.prepare("DELETE FROM dead_letters WHERE source = ?1 AND partition = ?2 AND position = ?3")
        try db.transaction { () throws(SQLiteError) in
            for p in positions {
                delete.bind(1, p.source)
                delete.bind(2, Int64(p.partition))
                delete.bind(3, p.position)
                try delete.step()
                delete.reset()
            }
        }
    }

    /// Deletes the dead letters received before `cutoffMs` (retention's age limit, which
    /// applies to them as to the flows); returns how many.
    func delete(receivedBefore cutoffMs: Int64) throws(SQLiteError) -> Int {
        let delete = try db.prepare("DELETE FROM dead_letters WHERE received_ms < ?1")
        delete.bind(1, cutoffMs)
        try delete.step()
        return db.changes
    }

    /// How many `delete(receivedBefore:)` would delete now.
    func count(receivedBefore cutoffMs: Int64) throws(SQLiteError) -> Int {
        let count = try db.prepare("SELECT count(*) FROM dead_letters WHERE received_ms < ?1")
        count.bind(1, cutoffMs)
        return try count.step() ? Int(count.integer(0)) : 0
    }

    func count() throws(SQLiteError) -> Int64 { try db.scalarInteger("SELECT count(*) FROM dead_letters") ?? 0 }

    /// Dead letters in position order: source, partition, position, reason, payload.
    func forEach(_ body: (String, Int32, Int64, String, [UInt8]) throws -> Void) throws {
        let rows = try db.prepare("SELECT source, partition, position, reason, payload FROM dead_letters ORDER BY source, partition, position")
        while try rows.step() {
            try body(rows.text(0) ?? "", Int32(rows.integer(1)), rows.integer(2), rows.text(3) ?? "", rows.blob(4))
        }
    }
}

