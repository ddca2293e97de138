/// Parses durations written the way Knative and Go write them: `500ms`, `30s`, `1m30s`, `1h`.
public enum DurationText {
    /// Parses a duration; nil when the text is not one. A bare number is not accepted.
    public static func parse(_ text: String) -> Duration? {
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        var total: Duration = .zero
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            let nanosPerUnit: Double
            switch unit {
            case "ns": nanosPerUnit = 1
            case "us", "µs": nanosPerUnit = 1_000
            case "ms": nanosPerUnit = 1_000_000
            case "s": nanosPerUnit = 1_000_000_000
            case "m": nanosPerUnit = 60_000_000_000
            case "h": nanosPerUnit = 3_600_000_000_000
            default: return nil
            }
            // Beyond Int64 nanoseconds (~292 years) the conversion would trap, and callers
            // count in Int64 nanoseconds: not a duration.
            let nanos = (value * nanosPerUnit).rounded()
            guard nanos.isFinite, nanos < Double(Int64.max) else { return nil }
            total += .nanoseconds(Int64(nanos))
            guard total < .nanoseconds(Int64.max) else { return nil }
        }
        return total
    }

    /// Formats a duration compactly (`1m30s`, `500ms`).
    public static func format(_ duration: Duration) -> String {
        let millis = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if millis % 1000 != 0 || millis == 0 { return "\(millis)ms" }
        var seconds = millis / 1000
        var text = ""
        if seconds >= 3600 { text += "\(seconds / 3600)h"; seconds %= 3600 }
        if seconds >= 60 { text += "\(seconds / 60)m"; seconds %= 60 }
        if seconds > 0 { text += "\(seconds)s" }
        return text
    }
}

/// The annotations a revision's template may carry that change how Outpost runs it.
public enum ServingAnnotations {
    /// On a service: `"true"` holds every revision at zero (`outpost service stop`).
    public static let stopped = "outpost.dev/stopped"

    /// Keep the last worker frozen (SIGSTOP) for this long after scale to zero, so the next
    /// request thaws it instead of starting a process. Off when absent or zero.
    public static let frozenRetention = "outpost.dev/frozen-retention-period"

    /// Returns (key, message) for the first annotation that is not acceptable, or nil.
    /// Unknown keys are allowed and carried along, as Kubernetes does.
    public static func problem(_ annotations: [String: String]) -> (key: String, message: String)? {
        do {
            _ = try ScalingSpec(annotations: annotations, containerConcurrency: 0, defaults: AutoscalerDefaults())
        } catch {
            return (error.key, error.message)
        }
        if let text = annotations[frozenRetention] {
            guard let duration = DurationText.parse(text), duration >= .zero, duration <= .seconds(86_400) else {
                return (frozenRetention, "\(frozenRetention) must be a duration from 0s to 24h (e.g. 10m), got \"\(text)\"")
            }
        }
        return nil
    }

    /// The frozen-tier retention of a revision, or nil when the warm tier is off.
    public static func frozenRetention(_ annotations: [String: String]) -> Duration? {
        guard let duration = annotations[frozenRetention].flatMap(DurationText.parse), duration > .zero else { return nil }
        return duration
    }
}
