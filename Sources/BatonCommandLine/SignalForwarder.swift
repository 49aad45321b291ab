import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Forwards the signals a supervisor receives to its child (`baton lock run`), so that
/// `kill`, Docker's and systemd's SIGTERM reach the command and Baton stays alive to release
/// the lock after it exits.
///
/// SIGINT and SIGQUIT are not forwarded when Baton runs in the terminal's foreground process
/// group: the terminal already sent them to the child, and a second Ctrl-C can mean "force quit".
public final class SignalForwarder: @unchecked Sendable {
    private var sources: [(Int32, any DispatchSourceSignal)] = []

    /// Starts forwarding `signals` to `child`.
    public init(to child: ChildProcess, signals: [Int32] = [SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT]) {
        let inTerminalForeground = isatty(0) == 1 && tcgetpgrp(0) == getpgrp()
        for signalNumber in signals {
            // Ignored in this process so the default action does not kill Baton before it releases.
            signal(signalNumber, SIG_IGN)
            if inTerminalForeground && (signalNumber == SIGINT || signalNumber == SIGQUIT) { continue }
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { child.signal(signalNumber) }
            source.resume()
            sources.append((signalNumber, source))
        }
    }

    /// Stops forwarding and restores the default actions.
    public func stop() {
        for (signalNumber, source) in sources {
            source.cancel()
            signal(signalNumber, SIG_DFL)
        }
        sources = []
    }
}
