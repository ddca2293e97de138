import Foundation
import Testing
@testable import Eventing

/// Deterministic generator so jitter tests are reproducible (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func duration(_ text: String) throws -> ISO8601Duration {
    try ISO8601Duration(parsing: text)
}

@Suite("Destination")
struct DestinationTests {
    @Test("accepts Knative destinations", arguments: [
        Destination(uri: "http://handler.default.svc:8080/events"),
        Destination(uri: "https://example.com"),
        .service("hello"),
        Destination(ref: KReference(kind: "Service", name: "hello")),
        .broker("default", namespace: "team-a"),
        Destination(ref: KReference(kind: "Service", name: "hello"), uri: "/custom/path?x=1"),
    ])
    func accepts(destination: Destination) throws {
        try destination.validate(path: "spec.subscriber")
    }

    @Test("rejects with the field to fix", arguments: [
        (Destination(), "spec.subscriber", "set ref"),
        (Destination(ref: KReference(kind: "Deployment", name: "x")), "spec.subscriber.ref.kind", "use Service or Broker"),
        (Destination(ref: KReference(apiVersion: "v1", kind: "Service", name: "x")), "spec.subscriber.ref.apiVersion", "serving.knative.dev/v1"),
        (Destination(ref: KReference(apiVersion: "serving.knative.dev/v1", kind: "Broker", name: "x")), "spec.subscriber.ref.apiVersion", "eventing.knative.dev/v1"),
        (Destination(ref: KReference(kind: "Service", name: "Bad_Name")), "spec.subscriber.ref.name", "lowercase"),
        (Destination(ref: KReference(kind: "Service", name: "")), "spec.subscriber.ref.name", "not a valid name"),
        (Destination(ref: KReference(kind: "Service", name: "ok", namespace: "-ns")), "spec.subscriber.ref.namespace", "not a valid name"),
        (Destination(uri: "/relative"), "spec.subscriber.uri", "absolute http or https URL"),
        (Destination(uri: "ftp://host/file"), "spec.subscriber.uri", "absolute http or https URL"),
        (Destination(uri: "http://"), "spec.subscriber.uri", "absolute http or https URL"),
        (Destination(ref: KReference(kind: "Service", name: "ok"), uri: "http://host/x"), "spec.subscriber.uri", "path starting with \"/\""),
        (Destination(ref: KReference(kind: "Service", name: "ok"), uri: "//host/x"), "spec.subscriber.uri", "path starting with \"/\""),
    ])
    func rejects(destination: Destination, path: String, fragment: String) {
        let errors = destination.validationErrors(path: "spec.subscriber")
        #expect(errors.count == 1)
        #expect(errors.first?.path == path)
        #expect(errors.first?.message.contains(fragment) == true)
    }

    @Test("parses CLI values", arguments: [
        ("service:hello", Destination.service("hello")),
        ("ksvc:hello", .service("hello")),
        ("broker:default", .broker("default")),
        ("  http://localhost:8080/x ", Destination(uri: "http://localhost:8080/x")),
        ("https://example.com/hook", Destination(uri: "https://example.com/hook")),
    ])
    func cliValue(text: String, expected: Destination) throws {
        #expect(try Destination(cliValue: text) == expected)
    }

    @Test("rejects bad CLI values", arguments: [
        ("hello", "sink", "use service:NAME, broker:NAME"),
        ("service:", "sink.ref.name", "not a valid name"),
        ("broker:Default", "sink.ref.name", "not a valid name"),
        ("mailto://x", "sink.uri", "absolute http or https URL"),
    ])
    func rejectsCLIValue(text: String, path: String, fragment: String) {
        #expect {
            _ = try Destination(cliValue: text)
        } throws: { error in
            guard let error = error as? DeliverySpecError else { return false }
            return error.path == path && error.message.contains(fragment)
        }
    }
}

