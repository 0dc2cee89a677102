import ArgumentParser
import FlowRecorder
import Foundation

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the configuration reference or a commented example config file.",
        discussion: """
        Both are generated from the settings table the commands themselves read, so they cannot drift: docs/configuration.md and deploy/flowrec.example.yaml are their output (`--write` refreshes them; a test checks they are current).

        Examples:
          flowrec config example > /etc/flowrec/flowrec.yaml
          flowrec config reference --write
        """,
        subcommands: [Reference.self, Example.self])

    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The configuration reference in Markdown.")
        @Flag(help: "Write docs/configuration.md (run from the repository root) instead of printing.")
        var write = false
        func run() throws { try ConfigCommand.emit(FlowrecSettings.referenceMarkdown(), to: write ? "docs/configuration.md" : nil) }
    }

    struct Example: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A commented example config file for `record --config`.")
        @Flag(help: "Write deploy/flowrec.example.yaml (run from the repository root) instead of printing.")
        var write = false
        func run() throws { try ConfigCommand.emit(FlowrecSettings.exampleYAML(), to: write ? "deploy/flowrec.example.yaml" : nil) }
    }

    static func emit(_ text: String, to path: String?) throws {
        guard let path else {
            print(text, terminator: "")
            return
        }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        print("wrote \(path)")
    }
}
