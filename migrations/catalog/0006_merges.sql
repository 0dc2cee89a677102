-- flowrec catalog, migration 0006: shards merged into larger ones. A merged-away
-- shard's id is never used again (a late flow opens the next part of its window),
-- and its file is removed a little after the swap, once queries that listed it
-- have had time to read it. `flowrec fsck` rebuilds this from the merged shards'
-- own meta (merged_from).
CREATE TABLE merged_sources (
    source_id TEXT PRIMARY KEY,      -- the shard merged away
    merged_into TEXT NOT NULL,       -- the shard that holds its flows now
    window_start_ms INTEGER NOT NULL,
    window_end_ms INTEGER NOT NULL,
    part INTEGER NOT NULL,
    path TEXT NOT NULL,              -- its file, relative to the data directory
    merged_ms INTEGER NOT NULL,
    file_removed INTEGER NOT NULL DEFAULT 0 CHECK (file_removed IN (0, 1))
) WITHOUT ROWID;
CREATE INDEX merged_sources_by_window ON merged_sources (window_start_ms, window_end_ms);

-- Facts about the store itself: window_ms, the width of its shard windows (merged
-- shards span several).
CREATE TABLE store_facts (
    key TEXT PRIMARY KEY,
    value ANY
) WITHOUT ROWID;
