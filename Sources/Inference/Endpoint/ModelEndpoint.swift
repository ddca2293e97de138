/// A response of the inference protocols: status, content type, extra headers and body.
public struct EndpointResponse: Sendable, Equatable {
    /// HTTP status code.
    public var status: Int
    /// Headers besides `content-length`, which the HTTP layer adds.
    public var headers: [String: String]
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [String: String] = ["content-type": "application/json"], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// KServe's error shape: `{"error": "<message>"}` with `status`.
    public static func error(_ status: Int, _ message: String) -> EndpointResponse {
        EndpointResponse(status: status, body: V2Codec.errorBody(message))
    }

    /// An error from the engine or the codecs, with the protocol's status for its kind.
    public static func error(_ error: InferenceError) -> EndpointResponse {
        .error(error.protocolStatus, error.message)
    }
}

/// A decoded inference call, ready to run; it knows how to encode its own answer.
public struct PreparedInference: Sendable {
    enum Dialect: Sendable {
        /// V2 `infer`; outputs in `binary` go as binary tensors.
        case v2(InferenceRequest, rawBinary: Bool)
        /// V1 `:predict`.
        case v1
    }

    let dialect: Dialect
    let endpoint: ModelEndpoint
    /// The input tensors by name.
    public let inputs: [String: Tensor]
    /// The outputs the caller wants, nil for all.
    public let outputNames: [String]?

    /// The common first dimension of the inputs (the batch), or nil when they do not share one.
    public var batchRows: Int? {
        let firsts = Set(inputs.values.map { $0.shape.first ?? -1 })
        guard firsts.count == 1, let rows = firsts.first, rows > 0 else { return nil }
        return rows
    }

    /// Encodes the model's outputs as the protocol the request came in.
    public func response(outputs: [String: Tensor]) -> EndpointResponse {
        let ordered = endpoint.model.outputs.map(\.name).filter { outputs[$0] != nil && (outputNames?.contains($0) ?? true) }
        switch dialect {
        case .v1:
            // V1 answers with the first output the caller asked for (the model's first by default).
            guard let first = ordered.first, let tensor = outputs[first] else {
                return .error(500, "the model produced no output")
            }
            return EndpointResponse(status: 200, body: V1Codec.encodePredictions(tensor))
        case .v2(let request, let rawBinary):
            let response = InferenceResponse(
                modelName: endpoint.name, modelVersion: endpoint.version, id: request.id,
                outputs: ordered.map { ResponseOutput(name: $0, tensor: outputs[$0]!) })
            let binary = Set(ordered.filter { request.wantsBinary($0, defaultBinary: rawBinary) })
            let encoded = V2Codec.encodeResponse(response, binaryOutputs: binary)
            guard let jsonLength = encoded.jsonLength else {
                return EndpointResponse(status: 200, body: encoded.bytes)
            }
            return EndpointResponse(
                status: 200,
                headers: ["content-type": "application/octet-stream", V2Codec.headerContentLength: String(jsonLength)],
                body: encoded.bytes)
        }
    }
}

/// The HTTP face of one loaded model: the Open Inference Protocol (V2) REST endpoints with the
/// Triton binary tensor extension, and KServe's V1 `:predict`. It decides what a request is and
/// answers everything but inference itself, which the caller runs (possibly batched with
/// others) and encodes with ``PreparedInference/response(outputs:)``.
public struct ModelEndpoint: Sendable {
    /// What to do with a request.
    public enum Action: Sendable {
        /// Answer at once (health, metadata, errors).
        case respond(EndpointResponse)
        /// Run the model, then answer with the prepared call's encoding.
        case infer(PreparedInference)
        /// Answer, then unload the model's instances (the repository extension's `unload`).
        case unload(EndpointResponse)
    }

    /// The name the model answers to.
    public let name: String
    /// Its version (the revision that serves it).
    public let version: String
    /// The loaded model.
    public let model: OnnxModel
    /// The server name in `GET /v2`.
    public let serverName: String
    /// The server version in `GET /v2`.
    public let serverVersion: String

    /// Creates the endpoint of a loaded model.
    public init(name: String, version: String, model: OnnxModel, serverName: String = "outpost", serverVersion: String = "1") {
        self.name = name
        self.version = version
        self.model = model
        self.serverName = serverName
        self.serverVersion = serverVersion
    }

