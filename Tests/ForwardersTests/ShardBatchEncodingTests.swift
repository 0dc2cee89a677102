import FlowGenerator
import FlowModel
import FlowrecTesting
@testable import Forwarders
import ShardStore
import Testing

/// The forwarder encodes a sealed shard's rows a batch at a time, Native column by
/// column (`ClickHouseBlockEncoder.append(rowsOf:…)`); the same rows decoded into flows
/// and encoded one by one must give the same bytes. Rows mix present and NULL values
/// in one column on both sides of batch and block cuts, hold values that do not fit
/// their column (kept in `_extras`) and unknown fields, so every way a value is written
/// is compared.
@Suite struct ShardBatchEncodingTests {
    @Test(arguments: [(ClickHouseBlockEncoder.Format.native, 100), (.native, ClickHouseBlockEncoder.defaultBlockRows), (.rowBinary, 100)])
    func batchesEncodeAsTheirFlowsOneByOne(format: ClickHouseBlockEncoder.Format, blockRows: Int) throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 86_400_000, graceMs: 0))
        try store.append(batch(Self.variedLines(1_300)[...], firstLine: 1))
        try store.sealClosedWindows(watermarkMs: .max)
        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(sealed.reduce(0) { $0 + $1.rowCount } == 1_300 && sealed.contains { $0.rowCount > 600 })
        let key = ClickHouseSchema.sortKey.compactMap { FlowSchema.id(named: $0) }
        for shard in sealed {
            let reader = try store.reader(for: shard.id)
            let rows = try #require(try reader.rowIDRange())
            // The forwarder's key (the seal order: rows read from the pages in row id
            // order), and no key (SQLite reads them, sorted by row id).
            for order in [key, []] {
                let batched = try ClickHouseBlockEncoder(format: format, blockRows: blockRows)
                // Two chunks, as the forwarder cuts a shard: the second starts a block.
                let cut = rows.lowerBound + Int64(rows.count / 2)
                try batched.append(rowsOf: reader, rowIDs: rows.lowerBound...(cut - 1), orderedBy: order, shard: [65])
                var body = try batched.finish()
                try batched.append(rowsOf: reader, rowIDs: cut...rows.upperBound, orderedBy: order, shard: [65])
                body += try batched.finish()

                let single = try ClickHouseBlockEncoder(format: format, blockRows: blockRows)
                var expected: [UInt8] = []
                for range in [rows.lowerBound...(cut - 1), cut...rows.upperBound] {
                    var count = 0
                    try reader.forEachFlow(where: "r.rowid BETWEEN \(range.lowerBound) AND \(range.upperBound)", orderBy: "r.rowid", limit: nil) { _, flow in
                        single.append(flow, shard: [65])
                        count += 1
                        return true
                    }
                    #expect(count == range.count)
                    expected += try single.finish()
                }
                let differs = zip(body, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                #expect(differs == nil && body.count == expected.count,
                        "key \(order.map(\.name)): \(body.count) bytes against \(expected.count), first differing at \(differs.map(String.init) ?? "none")")
            }
        }
    }

    /// Generated flows (every feature on) whose values vary where the encoder's choices
    /// change: a Nullable column NULL in runs of rows and present in others, one present
    /// in runs and NULL in others, a port that does not fit UInt16, an unknown field.
    static func variedLines(_ count: Int) throws -> [[UInt8]] {
        let decoder = FlowDecoder(), encoder = FlowEncoder()
        let dns = try #require(FlowSchema.id(named: "DnsLatencyMs")), rtt = try #require(FlowSchema.id(named: "TimeFlowRttNs"))
        let port = try #require(FlowSchema.id(named: "SrcPort"))
        return try generatedLines(count, seed: 3, features: Set(GeneratorOptions.Feature.allCases)).enumerated().map { i, line in
            var flow = try decoder.decode(line)
            if i % 300 < 170 { flow.setNull(dns) } else { flow.set(dns, integer: Int64(i)) }
            if i % 257 < 200 { flow.set(rtt, integer: Int64(i) * 1000) } else { flow.setNull(rtt) }
            if i % 97 == 5 { flow.set(port, integer: -Int64(i)) }
            if i % 89 == 7 {
                let unknown = Array(#"{"SomethingNew":{"n":\#(i)}}"#.utf8)
                unknown.withUnsafeBufferPointer { flow.setExtras(objectJSON: $0) }
            }
            var out: [UInt8] = []
            encoder.encode(flow, into: &out)
            return out
        }
    }
}
