-- flowrec catalog, migration 0003: what each forwarder has delivered of each shard,
-- so replication resumes where it stopped and retention keeps undelivered shards.
-- `flowrec fsck` carries these rows over when it rebuilds the catalog.
CREATE TABLE deliveries (
    forwarder TEXT NOT NULL,         -- the forwarder's configured name
    shard_id TEXT NOT NULL,          -- shards.id (kept after the shard is deleted)
    chunks_delivered INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (forwarder, shard_id)
) WITHOUT ROWID;
