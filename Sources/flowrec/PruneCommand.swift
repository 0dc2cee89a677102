import ArgumentParser
import FlowModel
import FlowrecConfig
import Foundation
import ShardStore

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete old sealed shards to keep the store within its age, size and free-space limits.",
        discussion: """
        Only whole sealed shards are deleted, oldest window first; active shards never. Dead letters received longer ago than --max-age are deleted too; they count toward the size and free-space limits, and while one is set they may take at most --dead-letter-share of it (0.1; the oldest beyond it go first), so garbage on the topic cannot push flows out. Rollups have an age per tier (minutes 14 days, hours 180 days, days kept, by default) and count toward the size and free-space limits: when a limit needs room, the days of minute rollups older than every shard go first, oldest first (hours and days still answer for them). A limit that is exceeded is brought down to --low-watermark of itself (0.9: a 100 GiB store over its limit is pruned to 90 GiB; a 20 GiB free-space limit prunes until 22.2 GiB are free). Shards a --require-forwarder has not delivered are kept for age and size, but deleted when free space runs below --min-free: losing old flows beats stopping ingest, and each such deletion is reported as an error.

        The store remembers how far each deleted shard's sources were processed, so a replayed topic or a re-ingested file never brings deleted flows back. Shards removed by hand are dropped from the catalog, and sealed files copied in by hand are adopted, before the limits are applied. `flowrec record` applies the same options every minute.

        Examples:
          flowrec prune --data /var/lib/flowrec --max-age 30d --dry-run
          flowrec prune --max-size 200GiB --min-free 10%
          flowrec prune --config /etc/flowrec/flowrec.yaml --dry-run

        Settings (also from the YAML file's retention section and FLOWREC_* variables):
        \(FlowrecSettings.help(FlowrecSettings.prune))
        """)

    @Option(help: "YAML config file; its data and retention settings apply.")
    var config: String?

    @Flag(help: "List what would be deleted and why; delete nothing.")
    var dryRun = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settings: [String] = []

    func run() throws {
        let resolved = try ResolvedSettings(table: FlowrecSettings.prune, arguments: settings,
                                            environment: ProcessInfo.processInfo.environment, configFile: config,
                                            fileMayAlsoHold: FlowrecSettings.record)
        let data = DataDirectory(path: resolved.text("data"))
        let policy = try RetentionPolicy(settings: resolved)
        let store = try data.openExisting()
        let decisions: [PruneDecision]
        let rollupDays: [RollupPruneDecision]
        let deadLetters: (pastAge: Int, overShare: Int)
        if dryRun {
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
            deadLetters = try store.deadLetterRetentionPlan(policy, nowMs: nowMs)
            rollupDays = try store.rollupRetentionPlan(policy, volume: VolumeSpace.of(data.path))
            decisions = try store.retentionPlan(policy, nowMs: nowMs, volume: VolumeSpace.of(data.path))
        } else {
            let report = try store.prune(policy)
            decisions = report.deleted
            rollupDays = report.rollupMinuteDays
            deadLetters = (report.deadLettersDeleted, report.deadLettersOverShare)
            if report.postponed > 0 { print("\(report.postponed) more shards exceed the limits; run again to continue") }
            if report.rollupShardsDropped > 0 { print("dropped the rollups of \(report.rollupShardsDropped) shards past the rollup ages") }
        }
        for day in rollupDays {
            print("\(dryRun ? "would delete" : "deleted") the minute rollups of \(EventTime.rfc3339(day.dayStartMs).prefix(10))  \(day.rows) rows  \(dryRun ? "about " : "")\(day.bytes) bytes  \(day.reason.rawValue)")
        }
        for d in decisions {
            print("\(dryRun ? "would delete" : "deleted") \(d.shard)  \(d.bytes) bytes  \(d.reason.rawValue)\(d.undelivered ? "  (not delivered by every required forwarder)" : "")")
        }
        if deadLetters.pastAge > 0 { print("\(dryRun ? "would delete" : "deleted") \(deadLetters.pastAge) dead letters past the age limit") }
        if deadLetters.overShare > 0 {
            print("\(dryRun ? "would delete" : "deleted") the \(deadLetters.overShare) oldest dead letters: they take more than \(Int(policy.deadLetterShare * 100))% of the size limit (retention.deadLetterShare)")
        }
        let bytes = decisions.reduce(Int64(0)) { $0 + $1.bytes }
        print("\(dryRun ? "would delete" : "deleted") \(decisions.count) shards, \(bytes) bytes")
    }
}
