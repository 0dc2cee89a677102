import FlowModel
import Foundation
import Testing

/// `JSONArray` reads what flowrec writes with JSONSerialization (skip summaries' value
/// sets, array fields): the same items as JSONSerialization reads back, escapes included.
@Suite struct JSONArrayTests {
    @Test func readsWhatJSONSerializationWrites() throws {
        let strings = ["plain", "with \"quotes\" and \\ backslash", "a/b/c", "tab\tnew\nline\r", "\u{01}\u{1F}",
                       "é ü ß", "日本語", "emoji 🐧 and 𝄞", "", " spaced "]
        let data = try JSONSerialization.data(withJSONObject: strings, options: [.sortedKeys])
        let text = String(decoding: data, as: UTF8.self)
        let parsed = try #require(JSONArray.parse(text))
        #expect(parsed.map(\.string) == strings.map { Optional($0) })

        let numbers: [Int64] = [0, 1, -1, 443, Int64.max, Int64.min, 1_767_225_600_000]
        let numberText = String(decoding: try JSONSerialization.data(withJSONObject: numbers.map { NSNumber(value: $0) }), as: UTF8.self)
        #expect(try #require(JSONArray.parse(numberText)).map(\.number) == numbers.map { Optional($0) })
        #expect(JSONArray.parse(" [ ] ")?.isEmpty == true)
        #expect(JSONArray.parse(#"["a",null,1]"#)?.count == 3)
    }

    @Test func anythingElseIsNotAnArray() {
        for text in ["", "{}", "[", "[1,", #"["unterminated]"#, "[1.5]", "[true]", #"["a" "b"]"#, "nope"] {
            #expect(JSONArray.parse(text) == nil, "\(text)")
        }
    }
}
