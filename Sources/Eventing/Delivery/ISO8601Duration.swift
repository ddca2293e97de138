/// A non-negative ISO-8601 duration as Knative delivery fields use it (`PT0.2S`, `PT30S`, `P1D`).
///
/// Accepted forms: `P[nW][nD][T[nH][nM][n[.f]S]]`, designators in that order, each at most
/// once, at least one component, case-insensitive, `.` or `,` as decimal separator.
///
/// Deliberately rejected:
/// - years and months, because their length depends on the calendar date and a retry
///   delay must be a fixed amount of time;
/// - negative durations, because every delivery field is a delay or an upper bound;
/// - fractions on anything but seconds, which keeps the value exact in nanoseconds;
/// - more than nine fractional digits (nanosecond resolution is what we store).
///
/// The value is held as whole nanoseconds, so equality is by length of time:
/// `PT60S == PT1M`, and `P1W` encodes back as `P7D`.
public struct ISO8601Duration: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// Total length in nanoseconds; never negative.
    public let nanoseconds: Int64

    /// The zero duration, `PT0S`.
    public static let zero = ISO8601Duration(uncheckedNanoseconds: 0)

    /// Creates a duration of `nanoseconds`, or `nil` when the value is negative.
    public init?(nanoseconds: Int64) {
        guard nanoseconds >= 0 else { return nil }
        self.nanoseconds = nanoseconds
    }

    /// Creates a duration from a Swift `Duration`, truncating below one nanosecond.
    ///
    /// - Throws: when the duration is negative or longer than about 292 years.
    public init(_ duration: Duration, path: String = "duration") throws(DeliverySpecError) {
        guard let nanos = duration.totalNanoseconds else {
            throw DeliverySpecError(path: path, message: "\(duration) is too long; use at most \(Self.maximumDays) days")
        }
        guard nanos >= 0 else {
            throw DeliverySpecError(path: path, message: "\(duration) is negative; durations must be zero or more, e.g. PT1S")
        }
        self.nanoseconds = nanos
    }

    /// Parses an ISO-8601 duration string such as `PT0.2S`.
    ///
    /// - Parameter path: the field path used in the error, e.g. `delivery.backoffDelay`.
    public init(parsing text: String, path: String = "duration") throws(DeliverySpecError) {
        var parser = ISO8601DurationParser(text: text, path: path)
        self.nanoseconds = try parser.parse()
    }

    init(uncheckedNanoseconds: Int64) {
        self.nanoseconds = uncheckedNanoseconds
    }

    /// The length in seconds, for arithmetic on persisted `Double` timestamps.
    public var seconds: Double { Double(nanoseconds) / 1_000_000_000 }

    /// The length as a Swift `Duration`.
    public var duration: Duration { .nanoseconds(nanoseconds) }

    /// Canonical form: weeks folded into days, largest units first, trailing zeros trimmed.
    public var description: String {
        guard nanoseconds > 0 else { return "PT0S" }
        let nanosPerSecond: Int64 = 1_000_000_000
        let totalSeconds = nanoseconds / nanosPerSecond
        let fraction = nanoseconds % nanosPerSecond
        let days = totalSeconds / 86_400
        let hours = totalSeconds % 86_400 / 3_600
        let minutes = totalSeconds % 3_600 / 60
        let seconds = totalSeconds % 60

        var text = "P"
        if days > 0 { text += "\(days)D" }
        guard hours > 0 || minutes > 0 || seconds > 0 || fraction > 0 else { return text }
        text += "T"
        if hours > 0 { text += "\(hours)H" }
        if minutes > 0 { text += "\(minutes)M" }
        if seconds > 0 || fraction > 0 {
            text += "\(seconds)\(Self.fractionSuffix(fraction))S"
        }
        return text
    }

    /// `.2` for 200 000 000 ns, empty for zero.
    private static func fractionSuffix(_ nanos: Int64) -> String {
        guard nanos > 0 else { return "" }
        var digits = String(nanos)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.last == "0" { digits.removeLast() }
        return "." + digits
    }

    /// Largest whole number of days that fits in `Int64` nanoseconds.
    static let maximumDays = Int64.max / 86_400_000_000_000

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        let path = DeliverySpecError.path(from: decoder.codingPath, fallback: "duration")
        try self.init(parsing: text, path: path)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Duration {
    /// Whole nanoseconds, or `nil` when the value does not fit in `Int64`.
    var totalNanoseconds: Int64? {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (sum, sumOverflow) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return sumOverflow ? nil : sum
    }
}

/// Single-pass scanner for the accepted ISO-8601 subset; see ``ISO8601Duration``.
private struct ISO8601DurationParser {
    /// Designators in the only order they may appear. `T` separates date and time parts.
    private enum Unit: Int, Comparable {
        case weeks, days, hours, minutes, seconds

