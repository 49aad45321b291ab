import BatonSupport
import Foundation

/// What this process knows about one master watched by Redis Sentinel: where it is now, and an
/// epoch that changes whenever it may have moved. Shared by every connection to that master.
///
/// Discovery follows the Redis Sentinel client specification: ask each Sentinel in turn, with a
/// short timeout, for `SENTINEL get-master-addr-by-name`; the first that answers moves to the
/// front of the list; the connection then checks with `ROLE` that the server is a master.
///
/// The known address is forgotten, and ``epoch`` moves on, when:
/// - a connection to it fails, or it answers `ROLE` as a replica, or a write gets `READONLY`
///   (``masterMayHaveMoved(from:epoch:)``);
/// - a Sentinel announces `+switch-master` for this master (a ``ReconnectingLoop`` subscribed on
///   one Sentinel at a time: Baton's one listener loop), or that listener reconnects and finds the
///   Sentinels naming another master than the one known.
/// Every connection made from an older epoch is then dropped before its next command (pool,
/// listeners, the request-queue consumer alike), so all of them follow the master.
final class SentinelMonitor: Sendable {
    /// The master as last discovered, and the epoch it belongs to.
    struct Master: Sendable {
        let transport: RedisEndpoint.Transport
        let epoch: Int
    }

    private struct State: Sendable {
        var sentinels: [RedisEndpoint.Transport]
        var master: RedisEndpoint.Transport?
        var epoch = 0
        var listening = false
    }

    private struct Key: Hashable {
        let sentinels: [RedisEndpoint.Transport]
        let masterName: String
        let tls: RedisTLSOptions?
    }

    private static let monitors = LockedBox([Key: SentinelMonitor]())

    /// The monitor for `endpoint`'s Sentinels and master name (one per process).
    static func shared(for endpoint: RedisEndpoint) -> SentinelMonitor {
        guard case .sentinel(let sentinels, let masterName) = endpoint.topology else {
            preconditionFailure("a Sentinel monitor needs a redis-sentinel:// endpoint")
        }
        let key = Key(sentinels: sentinels, masterName: masterName, tls: endpoint.tls)
        return monitors.withLockedValue { monitors in
            if let existing = monitors[key] { return existing }
            let made = SentinelMonitor(endpoint: endpoint, sentinels: sentinels, masterName: masterName)
            monitors[key] = made
            return made
        }
    }

    let masterName: String
    private let sentinelTemplate: RedisEndpoint
    private let state: LockedBox<State>
    private let listener = LockedBox<ReconnectingLoop<RedisSubscription>?>(nil)

    private init(endpoint: RedisEndpoint, sentinels: [RedisEndpoint.Transport], masterName: String) {
        self.masterName = masterName
        let environment = ProcessInfo.processInfo.environment
        // Sentinels have credentials of their own (or none); the URL's are the master's.
        var template = RedisEndpoint(
            transport: sentinels[0], username: environment[BatonDefaults.sentinelUserVariable],
            password: environment[BatonDefaults.sentinelPasswordVariable], tls: endpoint.tls)
        if template.password?.isEmpty ?? false { template.password = nil }
        self.sentinelTemplate = template
        self.state = LockedBox(State(sentinels: sentinels))
    }

    /// Changes whenever the master may have moved.
    var epoch: Int { state.withLockedValue { $0.epoch } }

    /// The current master: the known one, or one the Sentinels name now.
    /// - Throws: ``RedisError/masterUnavailable(masterName:reasons:)`` when no Sentinel names one.
    func master(options: RedisConnectionOptions) throws -> Master {
        startListening(options: options)
        if let known = state.withLockedValue({ state in state.master.map { Master(transport: $0, epoch: state.epoch) } }
        ) {
            return known
        }
        let (epoch, sentinels) = state.withLockedValue { ($0.epoch, $0.sentinels) }
        let (found, answering) = try askSentinels(sentinels, options: options)
        return state.withLockedValue { state in
            if state.epoch == epoch {
                state.master = found
                // The specification: the Sentinel that answered goes first next time.
                if let index = state.sentinels.firstIndex(of: answering) {
                    state.sentinels.insert(state.sentinels.remove(at: index), at: 0)
                }
            }
            return Master(transport: state.master ?? found, epoch: state.epoch)
        }
    }

