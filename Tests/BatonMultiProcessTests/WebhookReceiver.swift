import BatonCommandLine
import BatonSupport
import BatonTestSupport
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

// @unchecked: owns a child process; tests call it from one task at a time.
/// `Tests/Support/webhook_receiver.py` as a child process on a free loopback port: records every
/// POST (headers and exact body) and answers 500 to the next N on request.
final class WebhookReceiver: @unchecked Sendable {
    /// One POST as received.
    struct Delivery {
        /// Header values by lower-cased name.
        let headers: [String: String]
        /// The exact body bytes.
        let body: [UInt8]
        /// What the receiver answered.
        let status: Int
        /// Whether the receiver found the signature valid (Python's hmac; `nil`: started without a key).
        let verified: Bool?

        /// The body as a JSON object.
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    }

    let port: Int
    private let process: ChildProcess
    private let logFile: URL

    /// The URL to configure as `alerts.webhook_url`.
    var url: String { "http://127.0.0.1:\(port)/hooks/baton" }

    /// Starts a receiver that checks signatures under `secret` (passed in its environment).
    init(secret: String? = nil) throws {
        let script = ShippedDeployment.repositoryRoot.appendingPathComponent("Tests/Support/webhook_receiver.py").path
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-\(UUID().uuidString).log")
        process = try ChildProcess(
            executable: "/usr/bin/python3", arguments: [script, "--port", "0"], streams: .file(logFile.path),
            environment: secret.map { ["WEBHOOK_SECRET": $0] } ?? [:])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let text = try? String(contentsOf: logFile, encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }),
                let port = Int(line.dropFirst(5))
            {
                self.port = port
                return
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        process.terminate()
        throw TopologyError(
            "the webhook receiver did not start within 10 s: \((try? String(contentsOf: logFile, encoding: .utf8)) ?? "")"
        )
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: logFile)
    }

    func stop() {
        if process.isRunning { process.terminate(grace: 2) }
    }

    /// Answers the next `count` webhook POSTs with 500.
    func failNext(_ count: Int) throws {
        _ = try request("POST", "/_admin/fail", try JSONSerialization.data(withJSONObject: ["count": count]))
    }

    /// Every POST so far, in arrival order (failed attempts included).
    func received() throws -> [Delivery] {
        let entries = try request("GET", "/_admin/received", nil)["received"] as? [[String: Any]] ?? []
        return entries.map { entry in
            let pairs = entry["headers"] as? [[String]] ?? []
            var headers: [String: String] = [:]
            for pair in pairs where pair.count == 2 { headers[pair[0].lowercased()] = pair[1] }
            // latin-1 on the receiver's side: one scalar per byte.
            let body = (entry["body"] as? String ?? "").unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
            return Delivery(
                headers: headers, body: body, status: entry["status"] as? Int ?? 0, verified: entry["verified"] as? Bool
            )
        }
    }

    /// The deliveries the receiver accepted (2xx).
    func accepted() throws -> [Delivery] {
        try received().filter { (200..<300).contains($0.status) }
    }

    private func request(_ method: String, _ path: String, _ body: Data?) throws -> [String: Any] {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 10
        let done = DispatchSemaphore(value: 0)
        let box = LockedBox<(Data?, (any Error)?)>((nil, nil))
        URLSession.shared.dataTask(with: request) { data, _, error in
            box.withLockedValue { $0 = (data, error) }
            done.signal()
        }.resume()
        done.wait()
        let (data, error) = box.withLockedValue { $0 }
        if let error { throw error }
        return (try JSONSerialization.jsonObject(with: data ?? Data()) as? [String: Any]) ?? [:]
    }
}
