import ArgumentParser
import Foundation
import ShardStore

struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Check every shard and rebuild the catalog from the shard files.",
        discussion: """
        Opens each shard (sealed ones in place), runs SQLite's quick_check, compares sealed shards with their recorded content checksum, holds what sealed shards keep besides their rows (column blocks, the traffic series) to those rows, and rebuilds catalog.sqlite from the shards' own meta and positions tables. A shard that fails is moved to <data>/quarantine/ (never deleted) and the rest keep working. Exit status 1 when anything was quarantined. Stop the recorder first.
        """)

    @OptionGroup var data: DataOptions

    func validate() throws {
        if !FileManager.default.fileExists(atPath: data.path + "/shards") {
            throw ValidationError("\(data.path) has no shards/ directory; pass the data directory with --data")
        }
    }

    func run() throws {
        let report = try StoreChecker.check(directory: data.path)
        print("checked \(report.checked) shards: \(report.sealed) sealed, \(report.active) active, \(report.quarantined.count) quarantined; \(report.rows) flows")
        for (path, reason) in report.quarantined { print("quarantined \(path): \(reason)") }
        if !report.quarantined.isEmpty { throw ExitCode(1) }
    }
}
