import Foundation

/// A reference to an addressable object, as in Knative's `duckv1.KReference`.
public struct KReference: Sendable, Equatable, Hashable, Codable {
    public var apiVersion: String?
    public var kind: String
    public var name: String
    public var namespace: String?

    public init(apiVersion: String? = nil, kind: String, name: String, namespace: String? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.namespace = namespace
    }
}

/// Where events go, as in Knative's `duckv1.Destination`: a `ref`, a `uri`, or both.
///
/// With both, `uri` is a path appended to the address the ref resolves to
/// (e.g. `ref: Service/handler`, `uri: /events`), which is how Knative triggers
/// target a sub-path of a service.
public struct Destination: Sendable, Equatable, Hashable, Codable {
    public var ref: KReference?
    public var uri: String?

    public init(ref: KReference? = nil, uri: String? = nil) {
        self.ref = ref
        self.uri = uri
    }

    /// The object kinds Outpost can resolve to an address.
    public enum Kind: String, Sendable, CaseIterable {
        /// A Knative Serving service; Outpost's functions are addressed this way.
        case service = "Service"
        /// A Knative Eventing broker, for chaining brokers or dead-letter brokers.
        case broker = "Broker"

        /// The only `apiVersion` accepted for this kind (it may also be omitted).
        public var apiVersion: String {
            switch self {
            case .service: "serving.knative.dev/v1"
            case .broker: "eventing.knative.dev/v1"
            }
        }
    }

    /// A destination referring to a service by name.
    public static func service(_ name: String, namespace: String? = nil) -> Destination {
        Destination(ref: KReference(apiVersion: Kind.service.apiVersion, kind: Kind.service.rawValue, name: name, namespace: namespace))
    }

    /// A destination referring to a broker by name.
    public static func broker(_ name: String, namespace: String? = nil) -> Destination {
        Destination(ref: KReference(apiVersion: Kind.broker.apiVersion, kind: Kind.broker.rawValue, name: name, namespace: namespace))
    }

    /// Parses the short forms a CLI flag such as `--sink` accepts:
    /// `service:NAME` (or `ksvc:NAME`, as the `kn` CLI spells it), `broker:NAME`,
    /// or an absolute `http(s)` URL. The result is validated.
    public init(cliValue: String, path: String = "sink") throws(DeliverySpecError) {
        let value = cliValue.trimmingCharacters(in: .whitespaces)
        let destination: Destination
        if let name = Self.suffix(of: value, afterAnyOf: ["service:", "ksvc:"]) {
            destination = .service(name)
        } else if let name = Self.suffix(of: value, afterAnyOf: ["broker:"]) {
            destination = .broker(name)
        } else if value.contains("://") {
            destination = Destination(uri: value)
        } else {
            throw DeliverySpecError(
                path: path,
                message: "\"\(cliValue)\" is not a destination; use service:NAME, broker:NAME or an absolute URL such as http://host:8080/events"
            )
        }
        try destination.validate(path: path)
        self = destination
    }

    private static func suffix(of value: String, afterAnyOf prefixes: [String]) -> String? {
        for prefix in prefixes where value.lowercased().hasPrefix(prefix) {
            return String(value.dropFirst(prefix.count))
        }
        return nil
    }

    /// Throws the first problem found; see ``validationErrors(path:)``.
    public func validate(path: String) throws(DeliverySpecError) {
        if let first = validationErrors(path: path).first { throw first }
    }

    /// Every problem with this destination, each naming the field to fix.
    public func validationErrors(path: String) -> [DeliverySpecError] {
        guard ref != nil || uri != nil else {
            return [DeliverySpecError(path: path, message: "set ref (a Service or Broker) or uri (e.g. http://host:8080/events)")]
        }
        var errors: [DeliverySpecError] = []
        if let ref {
            errors += Self.referenceErrors(ref, path: "\(path).ref")
        }
        if let uri {
            let uriPath = "\(path).uri"
            if let error = ref == nil ? Self.absoluteURIError(uri, path: uriPath) : Self.relativePathError(uri, path: uriPath) {
                errors.append(error)
            }
        }
        return errors
    }

    private static func referenceErrors(_ ref: KReference, path: String) -> [DeliverySpecError] {
        var errors: [DeliverySpecError] = []
        if let kind = Kind(rawValue: ref.kind) {
            if let apiVersion = ref.apiVersion, apiVersion != kind.apiVersion {
                errors.append(DeliverySpecError(
                    path: "\(path).apiVersion",
                    message: "\"\(apiVersion)\" does not serve kind \(kind.rawValue); use \(kind.apiVersion) or omit apiVersion"
                ))
            }
        } else {
            let kinds = Kind.allCases.map(\.rawValue).joined(separator: " or ")
            errors.append(DeliverySpecError(path: "\(path).kind", message: "\"\(ref.kind)\" is not supported; use \(kinds)"))
        }
        if !isDNSLabel(ref.name) {
            errors.append(DeliverySpecError(path: "\(path).name", message: dnsLabelHint(ref.name)))
        }
        if let namespace = ref.namespace, !isDNSLabel(namespace) {
            errors.append(DeliverySpecError(path: "\(path).namespace", message: dnsLabelHint(namespace)))
        }
        return errors
    }

    private static func absoluteURIError(_ uri: String, path: String) -> DeliverySpecError? {
        guard let components = URLComponents(string: uri),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else {
            return DeliverySpecError(path: path, message: "\"\(uri)\" must be an absolute http or https URL such as http://host:8080/events")
        }
        return nil
    }

    private static func relativePathError(_ uri: String, path: String) -> DeliverySpecError? {
        guard uri.hasPrefix("/"), !uri.hasPrefix("//"),
              let components = URLComponents(string: uri), components.scheme == nil, components.host == nil
        else {
            return DeliverySpecError(
                path: path,
                message: "\"\(uri)\" must be a path starting with \"/\" (e.g. /events) because ref is also set; drop ref to use an absolute URL"
            )
        }
        return nil
    }

    /// RFC 1123 label, the Kubernetes rule for service, broker and namespace names.
    static func isDNSLabel(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        let isLowerAlnum = { (byte: UInt8) in (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
        guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        return bytes.allSatisfy { isLowerAlnum($0) || $0 == 0x2D }
    }

    private static func dnsLabelHint(_ name: String) -> String {
        "\"\(name)\" is not a valid name; use 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
    }
}
