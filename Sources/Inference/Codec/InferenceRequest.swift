/// A protocol `parameters` value: `$string | $number | $boolean`.
public enum InferenceParameter: Sendable, Equatable {
    /// A boolean parameter (for example `binary_data`).
    case bool(Bool)
    /// An integer parameter (for example `binary_data_size`).
    case int(Int64)
    /// A non-integer number.
    case double(Double)
    /// A string parameter.
    case string(String)
}

/// One `$request_input` of a V2 inference request.
public struct RequestInput: Sendable, Equatable {
    /// Input tensor name.
    public var name: String
    /// The decoded tensor (from JSON `data` or from binary data).
    public var tensor: Tensor
    /// The input's `parameters` (including `binary_data_size` when it came as binary).
    public var parameters: [String: InferenceParameter]

    /// Creates an input.
    public init(name: String, tensor: Tensor, parameters: [String: InferenceParameter] = [:]) {
        self.name = name
        self.tensor = tensor
        self.parameters = parameters
    }
}

/// One `$request_output`: an output the client asks for.
public struct RequestedOutput: Sendable, Equatable {
    /// Output tensor name.
    public var name: String
    /// The output's `parameters` (`binary_data` selects the binary tensor extension).
    public var parameters: [String: InferenceParameter]

    /// Creates a requested output.
    public init(name: String, parameters: [String: InferenceParameter] = [:]) {
        self.name = name
        self.parameters = parameters
    }
}

/// A decoded V2 `$inference_request`.
public struct InferenceRequest: Sendable, Equatable {
    /// The optional request id, echoed in the response.
    public var id: String?
    /// Request-level `parameters` (for example `binary_data_output`).
    public var parameters: [String: InferenceParameter]
    /// The inputs, in request order.
    public var inputs: [RequestInput]
    /// The requested outputs; nil means all outputs with default settings.
    public var outputs: [RequestedOutput]?

    /// Creates a request.
    public init(id: String? = nil, parameters: [String: InferenceParameter] = [:], inputs: [RequestInput],
                outputs: [RequestedOutput]? = nil) {
        self.id = id
        self.parameters = parameters
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The inputs keyed by name, as `OnnxModel.run` takes them.
    public var tensors: [String: Tensor] {
        Dictionary(inputs.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    /// The requested output names, or nil for all.
    public var outputNames: [String]? { outputs?.map(\.name) }

    /// Whether output `name` should be sent as binary data: its own `binary_data` parameter, else
    /// the request's `binary_data_output`, else `defaultBinary` (true for raw binary requests).
    public func wantsBinary(_ name: String, defaultBinary: Bool = false) -> Bool {
        if case .bool(let b)? = outputs?.first(where: { $0.name == name })?.parameters["binary_data"] { return b }
        if case .bool(let b)? = parameters["binary_data_output"] { return b }
        return defaultBinary
    }
}

/// One `$response_output`.
public struct ResponseOutput: Sendable, Equatable {
    /// Output tensor name.
    public var name: String
    /// The output tensor.
    public var tensor: Tensor
    /// Output `parameters`; the encoder adds `binary_data_size` for binary outputs.
    public var parameters: [String: InferenceParameter]

    /// Creates an output.
    public init(name: String, tensor: Tensor, parameters: [String: InferenceParameter] = [:]) {
        self.name = name
        self.tensor = tensor
        self.parameters = parameters
    }
}

/// A V2 `$inference_response`.
public struct InferenceResponse: Sendable, Equatable {
    /// The model's name.
    public var modelName: String
    /// The model's version, if any.
    public var modelVersion: String?
    /// The request's id, echoed.
    public var id: String?
    /// Response-level parameters.
    public var parameters: [String: InferenceParameter]
    /// The outputs, in order.
    public var outputs: [ResponseOutput]

    /// Creates a response.
    public init(modelName: String, modelVersion: String? = nil, id: String? = nil,
                parameters: [String: InferenceParameter] = [:], outputs: [ResponseOutput]) {
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.id = id
        self.parameters = parameters
        self.outputs = outputs
    }
}

/// An encoded HTTP body plus, for the binary tensor extension, the JSON header's length (the
/// value of `Inference-Header-Content-Length`; nil when the body is pure JSON).
public struct EncodedBody: Sendable, Equatable {
    /// The body bytes.
    public var bytes: [UInt8]
    /// Length of the JSON part when binary tensors follow it.
    public var jsonLength: Int?
}
