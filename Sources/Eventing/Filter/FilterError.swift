/// A problem with a trigger filter, located by a JSON-style path such as
/// `filters[1].all[0].exact.type`, so the author knows exactly which field to fix.
public struct FilterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the problem is, relative to the trigger's filter fields; empty for the whole spec.
    public let path: String
    /// What is wrong and, where possible, how to fix it.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? message : "\(path): \(message)"
    }
}

/// Builds the `path` of a `FilterError` one component at a time.
struct FilterPath: Sendable, Equatable {
    private(set) var rendered: String

    init(_ rendered: String = "") {
        self.rendered = rendered
    }

    /// The path of a value being decoded. Array positions carry an `intValue`; object keys don't.
    init(codingPath: [any CodingKey]) {
        self.init()
        for key in codingPath {
            self = key.intValue.map(index) ?? self.key(key.stringValue)
        }
    }

    func key(_ name: String) -> FilterPath {
        FilterPath(rendered.isEmpty ? name : "\(rendered).\(name)")
    }

    func index(_ position: Int) -> FilterPath {
        FilterPath("\(rendered)[\(position)]")
    }

    /// An attribute name inside a map: dotted when it is a plain CloudEvents name, otherwise
    /// quoted so empty or odd names stay visible (`exact[""]`, `exact["Type"]`).
    func attribute(_ name: String) -> FilterPath {
        if AttributeName.isValid(name) { return key(name) }
        return FilterPath("\(rendered)[\"\(name.unicodeScalars.map { $0.escaped(asASCII: false) }.joined())\"]")
    }

    func error(_ message: String) -> FilterError {
        FilterError(path: rendered, message: message)
    }
}

/// The CloudEvents attribute naming rule: lower-case ASCII letters and digits only. Filters on
/// any other name could never match, since events expose attributes by lower-case name.
enum AttributeName {
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) }
    }

    /// The validation problem with `name`, if any.
    static func problem(with name: String) -> String? {
        if name.isEmpty { return "attribute name must not be empty" }
        if isValid(name) { return nil }
        return "attribute name \"\(name)\" must contain only lower-case letters (a-z) and digits (0-9)"
    }
}
