/// The value of a CloudEvents context attribute.
///
/// The CloudEvents type system has Boolean, Integer, String, Binary, URI, URI-reference and
/// Timestamp. Only Boolean and Integer need their own case (they arrive as JSON `true` or `42` in
/// structured mode); every other type is carried as its canonical string form.
public enum CloudEventValue: Sendable, Hashable {
    case string(String)
    case integer(Int32)
    case boolean(Bool)

    /// The canonical string encoding of the value (used in `ce-*` headers and by string filters).
    public var canonicalString: String {
        switch self {
        case .string(let s): s
        case .integer(let i): String(i)
        case .boolean(let b): b ? "true" : "false"
        }
    }
}

/// Anything a filter can read attributes from (a decoded event, a stored event's header).
public protocol EventAttributeReader {
    /// The attribute's value, or nil when the event does not have it. Core attributes (`id`,
    /// `source`, `specversion`, `type`, `datacontenttype`, `dataschema`, `subject`, `time`) and
    /// extensions are all looked up by their lower-case name.
    func attribute(_ name: String) -> CloudEventValue?
}
