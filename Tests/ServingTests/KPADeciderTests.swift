import Serving
import Testing

/// Replays metric timelines against the decider. Expected counts come from Knative's formula:
/// target = total × utilisation (100 × 0.7 = 70 by default); desired = ceil(observed / target),
/// clamped to [floor(ready / 2), ceil(1000 × ready)]; panic when ceil(panic / target) / ready ≥ 2.
@Suite struct KPADeciderTests {
    let t0 = ContinuousClock.now

    func spec(_ annotations: [String: String] = [:], concurrency: Int = 0, defaults: AutoscalerDefaults = AutoscalerDefaults()) throws -> ScalingSpec {
        try ScalingSpec(annotations: annotations, containerConcurrency: concurrency, defaults: defaults)
    }

    func at(_ seconds: Int) -> ContinuousClock.Instant { t0 + .seconds(seconds) }

    @Test func targetFollowsKnativesResolution() throws {
        #expect(try spec().target == 70)
        #expect(try spec(concurrency: 10).target == 7, "containerConcurrency is the total when set")
        #expect(try spec(["autoscaling.knative.dev/target": "50"], concurrency: 10).target == 7, "the smaller of target and containerConcurrency")
        #expect(try spec(["autoscaling.knative.dev/target": "10", "autoscaling.knative.dev/target-utilization-percentage": "50"]).target == 5)
        #expect(try spec(["autoscaling.knative.dev/metric": "rps"]).target == 140)
        #expect(try spec(["autoscaling.knative.dev/window": "20s"]).panicWindow == .seconds(2))
        #expect(try spec().panicWindow == .seconds(6))
    }

    @Test(arguments: [
        ("autoscaling.knative.dev/window", "5s"), ("autoscaling.knative.dev/metric", "cpu"),
        ("autoscaling.knative.dev/target-utilization-percentage", "0"), ("autoscaling.knative.dev/panic-threshold-percentage", "100"),
        ("autoscaling.knative.dev/min-scale", "-1"), ("autoscaling.knative.dev/target-burst-capacity", "-2"),
        ("autoscaling.knative.dev/scale-down-delay", "1.5s"),
    ])
    func badAnnotationsAreNamed(key: String, value: String) {
        #expect { try spec([key: value]) } throws: { ($0 as? ScalingSpec.Problem)?.key == key }
    }

