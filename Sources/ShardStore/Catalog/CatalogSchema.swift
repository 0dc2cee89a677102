/// The catalog: an index of every shard and its state, for fast startup and queries.
/// It is a cache, never the only copy: `flowrec fsck` rebuilds it from the shards'
/// own `meta` and `positions` tables.
///
/// Migrations are append-only and numbered; the applied ones are recorded in
/// `schema_migrations`, as GRDB's DatabaseMigrator does. `migrations/catalog/` holds
/// the same text, written by `flowrec schema --write-migrations`.
package enum CatalogSchema {
    package static let migrations: [(name: String, sql: String)] = [
        ("0001_catalog", """
        -- flowrec catalog, migration 0001.
        -- One row per shard file: active (being written), sealed (compressed, immutable)
        -- or quarantined (failed verification, moved aside).
        CREATE TABLE shards (
            id TEXT PRIMARY KEY,             -- <window start>_<window end>.<part>
            window_start_ms INTEGER NOT NULL,
            window_end_ms INTEGER NOT NULL,
            part INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'sealed', 'quarantined')),
            path TEXT NOT NULL,              -- relative to the data directory
            row_count INTEGER NOT NULL DEFAULT 0,
            dead_letter_count INTEGER NOT NULL DEFAULT 0,
            min_time_ms INTEGER,             -- smallest TimeFlowEndMs stored
            max_time_ms INTEGER,             -- largest TimeFlowEndMs stored
            bytes_on_disk INTEGER NOT NULL DEFAULT 0,
            checksum TEXT,
            created_ms INTEGER NOT NULL,
            sealed_ms INTEGER
        );
        CREATE INDEX shards_by_window ON shards (window_start_ms, part);

        -- Copy of each shard's positions table, for deduplication across parts.
        CREATE TABLE shard_positions (
            shard_id TEXT NOT NULL REFERENCES shards (id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            partition INTEGER NOT NULL,
            first_position INTEGER,
            last_position INTEGER,
            high_water INTEGER NOT NULL,
            PRIMARY KEY (shard_id, source, partition)
        ) WITHOUT ROWID;
        """),
        ("0002_zstd_level", """
        -- flowrec catalog, migration 0002: the zstd level a sealed shard is compressed at,
        -- so deep compaction knows which shards it has not recompressed yet.
        ALTER TABLE shards ADD COLUMN zstd_level INTEGER;
        """),
        ("0003_deliveries", """
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
        """),
        ("0004_delivery_chunk_rows", """
        -- flowrec catalog, migration 0004: the chunk size a shard's delivery started with,
        -- so a changed chunk size never shifts the chunks of a half-delivered shard.
        ALTER TABLE deliveries ADD COLUMN chunk_rows INTEGER NOT NULL DEFAULT 0;
        """),
        ("0005_skip_summaries", """
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
        """),
        ("0006_merges", """
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
        """),
    ]
}
