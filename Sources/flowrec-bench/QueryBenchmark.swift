import ArgumentParser
import Foundation
import Query
import ShardStore
import StorageKit

/// One `flowrec sql` statement over an existing store, repeated in one process: the
/// loop to profile a query with (`perf record -g -- flowrec-bench query ...`), the
/// first run cold, the rest with the process's frame cache warm.
struct QueryBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Repeat one flowrec sql statement over a store (for profiling); prints each run's time and plan.")

    @Option(help: "Data directory of the store.")
    var data: String

    @Option(help: "The statement.")
    var sql: String

    @Option(name: .customLong("repeat"), help: "Runs.")
    var runs: Int = 20

    func run() throws {
        let store = try ShardStore.openForReading(directory: data)
        for i in 0..<max(1, runs) {
            let statistics = ScanStatistics()
            var rows = 0
            let t = monotonicSeconds()
            try SQLQuery(store: store).run(sql, statistics: statistics, columns: { _ in }) { _ in rows += 1; return true }
            let seconds = monotonicSeconds() - t
            if i < 3 || i == runs - 1 { print(String(format: "run %d: %.2f ms, %d rows; %@", i + 1, seconds * 1000, rows, statistics.description)) }
        }
    }
}