    /// Routes a request. `inferenceHeaderLength` is the `Inference-Header-Content-Length` value.
    public func route(method: String, path: Substring, inferenceHeaderLength: String?, body: [UInt8]) -> Action {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard let first = parts.first else { return .respond(notFound(path)) }
        switch first {
        case "v2": return routeV2(method: method, parts: Array(parts.dropFirst()), inferenceHeaderLength: inferenceHeaderLength, body: body, path: path)
        case "v1": return routeV1(method: method, parts: Array(parts.dropFirst()), body: body, path: path)
        default: return .respond(notFound(path))
        }
    }

    // MARK: V2

    private func routeV2(method: String, parts: [Substring], inferenceHeaderLength: String?, body: [UInt8], path: Substring) -> Action {
        switch parts.first {
        case nil:
            // GET /v2: server metadata.
            guard method == "GET" else { return .respond(methodNotAllowed(method, path)) }
            return .respond(json { w in
                w.raw("{"); w.key("name"); w.string(serverName)
                w.comma(); w.key("version"); w.string(serverVersion)
                w.comma(); w.key("extensions"); w.raw("[\"binary_tensor_data\",\"model_repository\"]}")
            })
        case "health":
            guard method == "GET" else { return .respond(methodNotAllowed(method, path)) }
            switch parts.dropFirst().first {
            case "live": return .respond(json { $0.raw("{\"live\":true}") })
            case "ready": return .respond(json { $0.raw("{\"ready\":true}") })
            default: return .respond(notFound(path))
            }
        case "models" where parts.count == 1:
            guard method == "GET" else { return .respond(methodNotAllowed(method, path)) }
            return .respond(json { w in w.raw("{"); w.key("models"); w.raw("["); w.string(name); w.raw("]}") })
        case "models":
            return routeModel(method: method, parts: Array(parts.dropFirst()), inferenceHeaderLength: inferenceHeaderLength, body: body, path: path)
        case "repository":
            return routeRepository(method: method, parts: Array(parts.dropFirst()), path: path)
        default:
            return .respond(notFound(path))
        }
    }

    /// `/v2/models/{name}[/versions/{version}][/ready|/infer]`.
    private func routeModel(method: String, parts: [Substring], inferenceHeaderLength: String?, body: [UInt8], path: Substring) -> Action {
        guard let requested = parts.first else { return .respond(notFound(path)) }
        guard requested == name else { return .respond(unknownModel(String(requested))) }
        var rest = parts.dropFirst()
        if rest.first == "versions" {
            guard rest.count >= 2 else { return .respond(notFound(path)) }
            let asked = rest[rest.startIndex + 1]
            guard asked == version else {
                return .respond(.error(404, "Model \(name) has no version \(asked); the served version is \(version)"))
            }
            rest = rest.dropFirst(2)
        }
        switch rest.first {
        case nil:
            guard method == "GET" else { return .respond(methodNotAllowed(method, path)) }
            return .respond(EndpointResponse(status: 200, body: V2Codec.encodeModelMetadata(
                name: name, versions: [version], inputs: model.inputs, outputs: model.outputs)))
        case "ready" where rest.count == 1:
            guard method == "GET" else { return .respond(methodNotAllowed(method, path)) }
            return .respond(json { w in w.raw("{"); w.key("name"); w.string(name); w.raw(",\"ready\":true}") })
        case "infer" where rest.count == 1:
            guard method == "POST" else { return .respond(methodNotAllowed(method, path)) }
            return prepareV2(inferenceHeaderLength: inferenceHeaderLength, body: body)
        default:
            return .respond(notFound(path))
        }
    }