        var nanoseconds: Int64 {
            switch self {
            case .weeks: 604_800_000_000_000
            case .days: 86_400_000_000_000
            case .hours: 3_600_000_000_000
            case .minutes: 60_000_000_000
            case .seconds: 1_000_000_000
            }
        }

        var name: String {
            switch self {
            case .weeks: "weeks"
            case .days: "days"
            case .hours: "hours"
            case .minutes: "minutes"
            case .seconds: "seconds"
            }
        }

        static func < (lhs: Unit, rhs: Unit) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    let text: String
    let path: String
    private var characters: [Character] = []
    private var index = 0

    init(text: String, path: String) {
        self.text = text
        self.path = path
        self.characters = Array(text.uppercased())
    }

    mutating func parse() throws(DeliverySpecError) -> Int64 {
        if characters.first == "-" {
            throw failure("is negative; durations must be zero or more, e.g. PT1S")
        }
        guard characters.first == "P" else { throw syntaxError() }
        index = 1

        var total: Int64 = 0
        var lastUnit: Unit?
        var inTimePart = false
        var timePartHasComponent = false
        var componentCount = 0

        while index < characters.count {
            if characters[index] == "T" {
                guard !inTimePart else { throw syntaxError() }
                inTimePart = true
                index += 1
                continue
            }
            let number = try scanNumber()
            let unit = try scanUnit(inTimePart: inTimePart)
            if let lastUnit, unit <= lastUnit { throw syntaxError() }
            if number.fraction != nil && unit != .seconds {
                throw failure("has a fraction on \(unit.name); only seconds may have a fraction, e.g. PT1.5S")
            }
            total = try add(number, of: unit, to: total)
            lastUnit = unit
            componentCount += 1
            if inTimePart { timePartHasComponent = true }
        }
        guard componentCount > 0, !inTimePart || timePartHasComponent else { throw syntaxError() }
        return total
    }

    /// Digits with an optional `.`/`,` fraction; at least one integer digit is required.
    private mutating func scanNumber() throws(DeliverySpecError) -> (whole: Int64, fraction: Int64?) {
        let whole = scanDigits()
        guard !whole.isEmpty else { throw syntaxError() }
        guard let wholeValue = Int64(String(whole)) else { throw tooLong() }
        guard index < characters.count, characters[index] == "." || characters[index] == "," else {
            return (wholeValue, nil)
        }
        index += 1
        let fractionDigits = scanDigits()
        guard !fractionDigits.isEmpty else { throw syntaxError() }
        guard fractionDigits.count <= 9 else {
            throw failure("has more than 9 fractional digits; nanoseconds are the finest resolution, e.g. PT0.000000001S")
        }
        let padded = String(fractionDigits) + String(repeating: "0", count: 9 - fractionDigits.count)
        // Nine ASCII digits always fit in Int64; the fallback only guards the invariant.
        return (wholeValue, Int64(padded) ?? 0)
    }

    private mutating func scanDigits() -> ArraySlice<Character> {
        let start = index
        while index < characters.count, characters[index].isASCII, characters[index].isNumber {
            index += 1
        }
        return characters[start..<index]
    }

    private mutating func scanUnit(inTimePart: Bool) throws(DeliverySpecError) -> Unit {
        guard index < characters.count else { throw syntaxError() }
        let designator = characters[index]
        index += 1
        switch (designator, inTimePart) {
        case ("Y", false):
            throw failure("uses years, which have no fixed length; use days instead, e.g. P365D")
        case ("M", false):
            throw failure("uses months, which have no fixed length; use days or weeks instead, e.g. P30D (minutes go after T, e.g. PT5M)")
        case ("W", false): return .weeks
        case ("D", false): return .days
        case ("H", true): return .hours
        case ("M", true): return .minutes
        case ("S", true): return .seconds
        default: throw syntaxError()
        }
    }

    private func add(_ number: (whole: Int64, fraction: Int64?), of unit: Unit, to total: Int64) throws(DeliverySpecError) -> Int64 {
        let (scaled, overflow) = number.whole.multipliedReportingOverflow(by: unit.nanoseconds)
        guard !overflow else { throw tooLong() }
        // Fractions are only allowed on seconds, where one fractional unit is one nanosecond.
        let (withFraction, fractionOverflow) = scaled.addingReportingOverflow(number.fraction ?? 0)
        guard !fractionOverflow else { throw tooLong() }
        let (sum, sumOverflow) = total.addingReportingOverflow(withFraction)
        guard !sumOverflow else { throw tooLong() }
        return sum
    }

    private func failure(_ message: String) -> DeliverySpecError {
        DeliverySpecError(path: path, message: "\"\(text)\" \(message)")
    }

    private func syntaxError() -> DeliverySpecError {
        failure("is not an ISO-8601 duration such as PT0.2S, PT30S or P1DT2H")
    }

    private func tooLong() -> DeliverySpecError {
        failure("is too long; use at most \(ISO8601Duration.maximumDays) days")
    }
}
