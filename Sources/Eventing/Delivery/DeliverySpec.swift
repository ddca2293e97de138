/// How retries are spaced; raw values are Knative's `backoffPolicy` strings.
public enum BackoffPolicy: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    /// Delay after retry *n* is `backoffDelay × n`.
    case linear
    /// Delay after retry *n* is `backoffDelay × 2ⁿ`.
    case exponential

    /// Decodes with a field-specific error instead of a generic `DecodingError`,
    /// so a typo in a manifest says which values are allowed.
    public init(from decoder: any Decoder) throws {
        self = try DeliverySpecError.decodeChoice(from: decoder, field: "backoffPolicy", noun: "backoff policy")
    }
}

/// How events go to the subscriber and the dead-letter sink; raw values are Knative's
/// `format` strings. Without one, Outpost sends binary mode, as Knative's brokers do.
public enum DeliveryFormat: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    /// Structured mode: the whole event as `application/cloudevents+json`.
    case json
    /// Binary mode: attributes in `ce-*` headers, the data as the body.
    case binary

    public init(from decoder: any Decoder) throws {
        self = try DeliverySpecError.decodeChoice(from: decoder, field: "format", noun: "delivery format")
    }
}

/// Delivery options of a Broker or Trigger, field for field Knative's `DeliverySpec`
/// (`pkg/apis/duck/v1/delivery_types.go`). Every field is optional; see
/// ``ResolvedDelivery/resolve(trigger:broker:)`` for how absent fields are filled in.
public struct DeliverySpec: Sendable, Equatable, Hashable, Codable {
    /// Retries after the first attempt before dead-lettering; total attempts are `retry + 1`.
    public var retry: Int32?
    public var backoffPolicy: BackoffPolicy?
    /// Base delay for ``backoffPolicy``.
    public var backoffDelay: ISO8601Duration?
    /// Per-attempt request timeout; must be greater than zero.
    public var timeout: ISO8601Duration?
    /// Upper bound on a `Retry-After` header honoured for 429/503; `PT0S` opts out.
    /// Absent means `Retry-After` is ignored, as with Knative's default feature flags.
    public var retryAfterMax: ISO8601Duration?
    /// Receives events whose delivery failed for good.
    public var deadLetterSink: Destination?
    /// Forces structured (`json`) or binary delivery.
    public var format: DeliveryFormat?

    public init(
        retry: Int32? = nil,
        backoffPolicy: BackoffPolicy? = nil,
        backoffDelay: ISO8601Duration? = nil,
        timeout: ISO8601Duration? = nil,
        retryAfterMax: ISO8601Duration? = nil,
        deadLetterSink: Destination? = nil,
        format: DeliveryFormat? = nil
    ) {
        self.retry = retry
        self.backoffPolicy = backoffPolicy
        self.backoffDelay = backoffDelay
        self.timeout = timeout
        self.retryAfterMax = retryAfterMax
        self.deadLetterSink = deadLetterSink
        self.format = format
    }

    /// Throws the first problem found; see ``validationErrors(path:)``.
    public func validate(path: String = "delivery") throws(DeliverySpecError) {
        if let first = validationErrors(path: path).first { throw first }
    }

    /// Every problem with this spec, so an API response can list them all at once.
    ///
    /// Duration syntax and the backoff policy are already checked while decoding;
    /// this covers the rules that need the decoded value.
    public func validationErrors(path: String = "delivery") -> [DeliverySpecError] {
        var errors: [DeliverySpecError] = []
        if let retry, retry < 0 {
            errors.append(DeliverySpecError(path: "\(path).retry", message: "\(retry) is negative; use 0 (no retries) or more"))
        }
        if let timeout, timeout == .zero {
            errors.append(DeliverySpecError(path: "\(path).timeout", message: "\(timeout) must be greater than zero, e.g. PT30S"))
        }
        if let deadLetterSink {
            errors += deadLetterSink.validationErrors(path: "\(path).deadLetterSink")
        }
        return errors
    }
}
