import FlowGenerator
import FlowModel
import Testing

/// Everything that is not a flow is rejected with a reason and an offset; nothing traps.
@Suite struct DecodingErrorTests {
    func error(_ bytes: [UInt8], limits: FlowDecoder.Limits = .init()) -> FlowDecodingError? {
        do {
            _ = try FlowDecoder(limits: limits).decode(bytes)
            return nil
        } catch {
            return error
        }
    }

    func error(_ text: String) -> FlowDecodingError? { error(Array(text.utf8)) }

    @Test func invalidJSON() {
        for input in ["", "   ", "[]", "{", #"{"TimeFlowEndMs":1"#, #"{"TimeFlowEndMs":1,}"#, #"{"TimeFlowEndMs":01}"#,
                      #"{"TimeFlowEndMs":1} x"#, #"{"TimeFlowEndMs":1,"A":tru}"#, #"{"A":"\x","TimeFlowEndMs":1}"#,
                      #"{TimeFlowEndMs:1}"#, #"{"TimeFlowEndMs":1,"A":[1,]}"#, #"{"A":"unterminated}"#] {
            guard let e = error(input) else { Issue.record("accepted \(input)"); continue }
            guard case .invalidJSON = e.reason else { Issue.record("\(input): \(e)"); continue }
        }
    }

    @Test func offsetPointsAtTheProblem() {
        let e = error(#"{"TimeFlowEndMs":1,"Bytes":x}"#)
        #expect(e?.offset == 27)
        #expect(e?.description.contains("byte 27") == true)
    }

    @Test func wrongTypes() {
        let cases: [(String, String)] = [
            (#"{"Bytes":"12","TimeFlowEndMs":1}"#, "Bytes"),
            (#"{"SrcAddr":12,"TimeFlowEndMs":1}"#, "SrcAddr"),
            (#"{"Interfaces":"eth0","TimeFlowEndMs":1}"#, "Interfaces"),
            (#"{"Interfaces":[1],"TimeFlowEndMs":1}"#, "Interfaces"),
            (#"{"IfDirections":[1,"0"],"TimeFlowEndMs":1}"#, "IfDirections"),
            (#"{"IfDirections":"not base64!","TimeFlowEndMs":1}"#, "IfDirections"),
            (#"{"NetworkEvents":["x"],"TimeFlowEndMs":1}"#, "NetworkEvents"),
            (#"{"Flags":"SYN","TimeFlowEndMs":1}"#, "Flags"),
            (#"{"_IsFirst":1,"TimeFlowEndMs":1}"#, "_IsFirst"),
            (#"{"TimeFlowEndMs":"1"}"#, "TimeFlowEndMs"),
        ]
        for (input, field) in cases {
            guard let e = error(input), case .wrongType(let f, _) = e.reason else {
                Issue.record("\(input) gave \(String(describing: error(input)))")
                continue
            }
            #expect(f == field)
        }
    }

    @Test func numbersOutOfRange() {
        for input in [#"{"Bytes":9223372036854775808,"TimeFlowEndMs":1}"#, #"{"Bytes":-9223372036854775809,"TimeFlowEndMs":1}"#,
                      #"{"Bytes":1.5,"TimeFlowEndMs":1}"#, #"{"Bytes":1e30,"TimeFlowEndMs":1}"#,
                      #"{"Bytes":99999999999999999999999,"TimeFlowEndMs":1}"#] {
            #expect(error(input)?.reason == .numberOutOfRange(field: "Bytes"), "\(input)")
        }
    }

    @Test func missingOrNullTimeFlowEndMs() {
        #expect(error(#"{"Bytes":1}"#)?.reason == .missingRequiredField("TimeFlowEndMs"))
        #expect(error(#"{"TimeFlowEndMs":null}"#)?.reason == .missingRequiredField("TimeFlowEndMs"))
        #expect(error("{}")?.reason == .missingRequiredField("TimeFlowEndMs"))
    }

    @Test func duplicateKnownField() {
        #expect(error(#"{"Bytes":1,"Bytes":2,"TimeFlowEndMs":1}"#)?.reason == .duplicateField("Bytes"))
    }

    @Test func invalidUTF8() {
        var bytes = Array(#"{"SrcK8S_Name":"ab"#.utf8)
        bytes += [0xC3, 0x28]  // a broken two-byte sequence
        bytes += Array(#"","TimeFlowEndMs":1}"#.utf8)
        #expect(error(bytes)?.reason == .invalidUTF8)
        #expect(error(Array(#"{"X":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#"","TimeFlowEndMs":1}"#.utf8))?.reason == .invalidUTF8)
        #expect(error(#"{"X":"\udc00","TimeFlowEndMs":1}"#)?.reason == .invalidUTF8)
        #expect(error(Array(#"{"X":1,""#.utf8) + [0xFF] + Array(#"":1,"TimeFlowEndMs":1}"#.utf8))?.reason == .invalidUTF8)
    }

    @Test func limits() {
        let deep = #"{"X":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + #","TimeFlowEndMs":1}"#
        #expect(error(deep)?.reason == .tooDeep(limit: 32))
        let big = Array(#"{"TimeFlowEndMs":1,"X":""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 2000) + Array(#""}"#.utf8)
        #expect(error(big, limits: .init(maxMessageBytes: 1024))?.reason == .tooLarge(size: big.count, limit: 1024))
    }

    /// Truncations and byte flips of real records never trap and never pass silently
    /// as something else: each either decodes to a flow that re-encodes validly or fails.
    @Test func mutatedRecordsNeverCrash() throws {
        var generator = FlowGenerator(options: { var o = GeneratorOptions(); o.features = Set(GeneratorOptions.Feature.allCases); return o }())
        var random = SeededRandom(seed: 7)
        let decoder = FlowDecoder()
        var flow = Flow()
        var rejected = 0, accepted = 0
        for _ in 0..<3000 {
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            for _ in 0..<10 {
                var m = line
                switch random.below(3) {
                case 0: m = Array(m.prefix(random.below(m.count)))
                case 1: m[random.below(m.count)] = UInt8(truncatingIfNeeded: random.next())
                default: m.insert(UInt8(truncatingIfNeeded: random.next()), at: random.below(m.count))
                }
                do {
                    try decoder.decode(m, into: &flow)
                    let again = FlowEncoder().encode(flow)
                    _ = try decoder.decode(Array(again.utf8))
                    accepted += 1
                } catch {
                    rejected += 1
                }
            }
        }
        #expect(rejected > 10_000)
        #expect(accepted + rejected == 30_000)
    }
}
