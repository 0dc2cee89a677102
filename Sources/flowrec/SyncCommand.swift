import ArgumentParser
import FlowrecConfig
import Forwarders
import Foundation
import Synchronization
import Logging
import ShardStore

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Replicate sealed shards to ClickHouse, a directory or a command, without duplicates.",
        discussion: """
        Sealed shards in the range that the target has not received yet are sent oldest first. Progress is saved in the catalog after every chunk (ClickHouse) or shard (directory, exec), so an interrupted sync resumes where it stopped; `flowrec record --forward TARGET` does the same continuously, as shards are sealed. Active shards are never sent: they still change.

        ClickHouse: each chunk is one INSERT in the table's sort order. Servers from 22.2 on get a deduplication token per chunk, so a retried chunk is stored once; older servers (Debian's 18.16) have none, and a crash can repeat the one chunk that was in flight. Network errors and HTTP 5xx are retried with backoff; 4xx answers (wrong password, unknown table) stop with the server's message. The table is checked column by column before anything is sent.

        Directory: each shard is copied as it is (.sqlite.zst, readable by flowrec or `zstd -d`) with a JSON manifest (window, rows, SHA-256, content checksum, schema version), fsynced and renamed into place after its SHA-256 is read back.

        Exec: the command runs once per shard with the shard's path and facts in FLOWREC_* environment variables; exit status 0 means delivered.

        Target settings come from the same YAML file as `record` (--config), FLOWREC_* environment variables, or flags, flags winning.

        Examples:
          flowrec sync clickhouse --clickhouse-url http://clickhouse:8123 --clickhouse-password-file /etc/flowrec/ch-password --create-table
          flowrec sync clickhouse --config /etc/flowrec/flowrec.yaml --since 24h --dry-run
          flowrec sync directory --directory-path /mnt/archive/flowrec
          flowrec sync exec --exec-command 'aws s3 cp "$FLOWREC_SHARD_PATH" s3://bucket/flows/'

        Settings:
        \(FlowrecSettings.help(FlowrecSettings.sync))
        """)

    @Argument(help: "The target: clickhouse, directory or exec.")
    var target: ForwarderKind

    @Option(help: "Name the delivery state is kept under (default: the target kind). Two targets of one kind need two names.")
    var name: String?

    @OptionGroup var range: TimeRangeOptions

    @Flag(help: "List what would be sent; send nothing.")
    var dryRun = false

    @Option(help: "YAML config file; its clickhouse, directory and exec sections apply.")
    var config: String?

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settings: [String] = []

    func run() async throws {
        let resolved = try ResolvedSettings(table: FlowrecSettings.sync, arguments: settings,
                                        environment: ProcessInfo.processInfo.environment, configFile: config,
                                        fileMayAlsoHold: FlowrecSettings.record)
        let forwarder = try ForwarderFactory(settings: resolved).make(target, name: name, logger: Logger(label: "flowrec.sync"))
        let data = resolved.text("data")
        guard FileManager.default.fileExists(atPath: data + "/catalog.sqlite") else {
            throw ValidationError("\(data) is not a flowrec data directory (no catalog.sqlite); pass --data")
        }
        let ledger = try DeliveryLedger(directory: data)
        let replicator = ShardReplicator(ledger: ledger, forwarder: forwarder)
        let pending = try replicator.pending(fromMs: range.fromMs, toMs: range.toMs)
        let rows = pending.reduce(Int64(0)) { $0 + $1.shard.rowCount }
        if dryRun {
            for item in pending {
                let resume = item.state.map { " (resumes after \($0.chunksDelivered) chunks)" } ?? ""
                print("would send \(item.shard.id)  \(item.shard.rowCount) rows\(resume)")
            }
            print("would send \(pending.count) shards, \(rows) rows to \(forwarder.name)")
            return
        }
        let totalBytes = pending.reduce(Int64(0)) { $0 + $1.shard.bytesOnDisk }
        let bar = SyncProgress(enabled: isatty(STDERR_FILENO) == 1, totalBytes: totalBytes)
        do {
            let summary = try await replicator.run(fromMs: range.fromMs, toMs: range.toMs, progress: { bar.update($0) })
            bar.finish()
            let rate = summary.elapsedSeconds > 0 ? Int(Double(summary.rowsDelivered) / summary.elapsedSeconds) : 0
            print("sent \(summary.shardsDelivered) shards, \(summary.rowsDelivered) rows in \(summary.chunksDelivered) chunks to \(forwarder.name) in \(String(format: "%.1f", summary.elapsedSeconds)) s (\(rate) rows/s)")
            let active = try ledger.activeShards(overlappingFromMs: range.fromMs, toMs: range.toMs)
            if !active.isEmpty {
                print("not sent yet: \(active.reduce(Int64(0)) { $0 + $1.rowCount }) flows in \(active.count) active shards; they are sent once sealed (`flowrec seal`, or the recorder, seals them)")
            }
        } catch let error as ForwarderError {
            bar.finish()
            throw CommandFailure("sync to \(forwarder.name) stopped: \(error.message)\nProgress so far is saved; run the same command again to resume.", exit: ExitClass.of(error))
        }
    }
}

/// The sync status line: rows, MB/s of shard data and ETA, on a terminal only.
final class SyncProgress: Sendable {
    let enabled: Bool
    let totalBytes: Int64
    private let lastDrawn = Mutex(Date.distantPast)

    init(enabled: Bool, totalBytes: Int64) {
        self.enabled = enabled
        self.totalBytes = totalBytes
    }

    func update(_ p: ReplicationProgress) {
        let due = lastDrawn.withLock { last in
            guard Date().timeIntervalSince(last) > 0.2 else { return false }
            last = Date()
            return true
        }
        guard enabled, due else { return }
        let fraction = p.rowsTotal > 0 ? Double(p.rowsDone) / Double(p.rowsTotal) : 1
        let seconds = max(p.elapsedSeconds, 0.001)
        let megabytesPerSecond = Double(totalBytes) * fraction / seconds / 1e6
        let eta = fraction > 0 ? Int(seconds / fraction - seconds) : 0
        let line = "\r\(p.shardsDone)/\(p.shardsTotal) shards, \(p.rowsDone)/\(p.rowsTotal) rows, \(Int(Double(p.rowsDone) / seconds)) rows/s, \(String(format: "%.1f", megabytesPerSecond)) MB/s, ETA \(eta) s   "
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled && lastDrawn.withLock({ $0 }) != .distantPast { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension ForwarderKind: ExpressibleByArgument {}
