/// A validated trigger filter, ready to test events against. Build it with
/// `TriggerFilterSpec.compile()`; it is immutable and safe to share across tasks.
public struct CompiledFilter: Sendable {
    /// One attribute test of an `exact`, `prefix`, `suffix` or legacy map. Stored sorted by name
    /// so evaluation order (and therefore cost) is deterministic.
    struct Constraint: Sendable {
        let name: String
        let value: String
    }

    indirect enum Matcher: Sendable {
        case everything
        /// Legacy `filter.attributes`: presence of every name, and equality where the value is
        /// non-empty.
        case legacy([Constraint])
        case exact([Constraint])
        case prefix([Constraint])
        case suffix([Constraint])
        case all([Matcher])
        case any([Matcher])
        case not(Matcher)
        case cesql(CESQLProgram)
    }

    let matcher: Matcher

    /// The event type every matching event must have, when the filter pins one with an `exact`
    /// or legacy `type` constraint that applies unconditionally; nil otherwise. Brokers can use it
    /// to index triggers by type and skip evaluating filters that cannot match.
    public let exactType: String?

    init(legacy attributes: [String: String]) {
        let constraints = Self.constraints(attributes)
        matcher = constraints.isEmpty ? .everything : .legacy(constraints)
        exactType = attributes["type"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `filters` is a list whose entries must all match, exactly like an `all` expression.
    init(subscriptionsFilters filters: [SubscriptionsFilter]) throws(FilterError) {
        var matchers: [Matcher] = []
        for (position, filter) in filters.enumerated() {
            matchers.append(try Self.matcher(for: filter, at: FilterPath("filters").index(position)))
        }
        matcher = matchers.count == 1 ? matchers[0] : .all(matchers)
        exactType = Self.exactType(of: matcher)
    }

    /// Whether `event` passes the filter.
    public func matches(_ event: some EventAttributeReader) -> Bool {
        Self.evaluate(matcher, event)
    }

    // MARK: Building

    private static func constraints(_ attributes: [String: String]) -> [Constraint] {
        attributes.map { Constraint(name: $0.key, value: $0.value) }.sorted { $0.name < $1.name }
    }

    private static func matcher(for filter: SubscriptionsFilter, at path: FilterPath) throws(FilterError) -> Matcher {
        switch filter {
        case .exact(let attributes): return .exact(constraints(attributes))
        case .prefix(let attributes): return .prefix(constraints(attributes))
        case .suffix(let attributes): return .suffix(constraints(attributes))
        case .all(let children): return .all(try matchers(for: children, at: path.key("all")))
        case .any(let children): return .any(try matchers(for: children, at: path.key("any")))
        case .not(let child): return .not(try matcher(for: child, at: path.key("not")))
        case .cesql(let expression):
            do {
                return .cesql(try CESQLProgram(expression))
            } catch {
                // Unreachable after validation; kept so a broken invariant reports, not crashes.
                throw path.key("cesql").error("invalid CESQL expression: \(error.message)")
            }
        }
    }

    private static func matchers(for filters: [SubscriptionsFilter], at path: FilterPath) throws(FilterError) -> [Matcher] {
        var result: [Matcher] = []
        for (position, filter) in filters.enumerated() {
            result.append(try matcher(for: filter, at: path.index(position)))
        }
        return result
    }

    /// An `exact` type pins the type; `all` pins it if any member does; `any` only if every
    /// branch pins the same type. Negation, prefixes, suffixes and CESQL pin nothing.
    private static func exactType(of matcher: Matcher) -> String? {
        switch matcher {
        case .exact(let constraints), .legacy(let constraints):
            return constraints.first { $0.name == "type" && !$0.value.isEmpty }?.value
        case .all(let members):
            return members.lazy.compactMap(exactType).first
        case .any(let branches):
            let types = branches.map(exactType)
            guard let first = types.first, let type = first, types.allSatisfy({ $0 == type }) else { return nil }
            return type
        case .everything, .prefix, .suffix, .not, .cesql:
            return nil
        }
    }

    // MARK: Matching

    private static func evaluate(_ matcher: Matcher, _ event: some EventAttributeReader) -> Bool {
        switch matcher {
        case .everything:
            return true
        case .legacy(let constraints):
            return constraints.allSatisfy { constraint in
                guard let value = event.attribute(constraint.name) else { return false }
                return constraint.value.isEmpty || UTF8Comparison.equal(value.canonicalString, constraint.value)
            }
        case .exact(let constraints):
            return satisfies(constraints, event, UTF8Comparison.equal)
        case .prefix(let constraints):
            return satisfies(constraints, event, UTF8Comparison.hasPrefix)
        case .suffix(let constraints):
            return satisfies(constraints, event, UTF8Comparison.hasSuffix)
        case .all(let members):
            return members.allSatisfy { evaluate($0, event) }
        case .any(let branches):
            return branches.contains { evaluate($0, event) }
        case .not(let inner):
            return !evaluate(inner, event)
        case .cesql(let program):
            return program.matches(event)
        }
    }

    /// Every constrained attribute must be present and pass `test(actual, expected)`. Attributes
    /// are compared by their canonical string, which for string attributes is the value itself
    /// (no formatting cost); integers and booleans are formatted.
    private static func satisfies(
        _ constraints: [Constraint], _ event: some EventAttributeReader, _ test: (String, String) -> Bool
    ) -> Bool {
        constraints.allSatisfy { constraint in
            guard let value = event.attribute(constraint.name) else { return false }
            return test(value.canonicalString, constraint.value)
        }
    }
}
