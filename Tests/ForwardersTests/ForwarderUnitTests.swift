import FlowModel
import FlowrecTesting
@testable import Forwarders
import Foundation
import Testing

/// The pure parts of the forwarders: hashing, JSON arrays, extras, backoff, schema checks.
@Suite struct ForwarderUnitTests {
    @Test func sha256MatchesTheStandardVectorsAndSha256sum() throws {
        func digest(_ bytes: [UInt8]) -> String {
            var hash = SHA256()
            hash.update(bytes)
            return hash.hexDigest()
        }
        #expect(digest([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(digest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(digest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Odd sizes fed in odd pieces, against coreutils.
        let dir = TemporaryDirectory()
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<1_000_003).map { _ in UInt8.random(in: 0...255, using: &random) }
        let path = dir.path + "/blob"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var pieces = SHA256()
        var offset = 0
        for size in [1, 63, 64, 65, 1000, 4096] + Array(repeating: 100_000, count: 11) where offset < bytes.count {
            let end = min(bytes.count, offset + size)
            pieces.update(Array(bytes[offset..<end]))
            offset = end
        }
        pieces.update(Array(bytes[offset...]))
        let coreutils = try ChildProcess.output("/usr/bin/sha256sum", [path]).split(separator: " ").first.map(String.init)
        #expect(pieces.hexDigest() == coreutils)
        #expect(try FileCopy.sha256(of: path) == coreutils)
    }

    @Test func jsonStringArraysParseWithEscapesAndUnicode() {
        func parse(_ text: String) -> [String]? {
            Array(text.utf8).withUnsafeBufferPointer { JSONStringArray.parse($0) }?.map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(parse(#"["eth0","br-ex"]"#) == ["eth0", "br-ex"])
        #expect(parse(#" [ ] "#) == [])
        #expect(parse(#"["a\"b","c\\d","\u00e9\ud83d\ude00","\n"]"#) == ["a\"b", "c\\d", "é😀", "\n"])
        #expect(parse(#"["unterminated"#) == nil)
        #expect(parse(#"[1,2]"#) == nil)
    }

    @Test func misfitValuesJoinTheUnknownFields() {
        let misfits = [(FlowSchema.id(of: "DstPort"), Array("70000".utf8))]
        #expect(String(decoding: ClickHouseBlockEncoder.extras([], misfits: misfits), as: UTF8.self) == #"{"DstPort":70000}"#)
        #expect(String(decoding: ClickHouseBlockEncoder.extras(Array(#""x":1"#.utf8), misfits: misfits), as: UTF8.self)
                == #"{"x":1,"DstPort":70000}"#)
        #expect(ClickHouseBlockEncoder.extras(Array(#""x":1"#.utf8), misfits: []) == Array(#"{"x":1}"#.utf8))
        #expect(ClickHouseBlockEncoder.extras([], misfits: []).isEmpty)
    }

    @Test func backoffGrowsWithJitterAndStopsAtTheCap() {
        let policy = RetryPolicy(maxAttempts: 10, initialDelaySeconds: 0.5, maxDelaySeconds: 8)
        for attempt in 1...12 {
            let ceiling = min(8, 0.5 * pow(2, Double(attempt - 1)))
            for _ in 0..<50 {
                let delay = policy.delay(afterAttempt: attempt)
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
    }

    @Test func retriesStopAtTheFirstErrorThatIsNotRetryable() async throws {
        let policy = RetryPolicy(maxAttempts: 5, initialDelaySeconds: 0.001, maxDelaySeconds: 0.002)
        var attempts = 0
        await #expect(throws: ClickHouseStatusError.self) {
            try await policy.run(isRetryable: ClickHouseForwarder.isRetryable) {
                attempts += 1
                throw ClickHouseStatusError(status: attempts < 3 ? 503 : 401, message: "x")
            }
        }
        #expect(attempts == 3, "two 503s retried, the 401 not")
        attempts = 0
        await #expect(throws: ClickHouseStatusError.self) {
            try await policy.run(isRetryable: ClickHouseForwarder.isRetryable) {
                attempts += 1
                throw ClickHouseStatusError(status: 500, message: "x")
            }
        }
        #expect(attempts == 5)
    }

    @Test func schemaCheckAcceptsEitherDialectAndNamesEachDifference() {
        for dialect in ClickHouseSchema.Dialect.allCases {
            let table = Dictionary(uniqueKeysWithValues: ClickHouseSchema.columns(dialect: dialect).map { ($0.name, $0.type) })
            #expect(ClickHouseForwarder.schemaProblems(tableTypes: table).isEmpty, "\(dialect)")
        }
        var table = Dictionary(uniqueKeysWithValues: ClickHouseSchema.columns(dialect: .modern).map { ($0.name, $0.type) })
        table["SrcPort"] = "Nullable(Int32)"
        table["_shard"] = nil
        table["extra_column"] = "String"
        #expect(ClickHouseForwarder.schemaProblems(tableTypes: table).sorted() == [
            "column `SrcPort` is Nullable(Int32), flowrec sends Nullable(UInt16)",
            "column `_shard` is missing (flowrec sends String)",
        ])
    }

    @Test func nativeBlocksDeclareEveryColumnOnce() throws {
        let encoder = try ClickHouseBlockEncoder(format: .native)
        var flow = Flow()
        flow.set(FlowSchema.requiredField, integer: 5)
        encoder.append(flow, shard: Array("s".utf8))
        encoder.append(flow, shard: Array("s".utf8))
        let body = try encoder.finish()
        // Header: column count and row count as LEB128.
        #expect(body[0] == UInt8(FlowSchema.count + 2) || body[0] & 0x80 != 0)
        #expect(encoder.rowCount == 0, "finish empties the encoder")
        let again = try ClickHouseBlockEncoder(format: .native)
        again.append(flow, shard: Array("s".utf8))
        again.append(flow, shard: Array("s".utf8))
        #expect(try again.finish() == body, "the same flows give the same bytes")
    }

    /// A body is cut into blocks of `blockRows` rows: the same bytes as each block's rows
    /// encoded alone, one body after another, whatever arrays repeat across the cut; and
    /// the next chunk starts a fresh block.
    @Test(arguments: ClickHouseBlockEncoder.Format.allCases)
    func aBodyIsItsBlocksOneAfterAnother(format: ClickHouseBlockEncoder.Format) throws {
        let decoder = FlowDecoder()
        let flows = try generatedLines(23).map { try decoder.decode($0) }
        let cut = try ClickHouseBlockEncoder(format: format, blockRows: 5)
        for _ in 0..<2 {
            for flow in flows { cut.append(flow, shard: Array("s".utf8)) }
            #expect(cut.rowCount == 23)
            var expected: [UInt8] = []
            for start in stride(from: 0, to: flows.count, by: 5) {
                let alone = try ClickHouseBlockEncoder(format: format)
                for flow in flows[start..<min(start + 5, flows.count)] { alone.append(flow, shard: Array("s".utf8)) }
                expected += try alone.finish()
            }
            #expect(try cut.finish() == expected)
        }
        if format == .native {
            let whole = try ClickHouseBlockEncoder(format: format)
            for flow in flows { whole.append(flow, shard: Array("s".utf8)) }
            #expect(try whole.finish().count < (try ClickHouseBlockEncoder(format: format, blockRows: 5).encoding(flows)).count,
                    "each Native block repeats the column names and types")
        }
    }

    /// Native bodies carry the same values as RowBinary ones, column by column: rebuilt
    /// from the RowBinary body (written row by row, flags and values in place), the
    /// blocks are byte for byte the encoder's. Blocks of 1 to 16,384 rows put columns
    /// that are present in every row, NULL in every row, or both, on either side of a
    /// cut, so each way a Native null map is written (after the rows, or once they mix,
    /// from either side) is compared.
    @Test(arguments: [1, 3, 7, ClickHouseBlockEncoder.defaultBlockRows])
    func nativeBlocksHoldTheRowBinaryValues(blockRows: Int) throws {
        let decoder = FlowDecoder()
        var flows = try generatedLines(40).map { try decoder.decode($0) }
        // A column NULL in the first rows of a block and present after, and the reverse.
        let dns = try #require(FlowSchema.id(named: "DnsLatencyMs")), rtt = try #require(FlowSchema.id(named: "TimeFlowRttNs"))
        for i in flows.indices {
            if i % 11 < 5 { flows[i].setNull(dns) } else { flows[i].set(dns, integer: Int64(i)) }
            if i % 13 < 8 { flows[i].set(rtt, integer: Int64(i) * 1000) } else { flows[i].setNull(rtt) }
        }
        let rowBinary = try ClickHouseBlockEncoder(format: .rowBinary).encoding(flows)
        let native = try ClickHouseBlockEncoder(format: .native, blockRows: blockRows).encoding(flows)
        let expected = Self.nativeBlocks(fromRowBinary: rowBinary, rows: flows.count, blockRows: blockRows)
        // Where they part, not two bodies of kilobytes printed whole.
        let differs = zip(native, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(differs == nil && native.count == expected.count,
                "\(native.count) bytes against \(expected.count), first differing at \(differs.map(String.init) ?? "none")")
    }

    /// The Native blocks of `rows` rows encoded as `body` in RowBinary, `blockRows` rows a
    /// block: what `ClickHouseBlockEncoder` must write, built the plain way (every flag,
    /// every placeholder) from the format descriptions.
    static func nativeBlocks(fromRowBinary body: [UInt8], rows: Int, blockRows: Int) -> [UInt8] {
        let columns = ClickHouseSchema.columns(dialect: .compatible)
        let plans = columns.map(ColumnPlan.init)
        var at = 0
        func varint() -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while true {
                let byte = body[at]
                at += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }
        func string() -> [UInt8] {
            let n = Int(varint())
            defer { at += n }
            return Array(body[at..<(at + n)])
        }
        func leb(_ value: Int) -> [UInt8] {
            var out: [UInt8] = [], v = UInt64(value)
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            return out + [UInt8(v)]
        }
        var out: [UInt8] = []
        for start in stride(from: 0, to: rows, by: blockRows) {
            let count = min(blockRows, rows - start)
            var prefix = [[UInt8]](repeating: [], count: columns.count), values = prefix
            var offsets = [UInt64](repeating: 0, count: columns.count)
            for _ in 0..<count {
                for (i, plan) in plans.enumerated() {
                    let nullable: Bool
                    switch plan {
                    case let .integer(_, _, _, isNullable): nullable = isNullable
                    case let .text(_, isNullable): nullable = isNullable
                    case .extras: nullable = true
                    case .stringArray, .shard: nullable = false
                    }
                    if nullable {
                        let isNull = body[at] == 1
                        at += 1
                        prefix[i].append(isNull ? 1 : 0)
                        if isNull {
                            if case let .integer(_, width, _, _) = plan {
                                values[i] += [UInt8](repeating: 0, count: width)
                            } else {
                                values[i].append(0)
                            }
                            continue
                        }
                    }
                    switch plan {
                    case let .integer(_, width, _, _):
                        values[i] += body[at..<(at + width)]
                        at += width
                    case .stringArray:
                        let n = Int(varint())
                        offsets[i] += UInt64(n)
                        withUnsafeBytes(of: offsets[i].littleEndian) { prefix[i] += $0 }
                        for _ in 0..<n { let element = string(); values[i] += leb(element.count) + element }
                    case .text, .extras, .shard:
                        let text = string()
                        values[i] += leb(text.count) + text
                    }
                }
            }
            out += leb(columns.count) + leb(count)
            for (i, column) in columns.enumerated() {
                out += leb(column.name.utf8.count) + Array(column.name.utf8) + leb(column.payloadType.utf8.count) + Array(column.payloadType.utf8)
                out += prefix[i] + values[i]
            }
        }
        #expect(at == body.count, "the RowBinary body was read to its end")
        return out
    }

    /// The encoder reuses the previous row's parsed array when a row repeats its text:
    /// a RowBinary body is its rows one after another, so rows encoded by one encoder
    /// must give the bytes of each row encoded alone, whatever arrays repeat or change.
    @Test func repeatedArraysEncodeAsEachRowAlone() throws {
        let decoder = FlowDecoder()
        let interfaces = [#"["eth0","br-ex"]"#, #"["eth0","br-ex"]"#, #"["eth1"]"#, nil, #"["eth0","br-ex"]"#, #"["eth0","br-ex"]"#,
                          #"["eth0","br-ex","x"]"#, #"[]"#, #"["eth1"]"#]
        let flows = try interfaces.enumerated().map { i, value in
            try decoder.decode(Array(#"{"TimeFlowEndMs":\#(1000 + i)\#(value.map { #","Interfaces":\#($0),"IfDirections":[\#(i % 2)]"# } ?? "")}"#.utf8))
        }
        let together = try ClickHouseBlockEncoder(format: .rowBinary)
        var alone: [UInt8] = []
        for flow in flows {
            together.append(flow, shard: Array("s".utf8))
            let single = try ClickHouseBlockEncoder(format: .rowBinary)
            single.append(flow, shard: Array("s".utf8))
            alone += try single.finish()
        }
        #expect(try together.finish() == alone)
    }

    /// Each chunk's plain body beside the same rows encoded by a second encoder and
    /// compressed as `compression` says, straight from its buffers: `flows` rows in two
    /// chunks (cut at `firstChunk`), since the buffers are reused between chunks.
    static func plainAndCompressedChunks(format: ClickHouseBlockEncoder.Format, compression: ClickHouseBodyCompression,
                                         flows count: Int, firstChunk: Int) throws -> [(plain: [UInt8], compressed: [UInt8])] {
        let decoder = FlowDecoder()
        let flows = try generatedLines(count).map { try decoder.decode($0) }
        let plain = try ClickHouseBlockEncoder(format: format), compressing = try ClickHouseBlockEncoder(format: format, compression: compression)
        return try [flows[..<firstChunk], flows[firstChunk...]].map { chunk in
            for flow in chunk {
                plain.append(flow, shard: Array("s".utf8))
                compressing.append(flow, shard: Array("s".utf8))
            }
            return (try plain.finish(), try compressing.finish())
        }
    }

    /// The gzipped body, fed to zlib column buffer by column buffer, is the plain body:
    /// checked by the system's `gzip -d`, for both formats and two chunks in a row.
    @Test(arguments: ClickHouseBlockEncoder.Format.allCases)
    func aGzippedBodyInflatesToThePlainOne(format: ClickHouseBlockEncoder.Format) throws {
        let dir = TemporaryDirectory()
        for (body, compressed) in try Self.plainAndCompressedChunks(format: format, compression: .gzip, flows: 12_000, firstChunk: 10_000) {
            #expect(compressed.count * 3 < body.count, "\(compressed.count) bytes gzipped from \(body.count)")
            let path = dir.path + "/body.gz"
            try Data(compressed).write(to: URL(fileURLWithPath: path))
            #expect(try ChildProcess.run(URL(fileURLWithPath: "/bin/gzip"), ["-df", path]) == 0)
            #expect(try Array(Data(contentsOf: URL(fileURLWithPath: dir.path + "/body"))) == body)
        }
        #expect(try Gzip.compress([]).count > 0, "an empty body still has the gzip header and trailer")
    }
}

extension ClickHouseBlockEncoder {
    /// `flows` as one body.
    func encoding(_ flows: [Flow]) throws -> [UInt8] {
        for flow in flows { append(flow, shard: Array("s".utf8)) }
        return try finish()
    }
}
