import Foundation
@testable import Query
import Testing

/// The LogQL subset the console plugin emits: every shape of the contract parses into
/// the tree it means; anything else is refused with Loki's kind of message.
@Suite struct LogQLParserTests {
    static let app = LabelMatcher("app", .equal, "netobserv-flowcollector")

    /// Queries copied from the plugin's tests and builders (the contract, §2.2 and §2.3).
    static let pluginQueries = [
        #"{app="netobserv-flowcollector",foo="bar",flis="flas"}"#,
        #"{app="netobserv-flowcollector",foo="bar",flis!="flas"}"#,
        #"{app="netobserv-flowcollector"}|~`foo":"(?i)[^"]*bar.*"|foo":"(?i)[^"]*baz.*"`"#,
        #"{app="netobserv-flowcollector"}|~`foo":"bar"`|~`"flis"`!~`flis":"flas"`"#,
        #"{app="netobserv-flowcollector"}|~`foo":"bar"`|json|flis="""#,
        #"{app="netobserv-flowcollector",_RecordType="flowLog",foo="bar",flis="flas"}"#,
        #"{app="netobserv-flowcollector"}|~`Proto":6[,}]`|~`SrcK8S_Name":"(?i)[^"]*test.*"`"#,
        #"{app="netobserv-flowcollector",SrcK8S_Namespace=~"ns1|ns2"}"#,
        #"{app="netobserv-flowcollector",SrcK8S_Namespace="default"}|~`SrcPort":8080[,}]`|json|SrcAddr=ip("10.128.0.1")"#,
        #"{app="netobserv-flowcollector"}|json|SrcAddr=ip("10.128.0.1") or SrcAddr=ip("10.128.0.2")"#,
        #"{app="netobserv-flowcollector"}|json|SrcAddr!=ip("10.128.0.1")|SrcAddr!=ip("10.128.0.2")"#,
        #"{app="netobserv-flowcollector"}|~`"SrcK8S_Name"`!~`SrcK8S_Name":"name1"`!~`SrcK8S_Name":"name2"`"#,
        #"{app="netobserv-flowcollector",SrcK8S_Namespace=""}|~`DstPort":70[,}]`"#,
        #"{app="netobserv-flowcollector"}|~`DstK8S_Name":"hello"`|json|SrcK8S_Name="" or SrcK8S_Name="foo""#,
        #"topk(50,sum by(SrcK8S_Namespace,DstK8S_Namespace)(rate({app="netobserv-flowcollector"}|json|unwrap Bytes|__error__=""[2m])))"#,
        #"topk(50,sum by(SomeField)(rate({app="netobserv-flowcollector"}|~`"SomeField"`|json|unwrap Bytes|__error__=""[2m])))"#,
        #"topk(100,sum by(SrcK8S_Name,SrcK8S_Type,DstK8S_Name)(rate({app="netobserv-flowcollector",FlowDirection=~"^0$|^2$"}|json|unwrap Bytes|__error__=""[1m])))"#,
        #"topk(100,sum by(SrcK8S_Name)(count_over_time({app="netobserv-flowcollector"}|json[30s])))"#,
        #"topk(5,sum by(app) (rate({app="netobserv-flowcollector",FlowDirection="1"}|json|unwrap Packets|__error__=""[720s])))"#,
        #"{app="netobserv-flowcollector"}!~`"Packets"`|~`"PktDropPackets":[1-9][0-9]*[,}]`"#,
        #"{app="netobserv-flowcollector"}|~`Interfaces":\[(?i)[^]]*eth0[^]]*]`"#,
        #"{app="netobserv-flowcollector"}|~`Bytes":(10[0-9]|1[1-9][0-9]|[2-9][0-9]{2,}|[1-9][0-9]{3,})[,}]`"#,
        #"{app="netobserv-flowcollector",SrcK8S_Namespace=~"(?i).*netobs.*"}"#,
        #"topk(5,(quantile_over_time(0.9,{app="netobserv-flowcollector"}|~`"DnsLatencyMs`!~`"DnsLatencyMs":0[,}]`|json|unwrap DnsLatencyMs|__error__=""[15s]) by(SrcK8S_Namespace,DstK8S_Namespace)))"#,
        #"topk(5,(avg_over_time({app="netobserv-flowcollector"}|~`"TimeFlowRttNs"`|json|unwrap TimeFlowRttNs|__error__=""[15s]) by(app))/1000000)"#,
        #"bottomk(5,(min_over_time({app="netobserv-flowcollector"}|json|unwrap TimeFlowRttNs|__error__=""[15s]) by(SrcK8S_Namespace)))"#,
        #"topk(5,sum by(PktDropLatestDropCause)(rate({app="netobserv-flowcollector"}|~`"PktDropLatestDropCause"`|json|unwrap PktDropPackets|__error__=""[30s])))"#,
        #"topk(5,sum by(DnsFlagsResponseCode)(count_over_time({app="netobserv-flowcollector"}|~`"DnsFlagsResponseCode"`|json[15s])))"#,
        #"{app="netobserv-flowcollector",SrcK8S_Namespace="ns",SrcK8S_Type="Pod"}"#,
        #"{app="netobserv-flowcollector"}|json|Bytes>=100"#,
    ]

