import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Forwards the signals a supervisor receives to its child (`baton lock run`), so that
/// `kill`, Docker's and systemd's SIGTERM reach the command and Baton stays alive to release
/// the lock after it exits.
///
/// SIGINT and SIGQUIT are not forwarded when Baton runs in the terminal's foreground process
/// group: the terminal already sent them to the child, and a second Ctrl-C can mean "force quit".
public final class SignalForwarder: Sendable {
    private let handlers = SignalHandlers()

    /// Starts forwarding `signals` to `child`.
    public init(to child: ChildProcess, signals: [Int32] = [SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT]) {
        let inTerminalForeground = isatty(0) == 1 && tcgetpgrp(0) == getpgrp()
        for signalNumber in signals {
            if inTerminalForeground && (signalNumber == SIGINT || signalNumber == SIGQUIT) {
                // Still ignored here, so Baton outlives the child and releases the lock.
                handlers.ignore([signalNumber])
                continue
            }
            handlers.on([signalNumber]) { child.signal(signalNumber) }
        }
    }

    /// Stops forwarding and restores the default actions.
    public func stop() {
        handlers.cancel()
    }
}

// @unchecked: `lock` guards `sources` and `ignored`; dispatch sources are not Sendable.
/// Runs handlers for signals through dispatch sources. The signals themselves are ignored, so
/// their default action never kills the process in the middle of work (a refresh, a held lock).
public final class SignalHandlers: @unchecked Sendable {
    private let lock = NSLock()
    private var sources: [(Int32, any DispatchSourceSignal)] = []
    private var ignored: [Int32] = []

    /// Creates an empty set of handlers.
    public init() {}

    /// Calls `handler` (on a global queue) whenever one of `signals` arrives.
    public func on(_ signals: [Int32], _ handler: @escaping @Sendable () -> Void) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            lock.withLock { sources.append((number, source)) }
        }
    }

    /// Ignores `signals` until ``cancel()``.
    public func ignore(_ signals: [Int32]) {
        for number in signals { signal(number, SIG_IGN) }
        lock.withLock { ignored += signals }
    }

    /// Removes every handler and restores the default actions.
    public func cancel() {
        let (taken, numbers) = lock.withLock { () -> ([(Int32, any DispatchSourceSignal)], [Int32]) in
            defer {
                sources = []
                ignored = []
            }
            return (sources, ignored)
        }
        for (number, source) in taken {
            source.cancel()
            signal(number, SIG_DFL)
        }
        for number in numbers { signal(number, SIG_DFL) }
    }
}
