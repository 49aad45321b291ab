import Foundation

/// `text` percent-encoded for a URL: ASCII letters, digits, `-._~` and the characters of
/// `keeping` stay as they are, every other byte of its UTF-8 becomes `%XX`.
func percentEncoded(_ text: String, keeping extra: String = "") -> String {
    var allowed = CharacterSet(charactersIn: "-._~" + extra)
    allowed.insert(charactersIn: "a"..."z")
    allowed.insert(charactersIn: "A"..."Z")
    allowed.insert(charactersIn: "0"..."9")
    // Only fails for invalid UTF-16, which a Swift String cannot hold.
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

/// The credentials part of a Redis URL: `user:password@`, `:password@` without a user, or nothing
/// without a password; both percent-encoded.
func userInfo(username: String?, password: String?) -> String {
    guard let password else { return "" }
    return "\(percentEncoded(username ?? "")):\(percentEncoded(password))@"
}
