public import Gateway
import Logging
import Synchronization
import Store

/// Traffic policies in the revision manager: compiled on every reconcile pass into the routes it
/// publishes (gateway part) and into the pools of each service's revisions (worker part).
extension RevisionManager {
    /// Leases a ready worker of the revision without waiting, choosing by `hint` (another worker
    /// than a failed attempt's; the consistent-hash key).
    public func tryAcquire(_ revision: RevisionID, hint: LeaseHint) -> UpstreamLease? {
        pool(for: revision)?.tryAcquire(hint: hint)
    }

    /// Every stored policy compiled, keyed by `namespace/service`. A policy that no longer
    /// compiles (the admin API checks each one, so only an older format could) is logged and
    /// left out, so its service runs with the defaults.
    func compiledTrafficPolicies() -> [String: CompiledTrafficPolicy] {
        let stored: [TrafficPolicyResource]
        do {
            stored = try store.trafficPolicies()
        } catch {
            logger.error("reconcile: cannot read traffic policies", metadata: ["error": "\(error)"])
            return [:]
        }
        var compiled: [String: CompiledTrafficPolicy] = [:]
        for policy in stored {
            let key = "\(policy.meta.namespace)/\(policy.meta.name)"
            do {
                compiled[key] = try TrafficPolicyCompiler.compile(policy.spec, namespace: policy.meta.namespace)
            } catch {
                logger.error("traffic policy does not compile; using defaults",
                             metadata: ["policy": "\(key)", "field": "\(error.field)", "error": "\(error.message)"])
            }
        }
        return compiled
    }
}

extension RevisionPool {
    /// Applies the worker part of the service's traffic policy.
    func apply(_ policy: WorkerPolicy) {
        state.withLock { $0.apply(policy) }
    }
}
