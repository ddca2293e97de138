/// One expression of a Knative Trigger's `filters` list (the CloudEvents Subscriptions API
/// filter dialects).
///
/// In JSON each expression is an object with exactly one key naming its dialect:
///
/// ```json
/// {"all": [{"exact": {"type": "com.example.order"}},
///          {"not": {"prefix": {"source": "test/"}}},
///          {"cesql": "INT(priority) > 3"}]}
/// ```
///
/// Decoding validates as it goes and throws `FilterError` with the path of the offending field,
/// so a decoded value is always valid; values built in code are checked by `validate()`.
public indirect enum SubscriptionsFilter: Sendable, Equatable {
    /// Every listed attribute equals the given value (case-sensitive).
    case exact([String: String])
    /// Every listed attribute starts with the given value.
    case prefix([String: String])
    /// Every listed attribute ends with the given value.
    case suffix([String: String])
    /// Every nested expression matches. Must not be empty.
    case all([SubscriptionsFilter])
    /// At least one nested expression matches. Must not be empty.
    case any([SubscriptionsFilter])
    /// The nested expression does not match.
    case not(SubscriptionsFilter)
    /// A CloudEvents SQL v1.0 expression that must evaluate to `true` without error.
    case cesql(String)

    /// The JSON key of each dialect.
    enum Dialect: String, CaseIterable, CodingKey {
        case exact, prefix, suffix, all, any, not, cesql
    }

    var dialect: Dialect {
        switch self {
        case .exact: .exact
        case .prefix: .prefix
        case .suffix: .suffix
        case .all: .all
        case .any: .any
        case .not: .not
        case .cesql: .cesql
        }
    }

    /// Checks the whole expression tree, throwing the first problem found.
    public func validate() throws(FilterError) {
        if let first = validationErrors(at: FilterPath()).first { throw first }
    }

    /// Every problem in this expression and its nested expressions.
    func validationErrors(at path: FilterPath) -> [FilterError] {
        var errors = ownValidationErrors(at: path)
        switch self {
        case .all(let children), .any(let children):
            let base = path.key(dialect.rawValue)
            for (position, child) in children.enumerated() {
                errors += child.validationErrors(at: base.index(position))
            }
        case .not(let child):
            errors += child.validationErrors(at: path.key(Dialect.not.rawValue))
        case .exact, .prefix, .suffix, .cesql:
            break
        }
        return errors
    }

    /// The problems of this node alone; nested expressions are checked separately (decoding
    /// has already validated them by the time their parent is built).
    func ownValidationErrors(at path: FilterPath) -> [FilterError] {
        switch self {
        case .exact(let attributes), .prefix(let attributes), .suffix(let attributes):
            return Self.attributeMapErrors(attributes, dialect: dialect, at: path.key(dialect.rawValue))
        case .all(let children), .any(let children):
            guard children.isEmpty else { return [] }
            return [path.error("\"\(dialect.rawValue)\" must contain at least one filter expression")]
        case .not:
            return []
        case .cesql(let expression):
            return Self.cesqlErrors(expression, at: path.key(Dialect.cesql.rawValue))
        }
    }

    private static func attributeMapErrors(_ attributes: [String: String], dialect: Dialect, at path: FilterPath) -> [FilterError] {
        guard !attributes.isEmpty else {
            return [path.error("\"\(dialect.rawValue)\" must name at least one attribute")]
        }
        var errors: [FilterError] = []
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            let attributePath = path.attribute(name)
            if let problem = AttributeName.problem(with: name) {
                errors.append(attributePath.error(problem))
            }
            if value.isEmpty {
                errors.append(attributePath.error("value must not be empty; to accept any value, check the attribute with a cesql EXISTS expression instead"))
            }
        }
        return errors
    }

    private static func cesqlErrors(_ expression: String, at path: FilterPath) -> [FilterError] {
        if expression.allSatisfy(\.isWhitespace) {
            return [path.error("expression must not be empty")]
        }
        do {
            let program = try CESQLProgram(expression)
            return program.staticErrors.map { path.error("invalid CESQL expression: \($0.message)") }
        } catch {
            let location = error.position.map { " at offset \($0)" } ?? ""
            return [path.error("invalid CESQL expression\(location): \(error.message)")]
        }
    }
}

