import Gateway
import Store
import Synchronization

/// A revision the manager runs: its pool plus the autoscaler's per-revision state.
final class ManagedRevision: Sendable {
    let pool: RevisionPool
    let scaling: ScalingSpec
    let frozenRetention: Duration?
    private let autoscaler: Mutex<AutoscalerState>

    struct AutoscalerState {
        var decider: KPADecider
        var bounds: ScaleBounds
        var desired: Int
        var inPanic = false
        var excessBurstCapacity = 0
        var reason: String?
    }

    /// What the last autoscaling step decided, for status and metrics.
    struct Outcome: Hashable, Sendable {
        var desired: Int
        var inPanic: Bool
        var excessBurstCapacity: Int
        var reason: String?
    }

    init(pool: RevisionPool, scaling: ScalingSpec, frozenRetention: Duration?, restoredAtZero: Bool) {
        self.pool = pool
        self.scaling = scaling
        self.frozenRetention = frozenRetention
        let now = ContinuousClock.now
        autoscaler = Mutex(AutoscalerState(
            decider: KPADecider(spec: scaling, now: now),
            bounds: ScaleBounds(spec: scaling, initialScaleReached: restoredAtZero),
            desired: pool.snapshot().desired))
    }

    /// One autoscaling step: metrics → decider → bounds → pool. `reachable` says whether any
    /// route sends traffic to the revision. Returns when the revision wants another look before
    /// the next tick: the moment its stable window of idleness or its grace period ends, so
    /// that scale to zero happens at window + grace rather than at the next 2-second tick.
    @discardableResult
    func autoscale(now: ContinuousClock.Instant, reachable: Bool) -> Duration? {
        let snapshot = pool.snapshot()
        guard !snapshot.failedPermanently else { return nil }
        if snapshot.held || snapshot.parked {
            let why = snapshot.held ? "the service is stopped" : "the model was unloaded through the repository API"
            autoscaler.withLock { state in
                if state.desired != 0 { state.reason = "scaled from \(state.desired) to 0: \(why)" }
                state.desired = 0
                state.inPanic = false
            }
            return nil
        }
        let load = pool.load(now: now, scaling: scaling)
        var recheck: Duration?
        let want = autoscaler.withLock { state -> Int? in
            defer {
                if state.desired > 0, load.idle > .zero {
                    if load.idle < scaling.stableWindow {
                        // One bucket past the window, so the stable average has reached zero.
                        recheck = scaling.stableWindow - load.idle + .seconds(1)
                    } else if let since = state.bounds.zeroSince {
                        let hold = max(scaling.scaleToZeroGracePeriod, scaling.scaleToZeroRetention)
                        recheck = max(.milliseconds(10), hold - (now - since))
                    }
                }
            }
            var decision = state.decider.scale(
                now: now, readyPods: snapshot.ready, stableValue: load.stable, panicValue: load.panic, reachable: reachable)
            // Zero only after no traffic for a whole stable window (a young meter averages too
            // little history to say so).
            if decision.desiredPods == 0, snapshot.ready > 0, load.idle < scaling.stableWindow { decision.desiredPods = 1 }
            var want = state.bounds.apply(desired: decision.desiredPods, readyPods: snapshot.ready, now: now)
            if snapshot.queued > 0 { want = max(want, 1) }
            state.inPanic = decision.inPanic
            state.excessBurstCapacity = decision.excessBurstCapacity
            guard want != state.desired else { return nil }
            let unit = scaling.metric == .rps ? "rps" : "concurrency"
            let observed = decision.inPanic ? load.panic : load.stable
            let why: String
            if want == 0 {
                why = "no traffic for the stable window and the grace period"
            } else if want == decision.desiredPods {
                why = "\(decision.inPanic ? "panic: " : "")\(unit) \(Self.format(observed)) over target \(Self.format(scaling.target)) per worker"
            } else if snapshot.queued > 0 && decision.desiredPods == 0 {
                why = "requests waiting at zero"
            } else {
                why = "bounds (min-scale \(scaling.minScale), max-scale \(scaling.maxScale), initial-scale \(scaling.initialScale), grace period)"
            }
            state.reason = "scaled from \(state.desired) to \(want): \(why)"
            state.desired = want
            return want
        }
        if let want { pool.scale(to: want) }
        if let frozenRetention { pool.expireFrozen(retention: frozenRetention) }
        return recheck
    }

    /// Keeps the autoscaler's idea of the count in step when the pool changed it (a request at
    /// zero starts a worker without waiting for a tick).
    func syncDesired() {
        let desired = pool.snapshot().desired
        autoscaler.withLock { state in
            if desired > state.desired {
                state.reason = "scaled from \(state.desired) to \(desired): a request arrived at zero"
                state.desired = desired
            }
        }
    }

    var outcome: Outcome {
        autoscaler.withLock { Outcome(desired: $0.desired, inPanic: $0.inPanic, excessBurstCapacity: $0.excessBurstCapacity, reason: $0.reason) }
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
