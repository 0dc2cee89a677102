import ArgumentParser
import Foundation
import ShardStore

struct ShardsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "List the shards of a data directory: window, part, state, rows, size, delivery to each forwarder.",
        discussion: "Use --format json for scripts; --count prints only the total number of stored flows. `flowrec shards show ID` prints one shard's own summary. Each forwarder that has delivered anything gets a column: `yes` (delivered), `N/M` (chunks delivered so far) or `-` (not yet).",
        subcommands: [ListShards.self, Show.self],
        defaultSubcommand: ListShards.self)
}

struct ListShards: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the shards (the default).")

    @OptionGroup var data: DataOptions

    @Option(help: "table or json.")
    var format: String = "table"

    @Flag(help: "Print only the total number of stored flows.")
    var count = false

    func validate() throws {
        if !["table", "json"].contains(format) { throw ValidationError("--format must be table or json") }
    }

    func run() throws {
        let store = try data.openForReading()
        let shards = try store.shards()
        if count {
            print(shards.reduce(Int64(0)) { $0 + $1.rowCount })
            return
        }
        let forwarders = try store.forwarderNames()
        var deliveries: [String: [ShardID: DeliveryState]] = [:]
        for name in forwarders { deliveries[name] = try store.deliveries(forwarder: name) }
        /// "yes", chunks delivered so far, or "-".
        func syncState(_ shard: ShardRecord, _ forwarder: String) -> String {
            guard let state = deliveries[forwarder]?[shard.id] else { return "-" }
            if state.complete { return "yes" }
            guard state.chunkRows > 0, shard.rowCount > 0 else { return "\(state.chunksDelivered) chunks" }
            return "\(state.chunksDelivered)/\((shard.rowCount + state.chunkRows - 1) / state.chunkRows)"
        }
        if format == "json" {
            let rows: [[String: Any]] = shards.map { shard in
                ["id": shard.id.description, "state": shard.state.rawValue, "rows": shard.rowCount, "bytes": shard.bytesOnDisk,
                 "path": shard.path, "min_time_ms": shard.minTimeMs as Any, "max_time_ms": shard.maxTimeMs as Any,
                 "delivered": Dictionary(uniqueKeysWithValues: forwarders.map { ($0, syncState(shard, $0)) })]
            }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let widths = forwarders.map { max($0.count, 9) }
        print("SHARD                              STATE        ROWS        BYTES  B/FLOW"
              + zip(forwarders, widths).map { "  " + $0.uppercased().leftPadded($1) }.joined())
        for s in shards {
            let perFlow = s.rowCount > 0 ? String(s.bytesOnDisk / s.rowCount) : "-"
            print("\(s.id.description.padding(toLength: 34, withPad: " ", startingAt: 0)) \(s.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(s.rowCount).leftPadded(9)) \(String(s.bytesOnDisk).leftPadded(12)) \(perFlow.leftPadded(7))"
                  + zip(forwarders, widths).map { "  " + syncState(s, $0).leftPadded($1) }.joined())
        }
    }
}

/// `flowrec shards show ID`: a shard's `meta` table and positions, read from the shard itself.
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a shard's own summary (its meta table) and the source positions it holds.")

    @Argument(help: "Shard id as listed, e.g. 20260101T0000Z_20260101T0100Z.0")
    var id: String

    @OptionGroup var data: DataOptions

    func run() throws {
        guard let shardID = ShardID(id) else {
            throw ValidationError("\(id) is not a shard id; ids look like 20260101T0000Z_20260101T0100Z.0 (see `flowrec shards`)")
        }
        let store = try data.openForReading()
        guard let info = try store.shards().first(where: { $0.id == shardID }) else {
            throw CommandFailure("no shard \(id) in \(data.path); `flowrec shards` lists them", exit: .noInput)
        }
        print("shard:   \(info.id)\nstate:   \(info.state)\npath:    \(info.path)\nbytes:   \(info.bytesOnDisk)")
        let reader = try store.reader(for: shardID)
        try reader.query("SELECT key, value FROM meta ORDER BY key") { row in
            print("\((row.text(0) ?? "").padding(toLength: 18, withPad: " ", startingAt: 0)) \(row.text(1) ?? "")")
        }
        print("positions (source, partition: first..last, high water):")
        try reader.query("SELECT source, partition, first_position, last_position, high_water FROM positions ORDER BY 1, 2") { row in
            let first = row.isNull(2) ? "-" : String(row.integer(2)), last = row.isNull(3) ? "-" : String(row.integer(3))
            let hw = row.isNull(4) ? "-" : String(row.integer(4))
            print("  \(row.text(0) ?? "") [\(row.integer(1))]: \(first)..\(last), high water \(hw)")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
