-- flowrec catalog, migration 0005: each sealed shard's skip summaries (a copy of its
-- own skip_summaries table), so a query rules a shard out without opening it.
CREATE TABLE shard_summaries (
    shard_id TEXT NOT NULL REFERENCES shards (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    distinct_count INTEGER NOT NULL,
    min_value ANY,
    max_value ANY,
    kind TEXT NOT NULL CHECK (kind IN ('values', 'bloom')),
    data BLOB NOT NULL,
    PRIMARY KEY (shard_id, field)
) WITHOUT ROWID;