    @Test func minAboveMaxIsAnErrorOnlyWhenTheRevisionSetsBoth() throws {
        #expect { try spec(["autoscaling.knative.dev/min-scale": "3", "autoscaling.knative.dev/max-scale": "2"]) } throws: {
            ($0 as? ScalingSpec.Problem)?.key == "autoscaling.knative.dev/min-scale"
        }
        var defaults = AutoscalerDefaults()
        defaults.minScale = 5
        // One bound from the daemon's defaults: the maximum wins, as in Knative's scaler.
        let capped = try spec(["autoscaling.knative.dev/max-scale": "3"], defaults: defaults)
        #expect(capped.minScale == 3 && capped.maxScale == 3)
        defaults.minScale = 0
        defaults.maxScale = 2
        let clamped = try spec(["autoscaling.knative.dev/min-scale": "4"], defaults: defaults)
        #expect(clamped.minScale == 2 && clamped.maxScale == 2)
    }

    @Test func olderCamelCaseKeysAreReadWhenTheCurrentOnesAreAbsent() throws {
        let old = try spec(["autoscaling.knative.dev/minScale": "2", "autoscaling.knative.dev/maxScale": "5", "autoscaling.knative.dev/initialScale": "3"])
        #expect(old.minScale == 2 && old.maxScale == 5 && old.initialScale == 3)
        #expect(try spec(["autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/minScale": "2"]).minScale == 1)
    }

    @Test func daemonDefaultsAreBoundedAndConsistent() throws {
        var defaults = AutoscalerDefaults()
        #expect(throws: ScalingSpec.Problem.self) { try defaults.set("initial-scale", to: "9223372036854775807") }
        try defaults.set("min-scale", to: "3")
        try defaults.set("max-scale", to: "2")
        #expect(defaults.problem?.key == "min-scale")
        try defaults.set("max-scale", to: "0")
        #expect(defaults.problem == nil)
    }

    @Test func burstScalesUpByTheFormula() throws {
        var decider = KPADecider(spec: try spec(["autoscaling.knative.dev/target": "10"]), now: t0)  // target 7
        // 40 concurrent requests on 1 worker: ceil(40/7) = 6 desired; 6/1 ≥ 2 → panic.
        let decision = decider.scale(now: at(2), readyPods: 1, stableValue: 40, panicValue: 40)
        #expect(decision.desiredPods == 6)
        #expect(decision.inPanic)
    }

    @Test func panicNeverScalesDownAndEndsAfterAStableWindow() throws {
        var decider = KPADecider(spec: try spec(["autoscaling.knative.dev/target": "10", "autoscaling.knative.dev/window": "6s"]), now: t0)
        #expect(decider.scale(now: at(0), readyPods: 1, stableValue: 40, panicValue: 40).desiredPods == 6)
        // Load drops while panicking: the count holds.
        let holding = decider.scale(now: at(2), readyPods: 6, stableValue: 10, panicValue: 7)
        #expect(holding.inPanic)
        #expect(holding.desiredPods == 6)
        // Still within a stable window (6 s) of the last over-threshold tick.
        #expect(decider.scale(now: at(6), readyPods: 6, stableValue: 7, panicValue: 7).desiredPods == 6)
        // More than a window later, panic ends and the stable value rules (rate-limited: ≥ floor(6/2) = 3).
        let after = decider.scale(now: at(7), readyPods: 6, stableValue: 7, panicValue: 7)
        #expect(!after.inPanic)
        #expect(after.desiredPods == 3)
    }

    @Test func scaleDownIsRateLimitedByHalf() throws {
        var decider = KPADecider(spec: try spec(), now: t0)
        let decision = decider.scale(now: at(0), readyPods: 10, stableValue: 0, panicValue: 0)
        #expect(decision.desiredPods == 5, "max-scale-down-rate 2: floor(10/2)")
        #expect(decider.scale(now: at(2), readyPods: 5, stableValue: 0, panicValue: 0).desiredPods == 2)
        #expect(decider.scale(now: at(4), readyPods: 2, stableValue: 0, panicValue: 0).desiredPods == 1)
        #expect(decider.scale(now: at(6), readyPods: 1, stableValue: 0, panicValue: 0).desiredPods == 0)
        let unreachable = decider.scale(now: at(8), readyPods: 10, stableValue: 0, panicValue: 0, reachable: false)
        #expect(unreachable.desiredPods == 0, "a revision without traffic is not rate-limited")
    }

    @Test func scaleDownDelayKeepsTheMaximumOfTheDelayWindow() throws {
        var decider = KPADecider(spec: try spec(["autoscaling.knative.dev/scale-down-delay": "10s", "autoscaling.knative.dev/target": "10"]), now: t0)
        #expect(decider.scale(now: at(0), readyPods: 3, stableValue: 21, panicValue: 21).desiredPods == 3)
        #expect(decider.scale(now: at(4), readyPods: 3, stableValue: 7, panicValue: 7).desiredPods == 3, "held by the delay")
        #expect(decider.scale(now: at(10), readyPods: 3, stableValue: 7, panicValue: 7).desiredPods == 1, "the 3 has left the 10 s window")
    }

    @Test func activationScaleRaisesNonZeroCounts() throws {
        var decider = KPADecider(spec: try spec(["autoscaling.knative.dev/activation-scale": "3"]), now: t0)
        #expect(decider.scale(now: at(0), readyPods: 0, stableValue: 1, panicValue: 1).desiredPods == 3)
        #expect(decider.scale(now: at(70), readyPods: 3, stableValue: 0, panicValue: 0).desiredPods == 1, "zero is not raised; rate limit floor(3/2) = 1")
    }

    @Test func excessBurstCapacityFollowsTheFormula() throws {
        var decider = KPADecider(spec: try spec(), now: t0)
        // 2 ready × 100 − 200 − 30 = −30: the queue stays in the path.
        #expect(decider.scale(now: at(0), readyPods: 2, stableValue: 30, panicValue: 30).excessBurstCapacity == -30)
        var always = KPADecider(spec: try spec(["autoscaling.knative.dev/target-burst-capacity": "-1"]), now: t0)
        #expect(always.scale(now: at(0), readyPods: 5, stableValue: 0, panicValue: 0).excessBurstCapacity == -1)
    }

    @Test func daemonWideSettingsUseKnativesKeys() throws {
        var defaults = AutoscalerDefaults()
        try defaults.set("container-concurrency-target-percentage", to: "50")
        try defaults.set("container-concurrency-target-default", to: "20")
        try defaults.set("stable-window", to: "30s")
        try defaults.set("max-scale-down-rate", to: "4")
        #expect(try spec(defaults: defaults).target == 10)
        #expect(try spec(defaults: defaults).panicWindow == .seconds(3))
        var decider = KPADecider(spec: try spec(defaults: defaults), now: t0)
        #expect(decider.scale(now: at(0), readyPods: 8, stableValue: 0, panicValue: 0).desiredPods == 2, "floor(8/4)")
        #expect(throws: ScalingSpec.Problem.self) { try defaults.set("stable-window", to: "1s") }
        #expect(throws: ScalingSpec.Problem.self) { try defaults.set("no-such-key", to: "1") }
        try defaults.set("container-concurrency-target-percentage", to: "0.7")
        #expect(defaults.targetUtilization == 0.7, "a fraction is taken as is")
    }

    @Test func restartWithSeveralReadyWorkersStartsInPanic() throws {
        let decider = KPADecider(spec: try spec(), now: t0, readyPods: 4)
        #expect(decider.panicTime == t0)
    }
}