@Suite("DeliverySpec")
struct DeliverySpecTests {
    @Test("decodes Knative YAML/JSON field names")
    func decodes() throws {
        let json = #"""
        {"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT0.5S", "timeout": "PT10S",
         "retryAfterMax": "PT1M", "deadLetterSink": {"ref": {"apiVersion": "serving.knative.dev/v1",
         "kind": "Service", "name": "dls"}}, "format": "json"}
        """#
        let spec = try JSONDecoder().decode(DeliverySpec.self, from: Data(json.utf8))
        #expect(spec == DeliverySpec(
            retry: 5,
            backoffPolicy: .linear,
            backoffDelay: try duration("PT0.5S"),
            timeout: try duration("PT10S"),
            retryAfterMax: try duration("PT1M"),
            deadLetterSink: .service("dls"),
            format: .json
        ))
        try spec.validate()
        let roundTripped = try JSONDecoder().decode(DeliverySpec.self, from: JSONEncoder().encode(spec))
        #expect(roundTripped == spec)
    }

    @Test("unknown backoff policy names the field and the allowed values")
    func badPolicy() {
        #expect(throws: DeliverySpecError(path: "backoffPolicy", message: "\"fast\" is not a backoff policy; use linear or exponential")) {
            _ = try JSONDecoder().decode(DeliverySpec.self, from: Data(#"{"backoffPolicy":"fast"}"#.utf8))
        }
    }

    @Test("unknown delivery format names the field and the allowed values")
    func badFormat() {
        #expect(throws: DeliverySpecError(path: "format", message: "\"xml\" is not a delivery format; use json or binary")) {
            _ = try JSONDecoder().decode(DeliverySpec.self, from: Data(#"{"format":"xml"}"#.utf8))
        }
    }

    @Test("collects every validation error")
    func validationErrors() throws {
        let spec = DeliverySpec(retry: -1, timeout: .zero, deadLetterSink: Destination(uri: "nope"))
        let errors = spec.validationErrors()
        #expect(errors.map(\.path) == ["delivery.retry", "delivery.timeout", "delivery.deadLetterSink.uri"])
        #expect(errors[0].description == "delivery.retry: -1 is negative; use 0 (no retries) or more")
        #expect(errors[1].message.contains("greater than zero"))
        #expect(throws: errors[0]) { try spec.validate() }
    }

    @Test("an empty spec is valid")
    func emptyIsValid() throws {
        try DeliverySpec().validate()
        try DeliverySpec(retry: 0, retryAfterMax: .zero).validate()
    }
}

@Suite("ResolvedDelivery")
struct ResolvedDeliveryTests {
    @Test("platform default is Knative's config-br-defaults")
    func platformDefault() {
        let resolved = ResolvedDelivery.resolve(trigger: nil, broker: nil)
        #expect(resolved.retry == 10)
        #expect(resolved.maxAttempts == 11)
        #expect(resolved.backoffPolicy == .exponential)
        #expect(resolved.backoffDelay == .milliseconds(200))
        #expect(resolved.attemptTimeout == .seconds(30))
        #expect(resolved.retryAfterMax == nil)
        #expect(resolved.deadLetterSink == nil)
        #expect(resolved.format == .binary)
        #expect(resolved.jitter == 0)
    }

    @Test("broker spec replaces the platform default wholesale")
    func brokerWholeSpec() throws {
        let broker = DeliverySpec(deadLetterSink: .service("dls"))
        let resolved = ResolvedDelivery.resolve(trigger: nil, broker: broker)
        #expect(resolved.retry == 0)
        #expect(resolved.deadLetterSink == .service("dls"))
        #expect(resolved.backoffPolicy == .exponential)
        #expect(resolved.backoffDelay == .milliseconds(200))
    }

    @Test("trigger spec replaces the broker's wholesale, except the dead-letter sink")
    func triggerWholeSpec() throws {
        let broker = DeliverySpec(retry: 7, backoffPolicy: .linear, backoffDelay: try duration("PT2S"),
                                  timeout: try duration("PT5S"), deadLetterSink: .service("broker-dls"))
        let trigger = DeliverySpec(retry: 2, retryAfterMax: try duration("PT10S"))
        let resolved = ResolvedDelivery.resolve(trigger: trigger, broker: broker)
        #expect(resolved.retry == 2)
        #expect(resolved.backoffPolicy == .exponential)
        #expect(resolved.backoffDelay == .milliseconds(200))
        #expect(resolved.attemptTimeout == .seconds(30))
        #expect(resolved.retryAfterMax == .seconds(10))
        #expect(resolved.deadLetterSink == .service("broker-dls"))

        #expect(resolved.format == .binary)
        #expect(ResolvedDelivery.resolve(trigger: nil, broker: DeliverySpec(format: .json)).format == .json)
        #expect(ResolvedDelivery.resolve(trigger: DeliverySpec(format: .json), broker: broker).format == .json)

        let withOwnSink = ResolvedDelivery.resolve(trigger: DeliverySpec(deadLetterSink: .broker("dead")), broker: broker)
        #expect(withOwnSink.deadLetterSink == .broker("dead"))
        #expect(withOwnSink.retry == 0)
    }

    @Test("backoff matches Knative's RetryConfigFromDeliverySpec tests", arguments: [
        (BackoffPolicy.linear, "PT2.5S", [2.5, 5, 7.5, 10, 12.5]),
        (.exponential, "PT1.5S", [3, 6, 12, 24, 48]),
        (.exponential, "PT0.5S", [1, 2, 4, 8, 16]),
        (.linear, "PT0.1S", [0.1, 0.2, 0.3, 0.4, 0.5]),
    ])
    func backoff(policy: BackoffPolicy, delay: String, expected: [Double]) throws {
        let resolved = ResolvedDelivery(retry: 5, backoffPolicy: policy, backoffDelay: try duration(delay).duration)
        for (index, seconds) in expected.enumerated() {
            #expect(resolved.backoff(afterAttempt: index + 1) == .milliseconds(Int64((seconds * 1000).rounded())))
        }
    }

    @Test("backoff is capped and overflow-safe")
    func backoffCap() {
        let exponential = ResolvedDelivery(retry: 100, backoffPolicy: .exponential, backoffDelay: .milliseconds(200))
        #expect(exponential.backoff(afterAttempt: 14) == .milliseconds(3_276_800))
        #expect(exponential.backoff(afterAttempt: 15) == ResolvedDelivery.maximumBackoff)
        #expect(exponential.backoff(afterAttempt: 62) == ResolvedDelivery.maximumBackoff)
        #expect(exponential.backoff(afterAttempt: 1_000) == ResolvedDelivery.maximumBackoff)
        #expect(exponential.backoff(afterAttempt: Int.max) == ResolvedDelivery.maximumBackoff)
        #expect(exponential.backoff(afterAttempt: 0) == .milliseconds(400))

        let linear = ResolvedDelivery(retry: 1, backoffPolicy: .linear, backoffDelay: .seconds(86_400 * 365))
        #expect(linear.backoff(afterAttempt: Int.max) == ResolvedDelivery.maximumBackoff)

        let zero = ResolvedDelivery(retry: 3, backoffPolicy: .exponential, backoffDelay: .zero)
        #expect(zero.backoff(afterAttempt: 3) == .zero)
    }

    @Test("jitter stays within the requested spread")
    func jitter() {
        var policy = ResolvedDelivery(retry: 3, backoffPolicy: .linear, backoffDelay: .seconds(10))
        policy.jitter = 0.2
        var generator = SeededGenerator(state: 42)
        var seen = Set<Duration>()
        for _ in 0..<200 {
            let delay = policy.backoff(afterAttempt: 1, using: &generator)
            #expect(delay >= .seconds(8) && delay <= .seconds(12))
            seen.insert(delay)
        }
        #expect(seen.count > 1)
        #expect(policy.backoff(afterAttempt: 1) == .seconds(10))
    }

    @Test("Retry-After is honoured only for 429/503 with retryAfterMax set", arguments: [
        (429, Duration?.some(.seconds(3)), Duration.seconds(5), Duration.seconds(3)),
        (503, .some(.seconds(10)), .seconds(2), .seconds(2)),
        (503, .some(.seconds(10)), .milliseconds(10), .milliseconds(100)),
        (500, .some(.seconds(10)), .seconds(5), .milliseconds(100)),
        (429, nil, .seconds(5), .milliseconds(100)),
        (429, .some(.zero), .seconds(5), .milliseconds(100)),
        (429, .some(.seconds(10)), .seconds(-5), .milliseconds(100)),
    ])
    func retryAfter(status: Int, retryAfterMax: Duration?, retryAfter: Duration, expected: Duration) {
        let policy = ResolvedDelivery(retry: 3, backoffPolicy: .linear, backoffDelay: .milliseconds(100), retryAfterMax: retryAfterMax)
        #expect(policy.retryDelay(afterAttempt: 1, status: status, retryAfter: retryAfter) == expected)
    }
}

@Suite("DeliveryOutcome")
struct DeliveryOutcomeTests {
    @Test("classifies per the Knative data-plane table", arguments: [
        (Int?.none, DeliveryOutcome.retryable),
        (100, .permanentFailure), (102, .permanentFailure),
        (200, .delivered), (201, .delivered), (202, .delivered), (204, .delivered), (299, .delivered),
        (300, .permanentFailure), (301, .permanentFailure), (302, .permanentFailure), (399, .permanentFailure),
        (400, .permanentFailure), (401, .permanentFailure), (403, .permanentFailure),
        (410, .permanentFailure), (413, .permanentFailure), (415, .permanentFailure), (499, .permanentFailure),
        (404, .retryable), (408, .retryable), (409, .retryable), (429, .retryable),
        (500, .retryable), (502, .retryable), (503, .retryable), (504, .retryable), (599, .retryable),
        (-1, .retryable), (0, .retryable), (600, .retryable),
    ])
    func classify(status: Int?, outcome: DeliveryOutcome) {
        #expect(DeliveryOutcome.classify(status: status) == outcome)
    }
}
