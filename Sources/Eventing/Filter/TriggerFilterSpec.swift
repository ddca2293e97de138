public import Foundation

/// The filtering part of a Knative Trigger spec: the legacy `filter` and the newer `filters`.
///
/// Precedence follows Knative: when `filters` is non-empty it decides alone and `filter` is
/// ignored; otherwise `filter` applies; with neither, every event matches. Both are still
/// validated, since an invalid field is a configuration mistake even when it is overridden.
public struct TriggerFilterSpec: Sendable, Equatable {
    /// The legacy attribute filter (`spec.filter`).
    public var filter: AttributesFilter?
    /// The Subscriptions API filter expressions (`spec.filters`), ANDed together.
    public var filters: [SubscriptionsFilter]

    public init(filter: AttributesFilter? = nil, filters: [SubscriptionsFilter] = []) {
        self.filter = filter
        self.filters = filters
    }

    /// Every problem in the spec, each with the path of the field to fix.
    public func validationErrors() -> [FilterError] {
        let legacy = filter?.validationErrors(at: FilterPath("filter")) ?? []
        let base = FilterPath("filters")
        let modern = filters.enumerated().flatMap { position, expression in
            expression.validationErrors(at: base.index(position))
        }
        return legacy + modern
    }

    /// Throws the first problem `validationErrors()` reports.
    public func validate() throws(FilterError) {
        if let first = validationErrors().first { throw first }
    }

    /// Validates the spec and builds the matcher that applies it. CESQL expressions are compiled
    /// here, once, so matching never parses anything.
    public func compile() throws(FilterError) -> CompiledFilter {
        try validate()
        if !filters.isEmpty {
            return try CompiledFilter(subscriptionsFilters: filters)
        }
        return CompiledFilter(legacy: filter?.attributes ?? [:])
    }

    /// Decodes the Knative JSON (`{"filter": {...}, "filters": [...]}`, other keys ignored),
    /// reporting any problem, including malformed JSON, as a `FilterError`.
    public static func decode(from json: Data) throws(FilterError) -> TriggerFilterSpec {
        do {
            return try JSONDecoder().decode(TriggerFilterSpec.self, from: json)
        } catch let error as FilterError {
            throw error
        } catch let error as DecodingError {
            throw FilterError(path: "", message: describe(error))
        } catch {
            throw FilterError(path: "", message: "the trigger filter could not be decoded: \(error)")
        }
    }

    /// Only problems outside the filter fields reach here: malformed JSON or a non-object root.
    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context):
            "the trigger filter is not valid JSON: \(context.debugDescription)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context):
            "the trigger filter must be a JSON object with optional \"filter\" and \"filters\" fields: \(context.debugDescription)"
        @unknown default:
            "the trigger filter could not be decoded: \(error)"
        }
    }
}

extension TriggerFilterSpec: Codable {
    private enum CodingKeys: String, CodingKey {
        case filter, filters
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        filter = try container.decodeIfPresent(AttributesFilter.self, forKey: .filter)
        do {
            filters = try container.decodeIfPresent([SubscriptionsFilter].self, forKey: .filters) ?? []
        } catch let error as FilterError {
            throw error
        } catch {
            throw FilterError(path: "filters", message: "\"filters\" must be an array of filter expressions")
        }
    }

    /// Mirrors Go's `omitempty`: absent fields are left out rather than written as null or [].
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(filter, forKey: .filter)
        if !filters.isEmpty {
            try container.encode(filters, forKey: .filters)
        }
    }
}
