import Foundation

/// Runs a blocking call (libcurl, `waitpid`, a hiredis read) on a thread of its own and suspends
/// the calling task until it returns.
///
/// Swift's cooperative pool has one thread per core; a call that parks one of them stalls every
/// task in the process. A fresh thread per call is right for calls that are few and long (a token
/// request, a child process); a stream of short waits wants one long-lived thread instead (see
/// `SubscriptionLoop` in BatonRedis).
///
/// - Parameters:
///   - name: the thread's name, as shown by debuggers and `top -H`.
///   - body: the blocking call. It runs to completion even if the calling task is cancelled.
/// - Returns: what `body` returns.
/// - Throws: what `body` throws.
public func runOnDedicatedThread<Value: Sendable, Failure: Error>(
    named name: String, _ body: @escaping @Sendable () throws(Failure) -> Value
) async throws(Failure) -> Value {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, Failure>, Never>) in
        let thread = Thread { continuation.resume(returning: Result(catching: body)) }
        thread.name = name
        thread.start()
    }
    return try result.get()
}
