import Foundation
import Testing
@testable import Eventing

/// Parses `2024-03-10T01:30:00-05:00`; a bad literal is a test bug, reported as an issue.
private func date(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    guard let parsed = formatter.date(from: text) else {
        Issue.record("bad date literal \(text)", sourceLocation: sourceLocation)
        return .distantPast
    }
    return parsed
}

struct CronCase: Sendable, CustomTestStringConvertible {
    let schedule: String
    let timeZone: String?
    let after: String
    let expected: String?

    init(_ schedule: String, tz timeZone: String? = nil, after: String, _ expected: String?) {
        self.schedule = schedule
        self.timeZone = timeZone
        self.after = after
        self.expected = expected
    }

    var testDescription: String { "\(schedule) [\(timeZone ?? "-")] after \(after)" }
}

@Suite("CronSchedule")
struct CronScheduleTests {
    @Test("next fire time in UTC", arguments: [
        CronCase("* * * * *", after: "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
        CronCase("* * * * *", after: "2024-01-01T00:00:30Z", "2024-01-01T00:01:00Z"),
        CronCase("*/5 * * * *", after: "2024-01-01T00:03:00Z", "2024-01-01T00:05:00Z"),
        CronCase("*/5 * * * *", after: "2024-01-01T23:59:00Z", "2024-01-02T00:00:00Z"),
        CronCase("0 * * * *", after: "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"),
        CronCase("15,45 */6 * * *", after: "2024-01-01T06:20:00Z", "2024-01-01T06:45:00Z"),
        CronCase("15,45 */6 * * *", after: "2024-01-01T06:45:00Z", "2024-01-01T12:15:00Z"),
        CronCase("0 9-17/4 * * *", after: "2024-01-01T13:00:00Z", "2024-01-01T17:00:00Z"),
        CronCase("0 9-17/4 * * *", after: "2024-01-01T17:00:00Z", "2024-01-02T09:00:00Z"),
        CronCase("5/20 * * * *", after: "2024-01-01T00:26:00Z", "2024-01-01T00:45:00Z"),
        CronCase("30 8 * * MON-FRI", after: "2024-01-06T09:00:00Z", "2024-01-08T08:30:00Z"),
        CronCase("30 8 * * mon-fri", after: "2024-01-08T08:30:00Z", "2024-01-09T08:30:00Z"),
        CronCase("0 0 * * 7", after: "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
        CronCase("0 0 * * 0", after: "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
        CronCase("0 0 * * 5-7", after: "2024-01-06T12:00:00Z", "2024-01-07T00:00:00Z"),
        CronCase("0 0 * * 5-7", after: "2024-01-07T12:00:00Z", "2024-01-12T00:00:00Z"),
        CronCase("0 0 1 jan,Jul *", after: "2024-02-01T00:00:00Z", "2024-07-01T00:00:00Z"),
        CronCase("0 0 31 * *", after: "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z"),
        CronCase("0 0 ? * *", after: "2024-04-01T00:00:00Z", "2024-04-02T00:00:00Z"),
        CronCase("59 23 31 12 *", after: "2024-01-01T00:00:00Z", "2024-12-31T23:59:00Z"),
        // Feb 29: next leap year, and across the non-leap century year 2100.
        CronCase("0 0 29 2 *", after: "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        CronCase("0 0 29 2 *", after: "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z"),
        CronCase("0 0 29 2 *", after: "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"),
        CronCase("0 0 29 FEB *", after: "2023-01-01T00:00:00Z", "2024-02-29T00:00:00Z"),
        // Vixie OR rule: both day fields restricted.
        CronCase("0 12 13 * FRI", after: "2024-01-01T00:00:00Z", "2024-01-05T12:00:00Z"),
        CronCase("0 12 13 * FRI", after: "2024-01-12T12:00:00Z", "2024-01-13T12:00:00Z"),
        CronCase("0 0 30 2 MON", after: "2024-01-31T00:00:00Z", "2024-02-05T00:00:00Z"),
        // A wildcard with a step above 1 restricts its field (robfig v3 clears the star bit), so
        // the day fields are ORed: the 13th or Sun/Tue/Thu/Sat; `*/1` is still a plain `*`.
        CronCase("0 12 13 * */2", after: "2024-01-01T00:00:00Z", "2024-01-02T12:00:00Z"),
        CronCase("0 9 */2 * MON", after: "2024-01-02T00:00:00Z", "2024-01-03T09:00:00Z"),
        CronCase("0 12 13 * */1", after: "2024-01-01T00:00:00Z", "2024-01-13T12:00:00Z"),
        // Macros.
        CronCase("@yearly", after: "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        CronCase("@annually", after: "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        CronCase("@monthly", after: "2024-06-15T00:00:00Z", "2024-07-01T00:00:00Z"),
        CronCase("@weekly", after: "2024-01-03T00:00:00Z", "2024-01-07T00:00:00Z"),
        CronCase("@daily", after: "2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z"),
        CronCase("@midnight", after: "2024-01-03T23:59:59Z", "2024-01-04T00:00:00Z"),
        CronCase("@hourly", after: "2024-01-03T10:59:00Z", "2024-01-03T11:00:00Z"),
        CronCase("@HOURLY", after: "2024-01-03T10:59:00Z", "2024-01-03T11:00:00Z"),
    ])
    func nextUTC(testCase: CronCase) throws {
        try check(testCase)
    }

    @Test("time zones and DST (robfig semantics)", arguments: [
        // Zone from parameter, CRON_TZ= and TZ= prefixes.
        CronCase("0 9 * * *", tz: "Asia/Kolkata", after: "2024-01-01T00:00:00Z", "2024-01-01T03:30:00Z"),
        CronCase("CRON_TZ=Europe/Berlin 0 9 * * *", after: "2024-01-01T00:00:00Z", "2024-01-01T08:00:00Z"),
        CronCase("TZ=Europe/Berlin 0 9 * * *", after: "2024-07-01T00:00:00Z", "2024-07-01T07:00:00Z"),
        CronCase("CRON_TZ=Europe/Berlin 0 9 * * *", tz: "Europe/Berlin", after: "2024-01-01T00:00:00Z", "2024-01-01T08:00:00Z"),
        CronCase("0 9 * * *", tz: "", after: "2024-01-01T00:00:00Z", "2024-01-01T09:00:00Z"),
        // New York springs forward 2024-03-10 02:00 EST -> 03:00 EDT: 02:30 does not exist that day.
        CronCase("30 2 * * *", tz: "America/New_York", after: "2024-03-09T12:00:00-05:00", "2024-03-11T02:30:00-04:00"),
        CronCase("0 * * * *", tz: "America/New_York", after: "2024-03-10T01:30:00-05:00", "2024-03-10T03:00:00-04:00"),
        CronCase("*/15 * * * *", tz: "America/New_York", after: "2024-03-10T01:50:00-05:00", "2024-03-10T03:00:00-04:00"),
        CronCase("0 9 * * *", tz: "America/New_York", after: "2024-03-09T10:00:00-05:00", "2024-03-10T09:00:00-04:00"),
        CronCase("0 0 * * *", tz: "America/New_York", after: "2024-03-09T12:00:00-05:00", "2024-03-10T00:00:00-05:00"),
        // New York falls back 2024-11-03 02:00 EDT -> 01:00 EST: 01:xx happens twice.
        CronCase("30 1 * * *", tz: "America/New_York", after: "2024-11-03T00:00:00-04:00", "2024-11-03T01:30:00-04:00"),
        CronCase("30 1 * * *", tz: "America/New_York", after: "2024-11-03T01:45:00-04:00", "2024-11-03T01:30:00-05:00"),
        CronCase("30 1 * * *", tz: "America/New_York", after: "2024-11-03T01:30:00-05:00", "2024-11-04T01:30:00-05:00"),
        CronCase("*/15 * * * *", tz: "America/New_York", after: "2024-11-03T01:50:00-04:00", "2024-11-03T01:00:00-05:00"),
        CronCase("30 2 * * *", tz: "America/New_York", after: "2024-11-03T00:00:00-04:00", "2024-11-03T02:30:00-05:00"),
        CronCase("0 9 * * *", tz: "America/New_York", after: "2024-11-02T10:00:00-04:00", "2024-11-03T09:00:00-05:00"),
        // Santiago springs forward at midnight (2024-09-08 00:00 -> 01:00): that midnight is skipped.
        CronCase("0 0 * * *", tz: "America/Santiago", after: "2024-09-07T12:00:00-04:00", "2024-09-09T00:00:00-03:00"),
        CronCase("30 1 * * *", tz: "America/Santiago", after: "2024-09-07T12:00:00-04:00", "2024-09-08T01:30:00-03:00"),
    ])
    func nextInZone(testCase: CronCase) throws {
        try check(testCase)
    }

    private func check(_ testCase: CronCase) throws {
        let schedule = try CronSchedule(testCase.schedule, timeZone: testCase.timeZone)
        let next = schedule.next(after: date(testCase.after))
        #expect(next == testCase.expected.map { date($0) }, "got \(next.map { "\($0)" } ?? "nil")")
    }

    @Test("successive fire times never go backwards or repeat")
    func successive() throws {
        let schedule = try CronSchedule("*/20 * * * *", timeZone: "America/New_York")
        var current = date("2024-11-02T23:00:00-04:00")
        var fired: [Date] = []
        for _ in 0..<20 {
            guard let next = schedule.next(after: current) else {
                Issue.record("schedule stopped")
                return
            }
            #expect(next > current)
            fired.append(next)
            current = next
        }
        // Through the repeated hour, every fire time is exactly 20 real minutes apart.
        for (earlier, later) in zip(fired, fired.dropFirst()) {
            #expect(later.timeIntervalSince(earlier) == 1_200)
        }
    }

    @Test("rare schedules are found quickly")
    func performance() throws {
        let schedule = try CronSchedule("0 0 29 2 *")
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            var current = date("2001-01-01T00:00:00Z")
            for _ in 0..<20 {
                guard let next = schedule.next(after: current) else { return }
                current = next
            }
            #expect(current == date("2080-02-29T00:00:00Z"))
        }
        #expect(elapsed < .seconds(5))
    }

    @Test("description round-trips")
    func description() throws {
        let schedule = try CronSchedule("*/5 9-17 * * MON-FRI", timeZone: "Europe/Berlin")
        #expect(schedule.description == "CRON_TZ=Europe/Berlin */5 9-17 * * MON-FRI")
        #expect(try CronSchedule(schedule.description) == schedule)
        #expect(try CronSchedule("* * * * *").timeZone.secondsFromGMT() == 0)
    }

    @Test("the documented error text")
    func errorText() {
        #expect(throws: CronError(field: "schedule", message: "field 2 (hour) value 25 is out of range 0-23")) {
            _ = try CronSchedule("0 25 * * *")
        }
        do {
            _ = try CronSchedule("0 25 * * *")
        } catch {
            #expect(error.description == "schedule: field 2 (hour) value 25 is out of range 0-23")
        }
    }

    @Test("rejects invalid input with a hint", arguments: [
        ("", nil, "schedule", "has 0 fields"),
        ("* * * *", nil, "schedule", "has 4 fields"),
        ("0 * * * * *", nil, "schedule", "a seconds field is not supported"),
        ("60 * * * *", nil, "schedule", "field 1 (minute) value 60 is out of range 0-59"),
        ("* * 0 * *", nil, "schedule", "field 3 (day-of-month) value 0 is out of range 1-31"),
        ("* * 32 * *", nil, "schedule", "field 3 (day-of-month) value 32 is out of range 1-31"),
        ("* * * 13 *", nil, "schedule", "field 4 (month) value 13 is out of range 1-12"),
        ("* * * * 8", nil, "schedule", "field 5 (day-of-week) value 8 is out of range 0-7"),
        ("*/0 * * * *", nil, "schedule", "step \"0\""),
        ("*/x * * * *", nil, "schedule", "step \"x\""),
        ("5-2 * * * *", nil, "schedule", "range 5-2 runs backwards"),
        ("0 22-2 * * *", nil, "schedule", "split it, e.g. 22-23,0-2"),
        ("1,,2 * * * *", nil, "schedule", "empty list element"),
        ("a * * * *", nil, "schedule", "value \"a\" is not a number from 0 to 59"),
        ("MON * * * *", nil, "schedule", "field 1 (minute) value \"MON\""),
        ("* * * FOO *", nil, "schedule", "or a name JAN-DEC"),
        ("* * * * FUNDAY", nil, "schedule", "or a name SUN-SAT"),
        ("-5 * * * *", nil, "schedule", "value \"\" is not a number"),
        ("1-2-3 * * * *", nil, "schedule", "more than one '-'"),
        ("*/5/2 * * * *", nil, "schedule", "more than one '/'"),
        ("99999999999 * * * *", nil, "schedule", "is not a number"),
        ("0 0 30 2 *", nil, "schedule", "never fires"),
        ("0 0 31 4,6,9,11 *", nil, "schedule", "never fires"),
        ("@every 1m", nil, "schedule", "@every is not supported"),
        ("@every 10s", nil, "schedule", "@every is not supported"),
        ("@reboot", nil, "schedule", "not a known macro"),
        ("CRON_TZ= * * * * *", nil, "schedule", "needs a zone name"),
        ("* * * * *", "Mars/Olympus", "timezone", "not an IANA time zone name"),
        ("* * * * *", "GMT+2", "timezone", "not an IANA time zone name"),
        ("CRON_TZ=Nowhere/City * * * * *", nil, "timezone", "\"Nowhere/City\""),
        ("CRON_TZ=UTC * * * * *", "Europe/Berlin", "timezone", "conflicts with CRON_TZ=UTC"),
    ] as [(String, String?, String, String)])
    func rejects(text: String, timeZone: String?, field: String, fragment: String) {
        #expect {
            _ = try CronSchedule(text, timeZone: timeZone)
        } throws: { error in
            guard let error = error as? CronError else { return false }
            return error.field == field && error.message.contains(fragment)
        }
    }

    @Test("day-of-week 0 and 7 are the same day")
    func sundayAliases() throws {
        #expect(try CronSchedule("0 0 * * 0") .next(after: date("2024-01-01T00:00:00Z"))
                == CronSchedule("0 0 * * 7").next(after: date("2024-01-01T00:00:00Z")))
        #expect(try CronSchedule("0 0 * * SUN") .next(after: date("2024-01-01T00:00:00Z"))
                == date("2024-01-07T00:00:00Z"))
    }
}
