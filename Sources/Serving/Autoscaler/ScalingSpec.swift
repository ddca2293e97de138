/// Which load signal drives scaling (`autoscaling.knative.dev/metric`).
public enum ScalingMetric: String, Sendable, Hashable {
    /// In-flight requests per worker.
    case concurrency
    /// Requests per second per worker.
    case rps
}

/// Daemon-wide autoscaler settings: Knative's `config-autoscaler` keys and defaults.
public struct AutoscalerDefaults: Sendable, Hashable {
    /// `container-concurrency-target-default`.
    public var concurrencyTarget: Double = 100
    /// `requests-per-second-target-default`.
    public var rpsTarget: Double = 200
    /// `container-concurrency-target-percentage`, as a fraction.
    public var targetUtilization: Double = 0.7
    /// `target-burst-capacity`.
    public var targetBurstCapacity: Double = 200
    /// `stable-window`.
    public var stableWindow: Duration = .seconds(60)
    /// `panic-window-percentage`.
    public var panicWindowPercentage: Double = 10
    /// `panic-threshold-percentage`.
    public var panicThresholdPercentage: Double = 200
    /// `max-scale-up-rate`.
    public var maxScaleUpRate: Double = 1000
    /// `max-scale-down-rate`.
    public var maxScaleDownRate: Double = 2
    /// `scale-to-zero-grace-period`.
    public var scaleToZeroGracePeriod: Duration = .seconds(30)
    /// `scale-to-zero-pod-retention-period`.
    public var scaleToZeroRetention: Duration = .zero
    /// `scale-down-delay`.
    public var scaleDownDelay: Duration = .zero
    /// `initial-scale`.
    public var initialScale: Int = 1
    /// `max-scale` (0 = unlimited).
    public var maxScale: Int = 0
    /// `min-scale`.
    public var minScale: Int = 0
    /// `enable-scale-to-zero`.
    public var enableScaleToZero = true

    /// Knative's defaults.
    public init() {}
}

/// The autoscaling knobs of one revision: its annotations over the daemon's defaults, checked.
public struct ScalingSpec: Sendable, Hashable {
    public var metric: ScalingMetric
    /// Per-worker target before utilisation (`TotalValue` in Knative).
    public var totalTarget: Double
    public var targetUtilization: Double
    public var stableWindow: Duration
    public var panicWindowPercentage: Double
    public var panicThresholdPercentage: Double
    public var maxScaleUpRate: Double
    public var maxScaleDownRate: Double
    public var minScale: Int
    public var maxScale: Int
    public var initialScale: Int
    public var activationScale: Int
    public var scaleDownDelay: Duration
    public var scaleToZeroGracePeriod: Duration
    public var scaleToZeroRetention: Duration
    public var targetBurstCapacity: Double
    public var enableScaleToZero: Bool

    /// `max(0.01, total × utilisation)`: the load one worker should carry.
    public var target: Double { max(0.01, totalTarget * targetUtilization) }
    /// The panic window: stable × percentage, rounded to whole seconds, at least 1 s.
    public var panicWindow: Duration {
        let seconds = (Double(stableWindow.components.seconds) * panicWindowPercentage / 100).rounded()
        return .seconds(max(1, Int64(seconds)))
    }
    /// Panic threshold as a ratio (200 % → 2.0).
    public var panicThreshold: Double { panicThresholdPercentage / 100 }

