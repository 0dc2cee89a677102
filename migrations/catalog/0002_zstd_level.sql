-- flowrec catalog, migration 0002: the zstd level a sealed shard is compressed at,
-- so deep compaction knows which shards it has not recompressed yet.
ALTER TABLE shards ADD COLUMN zstd_level INTEGER;
