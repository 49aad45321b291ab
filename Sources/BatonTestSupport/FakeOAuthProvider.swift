import BatonCommandLine
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

// @unchecked: owns a `Process`, which is not Sendable; tests call it from one task at a time.
/// The fake OAuth provider (`Tests/Support/fake_oauth_provider.py`) as a child process: a free
/// loopback port, stopped in `deinit`. Admin calls go through its JSON admin API.
public final class FakeOAuthProvider: @unchecked Sendable {
    /// Problems starting it.
    public enum StartError: Error, CustomStringConvertible {
        case pythonMissing
        case didNotStart(log: String)

        public var description: String {
            switch self {
            case .pythonMissing:
                return
                    "python3 is not installed: the fake OAuth provider needs it. Install it with `apt-get install -y python3`."
            case .didNotStart(let log): return "the fake OAuth provider did not start within 10 s. Its output:\n\(log)"
            }
        }
    }

    /// The default client the provider accepts.
    public static let clientID = "baton-client"
    /// Its secret.
    public static let clientSecret = "baton-secret"

    /// The port it listens on (127.0.0.1).
    public let port: Int
    private let process: ChildProcess
    private let logFile: URL

    /// `http://127.0.0.1:PORT/token`.
    public var tokenURL: String { "http://127.0.0.1:\(port)/token" }

    /// The provider script's path.
    public static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Tests/Support/fake_oauth_provider.py").path
    }

    /// Starts a provider issuing tokens that live `lifetime` seconds; `clients` are `ID:SECRET`,
    /// passed through the environment (`FAKE_OAUTH_CLIENTS`), never its arguments: a leak hunt
    /// searches every process's argument list for client secrets.
    public static func start(lifetime: Double = 10, clients: [String] = ["\(clientID):\(clientSecret)"]) throws
        -> FakeOAuthProvider
    {
        let python =
            ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "python3"
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fake-oauth-\(UUID().uuidString).log")
        let arguments = [scriptPath, "--port", "0", "--lifetime", String(lifetime), "--quiet"]
        let process: ChildProcess
        do {
            process = try ChildProcess(
                executable: python, arguments: arguments, streams: .file(log.path),
                environment: ["FAKE_OAUTH_CLIENTS": clients.joined(separator: "\n")])
        } catch {
            throw StartError.pythonMissing
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let text = try? String(contentsOf: log, encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }),
                let port = Int(line.dropFirst(5))
            {
                return FakeOAuthProvider(port: port, process: process, logFile: log)
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        process.terminate()
        throw StartError.didNotStart(log: (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    private init(port: Int, process: ChildProcess, logFile: URL) {
        self.port = port
        self.process = process
        self.logFile = logFile
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: logFile)
    }

    /// Stops the provider.
    public func stop() {
        if process.isRunning { process.terminate(grace: 2) }
    }

    /// Issues a valid refresh token for `clientID`.
    public func seedRefreshToken(clientID: String = FakeOAuthProvider.clientID) throws -> String {
        try admin("/admin/seed", ["client_id": clientID])["refresh_token"] as? String ?? ""
    }

    /// Makes the next `count` token requests (all until ``reset()`` when `nil`) answer as `mode`,
    /// after `delay` seconds (or, with `delayBefore`, slow before doing anything and not at all if
    /// the client went away). See the script's docstring for the modes.
    public func setMode(
        _ mode: String, count: Int? = nil, delay: Double = 0, delayBefore: Double = 0, retryAfter: String? = nil
    ) throws {
        var body: [String: Any] = ["mode": mode, "delay": delay, "delay_before": delayBefore]
        if let count { body["count"] = count }
        if let retryAfter { body["retry_after"] = retryAfter }
        _ = try admin("/admin/mode", body)
    }

    /// Changes the lifetime of tokens issued from now on.
    public func setLifetime(_ seconds: Double) throws {
        _ = try admin("/admin/lifetime", ["seconds": seconds])
    }

    /// Issues an authorization code bound to a PKCE challenge.
    public func issueCode(challenge: String?, redirectURI: String, clientID: String = FakeOAuthProvider.clientID) throws
        -> String
    {
        var body: [String: Any] = ["client_id": clientID, "redirect_uri": redirectURI]
        if let challenge { body["code_challenge"] = challenge }
        return try admin("/admin/code", body)["code"] as? String ?? ""
    }

    /// Forgets modes and counters.
    public func reset() throws {
        _ = try admin("/admin/reset", [:])
    }

    /// Call counters: `calls` per grant, `invalid_grant`, `token_requests`, `by_client`, `last`.
    public func stats() throws -> [String: Any] {
        try request("GET", "/admin/stats", nil)
    }

    /// `stats()["token_requests"]`.
    public func tokenRequests() throws -> Int { try stats()["token_requests"] as? Int ?? -1 }
    /// `stats()["invalid_grant"]`.
    public func invalidGrants() throws -> Int { try stats()["invalid_grant"] as? Int ?? -1 }
    /// Every refresh and access token the provider has issued, in full (to search output for leaks).
    public func issuedTokens() throws -> [String] {
        try issuedTokens(kind: "refresh_tokens") + issuedTokens(kind: "access_tokens")
    }

    /// Every token of one kind issued so far: `refresh_tokens` or `access_tokens`.
    public func issuedTokens(kind: String) throws -> [String] {
        try request("GET", "/admin/issued", nil)[kind] as? [String] ?? []
    }

    /// `stats()["redirects_followed"]`: requests that followed the `redirect` mode's `Location`.
    public func redirectsFollowed() throws -> Int { try stats()["redirects_followed"] as? Int ?? -1 }

    /// The ledger without the calls: `tokens`, `inflight` (requests being handled now) and the
    /// `invalid_grant` counts by cause (`reused`, `revoked`, `unknown`, `forced`).
    public func ledger() throws -> [String: Any] {
        try request("GET", "/admin/ledger?calls=0", nil)
    }

    /// How many token requests the provider is handling right now (a slow answer included).
    public func requestsInFlight() throws -> Int {
        (try ledger()["inflight"] as? [Any])?.count ?? 0
    }

    private func admin(_ path: String, _ body: [String: Any]) throws -> [String: Any] {
        try request("POST", path, try JSONSerialization.data(withJSONObject: body))
    }

    private func request(_ method: String, _ path: String, _ body: Data?) throws -> [String: Any] {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 10
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        URLSession.shared.dataTask(with: request) { data, _, error in
            box.data = data
            box.error = error
            done.signal()
        }.resume()
        done.wait()
        if let error = box.error { throw error }
        return (try JSONSerialization.jsonObject(with: box.data ?? Data()) as? [String: Any]) ?? [:]
    }
}

// @unchecked: written by one URLSession callback before a semaphore signal, read after the wait.
private final class ResultBox: @unchecked Sendable {
    var data: Data?
    var error: (any Error)?
}