    /// Resolves the knobs; throws `ScalingSpec.Problem` naming the bad annotation.
    public init(annotations: [String: String], containerConcurrency: Int, defaults: AutoscalerDefaults) throws(Problem) {
        var reader = AnnotationReader(annotations: annotations)
        metric = try reader.metric()
        let fallback = metric == .rps ? defaults.rpsTarget : (containerConcurrency > 0 ? Double(containerConcurrency) : defaults.concurrencyTarget)
        var total = try reader.double("target", range: 0.01 ... 1_000_000) ?? fallback
        if metric == .concurrency, containerConcurrency > 0 { total = min(total, Double(containerConcurrency)) }
        totalTarget = total
        let utilization = try reader.double("target-utilization-percentage", range: 1 ... 100).map { $0 / 100 }
        targetUtilization = utilization ?? defaults.targetUtilization
        stableWindow = try reader.duration("window", range: .seconds(6) ... .seconds(3600), wholeSeconds: true) ?? defaults.stableWindow
        panicWindowPercentage = try reader.double("panic-window-percentage", range: 1 ... 100) ?? defaults.panicWindowPercentage
        panicThresholdPercentage = try reader.double("panic-threshold-percentage", range: 110 ... 1000) ?? defaults.panicThresholdPercentage
        maxScaleUpRate = defaults.maxScaleUpRate
        maxScaleDownRate = defaults.maxScaleDownRate
        let minAnnotation = try reader.int("min-scale", range: 0 ... 10_000)
        let maxAnnotation = try reader.int("max-scale", range: 0 ... 10_000)
        minScale = minAnnotation ?? defaults.minScale
        maxScale = maxAnnotation ?? defaults.maxScale
        if maxScale > 0, minScale > maxScale {
            // Both annotated: the revision asks for the impossible. Otherwise one bound is the
            // daemon's default and, as Knative's scaler applies them (min first, then max),
            // the maximum wins.
            if minAnnotation != nil, maxAnnotation != nil {
                throw Problem(key: AnnotationReader.prefix + "min-scale", message: "min-scale (\(minScale)) must not exceed max-scale (\(maxScale))")
            }
            minScale = maxScale
        }
        initialScale = try reader.int("initial-scale", range: 0 ... 10_000) ?? defaults.initialScale
        activationScale = try reader.int("activation-scale", range: 1 ... 10_000) ?? 1
        scaleDownDelay = try reader.duration("scale-down-delay", range: .zero ... .seconds(3600), wholeSeconds: true) ?? defaults.scaleDownDelay
        scaleToZeroRetention = try reader.duration("scale-to-zero-pod-retention-period", range: .zero ... .seconds(3600), wholeSeconds: false) ?? defaults.scaleToZeroRetention
        targetBurstCapacity = try reader.double("target-burst-capacity", range: -1 ... 1_000_000) ?? defaults.targetBurstCapacity
        if targetBurstCapacity < 0, targetBurstCapacity != -1 {
            throw Problem(key: AnnotationReader.prefix + "target-burst-capacity", message: "target-burst-capacity must be -1 (always in the path), 0 or positive")
        }
        scaleToZeroGracePeriod = defaults.scaleToZeroGracePeriod
        enableScaleToZero = defaults.enableScaleToZero
    }

    /// A bad `autoscaling.knative.dev/*` annotation.
    public struct Problem: Error, Hashable, Sendable {
        /// The full annotation key.
        public var key: String
        /// What is wrong and what is allowed.
        public var message: String
    }
}

/// Reads `autoscaling.knative.dev/<key>` annotations with Knative's ranges.
struct AnnotationReader {
    static let prefix = "autoscaling.knative.dev/"
    let annotations: [String: String]

    /// Every key this release understands.
    static let knownKeys: Set<String> = [
        "metric", "target", "target-utilization-percentage", "window", "panic-window-percentage",
        "panic-threshold-percentage", "min-scale", "max-scale", "initial-scale", "activation-scale",
        "scale-down-delay", "scale-to-zero-pod-retention-period", "target-burst-capacity", "class",
    ]

    /// The annotation's value; Knative also reads the older camelCase spelling
    /// (`autoscaling.knative.dev/minScale`) when the current one is absent.
    func value(_ key: String) -> String? {
        annotations[Self.prefix + key] ?? (key.contains("-") ? annotations[Self.prefix + Self.camelCase(key)] : nil)
    }

