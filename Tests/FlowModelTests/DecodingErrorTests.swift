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

    /// A signed field past Int64, a uint64 counter past UInt64 or below 0, a fraction.
    /// (`Bytes` at 2^63 was refused here until uint64 counters took their whole range.)
    @Test func numbersOutOfRange() {
        for (input, field) in [(#"{"TimeFlowRttNs":9223372036854775808,"TimeFlowEndMs":1}"#, "TimeFlowRttNs"),
                               (#"{"TimeFlowRttNs":-9223372036854775809,"TimeFlowEndMs":1}"#, "TimeFlowRttNs"),
                               (#"{"Bytes":-9223372036854775809,"TimeFlowEndMs":1}"#, "Bytes"),
                               (#"{"Bytes":-1,"TimeFlowEndMs":1}"#, "Bytes"),
                               (#"{"Bytes":18446744073709551616,"TimeFlowEndMs":1}"#, "Bytes"),
                               (#"{"Bytes":1.5,"TimeFlowEndMs":1}"#, "Bytes"), (#"{"Bytes":1e30,"TimeFlowEndMs":1}"#, "Bytes"),
                               (#"{"Bytes":99999999999999999999999,"TimeFlowEndMs":1}"#, "Bytes")] {
            #expect(error(input)?.reason == .numberOutOfRange(field: field), "\(input)")
        }
        #expect(error(#"{"Bytes":-1,"TimeFlowEndMs":1}"#)?.description.contains("unsigned 64-bit range") == true)
    }

    /// Every value of a uint64 counter decodes and encodes back exactly.
    @Test(arguments: ["9223372036854775807", "9223372036854775808", "18446744073709551615", "0"])
    func uint64CountersKeepTheirWholeRange(value: String) throws {
        let line = #"{"Bytes":\#(value),"Bytes_AB":\#(value),"Packets":\#(value),"TimeFlowEndMs":1}"#
        let flow = try FlowDecoder().decode(Array(line.utf8))
        var out: [UInt8] = []
        FlowEncoder().encode(flow, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == line)
        #expect(flow.integer(FlowSchema.id(of: "Bytes")).map { UInt64(bitPattern: $0) } == UInt64(value))
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

/// Poison end times (issue: a flow at Int64.max crash-looped the recorder) are refused
/// at decode with a reason naming the value and the accepted range.
@Suite struct EventTimeTests {
    func reason(_ endMs: String, limits: FlowDecoder.Limits = .init(acceptedEndMs: EventTime.storableEndMs)) -> FlowDecodingError.Reason? {
        do {
            _ = try FlowDecoder(limits: limits).decode(Array(#"{"Bytes":1,"TimeFlowEndMs":\#(endMs)}"#.utf8))
            return nil
        } catch {
            return error.reason
        }
    }

    @Test func endTimesOutsideTheStorableRangeAreRefused() {
        #expect(reason("-9223372036854775808", limits: .init()) == nil, "the codec alone accepts any Int64")
        for value in ["9223372036854775807", "-1", "-62167219200000", "253402300799999", "253402214400000"] {
            guard case .endTimeOutOfRange(let v, let accepted)? = reason(value) else {
                Issue.record("\(value) was accepted"); continue
            }
            #expect(String(v) == value)
            #expect(accepted == EventTime.storableEndMs)
        }
        #expect(reason("0") == nil)
        #expect(reason(String(EventTime.storableEndMs.upperBound)) == nil)
        let error = FlowDecodingError(.endTimeOutOfRange(valueMs: 253_402_300_799_999, accepted: EventTime.storableEndMs), at: 0)
        #expect(error.description.contains("9999-12-31T23:59:59.999Z"), "\(error)")
        #expect(error.metricLabel == "time_out_of_range")
    }

    @Test func aPlausibleRangeMovesWithTheClock() {
        let now: Int64 = 1_764_547_200_000  // 2025-12-01T00:00:00Z
        let accepted = EventTime.Plausibility(maxAgeMs: 86_400_000, maxAheadMs: 3_600_000).acceptedEndMs(nowMs: now)
        #expect(accepted == (now - 86_400_000)...(now + 3_600_000))
        let limits = FlowDecoder.Limits(acceptedEndMs: accepted)
        #expect(reason(String(now), limits: limits) == nil)
        #expect(reason(String(now + 3_600_000), limits: limits) == nil)
        for poison in [now + 3_600_001, now - 86_400_001, 4_070_908_800_000 /* 2099 */, 1_000_000_000_000_000 /* 1e15 */] {
            guard case .endTimeOutOfRange(_, let range)? = reason(String(poison), limits: limits) else {
                Issue.record("\(poison) was accepted"); continue
            }
            #expect(range == accepted)
        }
        // A huge maximum age or lead never overflows: the range stops at what is storable.
        let wide = EventTime.Plausibility(maxAgeMs: .max, maxAheadMs: .max).acceptedEndMs(nowMs: now)
        #expect(wide == EventTime.storableEndMs)
    }

    @Test func rfc3339AndCalendarArithmeticAgree() {
        #expect(EventTime.rfc3339(0) == "1970-01-01T00:00:00Z")
        #expect(EventTime.rfc3339(1_767_225_900_250) == "2026-01-01T00:05:00.250Z")
        #expect(EventTime.rfc3339(-1) == "1969-12-31T23:59:59.999Z")
        #expect(EventTime.rfc3339(.max).hasPrefix("292278994-"))
        #expect(EventTime.rfc3339(.min).hasPrefix("-292275055-"))
        for ms: Int64 in [0, 951_782_400_000 /* 2000-02-29 */, 1_767_225_900_250, EventTime.storableEndMs.upperBound] {
            let c = EventTime.components(ms)
            #expect(EventTime.epochMs(year: c.year, month: c.month, day: c.day, hour: c.hour, minute: c.minute,
                                      second: c.second, millisecond: c.millisecond) == ms)
        }
        #expect(EventTime.epochMs(year: 2026, month: 2, day: 29) == nil)
        #expect(EventTime.epochMs(year: 2026, month: 13, day: 1) == nil)
        #expect(EventTime.epochMs(year: 2026, month: 1, day: 1, hour: 24) == nil)
    }
}
