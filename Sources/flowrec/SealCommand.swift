import ArgumentParser
import Foundation
import FlowModel
import ShardStore

struct SealCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Seal the windows that have closed (or, with --all, every active window) now.",
        discussion: """
        A window closes when its end plus the grace period has passed, by the newest flow stored (event time) or by the wall clock. `flowrec record` seals closed windows by itself, also while the topic is quiet; this command is for a store no recorder is writing: after `flowrec ingest` without --seal-now, or to finish a historical import.

        --all seals every active window, closed or not, so the whole store is compressed and every shard can be forwarded. A flow of such a window arriving later opens the window's next part; nothing is lost.

        Like every command that writes, it refuses to run while another flowrec process writes the same data directory.

        Examples:
          flowrec seal --data ./data
          flowrec seal --data ./import --all
        """)

    @OptionGroup var data: DataOptions

    @Flag(help: "Seal every active window, also those not closed yet.")
    var all = false

    func run() throws {
        let store = try data.openExisting()
        let sealed = all ? try store.sealClosedWindows(watermarkMs: .max)
            : try store.sealWindowsClosed(byWallClockMs: Int64(Date().timeIntervalSince1970 * 1000))
        try store.close()
        for s in sealed {
            print("sealed \(s.id): \(s.rows) flows, \(s.sealedBytes) bytes (\(String(format: "%.1f", s.seconds)) s)")
        }
        let rows = sealed.reduce(Int64(0)) { $0 + $1.rows }
        print("sealed \(sealed.count) shards, \(rows) flows")
        print(StillActiveNote(try store.stillActive()).text)
    }
}

/// What a command says about the flows it leaves in active shards: how many, and when
/// they will be sealed.
struct StillActiveNote {
    let active: ShardStore.StillActive

    init(_ active: ShardStore.StillActive) { self.active = active }

    var text: String {
        guard active.shards > 0, let closes = active.closesAtMs else { return "active shards:     none (every flow is sealed)" }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let when = closes <= now
            ? "their windows have closed: `flowrec seal` (or the next `flowrec record`) seals them"
            : "sealed once their windows close, by \(EventTime.rfc3339(closes)) (`flowrec seal --all` seals them now)"
        return "active shards:     \(active.shards) holding \(active.flows) flows; \(when)"
    }
}
