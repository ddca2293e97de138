import Foundation
import Gateway
import Inference
import Logging
import Store
import Synchronization

extension RevisionPool {
    /// Loads one instance of the revision's model and reports the outcome like a process start:
    /// ready when loaded, a fatal `ModelLoadFailed` when the file cannot be loaded.
    func startModelWorker(_ workerID: UInt64, model spec: ModelSpec) async {
        let started = ContinuousClock.now
        let loaded: OnnxModel
        do {
            guard spec.modelFormat.lowercased() == "onnx" else {
                throw InferenceError(.invalidModel, "model format \(spec.modelFormat) is not supported; Outpost serves onnx")
            }
            loaded = try await runtime.models.model(key: "\(id)", path: spec.path)
        } catch {
            let message = (error as? InferenceError)?.message ?? "\(error)"
            log("cannot load model \(spec.storageUri): \(message)")
            let actions = state.withLock { state -> [PoolAction] in
                state.workers.removeValue(forKey: workerID)
                return state.recordFailure(PoolFailure(reason: "ModelLoadFailed", message: message), fatal: true, now: .now)
                    + state.dispatch(now: .now)
            }
            perform(actions)
            runtime.notify()
            return
        }
        let worker = ModelWorker(
            endpoint: ModelEndpoint(name: spec.name, version: id.name, model: loaded), batcher: spec.batcher,
            label: "\(id.name)-\(workerID)",
            unload: { [runtime, id, serviceName] in runtime.parkService(id.namespace, serviceName) })
        let actions = state.withLock { state -> [PoolAction]? in
            guard state.workers[workerID] != nil else { return nil }
            state.workers[workerID]!.model = worker
            if state.workers[workerID]!.machine.state == .terminating {
                return [.terminate(workerID: workerID, pid: nil)]
            }
            guard state.workers[workerID]!.machine.probeSucceeded() == .becameReady else { return [] }
            state.everReady = true
            state.failure = nil
            state.consecutiveFailures = 0
            return state.dispatch(now: .now)
        }
        guard let actions else {
            // The slot went away while the model loaded (the revision is being removed).
            worker.stop()
            return
        }
        let elapsed = ContinuousClock.now - started
        runtime.metrics?.coldStart(revision: id, duration: elapsed, kind: .started)
        log("model \(spec.name) loaded from \(spec.storageUri) in \(elapsed.formatted(.units(allowed: [.milliseconds], fractionalPart: .show(length: 1))))")
        runtime.logger.info("model instance loaded", metadata: ["revision": "\(id)", "worker": "\(workerID)"])
        perform(actions)
        runtime.notify()
    }

    /// Unloads a model instance: its thread finishes (nothing is in flight when the pool stops
    /// a worker) and the model is freed with its last instance.
    func stopModelWorker(_ workerID: UInt64) {
        let worker = state.withLock { state -> ModelWorker? in
            guard let slot = state.workers.removeValue(forKey: workerID) else { return nil }
            return slot.model
        }
        worker?.stop()
        perform(state.withLock { $0.dispatch(now: .now) })
        log("model instance \(workerID) unloaded")
        runtime.logger.info("model instance unloaded", metadata: ["revision": "\(id)", "worker": "\(workerID)"])
        runtime.notify()
    }
}
