import BatonConfig

extension FuzzTarget {
    /// `JSONReader.parse`: an accepted document written back as JSON reparses to the same value;
    /// a refused one names a line and column inside the input.
    static let jsonReader = FuzzTarget(
        name: "json-reader", summary: "JSONReader.parse (configuration JSON)"
    ) { bytes throws(PropertyViolation) in
        func violation(_ message: String) -> PropertyViolation {
            PropertyViolation(target: "json-reader", message: message)
        }
        let value: JSONValue
        do {
            value = try JSONReader.parse(bytes)
        } catch let error as JSONReader.SyntaxError {
            let lines = bytes.count { $0 == UInt8(ascii: "\n") } + 1
            guard (1...lines).contains(error.line), (1...bytes.count + 1).contains(error.column) else {
                throw violation("the error \(error) points outside the input (\(lines) lines, \(bytes.count) bytes)")
            }
            return
        } catch {
            throw violation("parse threw something other than a SyntaxError: \(error)")
        }
        let text = JSONText.encode(value)
        let reparsed: JSONValue
        do {
            reparsed = try JSONReader.parse(Array(text.utf8))
        } catch {
            throw violation("the value written back as \(text) does not parse: \(error)")
        }
        let retext = JSONText.encode(reparsed)
        guard retext == text else { throw violation("written back as \(text), it reparses as \(retext)") }
    }
}
