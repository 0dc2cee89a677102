-- A WITHOUT ROWID table keeps at most about 1 KB of a row in its B-tree page: a
-- dead letter of NetObserv's size (about 1 KB) took an overflow page of its own,
-- 4.7 KB on disk for each. A rowid table keeps rows up to about 4 KB inline
-- (measured: 2,000 letters of 1 KB, 9.4 MB before, 2.8 MB after).
CREATE TABLE dead_letters_rowid (
    source TEXT NOT NULL,            -- Kafka topic, or file:<name> for ingest
    partition INTEGER NOT NULL,
    position INTEGER NOT NULL,       -- Kafka offset, or line number
    received_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    error_offset INTEGER,            -- byte in the payload where decoding failed
    payload BLOB NOT NULL,
    PRIMARY KEY (source, partition, position)
);
INSERT INTO dead_letters_rowid (source, partition, position, received_ms, reason, error_offset, payload)
    SELECT source, partition, position, received_ms, reason, error_offset, payload FROM dead_letters;
DROP TABLE dead_letters;
ALTER TABLE dead_letters_rowid RENAME TO dead_letters;
