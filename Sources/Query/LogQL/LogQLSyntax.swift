/// The part of LogQL that NetObserv's console plugin emits, as a typed tree.
///
/// ```
/// topk(50, sum by(SrcK8S_Namespace,DstK8S_Namespace)(rate({app="netobserv-flowcollector"}|json|unwrap Bytes|__error__=""[2m])))
/// {app="netobserv-flowcollector",SrcK8S_Namespace="shop"}|~`Proto":6[,}]`|json|SrcAddr=ip("10.128.0.0/14")
/// ```
/// `LogQLParser` builds it; `LogQLEngine` evaluates it over the store. Anything outside
/// this subset is a parse error in Loki's own style.
package enum LogQLQuery: Sendable, Equatable {
    /// Lines of the streams a selector picks, newest first (the flow table).
    case logs(LogSelection)
    /// A matrix of series sampled at every step (topology, overview, histogram).
    case metric(MetricExpression)
}

/// `{matchers} | stages...`: which flows, and what each stage keeps or extracts.
package struct LogSelection: Sendable, Equatable {
    package var matchers: [LabelMatcher]
    package var stages: [PipelineStage]

    package init(matchers: [LabelMatcher], stages: [PipelineStage] = []) {
        self.matchers = matchers
        self.stages = stages
    }

    /// The field `| unwrap F` reads, if any.
    package var unwrapped: String? {
        stages.lazy.compactMap { if case .unwrap(let field) = $0 { field } else { nil } }.first
    }
}

/// A stream selector matcher: `name op "value"`. Regex matchers are fully anchored, as in
/// Prometheus; an empty value matches an absent label.
package struct LabelMatcher: Sendable, Equatable {
    package enum Operator: String, Sendable, Equatable {
        case equal = "=", notEqual = "!=", matches = "=~", notMatches = "!~"
    }
    package var name: String
    package var op: Operator
    package var value: String

    package init(_ name: String, _ op: Operator, _ value: String) {
        self.name = name
        self.op = op
        self.value = value
    }
}

/// One stage after the selector.
package enum PipelineStage: Sendable, Equatable {
    /// `|~ "re"` (`negated`: `!~`) or `|= "text"` (`!=`): a test on the raw line.
    case lineFilter(LineFilter)
    /// `| json`: every top-level scalar of the line becomes a label.
    case json
    /// `| a=... or b=...`: the line is kept when one alternative holds.
    case labelFilter([LabelFilter])
    /// `| unwrap F`: the sample value of a metric query is label F as a number.
    case unwrap(String)
    /// `| __error__=""`: drops lines whose unwrap (or a numeric filter) failed.
    case dropErrors
}

package struct LineFilter: Sendable, Equatable {
    package enum Kind: Sendable, Equatable { case regex, contains }
    package var kind: Kind
    package var negated: Bool
    package var pattern: String

    package init(_ kind: Kind, negated: Bool, _ pattern: String) {
        self.kind = kind
        self.negated = negated
        self.pattern = pattern
    }
}

/// A label filter after `| json`.
package struct LabelFilter: Sendable, Equatable {
    package enum Operator: String, Sendable, Equatable {
        case equal = "=", notEqual = "!=", matches = "=~", notMatches = "!~"
        case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="
    }
    package enum Value: Sendable, Equatable {
        case string(String)
        case number(Double)
        /// `ip("10.0.0.1")`, `ip("10.0.0.0/8")`, `ip("10.0.0.1-10.0.0.9")`.
        case ip(String)
    }
    package var name: String
    package var op: Operator
    package var value: Value

    package init(_ name: String, _ op: Operator, _ value: Value) {
        self.name = name
        self.op = op
        self.value = value
    }
}

/// A metric expression: range aggregations over a selection, aggregated and ranked.
package indirect enum MetricExpression: Sendable, Equatable {
    /// `fn([quantile,] selection [range])`, optionally `by (labels)`.
    case range(RangeAggregation)
    /// `sum|avg|min|max|count by (labels) (expr)`.
    case aggregate(VectorAggregation.Operator, by: [String]?, MetricExpression)
    /// `topk(k, expr)` / `bottomk(k, expr)`, evaluated at every step.
    case rank(k: Int, bottom: Bool, MetricExpression)
    /// `expr / number` (the RTT panels' `/1000000`).
    case divide(MetricExpression, Double)
}

package enum VectorAggregation {
    package enum Operator: String, Sendable, Equatable { case sum, avg, min, max, count }
}

package struct RangeAggregation: Sendable, Equatable {
    package enum Function: String, Sendable, Equatable, CaseIterable {
        case rate, countOverTime = "count_over_time", sumOverTime = "sum_over_time", avgOverTime = "avg_over_time"
        case minOverTime = "min_over_time", maxOverTime = "max_over_time", quantileOverTime = "quantile_over_time"
    }
    package var function: Function
    /// For `quantile_over_time`.
    package var quantile: Double?
    package var selection: LogSelection
    package var rangeSeconds: Int64
    /// `(fn(...) by (labels))`: samples grouped before the function is applied.
    package var by: [String]?

    package init(_ function: Function, quantile: Double? = nil, _ selection: LogSelection, rangeSeconds: Int64, by: [String]? = nil) {
        self.function = function
        self.quantile = quantile
        self.selection = selection
        self.rangeSeconds = rangeSeconds
        self.by = by
    }
}
