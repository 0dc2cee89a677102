import ArgumentParser
import Foundation
import ShardStore

struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Recompress sealed shards at a high zstd level to save disk (deep compaction).",
        discussion: """
        Sealing uses a fast level so it keeps up with ingest; compaction spends idle CPU to make older shards smaller (about 21 instead of 27 bytes per flow at level 19 on generated traffic in hourly shards; see bench/RESULTS.md). Each shard is recompressed frame by frame, verified in place against its content checksum, and swapped in atomically; shards already at the level are skipped, so the command can be stopped and rerun.
        """)

    @OptionGroup var data: DataOptions

    @Option(help: "zstd level to recompress at (4-22).")
    var level: Int32 = 19

    @Option(help: "Frame size in MiB (the unit decompressed per read).")
    var frameMiB: Int = 1

    @Option(help: "Compact at most this many shards, oldest first.")
    var limit: Int = .max

    func validate() throws {
        if !(4...22).contains(level) { throw ValidationError("--level must be between 4 and 22") }
        if !(1...64).contains(frameMiB) { throw ValidationError("--frame-mib must be between 1 and 64") }
    }

    func run() throws {
        let store = try data.openExisting()
        var saved: Int64 = 0
        let results = try store.compact(level: level, frameSize: frameMiB << 20, limit: limit) { s in
            saved += s.bytesBefore - s.bytesAfter
            print("\(s.id): \(s.bytesBefore) → \(s.bytesAfter) bytes (\(String(format: "%.1f", s.seconds)) s)")
        }
        print("compacted \(results.count) shards, saved \(saved) bytes")
    }
}
