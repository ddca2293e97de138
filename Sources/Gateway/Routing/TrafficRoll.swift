import Synchronization

/// Supplies the `0..<100` rolls that pick one of a route's weighted targets
/// (see ``Route/pick(roll:)``). Production uses ``system``; tests use ``seeded(_:)`` so the
/// split is reproducible.
public struct TrafficRoll: Sendable {
    /// Nil: roll with the event loop's own generator.
    private let source: (@Sendable () -> Int)?

    /// Wraps a function that returns a number in `0..<100` on every call, from any thread.
    public init(_ source: @escaping @Sendable () -> Int) {
        self.source = source
    }

    private init() {
        source = nil
    }

    /// Rolls from each event loop's generator (seeded from the system generator; no system
    /// call per request).
    public static var system: TrafficRoll { TrafficRoll() }

    /// A deterministic sequence of rolls (SplitMix64) that is the same for the same seed.
    public static func seeded(_ seed: UInt64) -> TrafficRoll {
        let generator = SeededGenerator(seed: seed)
        return TrafficRoll { generator.nextRoll() }
    }

    /// The next roll, in `0..<100` (off the data path: a fresh generator for ``system``).
    func next() -> Int {
        var random = TelemetryRandom()
        return next(using: &random)
    }

    /// The next roll, in `0..<100`, from `source` or else from the loop's `random`.
    func next(using random: inout TelemetryRandom) -> Int {
        guard let source else { return Int(random.next() % 100) }
        let roll = source()
        precondition((0..<100).contains(roll), "a TrafficRoll must return a number in 0..<100, got \(roll)")
        return roll
    }
}

/// SplitMix64 behind a lock, shared by all event loops (tests only need determinism, not speed).
private final class SeededGenerator: Sendable {
    private let state: Mutex<UInt64>

    init(seed: UInt64) {
        self.state = Mutex(seed)
    }

    func nextRoll() -> Int {
        let value = state.withLock { state -> UInt64 in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return Int(value % 100)
    }
}
