import Foundation

/// Applies an ordered, append-only list of named migrations, recording each applied one
/// in the database's own `schema_migrations` table (GRDB's `DatabaseMigrator` is the
/// model): a migration runs once, in its own transaction, in list order.
///
/// ```swift
/// try SQLiteMigrator([("0001_catalog", "CREATE TABLE ...")]).migrate(db)
/// ```
package struct SQLiteMigrator: Sendable {
    package let migrations: [(name: String, sql: String)]

    package init(_ migrations: [(name: String, sql: String)]) { self.migrations = migrations }

    /// The migrations `db` lacks, without changing it (a reader that cannot write).
    package func pending(in db: SQLiteDatabase) throws(SQLiteError) -> [String] {
        guard try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'") == 1 else {
            return migrations.map(\.name)
        }
        var pending: [String] = []
        let applied = try db.prepare("SELECT 1 FROM schema_migrations WHERE name = ?1")
        for migration in migrations {
            applied.bind(1, migration.name)
            if try !applied.step() { pending.append(migration.name) }
            applied.reset()
        }
        return pending
    }

    package func migrate(_ db: SQLiteDatabase) throws(SQLiteError) {
        try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_ms INTEGER NOT NULL)")
        for migration in migrations {
            let applied = try db.prepare("SELECT 1 FROM schema_migrations WHERE name = ?1")
            applied.bind(1, migration.name)
            if try applied.step() { continue }
            try db.transaction { () throws(SQLiteError) in
                try db.execute(migration.sql)
                let record = try db.prepare("INSERT INTO schema_migrations (name, applied_ms) VALUES (?1, ?2)")
                record.bind(1, migration.name)
                record.bind(2, Int64(Date().timeIntervalSince1970 * 1000))
                try record.step()
            }
        }
    }
}
