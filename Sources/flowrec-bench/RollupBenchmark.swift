import StorageKit
import ArgumentParser
import FlowGenerator
import FlowModel
import FileSource
import Foundation
import Query
import ShardStore

/// `flowrec top` over 30 days of a medium cluster's rollups, beside the same question
/// asked of raw shards, and the rollups' size per day.
///
/// Thirty days of raw medium-cluster traffic (13 billion flows) cannot be generated
/// here, so the run measures a real sample (generated flows, ingested and sealed, with
/// rollups written by the sealer) and builds the 30-day rollup tiers from it: every
/// hour and day of the month repeats the sample's groups. The raw baseline is the same
/// top over the sample's raw shards, scaled to 30 days.
struct RollupBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollups", abstract: "top over 30 days of rollups, beside raw shards; rollup size per day.")

    @Option(help: "Minutes of medium-cluster traffic to sample (at its 5,000 flows/s).")
    var minutes = 10

    @Option(help: "Scratch directory, removed afterwards.")
    var scratch = NSTemporaryDirectory() + "flowrec-bench-rollups"

    func run() throws {
        let workspace = try BenchScratch(scratch)
        defer { workspace.remove() }
        let flows = minutes * 60 * 5000
        let generated = try workspace.writeGeneratedFlows("flows.jsonl", flows: flows)

        // The sample: ingested in 1-minute windows and sealed (the sealer writes rollups).
        let sampleDir = scratch + "/sample"
        let sample = try ShardStore(directory: sampleDir, options: .init(windowMs: 60_000, graceMs: 0))
        let batcher = FlowLineBatcher(reader: try LineReader(path: generated.path), sourceName: "file:bench", batchSize: 20_000,
                                      decoder: FlowDecoder())
        try BatchPipeline().run(produce: { try batcher.fill(&$0) }, consume: { _ = try sample.append($0) })
        try sample.sealClosedWindows(watermarkMs: .max)
        let sealed = try sample.shards().filter { $0.state == .sealed }
        let sampleFrom = try requireValue(sealed.map(\.id.windowStartMs).min(), "no sealed shard")
        let sampleTo = try requireValue(sealed.map(\.id.windowEndMs).max(), "no sealed shard")
        let sampleMinutes = Double(sampleTo - sampleFrom) / 60_000
        let sampleFlows = sealed.reduce(Int64(0)) { $0 + $1.rowCount }
        _ = try requireValue(try RollupReader(store: sample), "the sealer wrote no rollups")
        let sampleSize = try RollupStore(path: sample.rollupsPath).size()

        // Raw baseline: top namespace pairs over the sample's raw shards, with rollups off.
        let by = ["SrcK8S_Namespace", "DstK8S_Namespace"]
        let top = TopTalkers(store: sample)
        var t = monotonicSeconds()
        let rawRows = try top.answer(by: by, metric: .bytes, fromMs: sampleFrom, toMs: sampleTo, whereSQL: "1 = 1", limit: 10).rows
        let rawSeconds = monotonicSeconds() - t
        t = monotonicSeconds()
        let sampleAnswer = try top.answer(by: by, metric: .bytes, fromMs: sampleFrom, toMs: sampleTo, limit: 10)
        let sampleRollupSeconds = monotonicSeconds() - t
        guard sampleAnswer.rows == rawRows, sampleAnswer.fromRollups != nil else {
            throw ValidationError("rollups and raw shards disagree on the sample")
        }

        // Thirty days of tiers built from the sample: its hour rows repeated for every
        // hour, its day rows for every day, its minute rows for the first and last hour.
        let month = scratch + "/month"
        try FileManager.default.createDirectory(atPath: month, withIntermediateDirectories: true)
        let days: Int64 = 30
        let monthStart = (sampleFrom / 86_400_000) * 86_400_000
        let monthEnd = monthStart + days * 86_400_000
        let db = try SQLiteDatabase(path: month + "/rollups.sqlite")
        try db.execute(RollupSchema.createSQL)
        try db.execute("ATTACH DATABASE '\(sampleDir)/rollups.sqlite' AS s")
        let measures = RollupSchema.measureColumns.joined(separator: ", ")
        // The sample may straddle an hour or a day: one row per group of each tier.
        let merged = RollupSchema.mergedMeasuresSQL
        try db.execute("""
            BEGIN;
            INSERT INTO rollup_groups SELECT * FROM s.rollup_groups;
            WITH RECURSIVE hours(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hours WHERE h < \(days * 24 - 1))
            INSERT INTO hour_rollups SELECT \(monthStart) + h * 3600000, group_id, \(measures) FROM hours, (SELECT group_id, \(merged) FROM s.hour_rollups GROUP BY group_id);
            WITH RECURSIVE ds(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM ds WHERE d < \(days - 1))
            INSERT INTO day_rollups SELECT \(monthStart) + d * 86400000, group_id, \(measures) FROM ds, (SELECT group_id, \(merged) FROM s.day_rollups GROUP BY group_id);
            WITH RECURSIVE ms(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM ms WHERE m < 59)
            INSERT OR IGNORE INTO minute_rollups
              SELECT start + m * 60000, group_id, \(measures)
              FROM ms, (SELECT \(monthStart) AS start UNION ALL SELECT \(monthEnd - 3_600_000)) AS edges,
                   (SELECT group_id, \(measures) FROM s.minute_rollups WHERE minute_ms = (SELECT min(minute_ms) FROM s.minute_rollups));
            COMMIT;
            """)
        try db.execute("DETACH DATABASE s")
        let monthStore = try ShardStore(directory: month, options: .init(windowMs: 60_000, graceMs: 0))
        let monthTop = TopTalkers(store: monthStore)
        var best = Double.infinity, bestEdged = Double.infinity
        var answered: (fromMs: Int64, toMs: Int64)?
        for _ in 0..<3 {
            t = monotonicSeconds()
            answered = try monthTop.answer(by: by, metric: .bytes, fromMs: monthStart, toMs: monthEnd, limit: 10).fromRollups
            best = min(best, monotonicSeconds() - t)
            // "--since 30d" style: starts and ends mid-hour, so hours and minutes join the days.
            t = monotonicSeconds()
            _ = try monthTop.answer(by: by, metric: .bytes, fromMs: monthStart + 1_800_000, toMs: monthEnd - 1_800_000, limit: 10)
            bestEdged = min(bestEdged, monotonicSeconds() - t)
        }
        guard answered != nil else { throw ValidationError("the 30-day top did not use the rollups") }
        let rawMonthSeconds = rawSeconds * Double(days * 1440) / sampleMinutes
        let monthSize = try RollupStore(path: month + "/rollups.sqlite").size()

        let perDayMinuteRows = Double(sampleSize.minuteRows) / sampleMinutes * 1440
        let bytesPerMinuteRow = Double(sampleSize.bytes) / Double(max(1, sampleSize.minuteRows + sampleSize.hourRows + sampleSize.dayRows))
        print("## Rollups: top talkers over 30 days\n")
        print("Sample: \(minutes) minutes of the medium cluster (\(sampleFlows) flows in \(sealed.count) sealed 1-minute shards); rollups written by the sealer: \(sampleSize.minuteRows) minute rows, \(sampleSize.hourRows) hour rows, \(sampleSize.groups) groups, \(sampleSize.bytes / 1024) KiB.\n")
        print("| question | answered from | seconds | vs raw shards |")
        print("|---|---|---:|---:|")
        print("| top namespace pairs by bytes, sample (\(minutes) min) | raw shards | \(String(format: "%.3f", rawSeconds)) | 1.0x |")
        print("| same | rollups | \(String(format: "%.3f", sampleRollupSeconds)) | \(String(format: "%.0f", rawSeconds / sampleRollupSeconds))x faster |")
        print("| top namespace pairs by bytes, 30 days (day-aligned) | rollups (day tier) | **\(String(format: "%.3f", best))** | \(String(format: "%.0f", rawMonthSeconds / best))x faster |")
        print("| same, 30 days starting and ending mid-hour | rollups (day + hour + minute tiers) | **\(String(format: "%.3f", bestEdged))** | \(String(format: "%.0f", rawMonthSeconds / bestEdged))x faster |")
        print("| 30 days from raw shards (sample time scaled by \(Int(Double(days * 1440) / sampleMinutes))) | raw shards | ~\(String(format: "%.0f", rawMonthSeconds)) | 1.0x |")
        print()
        print("The 30-day tiers repeat the sample's groups every hour and day (\(monthSize.hourRows) hour rows, \(monthSize.dayRows) day rows); a real month has more distinct groups per day than a \(minutes)-minute sample, so the day tier here is a lower bound. Best of 3.\n")
        print("Rollup size: \(String(format: "%.0f", perDayMinuteRows)) minute rows per day at this cluster's \(String(format: "%.0f", perDayMinuteRows / 1440)) groups per minute, about \(String(format: "%.0f", perDayMinuteRows * bytesPerMinuteRow / 1_048_576)) MiB per day (\(String(format: "%.0f", bytesPerMinuteRow)) bytes per row on disk, hour and day tiers included), against \(String(format: "%.1f", Double(sealed.reduce(0) { $0 + $1.bytesOnDisk }) / sampleMinutes * 1440 / 1_073_741_824)) GiB per day of sealed raw shards.\n")
    }

    private func requireValue<T>(_ value: T?, _ message: String) throws -> T {
        guard let value else { throw ValidationError(message) }
        return value
    }
}
