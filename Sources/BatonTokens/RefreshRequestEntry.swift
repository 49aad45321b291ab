import Foundation

/// The entry a forced-refresh request is on `prefix:refresh-requests`:
/// `{"service":"NAME","version":N}`, keys sorted, the version left out when `nil` ("newer than
/// what is stored now"). The coordinator parses it (`RefreshRequest`); workers of other languages
/// push the same JSON.
public enum RefreshRequestEntry {
    /// The entry's field that counts how often replicas lacking the key of the service's secret
    /// handed the request back to the list (absent: never).
    public static let handedBackField = "handed_back"

    /// The JSON entry for a request for a record of `service` newer than `version`.
    /// - Parameter handedBack: how often it has been handed back (0 leaves the field out).
    public static func encode(service: String, version: Int64?, handedBack: Int = 0) -> [UInt8] {
        var object: [String: Any] = ["service": service]
        if let version { object["version"] = version }
        if handedBack > 0 { object[handedBackField] = handedBack }
        // A dictionary of a string and integers always serialises.
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }
}
