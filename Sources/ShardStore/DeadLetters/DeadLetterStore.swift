import StorageKit
import Foundation

/// `deadletters.sqlite`: every message that was not a flow, with its reason.
///
/// Store-wide rather than per shard because a message that is not a flow has no event
/// time to choose a shard by; keyed by source position, so a replayed message is
/// stored once (`INSERT OR IGNORE`).
final class DeadLetterStore {  // internal: the store owns it
    /// Its file, in the data directory.
    static let fileName = "deadletters.sqlite"

    /// The table as it is now; `migrations` gets an older file there.
    static let createSQL = table("dead_letters", ifNotExists: true) + ";"

    /// The table's definition; `WITHOUT ROWID` was 0001's, and 0002 left it out.
    private static func table(_ name: String, ifNotExists: Bool = false, withoutRowID: Bool = false) -> String {
        """
        CREATE TABLE \(ifNotExists ? "IF NOT EXISTS " : "")\(name) (
            source TEXT NOT NULL,            -- Kafka topic, or file:<name> for ingest
            partition INTEGER NOT NULL,
            position INTEGER NOT NULL,       -- Kafka offset, or line number
            received_ms INTEGER NOT NULL,
            reason TEXT NOT NULL,
            error_offset INTEGER,            -- byte in the payload where decoding failed
            payload BLOB NOT NULL,
            PRIMARY KEY (source, partition, position)
        )\(withoutRowID ? " WITHOUT ROWID" : "")
        """
    }

    /// Numbered and applied once each, in order (`SQLiteMigrator`, as for the catalog);
    /// `migrations/deadletters/` holds copies. A file from before the migrator has no
    /// record of 0001, whose statements then change nothing, and is converted by 0002.
    static let migrations: [(name: String, sql: String)] = [
        ("0001_deadletters", table("dead_letters", ifNotExists: true, withoutRowID: true) + ";\n" + ResumeCheckpoint.createSQL),
        ("0002_dead_letters_rowid", """
            -- A WITHOUT ROWID table keeps at most about 1 KB of a row in its B-tree page: a
            -- dead letter of NetObserv's size (about 1 KB) took an overflow page of its own,
            -- 4.7 KB on disk for each. A rowid table keeps rows up to about 4 KB inline
            -- (measured: 2,000 letters of 1 KB, 9.4 MB before, 2.8 MB after).

            """ + table("dead_letters_rowid") + """
            ;
            INSERT INTO dead_letters_rowid (source, partition, position, received_ms, reason, error_offset, payload)
                SELECT source, partition, position, received_ms, reason, error_offset, payload FROM dead_letters;
            DROP TABLE dead_letters;
            ALTER TABLE dead_letters_rowid RENAME TO dead_letters;
            """),
    ]

    private let db: SQLiteDatabase
    private let insert: SQLiteStatement
    /// Kept in this file's `high_water` table, on this connection (see `ResumeCheckpoint`).
    let checkpoint: ResumeCheckpoint

    /// `writable` false (a store opened for reading) leaves an older file's vacuum mode
    /// alone, and on a volume this process cannot write opens the file as it is.
    init(path: String, writable: Bool = true) throws(SQLiteError) {
        if !writable && SQLiteDatabase.isInUnwritableDirectory(path) {
            db = try SQLiteDatabase(path: path, mode: .readOnly)
        } else {
            db = try SQLiteDatabase(path: path)
            // Retention deletes dead letters by age and by share of the size limits; the
            // space they took goes back to the volume only in incremental auto-vacuum.
            if writable { try db.useIncrementalAutoVacuum() }
            try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            if writable {
                try SQLiteMigrator(Self.migrations).migrate(db)
                try db.giveBackFreePages()  // the table 0002 replaced
            } else {
                // A reader converts nothing (a writer may be running): either form reads alike.
                try db.execute(Self.createSQL)
            }
        }
        insert = try db.prepare(Self.insertSQL)
        checkpoint = try ResumeCheckpoint(db: db)
    }

    private static let insertSQL = """
        INSERT OR IGNORE INTO dead_letters (source, partition, position, received_ms, reason, error_offset, payload)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
        """

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
        let deleted = db.changes
        if deleted > 0 { try db.giveBackFreePages() }
        return deleted
    }

    /// Bytes the dead letters take in the file (what the size limits count).
    func liveBytes() throws(SQLiteError) -> Int64 { try db.liveBytes() }

    /// Whether deleting dead letters gives space back to the volume (a file written by an
    /// older flowrec and too large to convert keeps its pages for later letters).
    var shrinksWhenPruned: Bool { db.shrinksWhenRowsAreDeleted }

    /// The receipt time before which the oldest dead letters hold at least `fraction`
    /// of all their payload and reason bytes (whole batches: letters received together
    /// go together), and how many letters that is; nil when there are none. A fraction,
    /// not bytes: the file spends more than the letters' own bytes (keys, page headers,
    /// the unique index; overflow pages for letters beyond about 4 KB), so the caller converts
    /// what it must free from `liveBytes()` and measures again after deleting.
    func oldest(fraction: Double) throws(SQLiteError) -> (receivedBeforeMs: Int64, letters: Int)? {
        // One pass: the window sum gives every group the total, read on the first.
        let batches = try db.prepare("""
            SELECT received_ms, count(*), sum(length(payload) + length(reason)),
                   sum(sum(length(payload) + length(reason))) OVER ()
            FROM dead_letters GROUP BY received_ms ORDER BY received_ms
            """)
        var taken: Int64 = 0, letters = 0, wanted: Int64 = 0
        while try batches.step() {
            if letters == 0 {  // the first group (every group holds at least one letter)
                let all = batches.integer(3)
                guard all > 0 else { return nil }
                wanted = Int64((Double(all) * fraction).rounded(.up))
            }
            letters += Int(batches.integer(1))
            taken += batches.integer(2)
            if taken >= wanted { return (min(batches.integer(0), .max - 1) + 1, letters) }
        }
        return letters == 0 ? nil : (Int64.max, letters)
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

