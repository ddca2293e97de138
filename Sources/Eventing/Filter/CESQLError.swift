/// An error raised while compiling or evaluating a CloudEvents SQL (CESQL v1.0) expression.
///
/// CESQL is total: evaluation never aborts with a thrown error. Instead every evaluation yields a
/// value plus a list of these errors (spec §3.3). Only compilation throws, and only with
/// `Kind.parse`.
public struct CESQLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error categories every CESQL engine must distinguish (spec §3.3). The raw values are
    /// the names the conformance suite (TCK) uses.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The expression is not syntactically valid.
        case parse
        /// Division or remainder by zero, or 32-bit integer overflow.
        case math
        /// An implicit or explicit type conversion failed (for example `INT('abc')`).
        case cast
        /// The expression addressed an attribute the event does not carry.
        case missingAttribute
        /// No built-in function has the called name and number of arguments.
        case missingFunction
        /// A function rejected its arguments (for example `LEFT('abc', -1)`).
        case functionEvaluation
        /// Anything not covered above.
        case generic
    }

    /// The category of the error.
    public let kind: Kind
    /// A human-readable explanation, phrased so the author of the expression knows what to fix.
    public let message: String
    /// For parse errors, the zero-based offset (counted in Unicode scalars) of the offending
    /// character or token in the expression; `nil` for evaluation errors.
    public let position: Int?

    public init(kind: Kind, message: String, position: Int? = nil) {
        self.kind = kind
        self.message = message
        self.position = position
    }

    public var description: String {
        if let position {
            return "CESQL \(kind.rawValue) error at offset \(position): \(message)"
        }
        return "CESQL \(kind.rawValue) error: \(message)"
    }
}
