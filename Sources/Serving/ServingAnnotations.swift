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
            total += .nanoseconds(Int64((value * nanosPerUnit).rounded()))
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

/// The `autoscaling.knative.dev/*` annotations this release understands, checked the way
/// Knative checks them.
public enum ServingAnnotations {
    /// Stable window key.
    public static let window = "autoscaling.knative.dev/window"
    /// Knative's bounds for the stable window: 6 s to 1 h, whole seconds.
    public static let windowRange: ClosedRange<Duration> = .seconds(6) ... .seconds(3600)

    /// Returns a message saying what is wrong with an annotation, or nil when it is acceptable.
    /// Unknown keys are allowed (they are carried along, as Kubernetes does).
    public static func problem(key: String, value: String) -> String? {
        switch key {
        case window:
            guard let duration = DurationText.parse(value) else {
                return "\(key) must be a duration such as 60s or 1m30s, got \"\(value)\""
            }
            guard windowRange.contains(duration), duration.components.attoseconds == 0 else {
                return "\(key) must be whole seconds between 6s and 1h, got \"\(value)\""
            }
            return nil
        default:
            return nil
        }
    }

    /// The stable window of a revision: its annotation, else the daemon's default.
    public static func stableWindow(_ annotations: [String: String], default fallback: Duration) -> Duration {
        annotations[window].flatMap(DurationText.parse) ?? fallback
    }
}
