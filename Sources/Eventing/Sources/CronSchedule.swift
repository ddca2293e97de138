public import Foundation

/// A problem with a PingSource `schedule` or `timezone`, phrased as what to change.
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field to fix: `schedule` or `timezone`.
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// A five-field cron schedule, as PingSource's `schedule` (robfig/cron's standard parser).
///
/// Syntax: `minute hour day-of-month month day-of-week`, each field `*`, `?`, a value,
/// a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (meaning `a-max/n`), or a comma list of
/// those. Months and weekdays also take names (`JAN`, `mon`, case-insensitive); weekday
/// `0` and `7` are both Sunday. Macros: `@yearly` `@annually` `@monthly` `@weekly`
/// `@daily` `@midnight` `@hourly`. An optional `CRON_TZ=Zone ` or `TZ=Zone ` prefix
/// sets the time zone.
///
/// `@every <duration>` is **rejected**: robfig's parser accepts it, but Knative's
/// PingSource validation refuses it explicitly ("unsupported descriptor @every"), and
/// this type exists to run PingSources the way Knative does.
///
/// Day matching uses the Vixie-cron rule robfig implements: when both day fields are
/// restricted (neither starts with `*`), a day matches if *either* matches; otherwise
/// both must. `*/2` counts as unrestricted, as in robfig.
///
/// Time zones: the schedule matches local wall-clock time in its zone (UTC by default,
/// the zone Knative's adapter runs in). Like robfig, it fires at every instant whose
/// local time matches: local times skipped by a DST jump do not fire that day, and
/// local times repeated when clocks go back fire at each occurrence.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    /// The schedule without any `CRON_TZ=`/`TZ=` prefix, as written.
    public let expression: String
    public let timeZone: TimeZone

    private let minutes: FieldSet
    private let hours: FieldSet
    private let daysOfMonth: FieldSet
    private let months: FieldSet
    private let daysOfWeek: FieldSet
    private let dayOfMonthRestricted: Bool
    private let dayOfWeekRestricted: Bool
    private let calendar: Calendar

    /// Parses `text`, optionally in the IANA zone `timeZone` (PingSource's `timezone`).
    ///
    /// An empty `timeZone` means none, as in the Knative API. A zone given both here and
    /// as a `CRON_TZ=` prefix must agree.
    public init(_ text: String, timeZone: String? = nil) throws(CronError) {
        let (prefixZone, body) = try Self.splitTimeZonePrefix(text.trimmingCharacters(in: .whitespaces))
        let zone = try Self.timeZone(parameter: timeZone, prefix: prefixZone)
        let fields = try Self.fieldTexts(of: body)

        let minutes = try CronField.minute.parse(fields[0])
        let hours = try CronField.hour.parse(fields[1])
        let daysOfMonth = try CronField.dayOfMonth.parse(fields[2])
        let months = try CronField.month.parse(fields[3])
        let daysOfWeek = try CronField.dayOfWeek.parse(fields[4])

        self.expression = body
        self.timeZone = zone
        self.minutes = minutes.values
        self.hours = hours.values
        self.daysOfMonth = daysOfMonth.values
        self.months = months.values
        self.daysOfWeek = daysOfWeek.values
        self.dayOfMonthRestricted = !daysOfMonth.isStar
        self.dayOfWeekRestricted = !daysOfWeek.isStar
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        self.calendar = calendar
        try checkCanFire()
    }

    /// `CRON_TZ=Zone expression`, which round-trips through ``init(_:timeZone:)``.
    public var description: String { "CRON_TZ=\(timeZone.identifier) \(expression)" }

    // MARK: - Next fire time

    /// The first instant strictly after `date` that matches, or `nil` if there is none
    /// within nine years (enough for the longest gap between two 29 Februaries).
    ///
    /// The search jumps a whole month, day or hour whenever that field does not match,
    /// so it takes at most a few hundred steps even for rare schedules.
    public func next(after date: Date) -> Date? {
        guard var candidate = calendar.dateInterval(of: .minute, for: date)?.end else { return nil }
        let lastYear = calendar.component(.year, from: date) + 9
        for _ in 0..<Self.maximumSteps {
            switch step(from: candidate, lastYear: lastYear) {
            case .match: return candidate
            case .moveTo(let later): candidate = later
            case .exhausted: return nil
            }
        }
        return nil
    }

    /// Far above the few hundred steps a nine-year search needs; only a calendar bug
    /// could reach it, and then `next(after:)` answers `nil` instead of spinning.
    private static let maximumSteps = 100_000

    private enum Step {
        case match
        case moveTo(Date)
        case exhausted
    }

    /// Checks `candidate` (a local minute boundary) from the largest field down and, on
    /// the first mismatch, moves to the start of the next month, day, hour or matching
    /// minute. Hour and minute moves add real seconds so a repeated DST hour is visited
    /// twice and a skipped one not at all.
    private func step(from candidate: Date, lastYear: Int) -> Step {
        let local = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: candidate)
        guard let year = local.year, let month = local.month, let day = local.day,
              let hour = local.hour, let minute = local.minute, let second = local.second,
              let weekday = local.weekday, year <= lastYear
        else { return .exhausted }

        let later: Date?
        if second != 0 {
            // Only after a historical offset change by seconds (local mean time).
            later = calendar.dateInterval(of: .minute, for: candidate)?.end
        } else if !months.contains(month) {
            later = calendar.dateInterval(of: .month, for: candidate)?.end
        } else if !dayMatches(day: day, weekday: weekday - 1) {
            later = calendar.dateInterval(of: .day, for: candidate)?.end
        } else if !hours.contains(hour) {
            later = candidate.addingTimeInterval(Double(60 - minute) * 60)
        } else if let nextMinute = minutes.first(atOrAfter: minute) {
            if nextMinute == minute { return .match }
            later = candidate.addingTimeInterval(Double(nextMinute - minute) * 60)
        } else {
            later = candidate.addingTimeInterval(Double(60 - minute) * 60)
        }
        guard let later, later > candidate else { return .exhausted }
        return .moveTo(later)
    }

    /// Vixie-cron rule: OR when both day fields are restricted, AND otherwise.
    private func dayMatches(day: Int, weekday: Int) -> Bool {
        let dayOfMonth = daysOfMonth.contains(day)
        let dayOfWeek = daysOfWeek.contains(weekday)
        if dayOfMonthRestricted && dayOfWeekRestricted { return dayOfMonth || dayOfWeek }
        return dayOfMonth && dayOfWeek
    }

    /// Rejects schedules such as `0 0 30 2 *` at parse time instead of returning `nil`
    /// from every ``next(after:)`` call. Only the day-of-month/month pairing can be
    /// impossible; a restricted weekday always recurs.
    private func checkCanFire() throws(CronError) {
        guard !(dayOfMonthRestricted && dayOfWeekRestricted) else { return }
        let longestMonths = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for month in 1...12 where months.contains(month) {
            if let firstDay = daysOfMonth.first(atOrAfter: 1), firstDay <= longestMonths[month - 1] {
                return
            }
        }
        throw CronError(
            field: "schedule",
            message: "\"\(expression)\" never fires: no selected month has the selected day of month; check fields 3 and 4"
        )
    }

    // MARK: - Parsing helpers

    private static func splitTimeZonePrefix(_ text: String) throws(CronError) -> (zone: String?, body: String) {
        for prefix in ["CRON_TZ=", "TZ="] where text.hasPrefix(prefix) {
            let afterPrefix = text.dropFirst(prefix.count)
            let zone = afterPrefix.prefix { !$0.isWhitespace }
            let body = afterPrefix.dropFirst(zone.count).trimmingCharacters(in: .whitespaces)
            guard !zone.isEmpty else {
                throw CronError(field: "schedule", message: "\(prefix) needs a zone name, e.g. \(prefix)Europe/Berlin 0 9 * * *")
            }
            return (String(zone), body)
        }
        return (nil, text)
    }

    private static func timeZone(parameter: String?, prefix: String?) throws(CronError) -> TimeZone {
        let parameter = parameter.flatMap { $0.isEmpty ? nil : $0 }
        if let parameter, let prefix, parameter != prefix {
            throw CronError(
                field: "timezone",
                message: "\"\(parameter)\" conflicts with CRON_TZ=\(prefix) in the schedule; set the zone in one place only"
            )
        }
        guard let name = parameter ?? prefix else {
            // UTC is always available; the fallback only satisfies the optional.
            return TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? .current
        }
        // Foundation also accepts offset spellings such as "GMT+2"; Go's tzdata lookup,
        // which Knative validates with, does not, so neither do we.
        let isOffsetSpelling = ["GMT+", "GMT-", "UTC+", "UTC-"].contains { name.uppercased().hasPrefix($0) }
        guard !isOffsetSpelling, let zone = TimeZone(identifier: name) else {
            throw CronError(field: "timezone", message: "\"\(name)\" is not an IANA time zone name such as Europe/Berlin or America/New_York")
        }
        return zone
    }

    /// The five field texts, expanding macros.
    private static func fieldTexts(of body: String) throws(CronError) -> [String] {
        let expanded = try body.hasPrefix("@") ? expandMacro(body) : body
        let fields = expanded.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 5 else {
            let hint = fields.count == 6 ? " (a seconds field is not supported)" : ""
            throw CronError(
                field: "schedule",
                message: "\"\(body)\" has \(fields.count) fields\(hint); use 5: minute hour day-of-month month day-of-week, e.g. */5 * * * *"
            )
        }
        return fields
    }

    private static func expandMacro(_ macro: String) throws(CronError) -> String {
        switch macro.lowercased() {
        case "@yearly", "@annually": return "0 0 1 1 *"
        case "@monthly": return "0 0 1 * *"
        case "@weekly": return "0 0 * * 0"
        case "@daily", "@midnight": return "0 0 * * *"
        case "@hourly": return "0 * * * *"
        default:
            if macro.lowercased().hasPrefix("@every") {
                throw CronError(
                    field: "schedule",
                    message: "@every is not supported by PingSource; use a cron expression such as */5 * * * * (every 5 minutes)"
                )
            }
            throw CronError(
                field: "schedule",
                message: "\"\(macro)\" is not a known macro; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
            )
        }
    }
}

