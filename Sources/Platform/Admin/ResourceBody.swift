import Foundation

/// Steps every resource body goes through after its JSON shape was checked.
enum ResourceBody {
    /// Decodes the checked JSON `object` as `T`; a missing field is named by its path.
    /// `kind` completes "the body does not describe a …".
    static func decode<T: Decodable>(_ type: T.Type, from object: [String: Any], kind: String) throws(FieldError) -> T {
        do {
            return try APIJSON.decoder().decode(T.self, from: try JSONSerialization.data(withJSONObject: object))
        } catch DecodingError.keyNotFound(let key, let context) {
            let path = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw FieldError(field: path, "\(path) is required", code: "MissingField")
        } catch {
            throw FieldError(field: "", "the body does not describe a \(kind): \(error)")
        }
    }

    /// `metadata.resourceVersion` as a number (for optimistic concurrency), if sent.
    static func resourceVersion(_ metadata: MetadataDTO) throws(FieldError) -> Int64? {
        guard let text = metadata.resourceVersion else { return nil }
        guard let value = Int64(text) else {
            throw FieldError(field: "metadata.resourceVersion", "metadata.resourceVersion must be the string of a number, got \"\(text)\"")
        }
        return value
    }

    /// The resource's name (from the body or the URL, which must agree; a DNS-1035 label short
    /// enough for revision names) and the `resourceVersion` it was read at, if given. The body's
    /// namespace, when given, must match the URL's.
    static func checkedMetadata(
        _ metadata: MetadataDTO, pathNamespace: String, pathName: String?
    ) throws(FieldError) -> (name: String, resourceVersion: Int64?) {
        if let namespace = metadata.namespace, namespace != pathNamespace {
            throw FieldError(field: "metadata.namespace", "metadata.namespace \"\(namespace)\" does not match the namespace in the URL (\"\(pathNamespace)\")")
        }
        let name = metadata.name ?? pathName ?? ""
        if let pathName, name != pathName {
            throw FieldError(field: "metadata.name", "metadata.name \"\(name)\" does not match the name in the URL (\"\(pathName)\")")
        }
        if let problem = Names.dns1035Problem(name, maxLength: Names.maxServiceNameLength) {
            throw FieldError(field: "metadata.name", "metadata.name \(problem)")
        }
        return (name, try resourceVersion(metadata))
    }
}
