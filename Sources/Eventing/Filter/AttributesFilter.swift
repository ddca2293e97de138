/// The legacy Knative Trigger filter, `spec.filter: {attributes: {name: value}}`.
///
/// Semantics (Knative TriggerFilter): every listed attribute must be present on the event; a
/// non-empty value must equal the attribute exactly (case-sensitive, non-string attributes
/// compared by their canonical string), while an empty value accepts any value. No attributes
/// means every event passes.
public struct AttributesFilter: Sendable, Equatable {
    public var attributes: [String: String]

    public init(attributes: [String: String] = [:]) {
        self.attributes = attributes
    }

    /// Attribute names must follow the CloudEvents naming rule; values may be empty.
    func validationErrors(at path: FilterPath) -> [FilterError] {
        let base = path.key("attributes")
        return attributes.keys.sorted().compactMap { name in
            AttributeName.problem(with: name).map { base.attribute(name).error($0) }
        }
    }
}

extension AttributesFilter: Codable {
    private enum CodingKeys: String, CodingKey {
        case attributes
    }

    /// `attributes` may be absent or null (Go's `omitempty`). Names are validated while decoding
    /// so errors carry the field's path.
    public init(from decoder: any Decoder) throws {
        let path = FilterPath(codingPath: decoder.codingPath)
        do {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            attributes = try container.decodeIfPresent([String: String].self, forKey: .attributes) ?? [:]
        } catch {
            throw path.error("\"filter\" must be an object whose \"attributes\" maps attribute names to string values")
        }
        if let problem = validationErrors(at: path).first { throw problem }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if !attributes.isEmpty {
            try container.encode(attributes, forKey: .attributes)
        }
    }
}
