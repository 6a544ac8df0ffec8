import CCurl
import Foundation
import Synchronization

/// `HTTPTransport` over libcurl's easy interface.
///
/// libcurl rather than FoundationNetworking because on Linux URLSession cannot trust a
/// per-registry CA (`ca_certs`) and hands a streamed body over without back-pressure.
/// Here the body callbacks run on the calling thread, so a slow disk slows the socket
/// instead of filling memory. Handles are pooled so connections are kept alive.
public final class CurlTransport: HTTPTransport {
    /// Limits on a stalled or unreachable peer. There is no total timeout here: blobs can be
    /// gigabytes; a request with a small body sets its own (`HTTPRequest.timeout`).
    public struct Timeouts: Sendable {
        /// Seconds to establish a connection (TCP and TLS).
        public var connect: Int
        /// A transfer slower than `lowSpeedLimit` bytes a second for this many seconds is abandoned.
        public var stalled: Int
        /// Bytes a second under which a transfer without a `timeout` (a blob) counts as
        /// stalled. A request with a `timeout` is only held to one byte a second: its
        /// deadline bounds it already, and a registry may think before it answers.
        public var lowSpeedLimit: Int

        public init(connect: Int = 30, stalled: Int = 60, lowSpeedLimit: Int = 1024) {
            self.connect = connect
            self.stalled = stalled
            self.lowSpeedLimit = lowSpeedLimit
        }

        /// The environment variables that change the low-speed bound.
        public static let lowSpeedLimitVariable = "SLIPWAY_HTTP_LOW_SPEED_LIMIT"
        public static let lowSpeedTimeVariable = "SLIPWAY_HTTP_LOW_SPEED_TIME"

        /// The defaults, with `SLIPWAY_HTTP_LOW_SPEED_LIMIT` (bytes a second) and
        /// `SLIPWAY_HTTP_LOW_SPEED_TIME` (seconds) replacing the low-speed bound when set.
        /// - Throws: `HTTPError.invalidRequest` naming a variable that is not a whole number above 0.
        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
            throws(HTTPError) -> Timeouts
        {
            var timeouts = Timeouts()
            func read(_ name: String) throws(HTTPError) -> Int? {
                guard let text = environment[name] else { return nil }
                guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value > 0 else {
                    throw HTTPError(
                        .invalidRequest,
                        "\(name): \"\(String(text.prefix(40)))\" is not a whole number above 0; unset it for the default"
                    )
                }
                return value
            }
            timeouts.lowSpeedLimit = try read(lowSpeedLimitVariable) ?? timeouts.lowSpeedLimit
            timeouts.stalled = try read(lowSpeedTimeVariable) ?? timeouts.stalled
            return timeouts
        }
    }

    private struct Handle: @unchecked Sendable { let raw: UnsafeMutableRawPointer }

    private let idle = Mutex<[Handle]>([])
    private let timeouts: Timeouts

    public init(timeouts: Timeouts = Timeouts()) {
        _ = Self.globalInit
        self.timeouts = timeouts
    }

    deinit {
        idle.withLock { handles in
            for handle in handles { curl_easy_cleanup(handle.raw) }
            handles.removeAll()
        }
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// The system's trusted roots, read once; `CURLOPT_CAINFO_BLOB` replaces the default
    /// bundle, so extra certificates are appended to these rather than used alone.
    private static let systemRoots: String = {
        for path in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"] {
            if let pem = try? String(contentsOfFile: path, encoding: .utf8) { return pem }
        }
        return ""
    }()