// MARK: - Codable (the Knative JSON shape)

extension SubscriptionsFilter: Codable {
    /// Accepts any key so unknown ones can be reported by name instead of silently ignored.
    private struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private static var dialectList: String {
        Dialect.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
    }

    public init(from decoder: any Decoder) throws {
        let path = FilterPath(codingPath: decoder.codingPath)
        let dialect = try Self.decodeDialect(from: decoder, at: path)
        let container = try Self.rethrowing(at: path) { try decoder.container(keyedBy: Dialect.self) }
        let fieldPath = path.key(dialect.rawValue)
        switch dialect {
        case .exact:
            self = .exact(try Self.decodeAttributes(container, dialect, at: fieldPath))
        case .prefix:
            self = .prefix(try Self.decodeAttributes(container, dialect, at: fieldPath))
        case .suffix:
            self = .suffix(try Self.decodeAttributes(container, dialect, at: fieldPath))
        case .all:
            self = .all(try Self.decodeList(container, dialect, at: fieldPath))
        case .any:
            self = .any(try Self.decodeList(container, dialect, at: fieldPath))
        case .not:
            // The nested decoder reports its own, more precise, path and problem.
            self = .not(try Self.rethrowing(at: fieldPath, "\"not\" must hold one filter expression object") {
                try container.decode(SubscriptionsFilter.self, forKey: .not)
            })
        case .cesql:
            self = .cesql(try Self.rethrowing(at: fieldPath, "\"cesql\" must be a string holding a CESQL expression") {
                try container.decode(String.self, forKey: .cesql)
            })
        }
        if let problem = ownValidationErrors(at: path).first { throw problem }
    }

    /// Finds the single dialect key, rejecting unknown keys and objects naming several dialects.
    private static func decodeDialect(from decoder: any Decoder, at path: FilterPath) throws -> Dialect {
        let keys = try rethrowing(at: path, "a filter expression must be a JSON object with exactly one of \(dialectList)") {
            try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        }
        if let unknown = keys.sorted().first(where: { Dialect(stringValue: $0) == nil }) {
            throw path.error("unknown filter dialect \"\(unknown)\"; use one of \(dialectList)")
        }
        let dialects = Dialect.allCases.filter { keys.contains($0.rawValue) }
        guard let dialect = dialects.first else {
            throw path.error("empty filter expression; set exactly one of \(dialectList)")
        }
        guard dialects.count == 1 else {
            let named = dialects.map { "\"\($0.rawValue)\"" }.joined(separator: " and ")
            throw path.error("a filter expression takes exactly one dialect but has \(named); put each in its own entry of an \"all\" list")
        }
        return dialect
    }

    private static func decodeAttributes(
        _ container: KeyedDecodingContainer<Dialect>, _ dialect: Dialect, at path: FilterPath
    ) throws -> [String: String] {
        try rethrowing(at: path, "\"\(dialect.rawValue)\" must be an object mapping attribute names to string values") {
            try container.decode([String: String].self, forKey: dialect)
        }
    }

    private static func decodeList(
        _ container: KeyedDecodingContainer<Dialect>, _ dialect: Dialect, at path: FilterPath
    ) throws -> [SubscriptionsFilter] {
        try rethrowing(at: path, "\"\(dialect.rawValue)\" must be an array of filter expressions") {
            try container.decode([SubscriptionsFilter].self, forKey: dialect)
        }
    }

    /// Runs a decoding step, turning the decoder's generic errors into a `FilterError` that says
    /// what shape was expected. Errors from nested filter expressions are already
    /// `FilterError`s with deeper paths and pass through untouched.
    private static func rethrowing<T>(
        at path: FilterPath, _ expectation: String = "invalid filter expression", _ body: () throws -> T
    ) throws -> T {
        do {
            return try body()
        } catch let error as FilterError {
            throw error
        } catch {
            throw path.error(expectation)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Dialect.self)
        switch self {
        case .exact(let attributes), .prefix(let attributes), .suffix(let attributes):
            try container.encode(attributes, forKey: dialect)
        case .all(let children), .any(let children):
            try container.encode(children, forKey: dialect)
        case .not(let child):
            try container.encode(child, forKey: .not)
        case .cesql(let expression):
            try container.encode(expression, forKey: .cesql)
        }
    }
}
