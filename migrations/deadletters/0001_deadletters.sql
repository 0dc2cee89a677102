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
-- How far the store had processed where no shard records it: batches of only dead
-- letters or only replays, and shards deleted by retention.
CREATE TABLE IF NOT EXISTS high_water (
    source TEXT NOT NULL,
    partition INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (source, partition)
) WITHOUT ROWID;
