import FlowrecTestTraits
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// Runs the store on a small tmpfs that fills up during ingest and during a seal:
/// the failing batch or seal changes nothing, the error says what to do, and work
/// resumes once space returns (the tmpfs is grown with a remount).
@Suite(.serialized, .ownThread) struct DiskFullTests {
    @Test func ingestAndSealSurviveAFullDisk() throws {
        let fs = SmallFilesystem(megabytes: 4)
        guard fs.mounted else {
            #expect(!TestEnvironment.requireServers, "cannot mount a tmpfs (needs root): the disk-full test did not run")
            return
        }
        let data = fs.path + "/data"
        let lines = generatedLines(40_000, rate: 200)
        let store = try ShardStore(directory: data, options: .init(windowMs: 60_000, graceMs: 0))

        // Ingest until the disk is full.
        var next = 0
        var fullError: (any Error)?
        while next < lines.count {
            do {
                try store.append(batch(lines[next..<min(next + 2000, lines.count)], firstLine: Int64(next + 1)))
                next += 2000
            } catch {
                fullError = error
                break
            }
        }
        let error = try #require(fullError, "4 MiB should not hold 40k flows")
        #expect("\(error)".contains("disk is full"), "\(error)")
        // Nothing is corrupted: every shard on disk passes quick_check.
        for shard in try store.shards() {
            #expect(try ShardReader(path: data + "/" + shard.path).quickCheck() == nil)
        }

        // Space returns: the failed batch and the rest go in, each flow once.
        #expect(fs.resize(megabytes: 64))
        while next < lines.count {
            try store.append(batch(lines[next..<min(next + 2000, lines.count)], firstLine: Int64(next + 1)))
            next += 2000
        }
        #expect(try storedFlows(store).count == lines.count)

        // Fill the disk again, so that sealing cannot write its compact copy.
        #expect(fs.resize(megabytes: fs.usedMegabytes() + 1))
        #expect(throws: (any Error).self) { try store.sealClosedWindows() }
        do { try store.sealClosedWindows() } catch { #expect("\(error)".contains("disk is full"), "\(error)") }
        let leftovers = (FileManager.default.enumerator(atPath: data)?.compactMap { $0 as? String } ?? []).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")
        #expect(try storedFlows(store).count == lines.count)

        #expect(fs.resize(megabytes: 64))
        let sealed = try store.sealClosedWindows()
        #expect(!sealed.isEmpty)
        #expect(Set(try storedFlows(store)) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
    }
}