    public func perform(
        _ request: HTTPRequest,
        trust: TLSTrust,
        stream: ((HTTPResponseHead) -> (any HTTPBodySink)?)?,
        bufferLimit: Int
    ) throws -> HTTPResponse {
        let handle = idle.withLock { $0.popLast() } ?? curl_easy_init().map(Handle.init)
        guard let handle else { throw HTTPError(.connection, "libcurl could not create a handle") }
        var reusable = true
        defer {
            if reusable {
                idle.withLock { $0.append(handle) }
            } else {
                curl_easy_cleanup(handle.raw)
            }
        }

        let transfer = try Transfer(request: request, stream: stream, bufferLimit: bufferLimit)
        defer { transfer.close() }
        let easy = handle.raw
        curl_easy_reset(easy)

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }
        // "Expect:" suppresses 100-continue, which registries do not need and which costs a round trip.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            headerList = curl_slist_append(headerList, line)
        }

        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }

        let transferSet = configureTransfer(
            easy, for: request, transfer: transfer, headers: headerList, errorBuffer: errorBuffer)
        let trustSet = configureTrust(easy, trust)
        let methodSet = configureMethod(easy, for: request)
        guard transferSet && trustSet && methodSet else {
            throw HTTPError(
                .invalidRequest, "libcurl rejected the options for \(request.method) \(redacted(request.url))")
        }

        let started = ContinuousClock.now
        let code = curl_easy_perform(easy)
        if let failure = transfer.failure {
            reusable = false
            throw failure
        }
        guard code == CURLE_OK else {
            reusable = false
            throw failure(
                code, detail: String(cString: errorBuffer), request: request, elapsed: ContinuousClock.now - started)
        }
        var status = 0
        _ = slipway_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: transfer.headers, body: transfer.buffer)
    }

    /// The bytes a second under which `request` counts as stalled (see ``Timeouts/lowSpeedLimit``).
    private func lowSpeedLimit(for request: HTTPRequest) -> Int {
        request.timeout == nil ? timeouts.lowSpeedLimit : 1
    }

    /// Sets the options of `easy` for `request` other than trust and method: URL, limits, and
    /// the callbacks reaching `transfer`. False when libcurl refused any of them (as for
    /// `configureTrust` and `configureMethod`).
    private func configureTransfer(
        _ easy: UnsafeMutableRawPointer,
        for request: HTTPRequest,
        transfer: Transfer,
        headers headerList: UnsafeMutablePointer<curl_slist>?,
        errorBuffer: UnsafeMutablePointer<CChar>
    ) -> Bool {
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let url = request.url.absoluteString
        var ok = true
        func set(_ code: CURLcode) { if code != CURLE_OK { ok = false } }

        set(slipway_setopt_str(easy, CURLOPT_URL, url))
        set(slipway_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(slipway_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        set(slipway_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0))
        set(slipway_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, timeouts.connect))
        set(slipway_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, lowSpeedLimit(for: request)))
        set(slipway_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, timeouts.stalled))
        if let timeout = request.timeout { set(slipway_setopt_long(easy, CURLOPT_TIMEOUT, max(1, timeout))) }
        set(slipway_setopt_long(easy, CURLOPT_BUFFERSIZE, 512 * 1024))
        set(slipway_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, 512 * 1024))
        set(slipway_setopt_ptr(easy, CURLOPT_ERRORBUFFER, errorBuffer))
        set(slipway_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList))
        set(slipway_setopt_header(easy, Transfer.onHeader))
        set(slipway_setopt_ptr(easy, CURLOPT_HEADERDATA, context))
        set(slipway_setopt_write(easy, Transfer.onBody))
        set(slipway_setopt_ptr(easy, CURLOPT_WRITEDATA, context))
        set(slipway_setopt_read(easy, Transfer.onRead))
        set(slipway_setopt_sockopt(easy, Transfer.onSocket))
        set(slipway_setopt_ptr(easy, CURLOPT_READDATA, context))
        if request.bodySent != nil {
            set(slipway_setopt_long(easy, CURLOPT_NOPROGRESS, 0))
            set(slipway_setopt_xferinfo(easy, Transfer.onProgress))
            set(slipway_setopt_ptr(easy, CURLOPT_XFERINFODATA, context))
        }
        return ok
    }

    /// Sets which peers `easy` trusts: none checked, or the system roots plus `trust`'s own.
    private func configureTrust(_ easy: UnsafeMutableRawPointer, _ trust: TLSTrust) -> Bool {
        var ok = true
        func set(_ code: CURLcode) { if code != CURLE_OK { ok = false } }
        if !trust.verifyPeer {
            set(slipway_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0))
            set(slipway_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0))
        } else if !trust.additionalCertificates.isEmpty {
            let bundle = ([Self.systemRoots] + trust.additionalCertificates).joined(separator: "\n")
            var bytes = Array(bundle.utf8)
            bytes.withUnsafeMutableBytes { raw in
                var blob = curl_blob(data: raw.baseAddress, len: raw.count, flags: UInt32(CURL_BLOB_COPY))
                set(slipway_setopt_blob(easy, CURLOPT_CAINFO_BLOB, &blob))
            }
        }
        return ok
    }

    /// Sets `request`'s method on `easy`, with the body length libcurl sends for it.
    private func configureMethod(_ easy: UnsafeMutableRawPointer, for request: HTTPRequest) -> Bool {
        var ok = true
        func set(_ code: CURLcode) { if code != CURLE_OK { ok = false } }
        let length = request.body.length
        switch request.method {
        case .head:
            set(slipway_setopt_long(easy, CURLOPT_NOBODY, 1))
        case .get:
            set(slipway_setopt_long(easy, CURLOPT_HTTPGET, 1))
        case .post:
            set(slipway_setopt_long(easy, CURLOPT_POST, 1))
            set(slipway_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(length)))
        case .put, .patch:
            set(slipway_setopt_long(easy, CURLOPT_UPLOAD, 1))
            set(slipway_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)))
            if request.method == .patch { set(slipway_setopt_str(easy, CURLOPT_CUSTOMREQUEST, "PATCH")) }
        default:
            if length > 0 {
                set(slipway_setopt_long(easy, CURLOPT_UPLOAD, 1))
                set(slipway_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)))
            }
            set(slipway_setopt_str(easy, CURLOPT_CUSTOMREQUEST, request.method.rawValue))
        }
        return ok
    }

    /// The error for a transfer that ended with `code`: `detail` is libcurl's error buffer,
    /// `elapsed` how long it ran. A timeout is told apart as the request's own deadline or
    /// the low-speed bound, so the message names the setting that applies.
    private func failure(_ code: CURLcode, detail: String, request: HTTPRequest, elapsed: Duration) -> HTTPError {
        let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        if code == CURLE_OPERATION_TIMEDOUT {
            if let timeout = request.timeout, elapsed >= .seconds(timeout) - .milliseconds(500) {
                return HTTPError(
                    .deadline, "\(request.method) \(redacted(request.url)): no whole answer within \(timeout) s")
            }
            if detail.hasPrefix("Operation too slow") {
                return HTTPError(
                    .timeout,
                    "\(request.method) \(redacted(request.url)): slower than \(lowSpeedLimit(for: request)) bytes/s for \(timeouts.stalled) s "
                        + "(\(Timeouts.lowSpeedLimitVariable) and \(Timeouts.lowSpeedTimeVariable) set this bound)")
            }
        }
        return HTTPError(Self.classify(code), "\(request.method) \(redacted(request.url)): \(reason)")
    }

    private static func classify(_ code: CURLcode) -> HTTPError.Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            .tls
        case CURLE_READ_ERROR, CURLE_ABORTED_BY_CALLBACK: .localFile
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: .invalidRequest
        default: .connection
        }
    }
}

