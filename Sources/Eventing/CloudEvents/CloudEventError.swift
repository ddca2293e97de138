/// Why an event could not be decoded, validated or restored.
///
/// The error carries the HTTP status a receiver should answer with, so the ingress can map a
/// failure to a response without re-classifying it: a malformed or invalid event is the sender's
/// fault and must not be retried (400), while a format we do not speak is a negotiation problem
/// (415). Size limits are enforced before decoding and are deliberately not represented here.
public struct CloudEventError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The context attribute (or JSON member such as `data_base64`) at fault, by its CloudEvents
    /// name rather than its transport spelling, so callers can report it uniformly across modes.
    public let attribute: String?
    /// A human-readable explanation, safe to echo back to the sender.
    public let reason: String
    /// The HTTP status code that best describes the failure.
    public let status: Int

    public init(attribute: String?, reason: String, status: Int = 400) {
        self.attribute = attribute
        self.reason = reason
        self.status = status
    }

    public var description: String {
        guard let attribute else { return reason }
        return "attribute \"\(attribute)\": \(reason)"
    }
}

extension CloudEventError {
    /// An event that breaks a CloudEvents rule for one attribute.
    static func invalid(_ attribute: String?, _ reason: String) -> CloudEventError {
        CloudEventError(attribute: attribute, reason: reason, status: 400)
    }

    /// A message whose format (content type or charset) this codec does not implement.
    static func unsupportedMediaType(_ reason: String) -> CloudEventError {
        CloudEventError(attribute: nil, reason: reason, status: 415)
    }

    /// Attributes a syntax error to the member being parsed, unless a more precise attribute is
    /// already known; a bare "malformed JSON" is much harder to act on than one that names it.
    func attributed(to name: String) -> CloudEventError {
        attribute == nil ? CloudEventError(attribute: name, reason: reason, status: status) : self
    }
}

/// Renders an offending value for an error message. Values come from the network, so they are
/// truncated (an error must not echo a 64 KiB attribute) and escaped (no raw control characters).
func quotedForError(_ value: String) -> String {
    let limit = 64
    guard value.count > limit else { return String(reflecting: value) }
    return String(reflecting: String(value.prefix(limit))) + "…"
}
