import Foundation

/// When and how long to wait before trying a request again.
///
/// Retried: connection errors, timeouts, HTTP 408, 429 and 5xx (500, 502, 503, 504).
/// The delay doubles from `initialDelay` up to `maxDelay`, with ±`jitter` spread so that
/// many workers do not retry in step; a `Retry-After` header (seconds or an HTTP date)
/// replaces the computed delay, capped at `maxRetryAfter`.
///
/// With `standard`, a request that never succeeds gives up after 6 attempts and at most
/// about 0.25 + 0.5 + 1 + 2 + 4 s ≈ 8 s of waiting (plus jitter), or 5 × `maxRetryAfter`
/// when the registry keeps asking for more.
public struct RetryPolicy: Sendable {
    /// Total attempts, the first one included. 1 means no retry.
    public var maxAttempts: Int
    public var initialDelay: Duration
    public var maxDelay: Duration
    /// The longest `Retry-After` honoured.
    public var maxRetryAfter: Duration
    /// Fraction of the delay added or removed at random (0 to 1).
    public var jitter: Double
    /// How to wait. Tests inject a recorder; production sleeps the thread.
    public var sleep: @Sendable (Duration) -> Void

    public init(
        maxAttempts: Int = 6,
        initialDelay: Duration = .milliseconds(250),
        maxDelay: Duration = .seconds(8),
        maxRetryAfter: Duration = .seconds(30),
        jitter: Double = 0.2,
        sleep: @escaping @Sendable (Duration) -> Void = { duration in
            let (seconds, attoseconds) = duration.components
            Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
        }
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
        self.jitter = min(max(jitter, 0), 1)
        self.sleep = sleep
    }

    /// Six attempts, 250 ms doubling to 8 s, 20 % jitter.
    public static let standard = RetryPolicy()
    /// A single attempt.
    public static let never = RetryPolicy(maxAttempts: 1)

    /// The wait after failed attempt number `attempt` (1-based).
    public func delay(afterAttempt attempt: Int, retryAfter: String?, now: Date = Date()) -> Duration {
        if let retryAfter, let requested = Self.parseRetryAfter(retryAfter, now: now) {
            return min(requested, maxRetryAfter)
        }
        let exponent = min(max(attempt - 1, 0), 30)
        let base = min(initialDelay * (1 << exponent), maxDelay)
        let spread = Double.random(in: -jitter...jitter)
        return base + base * spread
    }

    /// `Retry-After` is delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
    static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(max(0, Int(date.timeIntervalSince(now) * 1000)))
    }
}
