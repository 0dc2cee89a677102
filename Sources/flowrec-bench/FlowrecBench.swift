// flowrec-bench: the benchmarks behind bench/RESULTS.md. Each prints one Markdown
// section whose figures sit beside a baseline measured in the same run, because this
// machine is shared and noisy: ratios travel, bare seconds do not.
//
//   swift run -c release flowrec-bench decode [--flows N] [--seed S]
import ArgumentParser

@main
struct FlowrecBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowrec-bench",
        abstract: "flowrec's benchmarks; scripts/bench runs them all and writes bench/RESULTS.md.",
        subcommands: [DecodeBenchmark.self, IngestBenchmark.self, SealBenchmark.self, RollupBenchmark.self, ForwardBenchmark.self, KafkaBenchmark.self, ScanBenchmark.self, LongRangeBenchmark.self, LokiBenchmark.self, ExportBenchmark.self, QueryBenchmark.self])
}
