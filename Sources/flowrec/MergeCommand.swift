import ArgumentParser
import FlowrecConfig
import Foundation
import ShardStore

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the sealed shards of each finished merge window (a day by default) into larger, indexed shards.",
        discussion: """
        A query over weeks opens every shard of the range: 24 hourly shards a day. Merged, a day is one shard, re-sorted in the seal order with one skip index, compressed at the compaction level; long-range queries open fewer files and read fewer granules, and the store takes less disk. `flowrec record` merges in the background at the lowest CPU priority (store.mergeWindow; 0 turns it off); this command does the same now, for a store no recorder holds (a historical import, say).

        A window merges once it is over (its end plus the grace period is behind the wall clock) and none of its shards is still active. Each merge is verified (the merged shard holds exactly the sources' flows) and swapped in atomically; a crash at any step leaves either the sources or the merged shard, never both counted. Positions move with the flows (a replayed topic stores nothing twice), and a forwarder that delivered every source has delivered the merge: a group half-delivered to some forwarder waits until it is delivered. The sources' files are removed two minutes after the swap, so queries already reading them finish.

        Examples:
          flowrec merge --data /var/lib/flowrec --dry-run
          flowrec merge --merge-window 6h --merge-max-rows 20000000

        Settings (also from the YAML file's store section and FLOWREC_* variables):
        \(FlowrecSettings.help(FlowrecSettings.merge))
        """)

    @Option(help: "YAML config file; its data and store settings apply.")
    var config: String?

    @Flag(help: "List the groups that would merge; write nothing.")
    var dryRun = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settings: [String] = []

    func run() throws {
        let resolved = try ResolvedSettings(table: FlowrecSettings.merge, arguments: settings,
                                            environment: ProcessInfo.processInfo.environment, configFile: config,
                                            fileMayAlsoHold: FlowrecSettings.record)
        let data = DataDirectory(path: resolved.text("data"))
        let store = try data.openExisting()
        let level = Int32(resolved.count("store.compactLevel"))
        guard var policy = try MergePolicy(settings: resolved, storeWindowMs: store.options.windowMs,
                                           level: level == 0 ? store.options.sealLevel : level) else {
            throw ValidationError("merging is off (--merge-window 0); give a merge window such as 1d")
        }
        policy.requiredForwarders = []
        if dryRun {
            let groups = try store.mergePlan(policy)
            for group in groups {
                let rows = group.reduce(Int64(0)) { $0 + $1.rowCount }, bytes = group.reduce(Int64(0)) { $0 + $1.bytesOnDisk }
                print("would merge \(group.count) shards \(group.first!.id) … \(group.last!.id)  \(rows) flows  \(bytes) bytes")
            }
            print("would merge \(groups.reduce(0) { $0 + $1.count }) shards into \(groups.count)")
            return
        }
        var before: Int64 = 0, after: Int64 = 0
        let done = try store.mergeSealedShards(policy, progress: { summary in
            before += summary.bytesBefore
            after += summary.bytesAfter
            print("\(summary.merged): \(summary.sources.count) shards, \(summary.rows) flows, \(summary.bytesBefore) → \(summary.bytesAfter) bytes (\(String(format: "%.1f", summary.seconds)) s)")
        })
        print("merged \(done.reduce(0) { $0 + $1.sources.count }) shards into \(done.count), \(before) → \(after) bytes")
    }
}
