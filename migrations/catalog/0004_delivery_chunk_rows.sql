-- flowrec catalog, migration 0004: the chunk size a shard's delivery started with,
-- so a changed chunk size never shifts the chunks of a half-delivered shard.
ALTER TABLE deliveries ADD COLUMN chunk_rows INTEGER NOT NULL DEFAULT 0;
