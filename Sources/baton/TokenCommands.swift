import BatonCommandLine
import BatonConfig
import BatonCoordinator
import BatonMetrics
import BatonOAuth
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// `baton get`, `baton seed`, `baton status`: the token layer's ops commands.
enum TokenCommands {
    static let getSpecification = CommandSpecification(
        name: "get",
        usage: [
            "baton get SVC [--newer-than N] [--wait 10s] [--json | --header] \(ConnectionOptions.tokens.group.synopsis)"
        ],
        options: [.value("newer-than", "N"), .value("wait", "10s"), .flag("json"), .flag("header")],
        groups: [ConnectionOptions.tokens.group], positionals: 1...1,
        discussion: """
            Prints SVC's access token from Redis (never calls the provider), the whole record (--json),
            or one HTTP header line (--header: "Authorization: Bearer ..."), made for a pipe that keeps
            the token out of the process list: baton get SVC --header | curl -H @- URL
            When the stored token is expired or missing, waits up to --wait (default 10s; 0 for no
            wait) for the coordinator to write one. --newer-than N (the version of a token that just got
            a 401) asks the coordinator for a forced refresh and waits for a version greater than N;
            returns at once if the stored one is already newer.
            Exits 6 when no valid token appeared, 3 when the credential needs re-authorisation, 75 when
            no newer token appeared within --wait.
            """)

    static let seedSpecification = CommandSpecification(
        name: "seed",
        usage: [
            "baton seed SVC --refresh-token-file PATH \(ConnectionOptions.tokens.group.synopsis)",
            "baton seed SVC --authorization-code-file PATH --redirect-uri URI [--code-verifier-file PATH] --config FILE",
        ],
        options: [
            .value("refresh-token-file", "PATH"), .value("authorization-code-file", "PATH"),
            .value("redirect-uri", "URI"),
            .value("code-verifier-file", "PATH"),
        ],
        groups: [ConnectionOptions.tokens.group], positionals: 1...1,
        discussion: """
            Stores SVC's refresh token (read from PATH, or from standard input with `-`; never give a
            secret as an argument) and registers the service. It takes effect at once: the next
            refresh uses it, and a service in needs_reauth goes back to ok.

            With --authorization-code-file, exchanges a one-time authorization code (with its PKCE
            code_verifier, if the authorization request used one) at the service's token endpoint and
            stores the resulting refresh token and access token.
            """)

    // MARK: - get

    static func get(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try getSpecification.parseUnlessHelp(words) else { return .success }
        guard !(arguments.has("json") && arguments.has("header")) else {
            throw UsageError("choose one of --json and --header")
        }
        let newerThan = try arguments.value("newer-than").map { text -> Int64 in
            guard let version = Int64(text), version >= 0 else {
                throw UsageError("--newer-than must be a record version (a whole number), not '\(text)'")
            }
            return version
        }
        let wait: Duration
        if arguments.value("wait") == "0" {
            wait = .zero
        } else {
            wait = try arguments.duration("wait", default: .seconds(10))
        }
        let context = try CommandContext(arguments)
        defer { context.shutDown() }
        let service = arguments.positionals[0]
        let tokens = TokenClient(client: context.client, prefix: context.prefix)
        do {
            let record: TokenRecord
            if let newerThan {
                record = try await tokens.accessToken(for: service, newerThan: newerThan, wait: wait)
            } else {
                record = try await tokens.accessToken(for: service, wait: wait)
            }
            try print(record, arguments: arguments)
            return .success
        } catch let failure as TokenClient.Failure {
            Terminal.err("baton get: \(failure)")
            switch failure {
            case .needsReauthorization: return .needsReauthorization
            case .timedOut(_, _, let newest):
                if newerThan != nil, let newest, newest.status != .needsReauth,
                    !newest.isExpired(at: (try? await context.store.now()) ?? 0)
                {
                    return .timedOut
                }
                return .tokenUnavailable
            }
        }
    }

    static func print(_ record: TokenRecord, arguments: ParsedArguments) throws {
        if arguments.has("json") {
            Terminal.out(String(decoding: (try? record.jsonBytes()) ?? [], as: UTF8.self))
        } else if arguments.has("header") {
            Terminal.out(try headerLine(record))
        } else {
            Terminal.out(record.accessToken)
        }
    }

