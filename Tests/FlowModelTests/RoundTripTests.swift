import FlowGenerator
import FlowModel
import FlowrecTesting
import Testing

/// decode → encode must give back the same JSON value (and, for canonical input such
/// as flowlogs-pipeline's, the same bytes).
@Suite struct RoundTripTests {
    let decoder = FlowDecoder()
    let encoder = FlowEncoder()

    func roundTrip(_ line: String) throws -> String {
        encoder.encode(try decoder.decode(Array(line.utf8)))
    }

    @Test func sharedCorpusRoundTripsAsJSONValues() throws {
        guard let lines = try TestEnvironment.sharedCorpusLines() else {
            #expect(!TestEnvironment.requireServers, "../shared is missing in CI")
            return
        }
        #expect(lines.count == 151)
        for (n, line) in lines.enumerated() {
            let input = String(decoding: line, as: UTF8.self)
            let output = try roundTrip(input)
            #expect(try JSONValue.parse(output) == JSONValue.parse(input), "line \(n + 1)")
            // The corpus was re-serialized with sorted keys and compact separators, as Go does.
            #expect(output == input, "line \(n + 1) is not byte-identical")
        }
    }

    @Test func sharedSamplesWithConversationRecords() throws {
        guard let shared = TestEnvironment.sharedDirectory else { return }
        let text = try String(contentsOfFile: shared.appendingPathComponent(
            "corpus/netobserv-samples/flowlogs-pipeline-README.conntrack-output.jsonl").path, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        // The README's generic conntrack example has no TimeFlowEndMs: a dead letter, with the reason.
        #expect(throws: FlowDecodingError.self) { try decoder.decode(Array(lines[0].utf8)) }
        do {
            _ = try decoder.decode(Array(lines[0].utf8))
        } catch {
            #expect(error.reason == .missingRequiredField("TimeFlowEndMs"))
        }
    }

    enum GeneratedShape: String, CaseIterable {
        case currentAllFeatures, legacy, conversationTracking

        var options: GeneratorOptions {
            var o = GeneratorOptions()
            switch self {
            case .currentAllFeatures: o.features = Set(GeneratorOptions.Feature.allCases)
            case .legacy: o.shape = .legacy; o.features = GeneratorOptions.defaultFeatures.union([.tls])
            case .conversationTracking: o.features = [.conversations, .dns, .rtt, .drops]
            }
            return o
        }
    }

    @Test(arguments: GeneratedShape.allCases)
    func generatedFlowsRoundTripByteForByte(_ shape: GeneratedShape) throws {
        let name = shape.rawValue
        var options = shape.options
        options.seed = 42
        var generator = FlowGenerator(options: options)
        var line: [UInt8] = [], again: [UInt8] = []
        var flow = Flow()
        var checkedAsValues = 0
        for i in 0..<100_000 {
            line.removeAll(keepingCapacity: true)
            generator.nextRecord(into: &line)
            try decoder.decode(line, into: &flow)
            again.removeAll(keepingCapacity: true)
            encoder.encode(flow, into: &again)
            if again != line {
                Issue.record("\(name) record \(i) differs:\n\(String(decoding: line, as: UTF8.self))\n\(String(decoding: again, as: UTF8.self))")
                return
            }
            if i % 1000 == 0 {
                let text = String(decoding: line, as: UTF8.self)
                #expect(try JSONValue.parse(text) == JSONValue.parse(String(decoding: again, as: UTF8.self)))
                checkedAsValues += 1
            }
        }
        #expect(checkedAsValues == 100)
    }

    @Test(arguments: [
        // Flags: null, number, names; IfDirections as strings and as base64.
        #"{"Flags":null,"Proto":6,"TimeFlowEndMs":1}"#,
        #"{"Flags":788,"TimeFlowEndMs":1}"#,
        #"{"Flags":["SYN","ACK"],"TimeFlowEndMs":1}"#,
        #"{"Flags":["ACK","SYN","NEW_FLAG"],"TimeFlowEndMs":1}"#,
        #"{"IfDirections":["1","0","0"],"Interfaces":["br-ex","a","b"],"TimeFlowEndMs":1}"#,
        #"{"IfDirections":"AQA=","TimeFlowEndMs":1}"#,
        #"{"IfDirections":[],"Interfaces":[],"TimeFlowEndMs":1}"#,
        // FlowDirection read back from Loki.
        #"{"FlowDirection":"1","TimeFlowEndMs":1}"#,
        // Upper and lower case MACs, legacy fields, the old TLS group name.
        #"{"DstMac":"0A:58:0A:80:00:01","Duplicate":true,"IfDirection":1,"Interface":"eth0","SrcMac":"0a:58:0a:80:00:02","TLSCurve":"X25519","TimeFlowEndMs":1}"#,
        // Empty strings and unicode names (escaped the way Go escapes).
        #"{"DstK8S_Namespace":"","SrcK8S_Name":"caf\u00e9-\u65e5\u672c-\ud83d\ude80","TimeFlowEndMs":1}"#,
        #"{"SrcK8S_Name":"café-日本-🚀","TimeFlowEndMs":1}"#,
        #"{"SrcK8S_Name":"a\"b\\c\n\u003ctag\u003e \u0026 \u2028","TimeFlowEndMs":1}"#,
        // 64-bit counters near the limits.
        #"{"Bytes":9223372036854775807,"Packets":9223372036854775806,"TimeFlowEndMs":-9223372036854775808}"#,
        // Conntrack floats that are integral.
        #"{"Bytes":1.5e+06,"Bytes_AB":100.0,"TimeFlowEndMs":1}"#,
        // Unknown fields, nested, before, between and after known keys.
        #"{"AAA":{"x":[1,2,{"y":null}]},"Bytes":1,"M":"m","TimeFlowEndMs":1,"zzz":[true,false],"~":-1.5e-3}"#,
        // Conversation tracking.
        #"{"Bytes":300,"Bytes_AB":100,"Bytes_BA":200,"DstAddr":"10.0.0.2","MaxTimeFlowRttNs":5,"SrcAddr":"10.0.0.1","TimeFlowEndMs":2,"TimeFlowStartMs":1,"_HashId":"3e8ba98164baecaf","_IsFirst":true,"_RecordType":"endConnection","numFlowLogs":2}"#,
        // Network events and IPv6.
        #"{"DstAddr":"fd01::1","NetworkEvents":[{"Action":"allow","Direction":"ingress","Feature":"acl","Type":"NetpolNode"},{"Message":"m"}],"SrcAddr":"2600:1f18::1","TimeFlowEndMs":1}"#,
        // Whitespace is accepted (values compare equal, bytes need not).
        " { \"Bytes\" : 1 ,\n\t\"TimeFlowEndMs\" : 2 } ",
    ])
    func edgeCasesRoundTripAsJSONValues(_ input: String) throws {
        let output = try roundTrip(input)
        #expect(try JSONValue.parse(output) == JSONValue.parse(input), "\(input) → \(output)")
    }

    /// flowlogs-pipeline is Go: its encoder escapes <, >, &, U+2028 and U+2029, and
    /// flowrec writes strings the same way so re-encoded records match byte for byte.
    @Test func stringsAreEscapedAsGoEscapesThem() throws {
        var flow = Flow()
        flow.set(FlowSchema.requiredField, integer: 1)
        flow.set(FlowSchema.id(of: "SrcK8S_Name"), text: "a<b>&\"\\\n\t\u{1}\u{2028}é")
        #expect(encoder.encode(flow) == #"{"SrcK8S_Name":"a\u003cb\u003e\u0026\"\\\n\t\u0001\u2028é","TimeFlowEndMs":1}"#)
    }

    /// Input already in Go's canonical form (sorted keys, compact, Go escaping) comes
    /// back byte for byte, unknown keys included in their sorted places.
    @Test(arguments: [
        #"{"AAA":{"x":[1,2,{"y":null}]},"Bytes":1,"M":"m","TimeFlowEndMs":1,"zzz":[true,false]}"#,
        #"{"A":1,"Bytes":1,"Bytes_A":3,"Bytes_AB":2,"TimeFlowEndMs":1,"TimeFlowEndMt":0,"_":1,"a":1}"#,
        #"{"Flags":null,"Proto":6,"TimeFlowEndMs":1}"#,
        #"{"Flags":["ACK","SYN","NEW_FLAG"],"TimeFlowEndMs":1}"#,
        #"{"FlowDirection":"1","IfDirections":["1","0"],"TimeFlowEndMs":1}"#,
        #"{"SrcK8S_Name":"a\"b\\c\n\u003ctag\u003e \u0026 \u2028 é","TimeFlowEndMs":1}"#,
        #"{"Duplicate":false,"TimeFlowEndMs":-1,"_IsFirst":true}"#,
    ])
    func canonicalInputRoundTripsByteForByte(_ input: String) throws {
        #expect(try roundTrip(input) == input)
    }

    @Test func integralFloatsBecomeIntegers() throws {
        let flow = try decoder.decode(Array(#"{"Bytes":1.5e+06,"TimeFlowEndMs":1e3}"#.utf8))
        #expect(flow.integer(FlowSchema.id(of: "Bytes")) == 1_500_000)
        #expect(flow.integer(FlowSchema.requiredField) == 1000)
    }

    @Test func typedAccessorsSeeTheValues() throws {
        let flow = try decoder.decode(Array(#"{"Flags":null,"FlowDirection":"2","SrcK8S_Namespace":"ns","TimeFlowEndMs":5,"X":1}"#.utf8))
        #expect(flow.isNull(FlowSchema.id(of: "Flags")))
        #expect(flow.integer(FlowSchema.id(of: "FlowDirection")) == 2)
        #expect(flow.string(FlowSchema.id(of: "SrcK8S_Namespace")) == "ns")
        #expect(flow.string(FlowSchema.id(of: "DstK8S_Namespace")) == nil)
        #expect(flow.extrasJSON == #"{"X":1}"#)
    }

    @Test func decodingIntoAReusedFlowForgetsThePreviousRecord() throws {
        var flow = Flow()
        try decoder.decode(Array(#"{"Bytes":1,"SrcK8S_Name":"a","TimeFlowEndMs":1,"U":2}"#.utf8), into: &flow)
        try decoder.decode(Array(#"{"TimeFlowEndMs":2}"#.utf8), into: &flow)
        #expect(encoder.encode(flow) == #"{"TimeFlowEndMs":2}"#)
    }
}
