/// The SQL files under `migrations/`, as the binary knows them: written by
/// `flowrec schema --write-migrations` and compared with the repository by a test.
package enum MigrationFiles {
    package static var all: [(path: String, text: String)] {
        let shard: [(path: String, text: String)] = [
            ("migrations/shard/0001_shard.sql", ShardSchema.createSQL), ("migrations/shard/0002_skip_index.sql", SkipIndex.createSQL),
            ("migrations/shard/0003_traffic_series.sql", TrafficSeries.createSQL),
            ("migrations/shard/0004_column_blocks.sql", ColumnBlocks.createSQL),
        ]
        let catalog = CatalogSchema.migrations.map { (path: "migrations/catalog/\($0.name).sql", text: $0.sql + "\n") }
        let deadLetters = DeadLetterStore.migrations.map { (path: "migrations/deadletters/\($0.name).sql", text: $0.sql + "\n") }
        let rollups: [(path: String, text: String)] = [
            ("migrations/rollups/0001_rollups.sql", RollupSchema.createSQL),
            ("migrations/rollups/0002_tier_horizons.sql", RollupSchema.horizonsSQL),
        ]
        return shard + catalog + deadLetters + rollups
    }
}
