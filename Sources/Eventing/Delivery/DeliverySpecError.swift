/// A problem with a user-supplied delivery setting.
///
/// The error names the field the way the user wrote it (`delivery.backoffDelay`,
/// `spec.subscriber.uri`, …) and the message says what to write instead, so the
/// CLI and the API can show it verbatim without further context.
public struct DeliverySpecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Dotted path of the offending field, e.g. `delivery.deadLetterSink.uri`.
    public let path: String
    /// What is wrong and how to fix it, without the path prefix.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

extension DeliverySpecError {
    /// Decodes one of an enumeration's string values, or throws an error that names the field
    /// and the values allowed (a generic `DecodingError` would not).
    static func decodeChoice<T: RawRepresentable & CaseIterable>(from decoder: any Decoder, field: String, noun: String) throws -> T
    where T.RawValue == String {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = T(rawValue: raw) else {
            let allowed = T.allCases.map(\.rawValue)
            let list = allowed.count == 2 ? "\(allowed[0]) or \(allowed[1])" : allowed.joined(separator: ", ")
            throw DeliverySpecError(path: path(from: decoder.codingPath, fallback: field), message: "\"\(raw)\" is not a \(noun); use \(list)")
        }
        return value
    }

    /// Renders a decoder's coding path (`delivery`, `backoffDelay`) as `delivery.backoffDelay`.
    ///
    /// Decoding errors are the most common way a bad value reaches us (JSON and YAML
    /// manifests), so the path is derived from the decoder instead of being guessed.
    static func path(from codingPath: [any CodingKey], fallback: String) -> String {
        var rendered = ""
        for key in codingPath {
            if let index = key.intValue {
                rendered += "[\(index)]"
            } else {
                rendered += rendered.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return rendered.isEmpty ? fallback : rendered
    }
}
