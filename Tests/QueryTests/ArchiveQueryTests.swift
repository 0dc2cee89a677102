import FlowrecTestTraits
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// `--data` may name an archive of sealed shards (what `sync directory` and `export
/// --format shards` write): the read commands answer from it in place, leave it exactly
/// as it was, count a merged shard's flows once when its sources are archived beside it,
/// and clean their scratch catalog up at exit.
@Suite(.ownThread) struct ArchiveQueryTests {
    /// Every file under `path` with its size and modification time.
    static func listing(_ path: String) -> [String: String] {
        var out: [String: String] = [:]
        for case let relative as String in FileManager.default.enumerator(atPath: path) ?? FileManager.default.enumerator(atPath: "/")! {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + relative)
            out[relative] = "\(attributes?[.size] ?? 0) \(attributes?[.modificationDate] ?? Date.distantPast)"
        }
        return out
    }

    @Test func anArchiveIsQueriedInPlaceAndLeftAsItWas() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data", archive = dir.path + "/archive", tmp = dir.path + "/tmp"
        let (store, lines) = try mergeableStore(at: data, hours: 12)
        let flowrec = try ChildProcess.flowrec()
        // The sealed shards as they are, then the merged ones beside them (a directory
        // forwarder that delivered the sources before the merge, and the merge later).
        #expect(try ChildProcess.run(flowrec, ["export", "--data", data, "--format", "shards", "--output", archive]) == 0)
        var policy = MergePolicy(windowMs: 6 * 3_600_000, maxRows: 10_000_000, level: 3)
        policy.sourceGraceMs = 0
        let merged = try store.mergeSealedShards(policy)
        #expect(merged.count == 2)
        #expect(try ChildProcess.run(flowrec, ["export", "--data", data, "--format", "shards", "--output", archive + "-merged"]) == 0)
        for case let relative as String in FileManager.default.enumerator(atPath: archive + "-merged") ?? FileManager.default.enumerator(atPath: "/")!
        where relative.hasSuffix(".sqlite.zst") && !FileManager.default.fileExists(atPath: archive + "/" + relative) {
            try FileManager.default.createDirectory(atPath: ((archive + "/" + relative) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: archive + "-merged/" + relative, toPath: archive + "/" + relative)
        }
        let before = Self.listing(archive)
        #expect(before.keys.filter { $0.hasSuffix(".sqlite.zst") }.count > merged.count)

        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let count = try ChildProcess.capture(flowrec, ["sql", "--data", archive, "--format", "csv", "SELECT count(*) FROM flows"],
                                             environment: ["TMPDIR": tmp])
        #expect(count.status == 0, "\(count.stderr)")
        #expect(count.stdout.split(separator: "\n").last.map(String.init) == "\(lines.count)", "every flow once: \(count.stdout)")
        #expect(count.stderr.contains("as an archive of") && count.stderr.contains("its flows are in a merged shard"), "\(count.stderr)")

        let query = try ChildProcess.capture(flowrec, ["query", "--data", archive, "--format", "jsonl", "--limit", "100000", "--fields", "TimeFlowEndMs"],
                                             environment: ["TMPDIR": tmp])
        #expect(query.status == 0)
        #expect(query.stdout.split(separator: "\n").count == lines.count)
        let top = try ChildProcess.capture(flowrec, ["top", "--data", archive, "--by", "Proto", "--metric", "flows", "--format", "csv", "--raw"],
                                           environment: ["TMPDIR": tmp])
        #expect(top.status == 0, "\(top.stderr)")
        let flows = top.stdout.split(separator: "\n").dropFirst().compactMap { $0.split(separator: ",").last.flatMap { Int($0) } }
        #expect(flows.reduce(0, +) == lines.count, "\(top.stdout)")

        #expect(Self.listing(archive) == before, "nothing in the archive was written, added or removed")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "the scratch catalog is gone after exit")
        #expect(try ChildProcess.capture(flowrec, ["query", "--data", tmp]).status == 66, "an empty directory is neither a store nor an archive")
    }
}
