import BatonTokens

/// A forced-refresh request waiting for a record newer than its target.
struct PendingRequest: Sendable {
    /// The request as taken from the list.
    let request: RefreshRequest
    /// Satisfied by any record whose version is greater: the smaller of the version the worker
    /// named and the version stored when the request was taken; `nil` until known (the record
    /// could not be read when the request arrived).
    var target: Int64?

    /// Whether `record` answers the request.
    func isSatisfied(by record: TokenRecord) -> Bool {
        target.map { record.version > $0 } ?? false
    }

    /// The request with its target resolved once the stored version `observed` is known: never
    /// above it, so one refresh satisfies it whatever version it named.
    func resolved(observed: Int64) -> PendingRequest {
        PendingRequest(request: request, target: min(target ?? observed, observed))
    }
}
