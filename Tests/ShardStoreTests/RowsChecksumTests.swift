import StorageKit
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
@testable import ShardStore
import Testing

/// The active shard's writer keeps the sum of its rows' hashes in `meta`
/// (`rows_checksum`), so the sealer need not hash the active rows again. These tests
/// hold that sum to the checksum computed from the stored rows, and check that a shard
/// without it, or with a wrong one, still seals to exactly its rows.
@Suite struct RowsChecksumTests {
    let options = ShardStore.Options(windowMs: 3_600_000, graceMs: 0)

    /// Lines that use every bookkeeping column: a JSON null, an integer sent as a string
    /// (FlowDirection, as read back from Loki), fields flowrec does not know, and an
    /// empty string.
    static let unusualLines: [[UInt8]] = [
        #"{"Bytes":1500,"DstAddr":"10.0.0.2","DstMac":null,"Packets":3,"SrcAddr":"10.0.0.1","TimeFlowEndMs":1767225600500,"TimeFlowStartMs":1767225600000,"Unknown":{"x":[1,2]}}"#,
        #"{"Bytes":40,"FlowDirection":"1","Interfaces":[],"SrcAddr":"","TimeFlowEndMs":1767225601000,"Zone":"a"}"#,
        #"{"Bytes":0,"Etype":null,"Proto":null,"TimeFlowEndMs":1767225602000}"#,
    ].map { Array($0.utf8) }

    /// For every shard file: (recorded rows_checksum, rows part of the computed checksum).
    func recordedAndComputed(_ store: ShardStore, in dir: TemporaryDirectory) throws -> [(UInt64?, UInt64)] {
        try store.shards().map { shard in
            let db = try SQLiteDatabase(path: dir.path + "/" + shard.path, mode: .readOnly)
            let recorded = try db.scalarInteger("SELECT value FROM meta WHERE key = 'rows_checksum'").map { UInt64(bitPattern: $0) }
            let (_, whole) = try ShardChecksum.compute(db, timeEncoding: .plain)
            return (recorded, whole &- (try ShardChecksum.stringsChecksum(db, table: "strings")))
        }
    }

    @Test func theChecksumKeptWhileWritingIsTheStoredRowsChecksum() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(3000, features: Set(GeneratorOptions.Feature.allCases)) + Self.unusualLines
        do {
            let store = try ShardStore(directory: dir.path, options: options)
            try store.append(batch(lines[..<2000], firstLine: 1))
            try store.append(batch(lines[..<2000], firstLine: 1))  // a replay: absorbed rows are skipped
            try store.close()
        }
        // After a restart the sum carries on from meta.
        let store = try ShardStore(directory: dir.path, options: options)
        try store.append(batch(lines[2000...], firstLine: 2001))
        let pairs = try recordedAndComputed(store, in: dir)
        #expect(!pairs.isEmpty)
        for (recorded, computed) in pairs {
            #expect(recorded == computed)
        }
        #expect(try store.shards().reduce(0) { $0 + $1.rowCount } == Int64(lines.count))
    }

    /// A shard begun by a flowrec that kept no checksum (the key removed by hand) keeps
    /// none, and the sealer hashes its rows while copying them.
    @Test func aShardWithoutARecordedChecksumStillSeals() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(2000) + Self.unusualLines
        do {
            let store = try ShardStore(directory: dir.path, options: options)
            try store.append(batch(lines[..<1000], firstLine: 1))
            for shard in try store.shards() {
                try SQLiteDatabase(path: dir.path + "/" + shard.path).execute("DELETE FROM meta WHERE key = 'rows_checksum'")
            }
            try store.close()
        }
        let store = try ShardStore(directory: dir.path, options: options)
        try store.append(batch(lines[1000...], firstLine: 1001))
        #expect(try recordedAndComputed(store, in: dir).allSatisfy { $0.0 == nil })
        try store.sealClosedWindows(watermarkMs: .max)
        #expect(try store.shards().allSatisfy { $0.state == .sealed })
        #expect(Set(try storedFlows(store)) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
    }

    /// A wrong recorded checksum (set by hand) makes the sealer seal again hashing the
    /// rows themselves: the shard seals, with the checksum of its actual rows.
    @Test func aWrongRecordedChecksumIsCaughtAndTheSealRedone() throws {
        let dir = TemporaryDirectory()
        let lines = generatedLines(2000) + Self.unusualLines
        var trueChecksums: [ShardID: String] = [:]
        do {
            let store = try ShardStore(directory: dir.path, options: options)
            try store.append(batch(lines[...], firstLine: 1))
            for shard in try store.shards() {
                let db = try SQLiteDatabase(path: dir.path + "/" + shard.path)
                trueChecksums[shard.id] = String(try ShardChecksum.compute(db, timeEncoding: .plain).checksum, radix: 16)
                try db.execute("UPDATE meta SET value = value + 1 WHERE key = 'rows_checksum'")
            }
            try store.close()
        }
        let store = try ShardStore(directory: dir.path, options: options)
        try store.sealClosedWindows(watermarkMs: .max)
        for shard in try store.shards() {
            #expect(shard.state == .sealed)
            let reader = try ShardReader(path: dir.path + "/" + shard.path)
            #expect(try reader.meta("content_checksum") == trueChecksums[shard.id])
            #expect(try reader.meta("rows_checksum") == nil, "the active shard's running sum is not carried into the sealed one")
        }
        #expect(Set(try storedFlows(store)) == Set(lines.map { String(decoding: $0, as: UTF8.self) }))
    }
}
