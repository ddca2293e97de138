/// The delivery policy actually applied to one trigger, with every default filled in.
///
/// ## Override semantics
/// ``resolve(trigger:broker:)`` follows Knative, which picks **one whole spec** rather
/// than merging fields: the trigger's `delivery` if it has one, otherwise the broker's,
/// otherwise the platform default (Knative's `config-br-defaults`). The MT broker does
/// exactly this (`delivery := t.Spec.Delivery; if nil { b.Spec.Delivery }`), so the same
/// manifest yields the same attempt count on Outpost and on Knative. In particular a
/// trigger spec without `retry` means zero retries, not the broker's count.
///
/// Two exceptions, both deliberate:
/// - `deadLetterSink` falls back to the broker's when the chosen trigger spec has none;
///   Knative's trigger reconciler does the same ("resolve the trigger's dls first, fall
///   back to the broker's").
/// - a missing `backoffPolicy` or `backoffDelay` takes the platform default (exponential,
///   `PT0.2S`). Knative retries with *no* delay in that case, which turns a struggling
///   recipient into a hot loop; a zero delay can still be asked for with `PT0S`.
///
/// A missing `timeout` becomes ``defaultAttemptTimeout``. That bound is Outpost's
/// choice, not Knative's: without one, a recipient that never answers would hold a
/// delivery worker indefinitely.
public struct ResolvedDelivery: Sendable, Equatable {
    /// `retry` of Knative's `config-br-defaults`.
    public static let defaultRetry: Int32 = 10
    /// `backoffPolicy` of Knative's `config-br-defaults`.
    public static let defaultBackoffPolicy: BackoffPolicy = .exponential
    /// `backoffDelay` of Knative's `config-br-defaults` (`PT0.2S`).
    public static let defaultBackoffDelay = ISO8601Duration(uncheckedNanoseconds: 200_000_000)
    /// Per-attempt timeout when no spec sets one. Outpost's choice, long enough for a
    /// cold-started function and short enough to free the worker from a hung peer.
    public static let defaultAttemptTimeout: Duration = .seconds(30)
    /// Ceiling for any computed backoff. Exponential growth passes an hour after about
    /// 14 retries of `PT0.2S`; beyond that, waiting longer only delays dead-lettering.
    public static let maximumBackoff: Duration = .seconds(3_600)

    /// The spec applied when neither trigger nor broker has one (`config-br-defaults`).
    public static let platformDefault = DeliverySpec(
        retry: defaultRetry,
        backoffPolicy: defaultBackoffPolicy,
        backoffDelay: defaultBackoffDelay
    )

    /// Retries after the first attempt; ``maxAttempts`` is `retry + 1`.
    public var retry: Int
    public var backoffPolicy: BackoffPolicy
    public var backoffDelay: Duration
    public var attemptTimeout: Duration
    /// Cap for `Retry-After` on 429/503; `nil` ignores the header, `.zero` opts out.
    public var retryAfterMax: Duration?
    public var deadLetterSink: Destination?
    /// Structured or binary mode, for the subscriber and the dead-letter sink alike.
    public var format: DeliveryFormat
    /// Random spread applied to computed backoff, as a fraction in `0...1`: `0.2` draws
    /// the delay uniformly from ±20 % around the computed value. Knative applies none,
    /// so the default is `0`; a broker fanning out to many triggers may want some so
    /// retries after a shared outage do not arrive in lockstep.
    public var jitter: Double

    public init(
        retry: Int,
        backoffPolicy: BackoffPolicy,
        backoffDelay: Duration,
        attemptTimeout: Duration = ResolvedDelivery.defaultAttemptTimeout,
        retryAfterMax: Duration? = nil,
        deadLetterSink: Destination? = nil,
        format: DeliveryFormat = .binary,
        jitter: Double = 0
    ) {
        self.retry = max(0, retry)
        self.backoffPolicy = backoffPolicy
        self.backoffDelay = max(.zero, backoffDelay)
        self.attemptTimeout = attemptTimeout
        self.retryAfterMax = retryAfterMax
        self.deadLetterSink = deadLetterSink
        self.format = format
        self.jitter = jitter
    }

