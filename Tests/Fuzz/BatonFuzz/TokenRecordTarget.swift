import BatonTokens

extension FuzzTarget {
    /// `TokenRecord.decode`: a decoded record encoded again (`jsonBytes()`) decodes to an equal
    /// record. The same bytes go through `SecretEnvelope.decode`, which must not crash.
    static let tokenRecord = FuzzTarget(
        name: "token-record", summary: "TokenRecord.decode and SecretEnvelope.decode (what Redis hands back)"
    ) { bytes throws(PropertyViolation) in
        _ = try? SecretEnvelope.decode(bytes, service: "fuzz")
        guard let record = try? TokenRecord.decode(bytes) else { return }
        do {
            let again = try TokenRecord.decode(try record.jsonBytes())
            guard again == record else {
                throw PropertyViolation(
                    target: "token-record", message: "re-encoded, \(record) decodes as \(again)")
            }
        } catch let violation as PropertyViolation {
            throw violation
        } catch {
            throw PropertyViolation(target: "token-record", message: "the re-encoded record does not decode: \(error)")
        }
    }
}
