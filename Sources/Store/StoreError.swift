/// The one error type of the Store module. The admin API maps `code` to an HTTP status.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        /// The resource does not exist.
        public static let notFound = Code("NotFound")
        /// A resource with that name exists already.
        public static let alreadyExists = Code("AlreadyExists")
        /// The caller's `resourceVersion` is stale.
        public static let conflict = Code("Conflict")
        /// The database could not be opened, migrated or written.
        public static let storage = Code("StorageError")
        /// The code as text.
        public var description: String { raw }
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, for a person.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `Code: message`.
    public var description: String { "\(code): \(message)" }
}
