import Foundation
import Inference
import Synchronization

/// Loads model files off the cooperative thread pool and shares each loaded model between the
/// instances of its revision. The cache holds models weakly: when a revision's last instance is
/// unloaded (scale to zero), the weights are freed.
final class ModelLoader: Sendable {
    private final class WeakModel: @unchecked Sendable {
        weak var model: OnnxModel?
        init(_ model: OnnxModel) { self.model = model }
    }

    private let loaded = Mutex<[String: WeakModel]>([:])

    /// Model instances run one OpenBLAS thread each, unless `OPENBLAS_NUM_THREADS` says
    /// otherwise: parallelism comes from instances and concurrent requests, and OpenBLAS's own
    /// threads spin between calls, burning the cores the gateway needs.
    init() {
        if ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil {
            BLASRuntime.setThreadCount(1)
        }
    }

    /// The model at `path`, loaded now unless an instance of the same revision holds it.
    /// `key` names the revision (two revisions never share a cache entry).
    func model(key: String, path: String) async throws -> OnnxModel {
        if let model = loaded.withLock({ $0[key]?.model }) { return model }
        let model = try await Self.loadOnOwnThread(path: path)
        loaded.withLock { cache in
            cache = cache.filter { $0.value.model != nil }
            cache[key] = WeakModel(model)
        }
        return model
    }

    /// Parsing and optimising a large model can take a while: a thread of its own keeps the
    /// cooperative pool free for the requests that wait for it.
    private static func loadOnOwnThread(path: String) async throws -> OnnxModel {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                Thread.current.name = "model-load"
                continuation.resume(with: Result { try OnnxModel.load(path: path) })
            }
            thread.start()
        }
    }
}
