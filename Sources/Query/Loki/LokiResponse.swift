import FlowModel

/// Loki's JSON answers, written straight to bytes (a table page holds up to a thousand
/// lines of JSON that are themselves escaped into strings).
package enum LokiResponse {
    /// `query_range`: `{"status":"success","data":{"resultType":...,"result":[...],"stats":{...}}}`.
    package static func body(_ answer: LokiQueryEngine.Answer, statistics: LokiQueryEngine.Statistics) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        out += Array(#"{"status":"success","data":{"resultType":"#.utf8)
        switch answer {
        case .streams(let streams):
            out += Array(#""streams","result":["#.utf8)
            var entries = 0
            for (i, stream) in streams.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out += Array(#"{"stream":"#.utf8)
                appendLabels(stream.labels, to: &out)
                out += Array(#","values":["#.utf8)
                for (j, entry) in stream.entries.enumerated() {
                    if j > 0 { out.append(UInt8(ascii: ",")) }
                    out += Array("[\"\(entry.nanos)\",".utf8)
                    JSONEscaping.appendQuoted(entry.line.utf8, to: &out)
                    out.append(UInt8(ascii: "]"))
                }
                entries += stream.entries.count
                out += Array("]}".utf8)
            }
            out += Array("],".utf8)
            appendStats(statistics, entries: entries, to: &out)
        case .matrix(let grid, let series):
            out += Array(#""matrix","result":["#.utf8)
            for (i, s) in series.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out += Array(#"{"metric":"#.utf8)
                appendLabels(s.labels, to: &out)
                out += Array(#","values":["#.utf8)
                var first = true
                for (k, value) in s.values.enumerated() {
                    guard let value else { continue }
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    out += Array("[\(LokiNumber.seconds(ms: grid.instant(k))),\"\(LokiNumber.sample(value))\"]".utf8)
                }
                out += Array("]}".utf8)
            }
            out += Array("],".utf8)
            appendStats(statistics, entries: 0, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        // Loki's top-level `warnings`: here the damaged shards the answer had to skip.
        let skipped = statistics.unreadable.all
        if !skipped.isEmpty {
            out += Array(#","warnings":["#.utf8)
            for (i, item) in skipped.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONEscaping.appendQuoted(item.description.utf8, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out += Array("}\n".utf8)
        return out
    }

    /// Label names or values: `{"status":"success","data":["a","b"]}`.
    package static func strings(_ values: [String]) -> [UInt8] {
        var out = Array(#"{"status":"success","data":["#.utf8)
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONEscaping.appendQuoted(value.utf8, to: &out)
        }
        out += Array("]}\n".utf8)
        return out
    }

    /// An error as Loki's querier writes one: the message as text for a 4xx (the console
    /// shows a 400's body as it is), and as JSON (`error`, `message`) otherwise.
    package static func error(status: Int, _ message: String) -> (contentType: String, body: [UInt8]) {
        if (400..<500).contains(status) { return ("text/plain; charset=utf-8", Array((message + "\n").utf8)) }
        var out = Array(#"{"status":"error","errorType":"internal","error":"#.utf8)
        JSONEscaping.appendQuoted(message.utf8, to: &out)
        out += Array(#","message":"#.utf8)
        JSONEscaping.appendQuoted(message.utf8, to: &out)
        out += Array("}\n".utf8)
        return ("application/json", out)
    }

    private static func appendLabels(_ labels: LokiLabels, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, pair) in labels.pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONEscaping.appendQuoted(pair.name.utf8, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONEscaping.appendQuoted(pair.value.utf8, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func appendStats(_ s: LokiQueryEngine.Statistics, entries: Int, to out: inout [UInt8]) {
        out += Array(#""stats":{"summary":{"totalEntriesReturned":\#(entries)},"flowrec":{"shardsRead":\#(s.shardsRead),"flowsDecoded":\#(s.flowsDecoded),"shardsAggregatedInSQL":\#(s.aggregatedInSQL),"shardsFromTrafficSeries":\#(s.fromSeries),"trafficSeriesFallbacks":\#(s.seriesFallbacks)}}"#.utf8)
    }
}