/// A set of small non-negative integers (0–63) as a bit mask.
private struct FieldSet: Sendable, Equatable {
    var bits: UInt64 = 0

    func contains(_ value: Int) -> Bool {
        (0..<64).contains(value) && bits & (1 << UInt64(value)) != 0
    }

    mutating func insert(_ value: Int) {
        bits |= 1 << UInt64(value)
    }

    /// The smallest member ≥ `value`, found with one shift and a trailing-zero count.
    func first(atOrAfter value: Int) -> Int? {
        guard (0..<64).contains(value) else { return nil }
        let remaining = bits >> UInt64(value)
        return remaining == 0 ? nil : value + remaining.trailingZeroBitCount
    }
}

/// One of the five cron fields: its position, bounds and names.
private struct CronField {
    let position: Int
    let name: String
    let bounds: ClosedRange<Int>
    let names: [String]
    /// First value that `names[0]` stands for.
    let namesStart: Int

    static let minute = CronField(position: 1, name: "minute", bounds: 0...59, names: [], namesStart: 0)
    static let hour = CronField(position: 2, name: "hour", bounds: 0...23, names: [], namesStart: 0)
    static let dayOfMonth = CronField(position: 3, name: "day-of-month", bounds: 1...31, names: [], namesStart: 1)
    static let month = CronField(
        position: 4, name: "month", bounds: 1...12,
        names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], namesStart: 1
    )
    /// 0–7 so that `7` (Sunday in Vixie cron) parses; it is folded onto 0 afterwards.
    static let dayOfWeek = CronField(
        position: 5, name: "day-of-week", bounds: 0...7,
        names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], namesStart: 0
    )

    private var label: String { "field \(position) (\(name))" }

    /// Parses a comma list; `isStar` is robfig's "unrestricted" flag, set when any
    /// element is `*` or `?` without a step above 1 (robfig v3: `*/2` restricts its field).
    func parse(_ text: String) throws(CronError) -> (values: FieldSet, isStar: Bool) {
        var values = FieldSet()
        var isStar = false
        let elements = text.split(separator: ",", omittingEmptySubsequences: false)
        for element in elements {
            guard !element.isEmpty else { throw error("\"\(text)\" has an empty list element; remove the extra comma") }
            isStar = try parseElement(String(element), into: &values) || isStar
        }
        if position == CronField.dayOfWeek.position, values.contains(7) {
            values.bits &= ~(1 << 7)
            values.insert(0)
        }
        return (values, isStar)
    }

    /// Adds one `range[/step]` element; returns whether it was a wildcard.
    private func parseElement(_ element: String, into values: inout FieldSet) throws(CronError) -> Bool {
        let parts = element.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw error("\"\(element)\" has more than one '/'; use a single step such as */15") }
        let rangeText = String(parts[0])
        let step = try parts.count == 2 ? parseStep(String(parts[1]), in: element) : 1

        let isStar = rangeText == "*" || rangeText == "?"
        let range: ClosedRange<Int>
        if isStar {
            range = bounds
        } else {
            range = try parseRange(rangeText, hasStep: parts.count == 2)
        }
        for value in stride(from: range.lowerBound, through: range.upperBound, by: step) {
            values.insert(value)
        }
        return isStar && step == 1
    }

    private func parseStep(_ text: String, in element: String) throws(CronError) -> Int {
        guard let step = Self.number(text), step >= 1 else {
            throw error("step \"\(text)\" in \"\(element)\" must be a whole number of at least 1, e.g. */5")
        }
        return step
    }

    /// `a`, `a-b`, or `a` with a step (which means `a-max`, as in robfig).
    private func parseRange(_ text: String, hasStep: Bool) throws(CronError) -> ClosedRange<Int> {
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count <= 2 else { throw error("\"\(text)\" has more than one '-'; write a range as low-high, e.g. 1-5") }
        let low = try value(String(ends[0]))
        let high = try ends.count == 2 ? value(String(ends[1])) : (hasStep ? bounds.upperBound : low)
        guard low <= high else {
            throw error("range \(text) runs backwards; cron ranges do not wrap, so split it, e.g. \(low)-\(bounds.upperBound),\(bounds.lowerBound)-\(high)")
        }
        return low...high
    }

    private func value(_ text: String) throws(CronError) -> Int {
        if let number = Self.number(text) {
            guard bounds.contains(number) else {
                throw error("value \(number) is out of range \(bounds.lowerBound)-\(bounds.upperBound)")
            }
            return number
        }
        if let index = names.firstIndex(of: text.uppercased()) {
            return namesStart + index
        }
        let expected = names.isEmpty
            ? "a number from \(bounds.lowerBound) to \(bounds.upperBound)"
            : "a number from \(bounds.lowerBound) to \(bounds.upperBound) or a name \(names[0])-\(names[names.count - 1])"
        throw error("value \"\(text)\" is not \(expected)")
    }

    /// Plain ASCII digits only: no sign, no spaces. Very long inputs are rejected.
    private static func number(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }

    private func error(_ message: String) -> CronError {
        CronError(field: "schedule", message: "\(label) \(message)")
    }
}
