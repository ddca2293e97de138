/// Istio's `HTTPRetry` as Envoy runs it: up to `attempts` retries of a failed attempt, each on
/// another worker when there is one, after a jittered exponential backoff (25 ms base).
///
/// A request is retried only while no response byte went to the client and its whole body is
/// still held (bodies up to ``maxReplayBytes``); a larger body turns retries off for that
/// request, as Envoy does when its retry buffer overflows.
public struct RetryPolicy: Sendable, Hashable {
    /// Failure kinds named in `retryOn` (Envoy's `x-envoy-retry-on` values).
    public struct Conditions: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        /// `5xx`: any 5xx response, a reset, or a per-try timeout.
        public static let fiveXX = Conditions(rawValue: 1 << 0)
        /// `gateway-error`: 502, 503, 504, or a per-try timeout.
        public static let gatewayError = Conditions(rawValue: 1 << 1)
        /// `reset`: the worker closed the connection before answering.
        public static let reset = Conditions(rawValue: 1 << 2)
        /// `reset-before-request`: as `reset`, but only while nothing of the request was
        /// written to the worker (a connect failure, or a head still held back), so a request
        /// the worker may have acted on is never sent twice.
        public static let resetBeforeRequest = Conditions(rawValue: 1 << 8)
        /// `connect-failure`: the connection to the worker could not be opened.
        public static let connectFailure = Conditions(rawValue: 1 << 3)
        /// `retriable-4xx`: 409.
        public static let retriable4xx = Conditions(rawValue: 1 << 4)
        /// `retriable-status-codes`: the codes in ``RetryPolicy/retriableStatusCodes``.
        public static let retriableStatusCodes = Conditions(rawValue: 1 << 5)
        /// `refused-stream`: an HTTP/2 stream refused; an HTTP/1.1 worker cannot refuse one.
        public static let refusedStream = Conditions(rawValue: 1 << 6)
        /// `unavailable`, `cancelled` and the other gRPC conditions; they name gRPC statuses,
        /// which HTTP/1.1 workers never send, so they are accepted and never fire.
        public static let grpc = Conditions(rawValue: 1 << 7)
    }

    /// Retries after the first attempt (`0` disables retries).
    public var attempts: Int
    /// Bound on each attempt until its response head arrives; `nil` means only the request
    /// timeout applies.
    public var perTryTimeout: Duration?
    /// When an attempt counts as failed.
    public var conditions: Conditions
    /// Status codes retried under `retriable-status-codes` (integers in `retryOn`).
    public var retriableStatusCodes: Set<Int>

    /// Creates a policy.
    public init(attempts: Int, perTryTimeout: Duration? = nil, conditions: Conditions, retriableStatusCodes: Set<Int> = []) {
        precondition(attempts >= 0, "attempts must not be negative")
        self.attempts = attempts
        self.perTryTimeout = perTryTimeout
        self.conditions = conditions
        self.retriableStatusCodes = retriableStatusCodes
    }

    /// Istio's default `retryOn`.
    public static let istioDefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"

    /// Istio's policy for routes that set none: 2 retries on connect failures and 503.
    public static let istioDefault = try! RetryPolicy(attempts: 2, perTryTimeout: nil, retryOn: istioDefaultRetryOn, defaultCodes: [503])

    /// No retries.
    public static let none = RetryPolicy(attempts: 0, conditions: [])

    /// Parses Istio's `retryOn` the way istio/istio `retry.go` does: comma-separated Envoy
    /// conditions; integers become retriable status codes (and imply `retriable-status-codes`).
    /// Without `retryOn`, the default conditions and 503 apply. Throws ``RetryOnError`` for an
    /// unknown condition.
    public init(attempts: Int, perTryTimeout: Duration? = nil, retryOn: String?) throws(RetryOnError) {
        try self.init(attempts: attempts, perTryTimeout: perTryTimeout, retryOn: retryOn ?? Self.istioDefaultRetryOn,
                      defaultCodes: retryOn == nil ? [503] : [])
    }

    private init(attempts: Int, perTryTimeout: Duration?, retryOn: String, defaultCodes: Set<Int>) throws(RetryOnError) {
        var conditions: Conditions = []
        var codes = defaultCodes
        for token in retryOn.split(separator: ",") {
            let name = token.trimmingASCIIWhitespace()
            if name.isEmpty { continue }
            if let code = Int(name) {
                guard (100...599).contains(code) else { throw RetryOnError(token: String(name)) }
                codes.insert(code)
                conditions.insert(.retriableStatusCodes)
                continue
            }
            switch name {
            case "5xx": conditions.insert(.fiveXX)
            case "gateway-error": conditions.insert(.gatewayError)
            case "reset": conditions.insert(.reset)
            case "reset-before-request": conditions.insert(.resetBeforeRequest)
            case "connect-failure": conditions.insert(.connectFailure)
            case "retriable-4xx": conditions.insert(.retriable4xx)
            case "retriable-status-codes": conditions.insert(.retriableStatusCodes)
            case "refused-stream": conditions.insert(.refusedStream)
            case "unavailable", "cancelled", "deadline-exceeded", "internal", "resource-exhausted":
                conditions.insert(.grpc)
            case "retriable-headers", "http3-post-connect-failure", "envoy-ratelimited":
                conditions.insert(.grpc)  // accepted; nothing in HTTP/1.1 proxying triggers them
            default:
                throw RetryOnError(token: String(name))
            }
        }
        self.init(attempts: attempts, perTryTimeout: perTryTimeout, conditions: conditions, retriableStatusCodes: codes)
    }

    /// Whether a response with `status` is a failed attempt.
    public func retries(status: Int) -> Bool {
        if conditions.contains(.fiveXX), status >= 500 { return true }
        if conditions.contains(.gatewayError), status == 502 || status == 503 || status == 504 { return true }
        if conditions.contains(.retriable4xx), status == 409 { return true }
        return conditions.contains(.retriableStatusCodes) && retriableStatusCodes.contains(status)
    }

    /// Whether a failed connect is a failed attempt.
    public var retriesConnectFailure: Bool {
        !conditions.isDisjoint(with: [.connectFailure, .fiveXX, .gatewayError, .resetBeforeRequest])
    }

    /// Whether a connection closed before the response head is a failed attempt; `requestSent`
    /// tells whether any of the request was written to the worker (`reset-before-request`
    /// retries only when none was). As in Envoy, `5xx` and `gateway-error` cover resets too.
    public func retriesReset(requestSent: Bool) -> Bool {
        !conditions.isDisjoint(with: [.reset, .fiveXX, .gatewayError]) || (!requestSent && conditions.contains(.resetBeforeRequest))
    }

    /// Whether a per-try timeout is a failed attempt (else it ends the request with 504).
    public var retriesPerTryTimeout: Bool { !conditions.isDisjoint(with: [.fiveXX, .gatewayError, .reset]) }

    /// Largest request body kept for replay.
    public static let maxReplayBytes = 64 * 1024

    /// Envoy's jittered exponential backoff before retry number `retry` (1-based): a random
    /// wait below `base × (2^retry − 1)`, at most `10 × base`. `random` is any 64-bit value.
    public static func backoff(retry: Int, random: UInt64, base: Duration = .milliseconds(25)) -> Duration {
        let baseNanos = UInt64(base.components.seconds) * 1_000_000_000 + UInt64(base.components.attoseconds / 1_000_000_000)
        let maxNanos = baseNanos * 10
        let multiplier = (UInt64(1) << UInt64(min(max(retry, 1), 20))) - 1
        let ceiling = min(multiplier * baseNanos, maxNanos)
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64(random % ceiling))
    }
}

/// A `retryOn` token that is neither a known condition nor a status code.
public struct RetryOnError: Error, Sendable, Hashable {
    /// The token as written.
    public var token: String
}