    /// Forgets the master at `address` if it is still the known one of `epoch`.
    func masterMayHaveMoved(from address: String, epoch: Int?) {
        state.withLockedValue { state in
            guard let known = state.master, RedisEndpoint.address(of: known) == address else { return }
            guard epoch == nil || epoch == state.epoch else { return }
            state.master = nil
            state.epoch += 1
        }
    }

    /// Records a master that a Sentinel announced (or named after a reconnect); moves the epoch
    /// on when it differs from the known one.
    private func masterAnnounced(_ transport: RedisEndpoint.Transport) {
        state.withLockedValue { state in
            guard state.master != transport else { return }
            state.master = transport
            state.epoch += 1
        }
    }

    /// Asks each Sentinel in turn; returns the master and the Sentinel that named it.
    private func askSentinels(_ sentinels: [RedisEndpoint.Transport], options: RedisConnectionOptions) throws
        -> (RedisEndpoint.Transport, RedisEndpoint.Transport)
    {
        var reasons: [String] = []
        for sentinel in sentinels {
            do {
                let connection = try RedisConnection(
                    endpoint: sentinelTemplate.server(at: sentinel), options: Self.sentinelOptions(options))
                let reply = try connection.send(RedisCommand("SENTINEL", "get-master-addr-by-name", masterName))
                guard let parts = reply.array, parts.count == 2, let host = parts[0].string,
                    let port = parts[1].string.flatMap({ Int($0) })
                else {
                    reasons.append(
                        "\(RedisEndpoint.address(of: sentinel)): does not monitor a master named '\(masterName)'")
                    continue
                }
                return (.tcp(host: host, port: port), sentinel)
            } catch {
                reasons.append("\(RedisEndpoint.address(of: sentinel)): \(error)")
            }
        }
        throw RedisError.masterUnavailable(masterName: masterName, reasons: reasons)
    }

    /// Short timeouts and a single attempt per Sentinel: the next Sentinel is the retry.
    private static func sentinelOptions(_ options: RedisConnectionOptions) -> RedisConnectionOptions {
        var short = options
        short.connectTimeout = min(options.connectTimeout, .milliseconds(500))
        short.commandTimeout = .seconds(1)
        short.reconnect = .never
        return short
    }

    // MARK: - +switch-master

    private func startListening(options: RedisConnectionOptions) {
        let loop = listener.withLockedValue { listener -> ReconnectingLoop<RedisSubscription>? in
            guard listener == nil else { return nil }
            let made = makeListener(options: Self.sentinelOptions(options))
            listener = made
            return made
        }
        loop?.start()
    }

    /// Subscribes to `+switch-master` on the first Sentinel that accepts; after a reconnect,
    /// asks the Sentinels again, since a switch may have been announced while nobody listened.
    private func makeListener(options: RedisConnectionOptions) -> ReconnectingLoop<RedisSubscription> {
        let channel = "+switch-master"
        return ReconnectingLoop(
            name: "baton-sentinel",
            connect: { [self] in
                var lastError: (any Error)?
                for sentinel in state.withLockedValue({ $0.sentinels }) {
                    do {
                        let subscription = try RedisSubscription(
                            endpoint: sentinelTemplate.server(at: sentinel), options: options)
                        try subscription.subscribe([channel])
                        return subscription
                    } catch {
                        lastError = error
                    }
                }
                throw lastError ?? RedisError.masterUnavailable(masterName: masterName, reasons: [])
            },
            onConnect: { [self] _ in
                let sentinels = state.withLockedValue { $0.sentinels }
                if let (named, _) = try? askSentinels(sentinels, options: options) { masterAnnounced(named) }
            },
            step: { [self] subscription in
                guard case .message(let message)? = try subscription.next(timeout: .milliseconds(500)) else { return }
                // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
                let words = message.text.split(separator: " ")
                guard words.count == 5, words[0] == masterName, let port = Int(words[4]) else { return }
                masterAnnounced(.tcp(host: String(words[3]), port: port))
            }
        )
    }
}