    /// `Authorization: Bearer TOKEN`: exactly one header line, for `curl -H @-` (which reads
    /// one header per line from standard input, keeping the token out of curl's arguments).
    /// - Throws: when the token or its type could end the line early or smuggle in another
    ///   header (a control character such as CR or LF, or a space in the type); neither is printed.
    static func headerLine(_ record: TokenRecord) throws -> String {
        func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || scalar.value == 0x7f }
        guard !record.accessToken.isEmpty, !record.tokenType.isEmpty,
            !record.accessToken.unicodeScalars.contains(where: isControl),
            !record.tokenType.unicodeScalars.contains(where: { isControl($0) || $0 == " " })
        else {
            throw HeaderError(service: record.service, version: record.version)
        }
        return "Authorization: \(record.tokenType) \(record.accessToken)"
    }

    struct HeaderError: Error, CustomStringConvertible {
        let service: String
        let version: Int64
        var description: String {
            "the stored token of '\(service)' (version \(version)) is empty or holds a control character or a space in its type: refusing to print it as a header line (check the provider's answer; `baton refresh \(service) --force` replaces it)"
        }
    }

    // MARK: - seed

    static func seed(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try seedSpecification.parseUnlessHelp(words) else { return .success }
        // Refused before a secret is read: a token read from stdin and then refused is gone.
        _ = try ConnectionOptions.redisOverride(arguments)
        let service = arguments.positionals[0]
        if let codeFile = arguments.value("authorization-code-file") {
            guard arguments.value("refresh-token-file") == nil else {
                throw UsageError("give --refresh-token-file or --authorization-code-file, not both")
            }
            return try await seedFromAuthorizationCode(service, codeFile: codeFile, arguments: arguments)
        }
        guard let path = arguments.value("refresh-token-file") else {
            throw UsageError(
                "--refresh-token-file PATH is required (use - for standard input; never pass a secret as an argument)")
        }
        let token = try readSecret(path, what: "refresh token")
        let context = try CommandContext(arguments)
        defer { context.shutDown() }
        try context.requireEncryption(for: "baton seed")
        // The token is bound to the configured client, when the configuration is at hand.
        let client = context.configuration?.service(service)?.clientFingerprint
        let fence = try await context.store.seed(
            service: service, refreshToken: token, replica: CommandContext.processLabel, client: client)
        Terminal.out("seeded '\(service)' (fence \(fence)); the next refresh uses the new refresh token")
        return .success
    }

    static func seedFromAuthorizationCode(_ name: String, codeFile: String, arguments: ParsedArguments) async throws
        -> ExitCode
    {
        guard let redirectURI = arguments.value("redirect-uri") else {
            throw UsageError(
                "--redirect-uri URI is required with --authorization-code-file (the one the authorization request used)"
            )
        }
        let code = try readSecret(codeFile, what: "authorization code")
        let verifier = try arguments.value("code-verifier-file").map { try readSecret($0, what: "code verifier") }
        let context = try CommandContext(arguments, requireConfiguration: true)
        defer { context.shutDown() }
        let service = try context.service(name)
        let now = try await context.store.now()
        let result = await runOnDedicatedThread(named: "baton-token-request") {
            TokenEndpointClient().requestToken(
                .authorizationCode(
                    code: Secret(code), redirectURI: redirectURI, codeVerifier: verifier.map(Secret.init)),
                for: service, now: now)
        }
        let response: TokenResponse
        switch result {
        case .success(let value): response = value
        case .failure(let error):
            if let recovered = error.recoveredRefreshToken {
                // The code is spent and the answer unusable, but it carried a refresh token: keep
                // it, or the authorization is lost. The next refresh fetches an access token.
                let fence = try await context.store.seed(
                    service: name, refreshToken: recovered, replica: CommandContext.processLabel,
                    client: service.clientFingerprint)
                Terminal.err("baton seed: \(error)")
                Terminal.out(
                    "seeded '\(name)' with the refresh token from that answer (fence \(fence)); no access token yet: the next refresh fetches one"
                )
                return .success
            }
            // Said in the words of a code exchange, not of a refresh (see AuthorizationCodeFailure).
            let failure = AuthorizationCodeFailure(error, redirectURI: redirectURI)
            Terminal.err("baton seed: \(failure)")
            switch failure {
            case .codeRejected: return .needsReauthorization
            case .requestRejected: return .usage
            case .endpoint(.rejectedConfiguration): return .usage
            case .endpoint: return .providerUnavailable
            }
        }
        guard let refreshToken = response.refreshToken else {
            Terminal.err(
                "baton seed: the provider issued no refresh token for '\(name)' (did the authorization request ask for offline access?)"
            )
            return .needsReauthorization
        }
        let fence = try await context.store.seed(
            service: name, refreshToken: refreshToken, replica: CommandContext.processLabel,
            client: service.clientFingerprint)
        let record = TokenRecord(
            service: name, accessToken: response.accessToken, tokenType: response.tokenType,
            expiresAt: response.expiresAt,
            scope: response.scope, version: fence, refreshedAt: now, refreshedBy: CommandContext.processLabel)
        _ = try await context.store.persist(
            record, service: name, secret: nil, fence: fence, usedSecret: nil, event: .refreshed,
            replica: CommandContext.processLabel, owner: "")
        Terminal.out(
            "seeded '\(name)' from an authorization code (fence \(fence)); access token valid for \(DisplayFormat.age(milliseconds: response.expiresAt - now))"
        )
        return .success
    }

    /// Reads a secret from a file or standard input, trimmed; refuses an empty one.
    static func readSecret(_ path: String, what: String) throws -> String {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw UsageError("cannot read the \(what) file '\(path)': no such file, or not readable")
            }
            data = contents
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw UsageError("the \(what) read from '\(path)' is empty")
        }
        guard !token.contains(where: \.isNewline) else {
            throw UsageError("the \(what) read from '\(path)' spans several lines: the file must hold it alone")
        }
        return token
    }
}
