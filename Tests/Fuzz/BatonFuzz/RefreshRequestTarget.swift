import BatonCoordinator
import Foundation

extension FuzzTarget {
    /// `RefreshRequest(entry:)`, the JSON a worker LPUSHes to ask for a forced refresh: an
    /// accepted request written back as `{"service":...,"version":...}` parses to the same service
    /// and version.
    static let refreshRequest = FuzzTarget(
        name: "refresh-request", summary: "RefreshRequest(entry:) (a forced-refresh list entry)"
    ) { bytes throws(PropertyViolation) in
        guard let request = try? RefreshRequest(entry: bytes) else { return }
        var object: [String: Any] = ["service": request.service]
        if let version = request.version { object["version"] = version }
        let reparsed: RefreshRequest
        do {
            let entry = try JSONSerialization.data(withJSONObject: object)
            reparsed = try RefreshRequest(entry: Array(entry))
        } catch {
            throw PropertyViolation(
                target: "refresh-request", message: "the request written back does not parse: \(error)")
        }
        guard reparsed.service == request.service, reparsed.version == request.version else {
            throw PropertyViolation(
                target: "refresh-request",
                message:
                    "written back, \(request.service)/\(request.version.map(String.init) ?? "nil") reparses as \(reparsed.service)/\(reparsed.version.map(String.init) ?? "nil")"
            )
        }
    }
}
