import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import StorageKit
import Testing

/// A sealed or merged shard records which fields its rows list in `_quoted` and `_nulls`,
/// so LogQL's SQL can leave those checks out where they cannot matter; a shard must
/// never claim fewer than its rows hold.
@Suite struct BookkeepingFieldsTests {
    static let windowMs: Int64 = 60_000
    static let start: Int64 = 1_767_225_600_000

    /// A flow at `offsetMs` into the first window; `extra` sends a value quoted or null
    /// (FlowDirection is the one integer a flow may carry as a string: read back from Loki).
    static func unusual(_ offsetMs: Int64, extra: String) -> [UInt8] {
        let t = start + offsetMs
        return Array(#"{"Bytes":10,"Packets":1,\#(extra),"TimeFlowEndMs":\#(t),"TimeFlowStartMs":\#(t - 5)}"#.utf8)
    }

    /// The names each sealed shard's rows list, computed from the flows themselves.
    static func listed(_ store: ShardStore, _ shard: ShardID) throws -> SkipIndex.BookkeepingFields {
        var quoted = Set<String>(), nulls = Set<String>()
        try store.forEachFlow(in: shard) { flow in
            for field in (0..<FlowSchema.count).map({ FieldID(rawValue: UInt8($0)) }) {
                if flow.numericStrings.contains(field) { quoted.insert(field.name) }
                if flow.nulls.contains(field) { nulls.insert(field.name) }
            }
        }
        return .init(quoted: quoted, nulls: nulls)
    }

    @Test func sealedAndMergedShardsRecordExactlyTheFieldsTheirRowsList() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: Self.windowMs, graceMs: 0))
        var lines = generatedLines(6_000, seed: 3, rate: 30)  // 200 s: four one-minute windows
        lines.append(Self.unusual(1_000, extra: #""DnsLatencyMs":null,"FlowDirection":"1""#))
        lines.append(Self.unusual(2_000, extra: #""FlowDirection":"0","Proto":17"#))
        lines.append(Self.unusual(61_000, extra: #""SrcPort":null"#))
        try store.append(batch(lines[...], firstLine: 1))
        try store.sealWindowsClosed(byWallClockMs: Self.start + 10 * Self.windowMs)

        let sealed = try store.shards().filter { $0.state == .sealed }
        #expect(sealed.count >= 3)
        for shard in sealed {
            let recorded = try #require(try store.reader(for: shard.id).bookkeepingFields(), "\(shard.id)")
            #expect(recorded == (try Self.listed(store, shard.id)), "\(shard.id)")
        }
        let first = try #require(sealed.first { $0.id.windowStartMs == Self.start })
        let firstFields = try #require(try store.reader(for: first.id).bookkeepingFields())
        #expect(firstFields.quoted == ["FlowDirection"])
        #expect(firstFields.nulls.contains("DnsLatencyMs"))

        // Merged, the shard lists the union of its sources'.
        var policy = MergePolicy(windowMs: 4 * Self.windowMs, maxRows: 1_000_000, level: 3)
        policy.sourceGraceMs = 0
        let done = try store.mergeSealedShards(policy, nowMs: Self.start + 10 * Self.windowMs)
        let merged = try #require(done.first?.merged)
        let recorded = try #require(try store.reader(for: merged).bookkeepingFields())
        #expect(recorded == (try Self.listed(store, merged)))
        #expect(recorded.quoted == ["FlowDirection"] && recorded.nulls.isSuperset(of: ["DnsLatencyMs", "SrcPort"]))
    }

    @Test func anActiveShardDoesNotClaimToKnow() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: Self.windowMs, graceMs: 0))
        let summary = try store.append(batch([Self.unusual(1_000, extra: #""FlowDirection":"1""#)][...], firstLine: 1))
        #expect(summary.stored == 1)
        let active = try #require(try store.shards().first)
        #expect(active.state == .active)
        #expect(try store.reader(for: active.id).bookkeepingFields() == nil)
    }
}
