import ArgumentParser
import Foundation
import ShardStore

struct ShardsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "List the shards of a data directory: window, part, state, rows, size.",
        discussion: "Use --format json for scripts; --count prints only the total number of stored flows.")

    @Option(help: "Data directory.")
    var data: String = "./flowrec-data"

    @Option(help: "table or json.")
    var format: String = "table"

    @Flag(help: "Print only the total number of stored flows.")
    var count = false

    func validate() throws {
        if !["table", "json"].contains(format) { throw ValidationError("--format must be table or json") }
        if !FileManager.default.fileExists(atPath: data + "/catalog.sqlite") {
            throw ValidationError("\(data) is not a flowrec data directory (no catalog.sqlite); pass --data")
        }
    }

    func run() throws {
        let store = try ShardStore.openExisting(directory: data)
        let shards = try store.shards()
        if count {
            print(shards.reduce(Int64(0)) { $0 + $1.rowCount })
            return
        }
        if format == "json" {
            let rows: [[String: Any]] = shards.map {
                ["id": $0.id.description, "state": $0.state, "rows": $0.rowCount, "bytes": $0.bytesOnDisk,
                 "path": $0.path, "min_time_ms": $0.minTimeMs as Any, "max_time_ms": $0.maxTimeMs as Any]
            }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("SHARD                              STATE        ROWS        BYTES  B/FLOW")
        for s in shards {
            let perFlow = s.rowCount > 0 ? String(s.bytesOnDisk / s.rowCount) : "-"
            print("\(s.id.description.padding(toLength: 34, withPad: " ", startingAt: 0)) \(s.state.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(s.rowCount).leftPadded(9)) \(String(s.bytesOnDisk).leftPadded(12)) \(perFlow.leftPadded(7))")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