    /// Attempts to the subscriber before dead-lettering, and to the dead-letter sink
    /// before dropping: exactly `retry + 1`.
    public var maxAttempts: Int { retry + 1 }

    /// The effective policy for a trigger; see the type documentation for the rules.
    public static func resolve(trigger: DeliverySpec?, broker: DeliverySpec?) -> ResolvedDelivery {
        let chosen = trigger ?? broker ?? platformDefault
        return ResolvedDelivery(
            retry: Int(chosen.retry ?? 0),
            backoffPolicy: chosen.backoffPolicy ?? defaultBackoffPolicy,
            backoffDelay: (chosen.backoffDelay ?? defaultBackoffDelay).duration,
            attemptTimeout: chosen.timeout?.duration ?? defaultAttemptTimeout,
            retryAfterMax: chosen.retryAfterMax?.duration,
            deadLetterSink: trigger?.deadLetterSink ?? broker?.deadLetterSink,
            format: chosen.format ?? .binary
        )
    }

    /// Delay before retry number `n` (the first retry is `n = 1`), without jitter.
    ///
    /// Linear: `backoffDelay × n`; exponential: `backoffDelay × 2ⁿ`; both capped at
    /// ``maximumBackoff``. This is the formula and numbering of Knative's
    /// `RetryConfigFromDeliverySpec` and its tests (PT0.5S exponential → 1 s, 2 s, 4 s…).
    /// Values of `n` below 1 are treated as 1.
    public func backoff(afterAttempt n: Int) -> Duration {
        let cap = Self.maximumBackoff.totalNanoseconds ?? Int64.max
        guard let base = backoffDelay.totalNanoseconds, base > 0 else { return .zero }
        let retryNumber = Int64(max(1, n))
        let multiplier: Int64
        switch backoffPolicy {
        case .linear:
            multiplier = retryNumber
        case .exponential:
            guard retryNumber < 63 else { return .nanoseconds(cap) }
            multiplier = Int64(1) << retryNumber
        }
        let (product, overflow) = base.multipliedReportingOverflow(by: multiplier)
        return .nanoseconds(overflow ? cap : min(product, cap))
    }

    /// ``backoff(afterAttempt:)`` with ``jitter`` applied, drawing from `generator`.
    public func backoff(afterAttempt n: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let base = backoff(afterAttempt: n)
        let spread = min(max(jitter, 0), 1)
        guard spread > 0, let nanos = base.totalNanoseconds, nanos > 0 else { return base }
        let factor = 1 + spread * Double.random(in: -1...1, using: &generator)
        let cap = Double(Self.maximumBackoff.totalNanoseconds ?? Int64.max)
        return .nanoseconds(Int64(min(max(Double(nanos) * factor, 0), cap)))
    }

    /// The wait before the retry that follows failed attempt `n`, honouring `Retry-After`.
    ///
    /// `Retry-After` counts only for 429 and 503 and only when ``retryAfterMax`` is set
    /// (Knative's opt-in); then the wait is the larger of the computed backoff and the
    /// header value capped at `retryAfterMax`. Jitter never shortens the recipient's request.
    public func retryDelay(
        afterAttempt n: Int,
        status: Int?,
        retryAfter: Duration?,
        using generator: inout some RandomNumberGenerator
    ) -> Duration {
        let computed = backoff(afterAttempt: n, using: &generator)
        guard let retryAfterMax, let retryAfter, status == 429 || status == 503 else { return computed }
        let honoured = min(max(retryAfter, .zero), retryAfterMax)
        return max(computed, honoured)
    }

    /// ``retryDelay(afterAttempt:status:retryAfter:using:)`` with the system generator,
    /// which is only consulted when ``jitter`` is non-zero.
    public func retryDelay(afterAttempt n: Int, status: Int?, retryAfter: Duration?) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return retryDelay(afterAttempt: n, status: status, retryAfter: retryAfter, using: &generator)
    }
}
