import ArgumentParser
import FlowModel
import FileSource
import Foundation
import ShardStore
import Synchronization

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Store NetObserv flows from JSON-lines files (or stdin) in the data directory.",
        discussion: """
        Each line is one flow record, as NetObserv's Kafka exporter writes it. Lines that are not flows are kept in the dead-letter table with the reason.

        Ingest is exactly once per file and line: running it again on the same file adds nothing, and an interrupted run can simply be restarted. A file is identified by its name (use --source to name stdin or to treat a renamed file as the same source).

        Examples:
          flowrec ingest flows.jsonl --data ./data
          flowrec generate --flows 100000 | flowrec ingest - --source generated-1
        """)

    @Argument(help: "JSON-lines files to ingest; '-' reads stdin.")
    var files: [String]

    @OptionGroup var data: DataOptions

    @Option(help: "Shard window: 1m to 1d (e.g. 5m, 1h).")
    var window: DurationArgument = DurationArgument(argument: "1h")!

    @Option(help: "Source name to record positions under (default: file:<file name>, or file:stdin).")
    var source: String?

    @Option(help: "Flows per batch (one transaction per shard per batch).")
    var batchSize = 20_000

    @Option(help: "Largest accepted line in bytes; longer lines become dead letters.")
    var maxLineBytes = 1 << 20

    @Option(help: "Lines whose TimeFlowEndMs is older than this become dead letters (a broken clock or a poisoned record).")
    var maxEventAge: DurationArgument = DurationArgument(argument: "3650d")!

    @Option(help: "Lines whose TimeFlowEndMs is this far in the future become dead letters.")
    var maxEventAhead: DurationArgument = DurationArgument(argument: "1h")!

    @Flag(help: "At the end, seal every window that has closed (its end plus the grace period is before the newest flow, or before now on the wall clock) and wait for it.")
    var sealNow = false

    @Flag(inversion: .prefixedNo, help: "Seal windows on a background thread as they close during the ingest.")
    var backgroundSeal = true

    @Option(help: "Grace period after a window's end before it is sealed.")
    var grace: DurationArgument = DurationArgument(argument: "2m")!

    @Option(help: "zstd level for sealing (1-19).")
    var sealLevel: Int32 = ShardStore.Options.defaultSealLevel

    @Option(help: "Uncompressed KiB per zstd frame of a sealed shard (what one read decompresses).")
    var sealFrameKib: Int = 1024

    func validateSealing() throws {
        if !(1...19).contains(sealLevel) { throw ValidationError("--seal-level must be between 1 and 19") }
        if !(16...65536).contains(sealFrameKib) { throw ValidationError("--seal-frame-kib must be between 16 and 65536") }
    }

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one file, or - for stdin") }
        if source != nil && files.count > 1 { throw ValidationError("--source names one input; ingest one file at a time with it") }
        if batchSize < 1 { throw ValidationError("--batch-size must be positive") }
        try validateSealing()
    }

    func run() throws {
        var options = ShardStore.Options(
            windowMs: Int64(window.seconds * 1000), graceMs: Int64(grace.seconds * 1000), sealLevel: sealLevel,
            frameSize: sealFrameKib << 10, sealInBackground: backgroundSeal)
        // Every seal, in the background while ingesting or at the end (`--seal-now`).
        let seals = SealTally()
        options.sealObserver = { summary in seals.add(summary) }
        let store = try ShardStore(directory: data.path, options: options)
        let started = Date()
        var total = ShardStore.AppendSummary()
        var lines: Int64 = 0
        var shards = Set<String>()
        let progress = Progress(enabled: isatty(STDERR_FILENO) == 1)
        for file in files {
            let name = source ?? "file:" + (file == "-" ? "stdin" : (file as NSString).lastPathComponent)
            // Reading and decoding run on a second thread while this one writes shards.
            let reader = FlowLineBatcher(
                reader: try LineReader(path: file == "-" ? nil : file), sourceName: name, batchSize: batchSize,
                decoder: FlowDecoder(limits: .init(maxMessageBytes: maxLineBytes)))
            reader.eventTimes = EventTime.Plausibility(maxAgeMs: Int64(maxEventAge.seconds * 1000),
                                                       maxAheadMs: Int64(maxEventAhead.seconds * 1000))
            try BatchPipeline().run(produce: { batch in try reader.fill(&batch) }, consume: { batch in
                let summary = try store.append(batch)
                total.stored += summary.stored
                total.skippedAsReplayed += summary.skippedAsReplayed
                total.deadLetters += summary.deadLetters
                lines = reader.linesRead
                progress.update(lines: lines, stored: total.stored, since: started)
            })
            lines = reader.linesRead
        }
        // Windows close by event time, or by the wall clock: a file of last week's flows
        // leaves nothing open, whatever the watermark of each file says.
        if sealNow { try store.sealWindowsClosed(byWallClockMs: Int64(Date().timeIntervalSince1970 * 1000)) }
        // Closing waits for the background seals.
        try store.close()
        let sealed = seals.all
        let active = try store.stillActive()
        for shard in try store.shards() { shards.insert(shard.id.description) }
        progress.finish()
        let elapsed = Date().timeIntervalSince(started)
        print("""
            lines read:        \(lines)
            flows stored:      \(total.stored)
            already stored:    \(total.skippedAsReplayed) (replayed lines skipped)
            dead letters:      \(total.deadLetters)
            shards in store:   \(shards.count)
            elapsed:           \(String(format: "%.2f", elapsed)) s
            rate:              \(Int(Double(lines) / max(elapsed, 0.001))) lines/s
            """)
        if sealNow || !sealed.isEmpty {
            let rows = sealed.reduce(Int64(0)) { $0 + $1.rows }
            let bytes = sealed.reduce(Int64(0)) { $0 + $1.sealedBytes }
            print("sealed:            \(sealed.count) shards, \(rows) flows, \(bytes) bytes (\(rows > 0 ? bytes / rows : 0) B/flow)")
        }
        print(StillActiveNote(active).text)
    }
}

/// The seals of one ingest, whichever thread made them (the background sealer's or
/// the command's).
private final class SealTally: Sendable {
    private let seals = Mutex<[ShardStore.SealSummary]>([])
    func add(_ summary: ShardStore.SealSummary) { seals.withLock { $0.append(summary) } }
    var all: [ShardStore.SealSummary] { seals.withLock { $0 } }
}

/// One status line on stderr while working, when stderr is a terminal.
final class Progress {
    let enabled: Bool
    private var lastDraw = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func update(lines: Int64, stored: Int, since start: Date) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        let rate = Double(lines) / max(Date().timeIntervalSince(start), 0.001)
        FileHandle.standardError.write(Data("\r\(lines) lines, \(stored) flows stored, \(Int(rate)) lines/s   ".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
