import BatonSupport

/// The deadline and pauses of one call's retries.
struct RetryClock {
    private let deadline: ContinuousClock.Instant
    private var backoff = Backoff(base: .milliseconds(10), cap: .milliseconds(500))

    init(budget: Duration) {
        deadline = .now + budget
    }

    /// Whether the budget is spent: answers are then returned (or errors thrown) as they are.
    var isOver: Bool { ContinuousClock.now >= deadline }

    /// The next pause, never past the deadline.
    mutating func nextPause() -> Duration {
        min(backoff.next(), max(.zero, deadline - .now))
    }
}

/// The state of one exclusive-connection call across its retries.
struct ExclusiveAttempt {
    var target: RedisEndpoint.Transport
    var asking = false
    var redirects = 0
    var retry: RetryClock

    enum Step {
        /// Give up: the error reaches the caller.
        case fail
        /// Run again on the node named (``target`` and ``asking`` are set).
        case redirect(ClusterRedirect)
        /// Run again on the slot's master after a pause (`TRYAGAIN`, `CLUSTERDOWN`).
        case pause
        /// Nothing was sent: load a new map, then run again on the slot's master.
        case refreshMap
    }

    init(target: RedisEndpoint.Transport, budget: Duration) {
        self.target = target
        self.retry = RetryClock(budget: budget)
    }

    mutating func next(after error: RedisError, bodyStarted: Bool) -> Step {
        guard !retry.isOver else { return .fail }
        var replyingHost: String?
        if case .tcp(let host, _) = target { replyingHost = host }
        if let redirect = error.clusterRedirect(replyingHost: replyingHost), redirects < ClusterRouter.maxRedirects {
            redirects += 1
            target = redirect.target
            asking = redirect.kind == .ask
            return .redirect(redirect)
        }
        asking = false
        if let message = error.serverError?.message, ClusterRedirect.asksToRetryLater(message) { return .pause }
        if !bodyStarted && error.meansNothingWasSent { return .refreshMap }
        return .fail
    }
}