    /// `min-scale` → `minScale`.
    static func camelCase(_ key: String) -> String {
        let words = key.split(separator: "-")
        return words.enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst() }.joined()
    }

    mutating func metric() throws(ScalingSpec.Problem) -> ScalingMetric {
        guard let text = value("metric") else { return .concurrency }
        guard let metric = ScalingMetric(rawValue: text) else {
            throw ScalingSpec.Problem(key: Self.prefix + "metric", message: "\(Self.prefix)metric must be concurrency or rps, got \"\(text)\"")
        }
        return metric
    }

    func double(_ key: String, range: ClosedRange<Double>) throws(ScalingSpec.Problem) -> Double? {
        guard let text = value(key) else { return nil }
        guard let number = Double(text), range.contains(number) else {
            throw ScalingSpec.Problem(key: Self.prefix + key, message: "\(Self.prefix)\(key) must be a number from \(format(range.lowerBound)) to \(format(range.upperBound)), got \"\(text)\"")
        }
        return number
    }

    func int(_ key: String, range: ClosedRange<Int>) throws(ScalingSpec.Problem) -> Int? {
        guard let text = value(key) else { return nil }
        guard let number = Int(text), range.contains(number) else {
            throw ScalingSpec.Problem(key: Self.prefix + key, message: "\(Self.prefix)\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
        }
        return number
    }

    func duration(_ key: String, range: ClosedRange<Duration>, wholeSeconds: Bool) throws(ScalingSpec.Problem) -> Duration? {
        guard let text = value(key) else { return nil }
        guard let duration = DurationText.parse(text), range.contains(duration),
              !wholeSeconds || duration.components.attoseconds == 0 else {
            let unit = wholeSeconds ? "whole seconds" : "a duration"
            throw ScalingSpec.Problem(
                key: Self.prefix + key,
                message: "\(Self.prefix)\(key) must be \(unit) from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound)) (e.g. 30s), got \"\(text)\"")
        }
        return duration
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

extension AutoscalerDefaults {
    /// Sets one daemon-wide knob by its Knative `config-autoscaler` key, for example
    /// `stable-window=30s` or `max-scale-down-rate=4`. Throws a message naming the key.
    public mutating func set(_ key: String, to text: String) throws(ScalingSpec.Problem) {
        func number(_ range: ClosedRange<Double>) throws(ScalingSpec.Problem) -> Double {
            guard let value = Double(text), range.contains(value) else {
                throw ScalingSpec.Problem(key: key, message: "\(key) must be a number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            }
            return value
        }
        func count() throws(ScalingSpec.Problem) -> Int {
            guard let value = Int(text), (0 ... 10_000).contains(value) else {
                throw ScalingSpec.Problem(key: key, message: "\(key) must be a whole number from 0 to 10000, got \"\(text)\"")
            }
            return value
        }
        func duration(_ range: ClosedRange<Duration>) throws(ScalingSpec.Problem) -> Duration {
            guard let value = DurationText.parse(text), range.contains(value) else {
                throw ScalingSpec.Problem(
                    key: key, message: "\(key) must be a duration from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound)), got \"\(text)\"")
            }
            return value
        }
        switch key {
        case "container-concurrency-target-default": concurrencyTarget = try number(0.01 ... 1_000_000)
        case "requests-per-second-target-default": rpsTarget = try number(0.01 ... 1_000_000)
        case "container-concurrency-target-percentage":
            // Knative takes 70 or 0.7 alike.
            let value = try number(0.01 ... 100)
            targetUtilization = value <= 1 ? value : value / 100
        case "target-burst-capacity":
            let value = try number(-1 ... 1_000_000)
            guard value >= 0 || value == -1 else { throw ScalingSpec.Problem(key: key, message: "\(key) must be -1, 0 or positive") }
            targetBurstCapacity = value
        case "stable-window": stableWindow = try duration(.seconds(6) ... .seconds(3600))
        case "panic-window-percentage": panicWindowPercentage = try number(1 ... 100)
        case "panic-threshold-percentage": panicThresholdPercentage = try number(110 ... 1000)
        case "max-scale-up-rate": maxScaleUpRate = try number(1.000001 ... 1_000_000)
        case "max-scale-down-rate": maxScaleDownRate = try number(1.000001 ... 1_000_000)
        case "scale-to-zero-grace-period": scaleToZeroGracePeriod = try duration(.milliseconds(1) ... .seconds(3600))
        case "scale-to-zero-pod-retention-period": scaleToZeroRetention = try duration(.zero ... .seconds(3600))
        case "scale-down-delay": scaleDownDelay = try duration(.zero ... .seconds(3600))
        case "initial-scale": initialScale = try count()
        case "min-scale": minScale = try count()
        case "max-scale": maxScale = try count()
        case "enable-scale-to-zero":
            guard let value = Bool(text) else { throw ScalingSpec.Problem(key: key, message: "\(key) must be true or false") }
            enableScaleToZero = value
        default:
            throw ScalingSpec.Problem(key: key, message: "unknown autoscaler setting \"\(key)\"; see `outpost serve --help`")
        }
    }

    /// What is wrong with the settings taken together, or nil: `min-scale` above a non-zero
    /// `max-scale` is a contradiction no revision could satisfy.
    public var problem: ScalingSpec.Problem? {
        guard maxScale > 0, minScale > maxScale else { return nil }
        return ScalingSpec.Problem(key: "min-scale", message: "min-scale (\(minScale)) must not exceed max-scale (\(maxScale))")
    }
}
