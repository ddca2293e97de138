import Foundation

/// The allowed shape of a JSON request body. Checking it before decoding lets the API name the
/// exact field that is unknown or of the wrong type, which `JSONDecoder` would either ignore or
/// report obscurely.
indirect enum JSONShape: Sendable {
    case object([String: JSONShape])
    case array(JSONShape)
    case map(JSONShape)
    case string
    case integer
    case number
    case boolean

    /// Returns a validation error for the first problem found, or nil.
    func problem(in value: Any, at path: String) -> FieldError? {
        switch self {
        case .object(let fields):
            guard let object = value as? [String: Any] else { return .init(field: path, "\(name(path)) must be an object") }
            for key in object.keys.sorted() {
                let child = path.isEmpty ? key : "\(path).\(key)"
                guard let shape = fields[key] else {
                    return .init(field: child, "unknown field \"\(child)\"", code: "UnknownField")
                }
                if object[key] is NSNull { continue }
                if let problem = shape.problem(in: object[key]!, at: child) { return problem }
            }
            return nil
        case .array(let element):
            guard let array = value as? [Any] else { return .init(field: path, "\(name(path)) must be an array") }
            for (index, item) in array.enumerated() {
                if let problem = element.problem(in: item, at: "\(path)[\(index)]") { return problem }
            }
            return nil
        case .map(let element):
            guard let object = value as? [String: Any] else { return .init(field: path, "\(name(path)) must be an object") }
            for key in object.keys.sorted() {
                if let problem = element.problem(in: object[key]!, at: "\(path).\(key)") { return problem }
            }
            return nil
        case .string:
            return value is String ? nil : .init(field: path, "\(name(path)) must be a string")
        case .integer:
            guard let number = value as? NSNumber, !Self.isBoolean(number),
                  number.doubleValue == number.doubleValue.rounded(), abs(number.doubleValue) < 1e15 else {
                return .init(field: path, "\(name(path)) must be an integer")
            }
            return nil
        case .number:
            guard let number = value as? NSNumber, !Self.isBoolean(number), number.doubleValue.isFinite else {
                return .init(field: path, "\(name(path)) must be a number")
            }
            return nil
        case .boolean:
            guard let number = value as? NSNumber, Self.isBoolean(number) else {
                return .init(field: path, "\(name(path)) must be true or false")
            }
            return nil
        }
    }

    private func name(_ path: String) -> String { path.isEmpty ? "the body" : path }

    private static func isBoolean(_ number: NSNumber) -> Bool {
        // Foundation on Linux parses JSON booleans as NSNumber with Bool's type.
        number === (true as NSNumber) || number === (false as NSNumber) || String(cString: number.objCType) == "c"
    }

    /// The accepted shape of a service body.
    static let service: JSONShape = {
        let metadata: JSONShape = .object([
            "name": .string, "namespace": .string, "annotations": .map(.string), "labels": .map(.string),
            "resourceVersion": .string, "uid": .string, "generation": .integer, "creationTimestamp": .string,
        ])
        let probe: JSONShape = .object([
            "httpGet": .object(["path": .string]), "tcpSocket": .object([:]),
        ])
        let templateSpec: JSONShape = .object([
            "command": .string, "args": .array(.string),
            "env": .array(.object(["name": .string, "value": .string])),
            "workingDir": .string, "port": .integer, "readinessProbe": probe,
            "containerConcurrency": .integer, "timeoutSeconds": .integer,
        ])
        let traffic: JSONShape = .object([
            "revisionName": .string, "latestRevision": .boolean, "percent": .integer, "tag": .string,
        ])
        return .object([
            "apiVersion": .string, "kind": .string, "metadata": metadata,
            "spec": .object([
                "template": .object(["metadata": .object(["annotations": .map(.string)]), "spec": templateSpec]),
                "traffic": .array(traffic),
            ]),
            // Clients may send back what they read; status is ignored.
            "status": .object([
                "observedGeneration": .integer, "conditions": .array(.map(.string)),
                "latestCreatedRevisionName": .string, "latestReadyRevisionName": .string, "url": .string,
                "traffic": .array(traffic),
            ]),
        ])
    }()
}

/// A field the client must fix.
struct FieldError: Error, Equatable {
    var field: String
    var message: String
    var code: String

    init(field: String, _ message: String, code: String = "InvalidField") {
        self.field = field
        self.message = message
        self.code = code
    }
}