    private func prepareV2(inferenceHeaderLength: String?, body: [UInt8]) -> Action {
        do {
            let request: InferenceRequest
            var rawBinary = false
            switch inferenceHeaderLength.map({ Int($0.filter { $0 != " " }) }) {
            case nil:
                request = try V2Codec.decodeRequest(body: body)
            case .some(nil):
                return .respond(.error(400, "\(V2Codec.headerContentLength) must be a non-negative integer"))
            case .some(0?):
                guard model.inputs.count == 1, let input = model.inputs.first else {
                    return .respond(.error(400, "a raw binary request (\(V2Codec.headerContentLength): 0) needs a model with one input; this one has \(model.inputs.count)"))
                }
                request = try V2Codec.decodeRawBinaryRequest(body: body, input: input)
                rawBinary = true
            case .some(let length?):
                request = try V2Codec.decodeRequest(body: body, jsonLength: length)
            }
            if let names = request.outputNames, let bad = names.first(where: { name in !model.outputs.contains { $0.name == name } }) {
                return .respond(.error(400, "unknown output '\(bad)'; the model's outputs are \(model.outputs.map(\.name))"))
            }
            return .infer(PreparedInference(
                dialect: .v2(request, rawBinary: rawBinary), endpoint: self, inputs: request.tensors, outputNames: request.outputNames))
        } catch let error as InferenceError {
            return .respond(.error(error))
        } catch {
            return .respond(.error(400, "\(error)"))
        }
    }

    /// `/v2/repository/index` and `/v2/repository/models/{name}/load|unload`. The model behind
    /// this endpoint is loaded while it answers, so `load` has nothing left to do; `unload` asks
    /// the platform to free the model's instances after the answer (the next request loads it
    /// again and waits for it, as after scaling to zero).
    private func routeRepository(method: String, parts: [Substring], path: Substring) -> Action {
        guard method == "POST" else { return .respond(methodNotAllowed(method, path)) }
        if parts == ["index"] {
            return .respond(json { w in
                w.raw("[{"); w.key("name"); w.string(name)
                w.comma(); w.key("version"); w.string(version)
                w.raw(",\"state\":\"READY\"}]")
            })
        }
        guard parts.count == 3, parts[0] == "models", parts[2] == "load" || parts[2] == "unload" else {
            return .respond(notFound(path))
        }
        guard parts[1] == name else { return .respond(unknownModel(String(parts[1]))) }
        if parts[2] == "load" {
            return .respond(json { w in w.raw("{"); w.key("name"); w.string(name); w.raw(",\"load\":true}") })
        }
        return .unload(json { w in w.raw("{"); w.key("name"); w.string(name); w.raw(",\"unload\":true}") })
    }

    // MARK: V1

    /// `/v1/models`, `/v1/models/{name}` and `/v1/models/{name}:predict`.
    private func routeV1(method: String, parts: [Substring], body: [UInt8], path: Substring) -> Action {
        guard parts.first == "models" else { return .respond(notFound(path)) }
        if parts.count == 1 {
            guard method == "GET" else { return .respond(methodNotAllowed(method, path)) }
            return .respond(json { w in w.raw("{"); w.key("models"); w.raw("["); w.string(name); w.raw("]}") })
        }
        guard parts.count == 2 else { return .respond(notFound(path)) }
        let target = parts[1]
        if let colon = target.firstIndex(of: ":") {
            let requested = target[..<colon]
            let verb = target[target.index(after: colon)...]
            guard requested == name else { return .respond(unknownModel(String(requested))) }
            guard verb == "predict" else { return .respond(notFound(path)) }
            guard method == "POST" else { return .respond(methodNotAllowed(method, path)) }
            do {
                let inputs = try V1Codec.decodePredict(body: body, inputs: model.inputs)
                return .infer(PreparedInference(dialect: .v1, endpoint: self, inputs: inputs, outputNames: nil))
            } catch let error as InferenceError {
                return .respond(.error(error))
            } catch {
                return .respond(.error(400, "\(error)"))
            }
        }
        guard target == name else { return .respond(unknownModel(String(target))) }
        guard method == "GET" else { return .respond(methodNotAllowed(method, path)) }
        return .respond(json { w in w.raw("{"); w.key("name"); w.string(name); w.raw(",\"ready\":true}") })
    }

    // MARK: Answers

    private func json(_ write: (inout JSONWriter) -> Void) -> EndpointResponse {
        var writer = JSONWriter()
        write(&writer)
        return EndpointResponse(status: 200, body: writer.bytes)
    }

    private func unknownModel(_ requested: String) -> EndpointResponse {
        .error(404, "Model with name \(requested) does not exist.")
    }

    private func notFound(_ path: Substring) -> EndpointResponse {
        .error(404, "no inference endpoint at \(path); use /v2/models/\(name)/infer or /v1/models/\(name):predict")
    }

    private func methodNotAllowed(_ method: String, _ path: Substring) -> EndpointResponse {
        .error(405, "\(method) is not allowed on \(path)")
    }
}
