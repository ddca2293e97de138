/// One autoscaling decision.
public struct ScaleDecision: Hashable, Sendable {
    /// Workers the metrics ask for, after rate limits, panic rules and scale-down delay
    /// (before min/max bounds and the scale-to-zero grace period).
    public var desiredPods: Int
    /// Knative's excess burst capacity; negative keeps the activator (the queue) in the path.
    public var excessBurstCapacity: Int
    /// Whether the decider is in panic mode.
    public var inPanic: Bool
}

/// Knative's KPA decider (`pkg/autoscaler/scaling/autoscaler.go`, `Scale`) as a value: metric
/// averages in, desired worker count out. Time is a parameter; nothing here reads a clock.
public struct KPADecider: Sendable {
    /// The revision's knobs.
    public var spec: ScalingSpec
    /// When panic mode was last entered or extended; nil when not panicking.
    public private(set) var panicTime: ContinuousClock.Instant?
    private var maxPanicPods = 0
    /// (time, desired) pairs within the scale-down delay, for its max-over-window rule.
    private var delayHistory: [(ContinuousClock.Instant, Int)] = []

    /// A decider for a revision; with more than one ready worker it starts in panic mode, as
    /// Knative does, so that lost metric history cannot cause a sudden scale-down.
    public init(spec: ScalingSpec, now: ContinuousClock.Instant, readyPods: Int = 0) {
        self.spec = spec
        if readyPods > 1 {
            panicTime = now
            maxPanicPods = readyPods
        }
    }

    /// Decides from the stable- and panic-window averages of the metric (concurrency or rps,
    /// summed over the revision's workers). `reachable` is false for a revision that takes no
    /// traffic, which may then scale down without the rate limit.
    public mutating func scale(
        now: ContinuousClock.Instant, readyPods readyPodCount: Int, stableValue: Double, panicValue: Double,
        reachable: Bool = true
    ) -> ScaleDecision {
        let readyPods = Double(max(1, readyPodCount))
        let maxScaleUp = Int((spec.maxScaleUpRate * readyPods).rounded(.up))
        let maxScaleDown = reachable ? Int((readyPods / spec.maxScaleDownRate).rounded(.down)) : 0
        let stablePods = Int((stableValue / spec.target).rounded(.up))
        let panicPods = Int((panicValue / spec.target).rounded(.up))
        var desiredStable = min(max(stablePods, maxScaleDown), maxScaleUp)
        var desiredPanic = min(max(panicPods, maxScaleDown), maxScaleUp)
        if spec.activationScale > 1 {
            // Only where the metric itself asks for workers (not where the rate limit keeps them).
            if stablePods > 0 { desiredStable = max(desiredStable, spec.activationScale) }
            if panicPods > 0 { desiredPanic = max(desiredPanic, spec.activationScale) }
        }

        let overThreshold = Double(panicPods) / readyPods >= spec.panicThreshold
        if overThreshold {
            panicTime = now  // enter or extend
        } else if let since = panicTime, since + spec.stableWindow < now {
            panicTime = nil
            maxPanicPods = 0
        }

        var desired: Int
        if panicTime != nil {
            desired = max(desiredPanic, desiredStable)
            // No scale-down while panicking.
            maxPanicPods = max(maxPanicPods, desired)
            desired = maxPanicPods
        } else {
            desired = desiredStable
        }

        if spec.scaleDownDelay > .zero {
            delayHistory.removeAll { $0.0 + spec.scaleDownDelay <= now }
            delayHistory.append((now, desired))
            desired = delayHistory.map(\.1).max() ?? desired
        }

        let burst: Int
        if spec.targetBurstCapacity == 0 {
            burst = 0
        } else if spec.targetBurstCapacity < 0 {
            burst = -1
        } else {
            burst = Int((Double(readyPodCount) * spec.totalTarget - spec.targetBurstCapacity - panicValue).rounded(.down))
        }
        return ScaleDecision(desiredPods: desired, excessBurstCapacity: burst, inPanic: panicTime != nil)
    }
}

/// The bounds Knative's PodAutoscaler reconciler puts around a decision: min/max scale, initial
/// scale until first reached, and the scale-to-zero grace and retention periods.
public struct ScaleBounds: Sendable {
    /// The revision's knobs.
    public var spec: ScalingSpec
    /// Whether the revision has once had `initialScale` ready workers.
    public private(set) var initialScaleReached: Bool
    /// When the decider first asked for zero in the current idle stretch.
    public private(set) var zeroSince: ContinuousClock.Instant?

    /// Bounds for a revision; `initialScaleReached` is true for one restored at zero.
    public init(spec: ScalingSpec, initialScaleReached: Bool) {
        self.spec = spec
        self.initialScaleReached = initialScaleReached || spec.initialScale == 0
    }

    /// The worker count to run, given the decider's wish and the workers now ready.
    public mutating func apply(desired wish: Int, readyPods: Int, now: ContinuousClock.Instant) -> Int {
        if readyPods >= spec.initialScale { initialScaleReached = true }
        var want = wish
        if !initialScaleReached { want = max(want, spec.initialScale) }
        if spec.minScale > 0 { want = max(want, spec.minScale) }
        if spec.maxScale > 0 { want = min(want, spec.maxScale) }
        guard want == 0 else {
            zeroSince = nil
            return want
        }
        guard spec.enableScaleToZero else { return 1 }
        let since = zeroSince ?? now
        zeroSince = since
        // The last worker stays for the grace period (and at least the retention period) after
        // the decision to go to zero.
        let hold = max(spec.scaleToZeroGracePeriod, spec.scaleToZeroRetention)
        return readyPods > 0 && now - since < hold ? 1 : 0
    }
}
