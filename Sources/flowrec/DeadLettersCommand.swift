import ArgumentParser
import FlowModel
import Foundation
import ShardStore

struct DeadLettersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deadletters",
        abstract: "Inspect, export or replay the messages that were not flows.",
        subcommands: [List.self, Export.self, Replay.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters: where they came from and why they were rejected.")
        @OptionGroup var data: DataOptions
        @Option(help: "Most entries to print.") var limit: Int = 50

        func run() throws {
            let store = try data.openForReading()  // reads only: works beside the recorder
            print("SOURCE            PARTITION     POSITION   BYTES  REASON")
            var shown = 0
            try store.forEachDeadLetter { source, partition, position, reason, payload in
                guard shown < limit else { return }
                shown += 1
                print("\(source.padding(toLength: 16, withPad: " ", startingAt: 0))  \(String(partition).leftPadded(9))  \(String(position).leftPadded(11))  \(String(payload.count).leftPadded(6))  \(reason)")
            }
            print("\(try store.deadLetterCount()) dead letters in total")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export dead letters as JSON lines: source, partition, position, reason and the payload in base64.")
        @OptionGroup var data: DataOptions
        @Option(name: .shortAndLong, help: "Output file, or - for stdout.") var output: String = "-"

        func run() throws {
            let store = try data.openForReading()  // reads only: works beside the recorder
            let sink = try LineSink(path: output)
            try store.forEachDeadLetter { source, partition, position, reason, payload in
                let object: [String: Any] = ["source": source, "partition": Int(partition), "position": Int(position),
                                             "reason": reason, "payload_base64": Data(payload).base64EncodedString()]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                try sink.write(Array(data) + [UInt8(ascii: "\n")])
            }
            try sink.finish()
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode every dead letter again and store the ones that now decode (after an upgrade).",
            discussion: "Replayed flows are stored under the source deadletter:<topic> at their original position, so running it twice stores nothing twice. Stop the recorder first.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let summary = try data.openExisting().replayDeadLetters()
            print("examined \(summary.examined), stored \(summary.stored), still not flows \(summary.stillInvalid)")
        }
    }
}
