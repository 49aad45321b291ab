internal import CMicroHTTPD
import Foundation

// libmicrohttpd's callbacks, as C function pointers (no captures: the listener travels in `cls`,
// the request in `con_cls`).

/// `MHD_AccessHandlerCallback`. Called on libmicrohttpd's thread, several times per request:
/// once when the head is parsed (create the context; refuse an oversized declared body), once per
/// piece of body, once when the request is complete (suspend and dispatch), and once more after
/// the resume (queue the answer).
func accessHandler(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ url: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?, _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
    _ uploadDataSize: UnsafeMutablePointer<Int>?, _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let conCls, let uploadDataSize else { return .NO }
    let core = Unmanaged<ListenerCore>.fromOpaque(cls).takeUnretainedValue()

    guard let existing = conCls.pointee else {
        let request = RequestContext(
            method: HTTPMethod(rawValue: method.map { String(cString: $0) } ?? ""),
            path: url.map { String(cString: $0) } ?? "/",
            headers: values(connection, .HEADER_KIND),
            queryParameters: values(connection, .GET_ARGUMENT_KIND))
        conCls.pointee = Unmanaged.passRetained(request).toOpaque()
        if let declared = request.headers.first(where: { $0.name.lowercased() == "content-length" }),
            let length = Int(declared.value.trimmingCharacters(in: .whitespaces)), length > core.limits.maxBodyBytes
        {
            // Queued before the body is read: libmicrohttpd discards the rest and closes the connection.
            return queue(
                .text(413, "request body too large: at most \(core.limits.maxBodyBytes) bytes"),
                on: connection)
        }
        return .YES
    }
    let request = Unmanaged<RequestContext>.fromOpaque(existing).takeUnretainedValue()

    if uploadDataSize.pointee > 0 {
        let count = uploadDataSize.pointee
        uploadDataSize.pointee = 0
        // Only a chunked body (no Content-Length) can get here past the limit: no answer may be
        // queued while body data is being delivered, so the connection is closed.
        guard request.body.count + count <= core.limits.maxBodyBytes, let uploadData else { return .NO }
        request.body.append(contentsOf: UnsafeRawBufferPointer(start: uploadData, count: count))
        return .YES
    }
    if request.dispatched {
        guard let response = core.response(of: request) else { return .NO }
        return queue(response, on: connection)
    }
    request.dispatched = true
    if !core.dispatch(request, connection: connection) {
        return queue(.text(503, "shutting down"), on: connection)
    }
    return .YES
}

/// `MHD_RequestCompletedCallback`: releases the request's context (and tells a stopping listener).
func requestCompleted(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
    _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ reason: MHD_RequestTerminationCode
) {
    guard let conCls, let context = conCls.pointee else { return }
    let request = Unmanaged<RequestContext>.fromOpaque(context).takeRetainedValue()
    conCls.pointee = nil
    if request.answeredAtStop, let cls {
        Unmanaged<ListenerCore>.fromOpaque(cls).takeUnretainedValue().sentAtStop()
    }
}

/// Hands `response` to libmicrohttpd (which adds `Content-Length` and leaves out the body for HEAD).
private func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> MHD_Result {
    let answer = response.body.withUnsafeBytes { bytes in
        MHD_create_response_from_buffer(
            bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress), .RESPMEM_MUST_COPY)
    }
    guard let answer else { return .NO }
    defer { MHD_destroy_response(answer) }
    for header in response.headers where header.name.lowercased() != "content-length" {
        _ = MHD_add_response_header(answer, header.name, header.value)
    }
    return MHD_queue_response(connection, UInt32(clamping: response.status), answer)
}

/// The connection's values of one kind (headers, or query parameters), in order.
private func values(_ connection: OpaquePointer, _ kind: MHD_ValueKind) -> [(name: String, value: String)] {
    let collected = PairCollector()
    _ = MHD_get_connection_values(connection, kind, collectPair, Unmanaged.passUnretained(collected).toOpaque())
    return collected.pairs
}

private final class PairCollector {
    var pairs: [(name: String, value: String)] = []
}

private func collectPair(
    _ cls: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind, _ key: UnsafePointer<CChar>?,
    _ value: UnsafePointer<CChar>?
) -> MHD_Result {
    guard let cls, let key else { return .YES }
    let collector = Unmanaged<PairCollector>.fromOpaque(cls).takeUnretainedValue()
    collector.pairs.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return .YES
}