/// A URL as it may appear in a message: without user info or query (upload URLs carry state tokens).
public func redacted(_ url: URL) -> String {
    guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "<url>" }
    components.user = nil
    components.password = nil
    components.query = nil
    return components.string ?? "<url>"
}

/// The state of one exchange, reached from libcurl's C callbacks through their user-data pointer.
private final class Transfer {
    var headers = HTTPHeaders()
    var buffer = Data()
    var failure: (any Error)?

    private let body: HTTPRequestBody
    private let bodySent: (@Sendable (Int64) -> Void)?
    private var bodyData: Data = Data()
    private var file: FileHandle?
    private var sent: Int64 = 0
    private let stream: ((HTTPResponseHead) -> (any HTTPBodySink)?)?
    private var sink: (any HTTPBodySink)?
    private var sinkChosen = false
    private var status = 0
    private let bufferLimit: Int

    init(request: HTTPRequest, stream: ((HTTPResponseHead) -> (any HTTPBodySink)?)?, bufferLimit: Int) throws {
        self.body = request.body
        self.bodySent = request.bodySent
        self.stream = stream
        self.bufferLimit = bufferLimit
        switch request.body {
        case .empty: break
        case .data(let data): bodyData = data
        case .file(let path, let offset, _):
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw HTTPError(.localFile, "cannot open \(path) for reading")
            }
            do { try handle.seek(toOffset: UInt64(offset)) } catch {
                throw HTTPError(.localFile, "cannot seek in \(path): \(error)")
            }
            file = handle
        }
    }

    func close() { try? file?.close() }

    static let onHeader: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
        data, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        let length = size * count
        guard let data else { return length }
        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            // A new status line (after 1xx or at the start) begins a fresh header block.
            transfer.headers = HTTPHeaders()
            let parts = line.split(separator: " ")
            transfer.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            transfer.headers.add(name, value)
        }
        return length
    }

    static let onBody: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
        data, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        let length = size * count
        guard let data, length > 0 else { return length }
        return transfer.receive(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
    }

    /// libcurl calls this many times a second while bytes move, and about once a second
    /// while they do not (waiting for the server's answer).
    static let onProgress:
        @convention(c) (UnsafeMutableRawPointer?, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> Int32 = {
            context, _, _, _, uploaded in
            Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().reportSent(Int64(uploaded))
            return 0
        }

    private func reportSent(_ written: Int64) {
        bodySent?(min(written, body.length))
    }

    /// Every new socket keeps at most this many bytes not yet sent in the kernel
    /// (`TCP_NOTSENT_LOWAT`). Bytes in flight are not limited, so throughput is not either;
    /// without it the send buffer holds megabytes that libcurl counts as written, and a slow
    /// upload's progress would run seconds ahead of the bytes.
    static let onSocket: @convention(c) (UnsafeMutableRawPointer?, curl_socket_t, curlsocktype) -> Int32 = {
        _, socket, _ in
        var lowWater: Int32 = 128 * 1024
        let notSentLowWater: Int32 = 25  // TCP_NOTSENT_LOWAT, linux/tcp.h
        _ = setsockopt(socket, Int32(IPPROTO_TCP), notSentLowWater, &lowWater, socklen_t(MemoryLayout<Int32>.size))
        return 0  // CURL_SOCKOPT_OK
    }

    static let onRead: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
        data, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        guard let data else { return 0 }
        return transfer.read(into: UnsafeMutableRawBufferPointer(start: data, count: size * count))
    }

    private func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if !sinkChosen {
            sinkChosen = true
            sink = stream?(HTTPResponseHead(status: status, headers: headers))
        }
        if let sink {
            do { try sink.receive(bytes) } catch {
                failure = error
                return false
            }
            return true
        }
        guard buffer.count + bytes.count <= bufferLimit else {
            failure = HTTPError(.bodyTooLarge, "response body exceeds \(bufferLimit) bytes")
            return false
        }
        buffer.append(contentsOf: bytes)
        return true
    }

    private func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let remaining = body.length - sent
        let wanted = Int(min(Int64(destination.count), remaining))
        guard wanted > 0 else { return 0 }
        switch body {
        case .empty:
            return 0
        case .data:
            let start = bodyData.startIndex + Int(sent)
            bodyData.copyBytes(to: destination.bindMemory(to: UInt8.self), from: start..<(start + wanted))
            sent += Int64(wanted)
            return wanted
        case .file(let path, _, _):
            guard let file else { return 0x1000_0000 }  // CURL_READFUNC_ABORT
            let read = Foundation.read(file.fileDescriptor, destination.baseAddress, wanted)
            guard read > 0 else {
                failure = HTTPError(.localFile, "\(path) ended or failed after \(sent) of \(body.length) bytes")
                return 0x1000_0000
            }
            sent += Int64(read)
            return read
        }
    }
}
