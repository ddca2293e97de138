/// A CloudEvents 1.0 event, independent of the transport it arrived on.
///
/// The payload is kept as the exact bytes binary mode would carry. That single representation
/// lets the bus store and forward an event without knowing its payload format, and lets a JSON
/// payload that arrived in structured mode leave in binary mode unchanged.
public struct CloudEvent: Sendable, Equatable, EventAttributeReader {
    public var id: String
    public var source: String
    public var specversion: String
    public var type: String
    public var datacontenttype: String?
    public var dataschema: String?
    public var subject: String?
    /// Kept as the RFC 3339 text that was received: re-formatting would change the bytes a
    /// subscriber sees and could lose precision or the original offset.
    public var time: String?
    public var extensions: [String: CloudEventValue]
    /// The payload bytes as binary mode would carry them; nil when the event has no data.
    public var data: [UInt8]?

    public init(
        id: String,
        source: String,
        type: String,
        specversion: String = "1.0",
        datacontenttype: String? = nil,
        dataschema: String? = nil,
        subject: String? = nil,
        time: String? = nil,
        extensions: [String: CloudEventValue] = [:],
        data: [UInt8]? = nil
    ) {
        self.id = id
        self.source = source
        self.specversion = specversion
        self.type = type
        self.datacontenttype = datacontenttype
        self.dataschema = dataschema
        self.subject = subject
        self.time = time
        self.extensions = extensions
        self.data = data
    }

    /// The names of the context attributes defined by the spec itself. An extension may not reuse
    /// one: a filter on `subject` must always mean the core attribute.
    static let coreAttributeNames: Set<String> = [
        "id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time",
    ]

    public func attribute(_ name: String) -> CloudEventValue? {
        switch name {
        case "id": .string(id)
        case "source": .string(source)
        case "specversion": .string(specversion)
        case "type": .string(type)
        case "datacontenttype": datacontenttype.map(CloudEventValue.string)
        case "dataschema": dataschema.map(CloudEventValue.string)
        case "subject": subject.map(CloudEventValue.string)
        case "time": time.map(CloudEventValue.string)
        default: extensions[name]
        }
    }
}

// MARK: - Validation

extension CloudEvent {
    /// Checks every CloudEvents 1.0 rule that can be checked without the payload.
    ///
    /// Decoders call this on everything they return, so an event that reaches the log or a filter
    /// is known to be well-formed; code that builds events by hand should call it before publishing.
    /// `specversion` is checked first because it decides how the rest of the event is read.
    public func validate() throws(CloudEventError) {
        try Self.validateRequired("specversion", specversion)
        guard specversion == "1.0" else {
            throw .invalid("specversion", "unsupported spec version (\(quotedForError(specversion)))")
        }
        try Self.validateRequired("id", id)
        try Self.validateRequired("source", source)
        try Self.validateRequired("type", type)
        guard AttributeSyntax.isURIReference(source) else {
            throw .invalid("source", "not a URI-reference (\(quotedForError(source)))")
        }
        try validateOptionalAttributes()
        for (name, value) in extensions {
            try Self.validateExtension(name: name, value: value)
        }
    }

    private func validateOptionalAttributes() throws(CloudEventError) {
        if let datacontenttype {
            try Self.validateString("datacontenttype", datacontenttype)
            guard AttributeSyntax.isMediaType(datacontenttype) else {
                throw .invalid("datacontenttype", "not an RFC 2046 media type (\(quotedForError(datacontenttype)))")
            }
        }
        if let dataschema {
            try Self.validateRequired("dataschema", dataschema)
            guard AttributeSyntax.isAbsoluteURI(dataschema) else {
                throw .invalid("dataschema", "not an absolute URI (\(quotedForError(dataschema)))")
            }
        }
        if let subject {
            try Self.validateRequired("subject", subject)
        }
        if let time {
            try Self.validateString("time", time)
            guard AttributeSyntax.isRFC3339Timestamp(time) else {
                throw .invalid("time", "not an RFC 3339 timestamp (\(quotedForError(time)))")
            }
        }
    }

    /// Required attributes and the optional ones that "MUST be non-empty if present".
    private static func validateRequired(_ name: String, _ value: String) throws(CloudEventError) {
        guard !value.isEmpty else {
            throw .invalid(name, "required attribute is missing or empty")
        }
        try validateString(name, value)
    }

    private static func validateString(_ name: String, _ value: String) throws(CloudEventError) {
        if let bad = AttributeSyntax.firstDisallowedScalar(in: value) {
            throw .invalid(name, "contains disallowed character \(unicodeNotation(bad))")
        }
    }

    /// `U+0007`-style notation, so the error shows an invisible character unambiguously.
    private static func unicodeNotation(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    private static func validateExtension(name: String, value: CloudEventValue) throws(CloudEventError) {
        guard AttributeSyntax.isAttributeName(name) else {
            throw .invalid(name, "attribute names must be 1-\(AttributeSyntax.maxAttributeNameLength) characters of [a-z0-9]")
        }
        guard name != "data" else {
            throw .invalid(name, "\"data\" is reserved and cannot be an attribute")
        }
        guard !coreAttributeNames.contains(name) else {
            throw .invalid(name, "core attribute cannot be used as an extension")
        }
        // Integer values are Int32 by construction and Booleans have no invalid form.
        if case .string(let text) = value {
            try validateString(name, text)
        }
    }
}
