/// An HTTP request method, as the client sent it (upper case by convention; compared exactly).
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The method token, such as `GET`.
    public let rawValue: String

    /// Wraps a method token.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// `GET`. A route that allows it allows `HEAD` too (see ``HTTPRouter``).
    public static let get = HTTPMethod(rawValue: "GET")
    /// `HEAD`: the `GET` answer's headers without its body.
    public static let head = HTTPMethod(rawValue: "HEAD")
    /// `POST`.
    public static let post = HTTPMethod(rawValue: "POST")
    /// `PUT`.
    public static let put = HTTPMethod(rawValue: "PUT")
    /// `DELETE`.
    public static let delete = HTTPMethod(rawValue: "DELETE")

    public var description: String { rawValue }
}
