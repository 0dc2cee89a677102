import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
@testable import LokiPush
import ShardStore
import StorageKit
import Testing

/// A flow as FLP's Loki writer splits it (`FLPLokiSplit`).
func flpSplit(_ line: [UInt8], labels: [String], staticLabels: [String: String] = ["app": "netobserv-flowcollector"]) throws -> PushedStream {
    try FLPLokiSplit.split(line, labels: labels, staticLabels: staticLabels)
}

/// Whether two JSON texts hold the same value (object members in any order).
func sameJSON(_ a: [UInt8], _ b: [UInt8]) throws -> Bool {
    func canonical(_ bytes: [UInt8]) throws -> Data {
        try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(bytes)), options: [.sortedKeys])
    }
    return try canonical(a) == canonical(b)
}

let operatorLabels = FLPLokiSplit.operatorLabels

@Suite struct PushBodyTests {
    @Test func labelSetsInPrometheusTextForm() throws {
        #expect(try LabelSetText.parse(#"{app="netobserv-flowcollector", FlowDirection="1"}"#)
            == [LabelPair("FlowDirection", "1"), LabelPair("app", "netobserv-flowcollector")])
        #expect(try LabelSetText.parse(#"{a="x\"y\\z\n"}"#) == [LabelPair("a", "x\"y\\z\n")])
        #expect(try LabelSetText.parse("{}") == [])
        for bad in ["", "app=x", #"{app="x""#, #"{app=x}"#, #"{app="x"} tail"#, #"{="x"}"#] {
            #expect(throws: PushError.self, "\(bad)") { try LabelSetText.parse(bad) }
        }
    }

    @Test func aProtobufBodyReadsBackWhatWasSent() throws {
        let streams = [
            PushedStream(labels: [LabelPair("FlowDirection", "1"), LabelPair("app", "netobserv-flowcollector")],
                         entries: [PushedEntry(nanos: 1_767_225_600_123_000_000, line: #"{"Bytes":1}"#),
                                   PushedEntry(nanos: 1_767_225_601_000_000_001, line: #"{"Bytes":2}"#,
                                               metadata: [LabelPair("trace", "x")])]),
            PushedStream(labels: [LabelPair("a", "quote \" and \\")], entries: []),
        ]
        let body = PushBody.protobufBody(streams)
        #expect(try PushBody.decode(body, contentType: "application/x-protobuf", contentEncoding: nil, maxDecompressedBytes: 1 << 20) == streams)
    }

    @Test func aJSONBodyToo() throws {
        let body = Array(#"{"streams":[{"stream":{"app":"netobserv-flowcollector","FlowDirection":"0"},"values":[["1767225600000000000","{\"Bytes\":3}"]]}]}"#.utf8)
        let streams = try PushBody.decode(body, contentType: "application/json; charset=utf-8", contentEncoding: nil, maxDecompressedBytes: 1 << 20)
        #expect(streams == [PushedStream(labels: [LabelPair("FlowDirection", "0"), LabelPair("app", "netobserv-flowcollector")],
                                         entries: [PushedEntry(nanos: 1_767_225_600_000_000_000, line: #"{"Bytes":3}"#)])])
    }

    @Test func whatCannotBeReadIsRefusedWithTheReason() {
        func kind(_ body: [UInt8], _ type: String? = "application/x-protobuf", encoding: String? = nil, max: Int = 1 << 20) -> PushError.Kind? {
            do {
                _ = try PushBody.decode(body, contentType: type, contentEncoding: encoding, maxDecompressedBytes: max)
                return nil
            } catch { return error.kind }
        }
        #expect(kind(Array("not snappy at all".utf8)) == .malformed)
        #expect(kind(Snappy.compress([0xFF, 0xFF, 0xFF])) == .malformed)  // snappy, not protobuf
        #expect(kind(Snappy.compress([UInt8](repeating: 1, count: 4096)), max: 1024) == .tooLarge)
        #expect(kind(Array("{}".utf8), "application/json") == .malformed)
        #expect(kind(Array("{}".utf8), "text/plain") == .unsupported)
        #expect(kind([], encoding: "gzip") == .unsupported)
    }

    @Test func sipHashMatchesTheReferenceVector() {
        // siphash 128-bit test vector 0 (key 00..0f, empty message).
        var h = SipHash128(key: (0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908))
        h.combine([UInt8]())
        let digest = h.finalize()
        #expect(digest.0 == 0xE6A8_25BA_047F_81A3 && digest.1 == 0x9302_55C7_1472_F66D)
        // Fed in pieces or at once: the same digest.
        let message = (0..<100).map { UInt8($0) }
        var whole = SipHash128(), pieces = SipHash128()
        whole.combine(message)
        pieces.combine(message[0..<3])
        pieces.combine(message[3..<17])
        pieces.combine(message[17...])
        let a = whole.finalize(), b = pieces.finalize()
        #expect(a == b)
    }

    /// The string and byte overloads (what the intake keys entries with) hash the same
    /// bytes as the generic one, for small strings (stored inline) and large ones alike:
    /// a content key must not change with how it was fed, or a retry after an upgrade
    /// would be stored twice.
    @Test func stringAndByteOverloadsHashTheSameBytes() {
        for text in ["", "app", "SrcK8S_Namespace", "netobserv-flowcollector", String(repeating: "é{\"x\":1}", count: 40)] {
            var generic = SipHash128(), overloads = SipHash128()
            generic.combine(Array(text.utf8))
            generic.combine([UInt8(7)])
            overloads.combine(utf8: text)
            overloads.combine(byte: 7)
            let a = generic.finalize(), b = overloads.finalize()
            #expect(a == b, "\(text)")
        }
    }
}

@Suite struct PushIntakeTests {
    static let intake = PushIntake(staticLabels: ["app": "netobserv-flowcollector"], decoder: FlowDecoder(), maxPayloadBytes: 1 << 20)

    /// Split as FLP splits, merged back by the intake: the original flow, field for field.
    @Test func labelsMergedBackIntoTheLineGiveTheOriginalFlow() throws {
        let lines = generatedLines(500, seed: 3, rate: 50, features: Set(GeneratorOptions.Feature.allCases))
        let streams = try lines.map { try flpSplit($0, labels: operatorLabels) }
        let batch = Self.intake.batch(streams)
        #expect(batch.isContentKeyed && batch.deadLetters.isEmpty && batch.flowCount == lines.count)
        let decoder = FlowDecoder()
        let encoder = FlowEncoder()
        for (i, line) in lines.enumerated() {
            var original = Flow()
            try decoder.decode(line, into: &original)
            var a: [UInt8] = [], b: [UInt8] = []
            encoder.encode(original, into: &a)
            encoder.encode(batch.flows[i], into: &b)
            // Objects inside arrays (NetworkEvents) keep their members' order as written,
            // and the split above (like FLP) rewrites them: equal as JSON values.
            #expect(try sameJSON(a, b), "flow \(i): \(String(decoding: a, as: UTF8.self)) vs \(String(decoding: b, as: UTF8.self))")
        }
    }

    @Test func entriesThatAreNotFlowsAreDeadLettersWithTheirReason() {
        let stream = PushedStream(labels: [LabelPair("app", "netobserv-flowcollector")],
                                  entries: [PushedEntry(nanos: 1, line: "plain text, not JSON"),
                                            PushedEntry(nanos: 2, line: #"{"Bytes":1}"#)])
        let batch = Self.intake.batch([stream])
        #expect(batch.flowCount == 0 && batch.deadLetters.count == 2)
        #expect(batch.deadLetters[1].reason.contains("TimeFlowEndMs"))
    }

    @Test func aPushStoredTwiceIsStoredOnce() throws {
        let dir = TemporaryDirectory()
        let store = try ShardStore(directory: dir.path, options: .init(windowMs: 60_000, graceMs: 0))
        let lines = generatedLines(2_000, seed: 5, rate: 40)
        let streams = try lines.map { try flpSplit($0, labels: operatorLabels) }
        let first = try store.append(Self.intake.batch(streams))
        #expect(first.stored == lines.count)
        // FLP retries the whole batch, and a later one overlaps half of it.
        let again = try store.append(Self.intake.batch(streams))
        #expect(again.stored == 0 && again.skippedAsReplayed == lines.count)
        let overlap = try store.append(Self.intake.batch(Array(streams[1000...]) + (try generatedLines(10, seed: 99, rate: 40).map { try flpSplit($0, labels: operatorLabels) })))
        #expect(overlap.stored == 10)
        #expect(try storedFlows(store).count == lines.count + 10)
        // A bad body is one dead letter, kept once however often it is sent.
        let junk = Array("junk".utf8)
        _ = try store.append(PushIntake.unreadableBody(junk, reason: "not snappy", maxPayloadBytes: 1 << 20))
        _ = try store.append(PushIntake.unreadableBody(junk, reason: "not snappy", maxPayloadBytes: 1 << 20))
        #expect(try store.deadLetterCount() == 1)
    }

    /// An active shard begun by a flowrec that keyed entries by digest alone
    /// (`content_keys`) keeps that table after an upgrade: a retry of what it stored is
    /// still found, and new keys go to the same table.
    @Test func aShardKeyedTheOlderWayStillFindsRetries() throws {
        let dir = TemporaryDirectory()
        let options = ShardStore.Options(windowMs: 3_600_000, graceMs: 0)
        let lines = generatedLines(300, seed: 8, rate: 40)
        let streams = try lines.map { try flpSplit($0, labels: operatorLabels) }
        var shardPaths: [String] = []
        do {
            let store = try ShardStore(directory: dir.path, options: options)
            #expect(try store.append(Self.intake.batch(Array(streams[..<200]))).stored == 200)
            shardPaths = try store.shards().map { dir.path + "/" + $0.id.activeRelativePath }
        }
        for path in shardPaths {
            let db = try SQLiteDatabase(path: path)
            try db.execute("""
                CREATE TABLE content_keys (high INTEGER NOT NULL, low INTEGER NOT NULL, PRIMARY KEY (high, low)) WITHOUT ROWID;
                INSERT INTO content_keys SELECT high, low FROM content_keys_by_time;
                DROP TABLE content_keys_by_time;
                """)
        }
        let store = try ShardStore(directory: dir.path, options: options)
        let retried = try store.append(Self.intake.batch(streams))
        #expect(retried.stored == 100 && retried.skippedAsReplayed == 200)
        #expect(try storedFlows(store).count == 300)
        // Every flow of those shards, new ones included, is keyed in the old table.
        for path in shardPaths {
            let db = try SQLiteDatabase(path: path, mode: .readOnly)
            #expect(try db.scalarInteger("SELECT count(*) FROM content_keys") == db.scalarInteger("SELECT count(*) FROM flow_rows"))
            #expect(try db.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = 'content_keys_by_time'") == 0)
        }
    }

    /// The content key of an entry is part of what is on disk: a retry after an upgrade
    /// must compute the same one, so a change to how entries are hashed fails here.
    @Test func anEntrysContentKeyIsStableAcrossReleases() {
        let stream = PushedStream(labels: [LabelPair("app", "netobserv-flowcollector"), LabelPair("SrcK8S_Namespace", "shop")],
                                  entries: [PushedEntry(nanos: 1_700_000_000_123_000_000,
                                                        line: #"{"TimeFlowEndMs":1700000000123,"Bytes":1500,"Proto":6}"#)])
        let batch = Self.intake.batch([stream])
        #expect(batch.flowCount == 1)
        #expect(batch.positions.first?.position == -2_488_716_700_115_685_107 && batch.contentKeyLows.first == -4_200_294_147_298_968_382)
    }
}
