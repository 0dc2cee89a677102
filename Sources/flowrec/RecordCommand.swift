import ArgumentParser
import FlowRecorder
import FlowrecConfig
import Foundation
import Logging
import Synchronization

/// Set by SIGTERM/SIGINT; the recorder checks it between batches.
let stopRequested = Atomic<Bool>(false)

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Consume NetObserv flows from Kafka into the data directory, exactly once.",
        discussion: """
        Joins a consumer group on the flow topic (NetObserv's Kafka exporter writes to flows-export by default), stores every flow in time-window shards, and seals closed windows in the background. Offsets are stored with the data: on (re)assignment each partition resumes after what the store already holds, so a crash or SIGKILL loses and duplicates nothing. Offsets are also committed to the group after each stored batch, for lag monitoring only. SIGTERM or SIGINT finishes the current batch and exits cleanly.

        Settings come from a YAML file (--config), FLOWREC_* environment variables and flags; flags win over the environment, which wins over the file. --check-config prints the effective settings and where each came from, secrets masked. Secrets (SASL and ClickHouse passwords, the HTTP token) come from files or the environment only.

        Examples:
          flowrec record --brokers kafka:9092 --topic flows-export --data /var/lib/flowrec
          flowrec record --config /etc/flowrec/flowrec.yaml --check-config

        Settings:
        \(FlowrecSettings.help(FlowrecSettings.record))
        """)

    @Option(help: "YAML config file (see deploy/flowrec.example.yaml).")
    var config: String?

    @Flag(help: "Validate the settings, print the effective configuration with secrets masked, and exit.")
    var checkConfig = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settings: [String] = []

    func run() throws {
        let resolved = try ResolvedSettings(table: FlowrecSettings.record, arguments: settings,
                                            environment: ProcessInfo.processInfo.environment, configFile: self.config)
        let logger = Logger(label: "flowrec.record")
        let config = try RecorderConfiguration(settings: resolved, logger: logger)
        if checkConfig {
            print(resolved.rendered(), terminator: "")
            print("# configuration is valid")
            return
        }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        // The command runs inside Swift's async main, on a thread that blocks signals
        // (libdispatch's), as does every thread it starts: unblock the two it handles
        // here, or a SIGTERM would stay pending and the recorder never stop.
        var handled = sigset_t()
        sigemptyset(&handled)
        sigaddset(&handled, SIGTERM)
        sigaddset(&handled, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        try Recorder(configuration: config, logger: logger).run(shouldStop: { stopRequested.load(ordering: .relaxed) })
    }
}
