/// What one delivery attempt's result means, per the Knative data-plane contract
/// (knative/specs `data-plane.md`) and `SelectiveRetry` in knative/eventing
/// `pkg/kncloudevents/retries.go`.
public enum DeliveryOutcome: Sendable, Equatable, Hashable {
    /// The recipient accepted the event (any 2xx).
    case delivered
    /// Try again after backoff: network errors, timeouts, 404, 408, 409, 429, 5xx,
    /// and codes outside 100–599 (the contract says unknown codes are retriable).
    case retryable
    /// Not retried and not delivered: other 4xx, and 1xx/3xx, which the contract
    /// marks as neither retried nor completed (CloudEvents webhooks must not redirect).
    case permanentFailure

    /// Classifies an HTTP status; `nil` means no response (connection error or timeout).
    public static func classify(status: Int?) -> DeliveryOutcome {
        guard let status else { return .retryable }
        switch status {
        case 200...299:
            return .delivered
        case 404, 408, 409, 429, 500...599:
            // 404 is retried because a recipient that is still starting answers 404.
            return .retryable
        case 100...199, 300...499:
            return .permanentFailure
        default:
            return .retryable
        }
    }
}