    @Test func everyQueryThePluginSendsParses() throws {
        for query in Self.pluginQueries {
            #expect(throws: Never.self, "\(query)") { try LogQLParser.parse(query) }
        }
    }

    @Test func aTopologyQueryBecomesItsTree() throws {
        let query = try LogQLParser.parse(Self.pluginQueries[14])
        let selection = LogSelection(matchers: [Self.app], stages: [.json, .unwrap("Bytes"), .dropErrors])
        #expect(query == .metric(.rank(k: 50, bottom: false,
                                       .aggregate(.sum, by: ["SrcK8S_Namespace", "DstK8S_Namespace"],
                                                  .range(RangeAggregation(.rate, selection, rangeSeconds: 120))))))
    }

    @Test func groupingAfterARangeAggregationAndTheDivisor() throws {
        let query = try LogQLParser.parse(Self.pluginQueries[24])
        guard case .metric(.rank(5, false, .divide(.range(let range), let divisor))) = query else {
            Issue.record("unexpected tree \(query)")
            return
        }
        #expect(divisor == 1_000_000)
        #expect(range.function == .avgOverTime && range.by == ["app"] && range.rangeSeconds == 15)
        #expect(range.selection.stages.first == .lineFilter(LineFilter(.regex, negated: false, #""TimeFlowRttNs""#)))
    }

    @Test func orAlternativesAndIPFiltersAndLineFilterNegation() throws {
        guard case .logs(let alternatives) = try LogQLParser.parse(Self.pluginQueries[9]) else { Issue.record("not a log query"); return }
        #expect(alternatives.stages == [.json, .labelFilter([LabelFilter("SrcAddr", .equal, .ip("10.128.0.1")),
                                                              LabelFilter("SrcAddr", .equal, .ip("10.128.0.2"))])])
        guard case .logs(let negated) = try LogQLParser.parse(Self.pluginQueries[3]) else { Issue.record("not a log query"); return }
        #expect(negated.stages == [.lineFilter(LineFilter(.regex, negated: false, #"foo":"bar""#)),
                                   .lineFilter(LineFilter(.regex, negated: false, #""flis""#)),
                                   .lineFilter(LineFilter(.regex, negated: true, #"flis":"flas""#))])
    }

    @Test func re2BracketExpressionsMeanTheSameToSwiftsEngine() throws {
        #expect(LogQLRegexCache.swiftSyntax(ofRE2: #"Interfaces":\[(?i)[^]]*eth[^]]*]"#) == #"Interfaces":\[(?i)[^\]]*eth[^\]]*]"#)
        #expect(LogQLRegexCache.swiftSyntax(ofRE2: "[]a][a[b][a&&b][--]") == #"[\]a][a\[b][a\&\&b][\--]"#)
        #expect(LogQLRegexCache.swiftSyntax(ofRE2: "[[:alpha:]_]+") == "[[:alpha:]_]+")
        let regexes = LogQLRegexCache()
        #expect(try regexes.search(#"Interfaces":\[(?i)[^]]*ETH[^]]*]"#, in: #"{"Interfaces":["br-ex","eth0"]}"#))
        #expect(try !regexes.search(#"Interfaces":\[(?i)[^]]*eth[^]]*]"#, in: #"{"Interfaces":["br-ex"],"X":"eth"}"#))
        #expect(try regexes.fullMatch("[a[]+", "a[a"))
    }

    @Test func mistakesGetLokiStyleParseErrorsWithTheColumn() {
        let cases: [(String, String)] = [
            (#"{app="x""#, "col 9"),
            (#"{}"#, "at least one label matcher"),
            (#"rate({app="x"}[5x])"#, "invalid range"),
            (#"count_over_time({app="x"}|json|unwrap Bytes[1m])"#, "takes no unwrap"),
            (#"sum_over_time({app="x"}|json[1m])"#, "needs `| unwrap FIELD`"),
            (#"{app="x"}|json|SrcAddr=ip("not an address")"#, "invalid ip filter"),
            (#"{app="x"} |= "a" | logfmt"#, "parse error at line 1"),
            (#"topk(0,rate({app="x"}[1m]))"#, "invalid k"),
        ]
        for (query, expected) in cases {
            do {
                _ = try LogQLParser.parse(query)
                Issue.record("\(query) parsed")
            } catch {
                #expect(error.description.hasPrefix("parse error at line 1, col "), "\(query): \(error)")
                #expect(error.description.contains(expected), "\(query): \(error)")
            }
        }
    }
}

@Suite struct LokiParametersTests {
    @Test func theQueryStringIsReadAsGoReadsIt() {
        // What the plugin sends: raw LogQL, `+or+`, `%22` and `%20` in metric queries.
        let raw = #"query={app="netobserv-flowcollector"}|json|SrcAddr=ip("10.128.0.1")+or+SrcAddr=ip("10.128.0.2")&start=1640991600&limit=50"#
        let q = LokiQueryString.parse(Substring(raw))
        #expect(q["query"] == #"{app="netobserv-flowcollector"}|json|SrcAddr=ip("10.128.0.1") or SrcAddr=ip("10.128.0.2")"#)
        #expect(q["start"] == "1640991600" && q["limit"] == "50")
        let metric = LokiQueryString.parse("query=topk(5,sum%20by(app)%20(rate(%7Bapp=%22x%22%7D[1m])))&step=360s&bad=%zz")
        #expect(metric["query"] == #"topk(5,sum by(app) (rate({app="x"}[1m])))"#)
        #expect(metric["bad"] == "%zz")
    }

    @Test func timesAsLokiReadsThem() {
        #expect(LokiTime.nanos("1640991600") == 1_640_991_600_000_000_000)
        #expect(LokiTime.nanos("1640991600123456789") == 1_640_991_600_123_456_789)
        #expect(LokiTime.nanos("1640991600.5") == 1_640_991_600_500_000_000)
        #expect(LokiTime.nanos("2022-01-01T00:00:00Z") == 1_640_995_200_000_000_000)
        #expect(LokiTime.nanos("2022-01-01T00:00:00.25+01:00") == 1_640_991_600_250_000_000)
        #expect(LokiTime.nanos("yesterday") == nil)
        #expect(LokiTime.durationMs("15s") == 15_000 && LokiTime.durationMs("1m30s") == 90_000)
        #expect(LokiTime.durationMs("15") == 15_000 && LokiTime.durationMs("0.5") == 500)
        #expect(LokiTime.durationMs("500us") == nil && LokiTime.durationMs("-1s") == nil && LokiTime.durationMs("0s") == nil)
    }

    @Test func lokiDefaultsWhenParametersAreMissing() throws {
        let now: Int64 = 1_700_000_000_000_000_000
        let request = try LokiRangeRequest(["query": #"{app="x"}"#], nowNs: now, maxEntries: 5000, maxLengthNs: .max)
        #expect(request.endNs == now && request.startNs == now - 3_600_000_000_000)
        #expect(request.limit == 100 && request.direction == .backward)
        let metric = try LokiRangeRequest(["query": #"rate({app="x"}[1m])"#, "start": "1700000000", "end": "1700003600"],
                                          nowNs: now, maxEntries: 5000, maxLengthNs: .max)
        #expect(metric.stepMs == 14_000)  // 3600 s / 250, whole seconds
    }

    @Test func requestsOutsideTheLimitsAreRefusedWithLokisWords() {
        let now: Int64 = 1_700_000_000_000_000_000
        func message(_ q: [String: String], maxLengthNs: Int64 = .max) -> String {
            do {
                _ = try LokiRangeRequest(q, nowNs: now, maxEntries: 1000, maxLengthNs: maxLengthNs)
                return ""
            } catch {
                #expect(error.status == 400)
                return error.message
            }
        }
        #expect(message(["query": #"{app="x"}"#, "limit": "5000"]).contains("max entries limit per query exceeded"))
        #expect(message(["query": #"rate({app="x"}[1m])"#, "start": "1600000000", "end": "1700000000", "step": "1s"])
            .contains("maximum resolution of 11,000 points"))
        #expect(message(["query": #"{app="x"}"#, "start": "1700000000", "end": "1690000000"]).contains("end timestamp must not be before"))
        #expect(message(["query": #"{app="x"}"#, "start": "1600000000", "end": "1700000000"], maxLengthNs: 3_600_000_000_000)
            .contains("the query time range exceeds the limit"))
        #expect(message(["query": "{"]).hasPrefix("parse error"))
        #expect(message([:]).contains("query is required"))
    }
}

@Suite struct LokiSeriesTests {
    @Test func bucketsMakeEveryWindowExact() {
        // Steps of 15 s from t=100 s, windows of 30 s: buckets of 15 s offset by 100 s % 15 s.
        let grid = StepGrid(startMs: 100_000, stepMs: 15_000, count: 3)
        var samples = BucketedSamples(grid: grid, rangeMs: 30_000, keepValues: false)
        let labels = LokiLabels([("a", "1")])
        // (70 s, 100 s] is the first window: 70 000 is out, 70 001 and 100 000 are in.
        for (ms, value) in [(70_000, 1.0), (70_001, 2.0), (100_000, 4.0), (100_001, 8.0), (130_000, 16.0), (130_001, 32.0)] {
            samples.add(labels, ms: Int64(ms), value: value)
        }
        let sums = samples.evaluate(.sumOverTime, quantile: nil, unwrapped: true)
        #expect(sums == [LokiSeries(labels: labels, values: [6, 12, 24])])
        let counts = samples.evaluate(.countOverTime, quantile: nil, unwrapped: false)
        #expect(counts.first?.values == [2, 2, 2])
        let rates = samples.evaluate(.rate, quantile: nil, unwrapped: true)
        #expect(rates.first?.values == [0.2, 0.4, 0.8])
    }

    @Test func quantilesInterpolateAsPrometheusDoes() {
        var values = [1.0, 2, 3, 4]
        #expect(BucketedSamples.quantile(0.5, of: &values) == 2.5)
        var one = [7.0]
        #expect(BucketedSamples.quantile(0.99, of: &one) == 7)
        var tenths = (1...10).map(Double.init)
        #expect(abs(BucketedSamples.quantile(0.9, of: &tenths) - 9.1) < 1e-9)
    }

    @Test func topkChoosesAtEveryStep() {
        let a = LokiSeries(labels: LokiLabels([("n", "a")]), values: [1, 5, nil])
        let b = LokiSeries(labels: LokiLabels([("n", "b")]), values: [2, 4, 3])
        let c = LokiSeries(labels: LokiLabels([("n", "c")]), values: [3, 3, nil])
        let top = SeriesMath.rank(1, bottom: false, [a, b, c], steps: 3)
        #expect(top.map(\.labels) == [a.labels, b.labels, c.labels])
        #expect(top.map(\.values) == [[nil, 5, nil], [nil, nil, 3], [3, nil, nil]])
        let bottom = SeriesMath.rank(1, bottom: true, [a, b, c], steps: 3)
        #expect(bottom.map(\.values) == [[1, nil, nil], [nil, nil, 3], [nil, 3, nil]])
    }

    @Test func numbersAreWrittenAsGoWritesThem() {
        #expect(LokiNumber.sample(1.4819444444444445) == "1.4819444444444445")
        #expect(LokiNumber.sample(3) == "3")
        #expect(LokiNumber.sample(1e21) == "1000000000000000000000")
        #expect(LokiNumber.sample(0.00001) == "0.00001")
        #expect(LokiNumber.sample(-2.5e-7) == "-0.00000025")
        #expect(LokiNumber.sample(.nan) == "NaN" && LokiNumber.sample(.infinity) == "+Inf")
        #expect(LokiNumber.seconds(ms: 1_708_009_560_000) == "1708009560")
        #expect(LokiNumber.seconds(ms: 1_708_009_560_250) == "1708009560.25")
    }
}
