/// The one error type of the Inference module: a stable machine-readable `code` plus a message
/// that tells the user what to fix. New codes can be added without breaking callers.
public struct InferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable error category.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code as a string, for example `"unsupported_operator"`.
        public let rawValue: String
        /// Wraps a raw code string.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The code string.
        public var description: String { rawValue }

        /// The model file could not be read (missing, unreadable, external data outside the model folder).
        public static let modelNotReadable = Code(rawValue: "model_not_readable")
        /// The bytes are not a valid ONNX protobuf, or the graph is inconsistent.
        public static let invalidModel = Code(rawValue: "invalid_model")
        /// The model imports an opset or IR version this engine does not run.
        public static let unsupportedOpset = Code(rawValue: "unsupported_opset")
        /// A node uses an operator this engine does not implement (reported at load time).
        public static let unsupportedOperator = Code(rawValue: "unsupported_operator")
        /// A node uses an attribute, attribute value or data type this engine does not implement.
        public static let unsupportedAttribute = Code(rawValue: "unsupported_attribute")
        /// A tensor's data does not match its declared shape or data type.
        public static let invalidTensor = Code(rawValue: "invalid_tensor")
        /// A request input is missing, unknown, or has the wrong shape or data type.
        public static let invalidInput = Code(rawValue: "invalid_input")
        /// Shapes met during execution are incompatible (for example a broadcast or MatMul mismatch).
        public static let shapeMismatch = Code(rawValue: "shape_mismatch")
        /// A protocol payload (V1/V2 JSON, binary tensor framing) is malformed.
        public static let invalidRequest = Code(rawValue: "invalid_request")
        /// No model of the requested name is loaded (the serving layer raises it).
        public static let modelNotFound = Code(rawValue: "model_not_found")
        /// The model exists but is not ready (the serving layer raises it).
        public static let modelNotReady = Code(rawValue: "model_not_ready")
        /// A requested output does not exist.
        public static let unknownOutput = Code(rawValue: "unknown_output")
    }

    /// What kind of failure this is.
    public let code: Code
    /// A human-readable explanation naming the node, operator, tensor or field involved.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `"<code>: <message>"`.
    public var description: String { "\(code.rawValue): \(message)" }
}
