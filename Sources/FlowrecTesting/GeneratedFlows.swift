package import FlowGenerator
import FlowModel
package import ShardStore

/// `count` generated JSON lines (medium cluster), the same for the same seed.
package func generatedLines(_ count: Int, seed: UInt64 = 1, rate: Int = 50,
                           features: Set<GeneratorOptions.Feature>? = nil) -> [[UInt8]] {
    var options = GeneratorOptions()
    options.seed = seed
    options.flowsPerSecond = rate
    if let features { options.features = features }
    var generator = FlowGenerator(options: options)
    return (0..<count).map { _ in
        var line: [UInt8] = []
        generator.nextRecord(into: &line)
        return line
    }
}

/// Decodes lines into a batch the way ingest does: position = line number.
package func batch(_ lines: ArraySlice<[UInt8]>, source: String = "file:test", firstLine: Int64) -> IngestBatch {
    var batch = IngestBatch()
    let src = batch.sourceIndex(source)
    let decoder = FlowDecoder()
    for (i, line) in lines.enumerated() {
        let position = SourcePosition(source: src, partition: 0, position: firstLine + Int64(i))
        batch.decodeFlowOrDeadLetter(line, at: position, with: decoder, maxPayloadBytes: .max)
    }
    return batch
}

/// A store at `path` holding `count` generated flows (every NetObserv feature on), with
/// every closed window sealed: 1-minute windows, so `count / (rate × 60)` shards.
package func sealedGeneratedStore(at path: String, count: Int, rate: Int = 200, seed: UInt64 = 7) throws -> ShardStore {
    let store = try ShardStore(directory: path, options: .init(windowMs: 60_000, graceMs: 0))
    let lines = generatedLines(count, seed: seed, rate: rate, features: Set(GeneratorOptions.Feature.allCases))
    var first = 0
    while first < lines.count {
        let last = min(lines.count, first + 20_000)
        try store.append(batch(lines[first..<last], firstLine: Int64(first + 1)))
        first = last
    }
    try store.sealClosedWindows()
    return store
}

/// A store at `path` with `hours` of generated flows at 1 per second of event time in
/// 15-minute windows, every window sealed: 24 shards per 6-hour merge window, for the
/// merge tests. Returns the store and the lines it holds.
package func mergeableStore(at path: String, hours: Int, seed: UInt64 = 5) throws -> (ShardStore, [[UInt8]]) {
    let lines = generatedLines(hours * 3600, seed: seed, rate: 1)
    let store = try ShardStore(directory: path, options: .init(windowMs: 900_000, graceMs: 0))
    try store.append(batch(lines[...], firstLine: 1))
    try store.sealClosedWindows(watermarkMs: .max)
    return (store, lines)
}
