import Foundation
package import Logging
package import ShardStore

/// Options of the exec forwarder.
package struct ExecForwarderOptions: Sendable {
    package var name = "exec"
    /// Run by `/bin/sh -c`, once per sealed shard.
    package var command: String
    /// A run that takes longer is killed and counts as failed.
    package var timeoutSeconds: Double = 600
    package var retry = RetryPolicy(maxAttempts: 3, initialDelaySeconds: 2, maxDelaySeconds: 60)
    package var logger = Logger(label: "flowrec.forward.exec")

    package init(command: String) {
        self.command = command
    }
}

/// Hands each sealed shard to a command (an upload script, `aws s3 cp`, `rclone`): the
/// shard's path and facts are in environment variables, exit status 0 means
/// delivered. Anything else, or a run past the timeout, is retried, then reported
/// with the end of the command's output.
package struct ExecForwarder: Forwarder {
    package let options: ExecForwarderOptions

    package init(options: ExecForwarderOptions) {
        self.options = options
    }

    package var name: String { options.name }

    package func plan(_ shard: SealedShard, resuming: DeliveryState?) throws -> DeliveryPlan { .whole }

    /// The variables the command sees (besides flowrec's own environment).
    package func environment(for shard: SealedShard) -> [String: String] {
        var env = [
            "FLOWREC_FORWARDER": options.name,
            "FLOWREC_SHARD_ID": shard.id.description,
            "FLOWREC_SHARD_PATH": shard.path,
            "FLOWREC_WINDOW_START_MS": String(shard.id.windowStartMs),
            "FLOWREC_WINDOW_END_MS": String(shard.id.windowEndMs),
            "FLOWREC_PART": String(shard.id.part),
            "FLOWREC_ROWS": String(shard.rowCount),
        ]
        if let t = shard.minTimeMs { env["FLOWREC_MIN_TIME_MS"] = String(t) }
        if let t = shard.maxTimeMs { env["FLOWREC_MAX_TIME_MS"] = String(t) }
        return env
    }

    package func deliver(_ shard: SealedShard, plan: DeliveryPlan, fromChunk first: Int,
                        delivered: (_ chunk: Int, _ rows: Int) throws -> Void) async throws {
        guard first == 0 else { return }
        let env = environment(for: shard)
        do {
            try await options.retry.run(isRetryable: { $0 is CommandFailure }, onRetry: { attempt, error, delay in
                options.logger.warning("the exec forwarder's command failed; retrying", metadata: [
                    "shard": "\(shard.id)", "attempt": "\(attempt)", "error": "\(error)", "retry_in_s": "\(String(format: "%.0f", delay))",
                ])
            }) {
                try await run(environment: env)
            }
        } catch let failure as CommandFailure {
            throw ForwarderError(.rejected, "`\(options.command)` failed for shard \(shard.id) after \(options.retry.maxAttempts) attempts: \(failure)")
        }
        try delivered(0, Int(shard.rowCount))
    }

    struct CommandFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// One run of the command, its output in a temporary file (a pipe could fill up
    /// and stall a chatty command).
    private func run(environment extra: [String: String]) async throws {
        let outputPath = NSTemporaryDirectory() + "flowrec-exec-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        guard let output = FileHandle(forWritingAtPath: outputPath) else {
            throw ForwarderError(.configuration, "cannot create \(outputPath) for the command's output")
        }
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", options.command]
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let finished = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in finished.continuation.finish() }
        do {
            try process.run()
        } catch {
            throw ForwarderError(.configuration, "cannot start /bin/sh for `\(options.command)`: \(error.localizedDescription)")
        }
        let timeout = options.timeoutSeconds
        let started = Date()
        // A Dispatch timer, not a Task: the kill must come on time even when the
        // cooperative threads are all busy.
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        for await _ in finished.stream {}
        watchdog.cancel()
        let timedOut = process.terminationReason == .uncaughtSignal && Date().timeIntervalSince(started) >= timeout
        guard process.terminationReason != .exit || process.terminationStatus != 0 else { return }
        let tail = (try? String(contentsOfFile: outputPath, encoding: .utf8)).map { String($0.suffix(600)) } ?? ""
        let status = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)"
            : (timedOut ? "was killed after \(String(format: "%g", timeout)) s" : "was killed by signal \(process.terminationStatus)")
        throw CommandFailure(description: status + (tail.isEmpty ? "" : "; its output ended with: \(tail.trimmingCharacters(in: .whitespacesAndNewlines))"))
    }
}
