import BatonCommandLine
import BatonConfig
import BatonOAuth
import BatonSupport
import Foundation

/// `baton health [--url URL] [--config FILE] [--timeout 2s]`: asks a running `baton serve` for
/// its readiness, for container health checks in images without curl.
enum HealthCommand {
    static let specification = CommandSpecification(
        name: "health", usage: ["baton health [--url URL] [--config FILE] [--timeout DURATION]"],
        options: [.value("url", "URL"), ConnectionOptions.configOption, .value("timeout", "DURATION")],
        discussion: """
            GETs the readiness probe of a running `baton serve` and exits 0 when it answers 200, 1
            otherwise (printing the answer or the reason). The URL is --url, else the /readyz of
            the configuration's http.listen (--config or BATON_CONFIG; a wildcard host is asked on
            loopback), else http://127.0.0.1:9464/readyz. --timeout bounds the whole request
            (default 2s).
            """)

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let timeout = try arguments.duration("timeout", default: .seconds(2))
        let url = try probeURL(arguments, environment: ProcessInfo.processInfo.environment)
        let answer: HTTPGet.Response
        do {
            answer = try await runOnDedicatedThread(named: "baton-health") { () throws(HTTPGet.Failure) in
                try HTTPGet.fetch(url: url, timeout: timeout, maxBodyBytes: 4096)
            }
        } catch {
            Terminal.err("baton health: \(url): \(error)")
            return .failure
        }
        let text = String(decoding: answer.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard answer.status == 200 else {
            Terminal.err("baton health: \(url): \(answer.status) \(text.prefix(200))")
            return .failure
        }
        Terminal.out("\(url): \(text.prefix(200))")
        return .success
    }

    /// `--url`, else the configuration's `http.listen`, else the default listener.
    private static func probeURL(_ arguments: ParsedArguments, environment: [String: String]) throws -> String {
        if let url = arguments.value("url") { return url }
        let path =
            arguments.value("config")
            ?? BatonDefaults.Environment.value(BatonDefaults.Environment.configuration, in: environment)
        guard let path else {
            return "http://\(HTTPConfiguration.defaultListenText)/readyz"
        }
        let configuration = try BatonConfiguration.load(path: path, environment: environment)
        guard let listen = configuration.http.listen else {
            throw UsageError("http.listen is \"off\" in \(path): there is no listener to ask (give --url)")
        }
        return listen.localURL(path: "/readyz")
    }
}