@Suite struct ScaleBoundsTests {
    let t0 = ContinuousClock.now

    func bounds(_ annotations: [String: String] = [:], reached: Bool = true, grace: Duration = .seconds(30)) throws -> ScaleBounds {
        var defaults = AutoscalerDefaults()
        defaults.scaleToZeroGracePeriod = grace
        return ScaleBounds(spec: try ScalingSpec(annotations: annotations, containerConcurrency: 0, defaults: defaults), initialScaleReached: reached)
    }

    @Test func gracePeriodHoldsTheLastWorker() throws {
        var b = try bounds(grace: .seconds(30))
        #expect(b.apply(desired: 0, readyPods: 1, now: t0) == 1)
        #expect(b.apply(desired: 0, readyPods: 1, now: t0 + .seconds(29)) == 1)
        #expect(b.apply(desired: 0, readyPods: 1, now: t0 + .seconds(30)) == 0)
        // Demand resets the clock.
        #expect(b.apply(desired: 1, readyPods: 0, now: t0 + .seconds(31)) == 1)
        #expect(b.zeroSince == nil)
    }

    @Test func retentionLongerThanGraceWins() throws {
        var b = try bounds(["autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1m"], grace: .seconds(30))
        #expect(b.apply(desired: 0, readyPods: 1, now: t0) == 1)
        #expect(b.apply(desired: 0, readyPods: 1, now: t0 + .seconds(45)) == 1)
        #expect(b.apply(desired: 0, readyPods: 1, now: t0 + .seconds(60)) == 0)
    }

    @Test func minAndMaxScaleBound() throws {
        var b = try bounds(["autoscaling.knative.dev/min-scale": "2", "autoscaling.knative.dev/max-scale": "4"])
        #expect(b.apply(desired: 0, readyPods: 2, now: t0) == 2)
        #expect(b.apply(desired: 9, readyPods: 2, now: t0) == 4)
    }

    @Test func initialScaleAppliesUntilFirstReached() throws {
        var b = try bounds(["autoscaling.knative.dev/initial-scale": "3"], reached: false)
        #expect(b.apply(desired: 0, readyPods: 0, now: t0) == 3)
        #expect(b.apply(desired: 0, readyPods: 3, now: t0) == 1, "reached: the decision rules, grace holds one")
    }
}
