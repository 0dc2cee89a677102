import ArgumentParser
import Foundation
import Forwarders
import ShardStore

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print flowrec's SQL schemas, or write them to migrations/.",
        discussion: """
        The shard schema is derived from flowrec's NetObserv field list; the catalog schema is a numbered list of migrations. Both live in the binary; the files under migrations/ are copies for people and tools, checked by the tests.
        """)

    @Flag(help: "Write migrations/ (shard, catalog, deadletters, clickhouse) under --root instead of printing.")
    var writeMigrations = false

    @Option(help: "Repository root for --write-migrations.")
    var root: String = "."

    func run() throws {
        let files = MigrationFiles.all + ClickHouseMigrationFiles.all
        if !writeMigrations {
            for (path, text) in files { print("-- \(path)\n\(text)") }
            return
        }
        for (path, text) in files {
            let url = URL(fileURLWithPath: root).appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
            print("wrote \(path)")
        }
    }
}
