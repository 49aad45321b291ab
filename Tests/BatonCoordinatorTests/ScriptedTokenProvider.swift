import BatonTokens
import Foundation

/// A token endpoint that answers from a script, in process: each call takes the next scripted
/// answer (then issues tokens of `lifetime`), and every call is counted. For coordinator tests of
/// scheduling, backoff, blocked states and coalescing that need no real HTTP.
final class ScriptedTokenProvider: TokenProvider, @unchecked Sendable {  // all state behind `lock`
    enum Answer: Sendable {
        case token
        case failure(ProviderFailure)
    }

    private let lock = NSLock()
    private var script: [Answer]
    private var calls: [Date] = []
    private let lifetime: Duration

    init(lifetime: Duration, script: [Answer] = []) {
        self.lifetime = lifetime
        self.script = script
    }

    /// When each call was made, oldest first.
    var callTimes: [Date] { lock.withLock { calls } }
    var callCount: Int { callTimes.count }

    /// Replaces what the next calls answer.
    func answer(_ answers: [Answer]) { lock.withLock { script = answers } }

    func fetchToken(service: String, refreshToken: String?, now: Int64) async throws -> ProviderToken {
        let (answer, number): (Answer, Int) = lock.withLock {
            calls.append(Date())
            return (script.isEmpty ? .token : script.removeFirst(), calls.count)
        }
        switch answer {
        case .token:
            return ProviderToken(
                accessToken: "at-\(number)", tokenType: "Bearer", expiresAt: now + lifetime.milliseconds,
                scope: nil, rotatedRefreshToken: "rt-\(number)")
        case .failure(let failure):
            throw failure
        }
    }
}
