import Foundation
import Testing
@testable import Eventing

@Suite("ISO8601Duration")
struct ISO8601DurationTests {
    @Test("parses the Knative subset", arguments: [
        ("PT0.2S", Int64(200_000_000)),
        ("PT1S", 1_000_000_000),
        ("PT30S", 30_000_000_000),
        ("PT1M30S", 90_000_000_000),
        ("PT2H", 7_200_000_000_000),
        ("P1D", 86_400_000_000_000),
        ("P2W", 1_209_600_000_000_000),
        ("P1W1D", 691_200_000_000_000),
        ("P1DT2H3M4.5S", 93_784_500_000_000),
        ("pt0.2s", 200_000_000),
        ("PT0,5S", 500_000_000),
        ("PT0S", 0),
        ("P0D", 0),
        ("PT1.000000001S", 1_000_000_001),
        ("PT0.000000001S", 1),
    ])
    func parses(text: String, nanoseconds: Int64) throws {
        let duration = try ISO8601Duration(parsing: text)
        #expect(duration.nanoseconds == nanoseconds)
        #expect(duration.duration == .nanoseconds(nanoseconds))
    }

    @Test("seconds accessor")
    func secondsAccessor() throws {
        #expect(try ISO8601Duration(parsing: "PT1.5S").seconds == 1.5)
        #expect(try ISO8601Duration(parsing: "PT0.2S").seconds == 0.2)
    }

    @Test("encodes a canonical string", arguments: [
        ("PT90S", "PT1M30S"),
        ("P1W", "P7D"),
        ("PT0.2S", "PT0.2S"),
        ("PT0S", "PT0S"),
        ("P0D", "PT0S"),
        ("P1DT0S", "P1D"),
        ("PT36H", "P1DT12H"),
        ("PT0.000000001S", "PT0.000000001S"),
        ("PT1.50S", "PT1.5S"),
        ("PT3600S", "PT1H"),
    ])
    func canonical(text: String, canonical: String) throws {
        let duration = try ISO8601Duration(parsing: text)
        #expect(duration.description == canonical)
        #expect(try ISO8601Duration(parsing: canonical) == duration)
    }

    @Test("equality is by length")
    func equalityByLength() throws {
        #expect(try ISO8601Duration(parsing: "PT60S") == ISO8601Duration(parsing: "PT1M"))
    }

    @Test("rejects with a message saying what to fix", arguments: [
        ("1s", "is not an ISO-8601 duration such as PT0.2S"),
        ("", "is not an ISO-8601 duration"),
        ("P", "is not an ISO-8601 duration"),
        ("PT", "is not an ISO-8601 duration"),
        ("P1DT", "is not an ISO-8601 duration"),
        ("PTS", "is not an ISO-8601 duration"),
        ("PT1S2M", "is not an ISO-8601 duration"),
        ("PT1H1H", "is not an ISO-8601 duration"),
        ("PT1S ", "is not an ISO-8601 duration"),
        ("P1DT2D", "is not an ISO-8601 duration"),
        ("PT.5S", "is not an ISO-8601 duration"),
        ("PT1.S", "is not an ISO-8601 duration"),
        ("P1Y", "uses years"),
        ("P1M", "uses months"),
        ("-PT1S", "is negative"),
        ("PT1.5M", "only seconds may have a fraction"),
        ("P1.5D", "only seconds may have a fraction"),
        ("PT1.0000000001S", "more than 9 fractional digits"),
        ("P99999999999999999999D", "is too long"),
        ("P200000D", "is too long"),
    ])
    func rejects(text: String, fragment: String) {
        #expect {
            _ = try ISO8601Duration(parsing: text, path: "delivery.backoffDelay")
        } throws: { error in
            guard let error = error as? DeliverySpecError else { return false }
            return error.path == "delivery.backoffDelay" && error.message.contains(fragment)
        }
    }

    @Test("error text matches the documented form")
    func errorText() {
        #expect(throws: DeliverySpecError(
            path: "delivery.backoffDelay",
            message: "\"1s\" is not an ISO-8601 duration such as PT0.2S, PT30S or P1DT2H"
        )) {
            _ = try ISO8601Duration(parsing: "1s", path: "delivery.backoffDelay")
        }
    }

    @Test("builds from Duration and rejects negatives")
    func fromDuration() throws {
        #expect(try ISO8601Duration(.milliseconds(1500)).description == "PT1.5S")
        #expect(throws: DeliverySpecError.self) { _ = try ISO8601Duration(.seconds(-1)) }
        #expect(ISO8601Duration(nanoseconds: -1) == nil)
        #expect(ISO8601Duration(nanoseconds: 5)?.nanoseconds == 5)
    }

    @Test("Codable as a JSON string, with the field path in errors")
    func codable() throws {
        struct Wrapper: Codable { var delivery: DeliverySpec }
        let json = #"{"delivery":{"backoffDelay":"1s"}}"#
        #expect(throws: DeliverySpecError(
            path: "delivery.backoffDelay",
            message: "\"1s\" is not an ISO-8601 duration such as PT0.2S, PT30S or P1DT2H"
        )) {
            _ = try JSONDecoder().decode(Wrapper.self, from: Data(json.utf8))
        }

        let encoded = try JSONEncoder().encode(try ISO8601Duration(parsing: "PT90S"))
        #expect(String(decoding: encoded, as: UTF8.self) == #""PT1M30S""#)
        #expect(try JSONDecoder().decode(ISO8601Duration.self, from: encoded).nanoseconds == 90_000_000_000)
    }
}
