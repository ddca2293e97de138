#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// A declared model input or output, as the V2 model metadata endpoint reports it.
public struct TensorMetadata: Sendable, Equatable {
    /// Tensor name.
    public let name: String
    /// V2 datatype (`FP32`, `INT64`, `BYTES`, …).
    public let datatype: TensorDataType
    /// Dimensions; -1 marks a dynamic dimension (for example the batch).
    public let shape: [Int]

    /// Creates a metadata entry.
    public init(name: String, datatype: TensorDataType, shape: [Int]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
    }
}

/// A loaded, optimised ONNX model. Immutable and `Sendable`: share one instance across tasks and
/// run it through `run(_:outputs:)` (which borrows a pooled session under a lock) or through
/// sessions made with `makeSession()`, one per concurrent caller.
public final class OnnxModel: Sendable {
    /// The model's inputs.
    public let inputs: [TensorMetadata]
    /// The model's outputs.
    public let outputs: [TensorMetadata]
    /// Imported opsets by domain (`""` is the default ONNX domain).
    public let opsets: [String: Int]
    /// Number of executable steps after optimisation (for diagnostics and tests).
    public let stepCount: Int
    /// True when row `i` (along the first dimension) of every output depends only on row `i` of
    /// the inputs, so calls can be joined along that dimension into one run and split again.
    /// False for a Softmax over the rows, a Reshape across them and other operators that mix
    /// rows, and for any graph the load-time check cannot prove (see `RowIndependence`).
    public let rowsAreIndependent: Bool

    let plan: ExecutionPlan
    private let pool = Mutex<[InferenceSession]>([])
    private static let poolLimit = 8

    /// Loads a model file; external tensor data is read relative to the file's folder.
    public static func load(path: String) throws -> OnnxModel {
        let (data, problem) = ModelFile.read(path)
        guard let bytes = data else {
            throw InferenceError(.modelNotReadable, "cannot read model file \(path): \(problem ?? "")")
        }
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        return try OnnxModel(bytes: Array(bytes), baseDirectory: dir.isEmpty ? "/" : dir)
    }

    /// Loads a model from protobuf bytes. `baseDirectory` resolves external data (nil: not allowed).
    public convenience init(bytes: [UInt8], baseDirectory: String? = nil) throws {
        let decoded = try GraphDecoder(tensors: TensorDecoder(baseDirectory: baseDirectory)).decode(Data(bytes))
        // Validate every node before rewriting, so unsupported operators are reported as written.
        for n in decoded.nodes {
            try OpRegistry.checkOpset(of: n, imported: decoded.opsets)
            _ = try OpRegistry.kernel(for: n, constants: decoded.constants)
        }
        var optimizer = Optimizer(graph: decoded)
        let graph = try optimizer.run()
        try self.init(graph: graph)
    }

    init(graph: Graph) throws {
        plan = try ExecutionPlan(graph)
        stepCount = plan.steps.count
        rowsAreIndependent = RowIndependence.holds(for: graph)
        opsets = graph.opsets
        inputs = graph.inputs.map { io in
            TensorMetadata(name: io.name, datatype: io.type?.protocolType ?? .float32, shape: io.shape ?? [-1])
        }
        outputs = graph.outputs.map { io in
            TensorMetadata(name: io.name, datatype: io.type?.protocolType ?? .float32, shape: io.shape ?? [-1])
        }
    }

    /// A new session with its own buffers. Not thread-safe: use it from one task at a time.
    public func makeSession() -> InferenceSession {
        InferenceSession(plan: plan)
    }

    /// Runs the model on a pooled session (safe to call concurrently; each concurrent call uses
    /// its own session and buffers).
    public func run(_ inputs: [String: Tensor], outputs: [String]? = nil) throws -> [String: Tensor] {
        let session = pool.withLock { sessions -> Session in
            Session(sessions.popLast() ?? makeSession())
        }
        defer {
            pool.withLock { sessions in
                if sessions.count < Self.poolLimit { sessions.append(session.take()) }
            }
        }
        return try session.value.run(inputs, outputs: outputs)
    }

    /// Moves a session in and out of the pool's lock.
    private final class Session: @unchecked Sendable {
        // Only one caller holds a given Session box; the lock hands it over.
        let value: InferenceSession
        init(_ value: InferenceSession) { self.value = value }
        func take() -> InferenceSession { value }
    }
}
