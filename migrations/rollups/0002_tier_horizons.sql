-- flowrec rollups, version 2. Generated from RollupSchema (Sources/ShardStore/Rollups/RollupSchema.swift)
-- by `flowrec schema --write-migrations`.
-- How far back retention has pruned each tier (retention.rollupMinuteMaxAge and
-- the others, or the size limits): the tier holds no bucket that starts before
-- pruned_before_ms. Readers answer from a tier only after its horizon.
CREATE TABLE IF NOT EXISTS rollup_horizons (
    tier TEXT PRIMARY KEY,
    pruned_before_ms INTEGER NOT NULL
);
