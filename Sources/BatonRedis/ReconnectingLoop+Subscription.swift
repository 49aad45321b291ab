import BatonSupport

extension ReconnectingLoop where Connection == RedisSubscription {
    /// A pub/sub listener: a dedicated ``RedisSubscription`` to `channels` and `patterns`, renewed
    /// after every failure, that reports each message and each (re)subscription.
    ///
    /// ``RedisSubscription/Event/resubscribed`` is reported after the first subscription too:
    /// either way messages may have been missed, and the listener should re-read the state it
    /// follows.
    /// - Parameters:
    ///   - pollInterval: the longest wait for one message, i.e. how soon ``stop()`` is noticed.
    ///     Default: 250 ms.
    ///   - onEvent: runs on the loop's thread for every message and (re)subscription.
    public convenience init(
        name: String,
        endpoint: RedisEndpoint,
        options: RedisConnectionOptions,
        channels: [String] = [],
        patterns: [String] = [],
        pollInterval: Duration = .milliseconds(250),
        backoff: Backoff = defaultBackoff,
        onEvent: @escaping @Sendable (RedisSubscription.Event) -> Void,
        onError: @escaping @Sendable (any Error) -> Void = { _ in }
    ) {
        self.init(
            name: name,
            backoff: backoff,
            connect: {
                let subscription = try RedisSubscription(endpoint: endpoint, options: options)
                try subscription.subscribe(channels)
                try subscription.psubscribe(patterns)
                return subscription
            },
            onConnect: { _ in onEvent(.resubscribed) },
            step: { subscription in
                if let event = try subscription.next(timeout: pollInterval) { onEvent(event) }
            },
            onError: onError
        )
    }
}
