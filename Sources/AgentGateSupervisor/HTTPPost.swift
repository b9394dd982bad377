import AgentGatePolicy
import Glibc

/// A minimal HTTP/1.1 POST over a plain TCP socket, for the OTLP exporter and webhooks: one
/// connection per request (`Connection: close`), every step under a timeout, so a destination
/// that never accepts, never reads or never answers costs a sink thread at most
/// `connectTimeout + ioTimeout` per attempt. No TLS (see README: send to a local collector).
struct HTTPPost: Sendable {
    let endpoint: HTTPEndpoint
    var headers: [(String, String)] = []
    var connectTimeoutMilliseconds: Int32 = 2000
    var ioTimeoutMilliseconds = 5000

    enum Outcome: Equatable, CustomStringConvertible {
        /// The status line's code.
        case status(Int)
        /// No answer: why (could not resolve, connect, send or read).
        case failed(String)

        var description: String {
            switch self {
            case .status(let code): "HTTP status \(code)"
            case .failed(let why): why
            }
        }

        var succeeded: Bool { if case .status(let code) = self { return (200..<300).contains(code) } else { return false } }
        /// Worth another attempt: no answer, 429, or a server error.
        var retryable: Bool {
            switch self {
            case .status(let code): code == 429 || code == 408 || code >= 500
            case .failed: true
            }
        }
    }

    /// POSTs `body` with `contentType` to the endpoint (its path, or `path` when given).
    func send(_ body: [UInt8], contentType: String = "application/json", path: String? = nil,
              extraHeaders: [(String, String)] = []) -> Outcome {
        let fd: Int32
        switch connect() {
        case .success(let connected): fd = connected
        case .failure(let failure): return .failed(failure.reason)
        }
        defer { close(fd) }
        let shownHost = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
        var head = "POST \(path ?? endpoint.path) HTTP/1.1\r\nHost: \(shownHost):\(endpoint.port)\r\n"
            + "User-Agent: agentgate/\(AgentGateVersion.string)\r\nContent-Type: \(contentType)\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers + extraHeaders where Self.isHeaderSafe(name) && Self.isHeaderSafe(value) {
            head += "\(name): \(value)\r\n"
        }
        head += "\r\n"
        guard writeAll(fd, Array(head.utf8)), writeAll(fd, body) else { return .failed("could not send the request (\(Self.lastError()))") }
        return readStatus(fd)
    }

    struct Failure: Error { let reason: String }

    /// A header name or value without CR/LF (an injected line would forge a header).
    static func isHeaderSafe(_ text: String) -> Bool {
        !text.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }

    private func connect() -> Result<Int32, Failure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(endpoint.host, "\(endpoint.port)", &hints, &found)
        guard rc == 0, let first = found else {
            return .failure(Failure(reason: "cannot resolve \(endpoint.host): \(String(cString: gai_strerror(rc)))"))
        }
        defer { freeaddrinfo(first) }
        var reason = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            next = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { reason = Self.lastError(); continue }
            var result = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&poller, 1, connectTimeoutMilliseconds) == 1 {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    result = error == 0 ? 0 : -1
                    if error != 0 { reason = String(cString: strerror(error)) }
                } else {
                    reason = "connect timed out after \(connectTimeoutMilliseconds) ms"
                }
            } else if result != 0 {
                reason = Self.lastError()
            }
            if result == 0 { return .success(fd) }
            close(fd)
        }
        return .failure(Failure(reason: "cannot connect to \(endpoint.host):\(endpoint.port): \(reason)"))
    }

    /// Writes all of `bytes` before the I/O deadline.
    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        let deadline = Self.nowMilliseconds() + ioTimeoutMilliseconds
        return bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 { offset += n; continue }
                guard n < 0 && (errno == EAGAIN || errno == EINTR) else { return false }
                guard wait(fd, events: Int16(POLLOUT), until: deadline) else { errno = ETIMEDOUT; return false }
            }
            return true
        }
    }

    /// Reads the response up to its status line, before the I/O deadline.
    private func readStatus(_ fd: Int32) -> Outcome {
        let deadline = Self.nowMilliseconds() + ioTimeoutMilliseconds
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while !received.contains(10) && received.count < 8192 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { received += buffer[..<n]; continue }
            if n == 0 { break }
            guard errno == EAGAIN || errno == EINTR else { return .failed("could not read the answer (\(Self.lastError()))") }
            guard wait(fd, events: Int16(POLLIN), until: deadline) else {
                return .failed("no answer within \(ioTimeoutMilliseconds) ms")
            }
        }
        // "HTTP/1.1 204 No Content"
        let line = String(decoding: received.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
            return .failed(received.isEmpty ? "the connection closed without an answer" : "not an HTTP answer: \(line.prefix(80))")
        }
        return .status(code)
    }

    private func wait(_ fd: Int32, events: Int16, until deadline: Int) -> Bool {
        let left = deadline - Self.nowMilliseconds()
        guard left > 0 else { return false }
        var poller = pollfd(fd: fd, events: events, revents: 0)
        return poll(&poller, 1, Int32(clamping: left)) == 1
    }

    static func nowMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
    }
}

/// Bounded retries with exponential backoff, for sink threads.
struct RetryPolicy: Sendable {
    var attempts = 3
    var firstDelayMilliseconds = 250

    /// Runs `attempt` until it succeeds, says not to retry, or the attempts are spent.
    func run(_ attempt: () -> HTTPPost.Outcome) -> HTTPPost.Outcome {
        var delay = firstDelayMilliseconds
        var outcome = attempt()
        var made = 1
        while !outcome.succeeded && outcome.retryable && made < attempts {
            usleep(UInt32(delay * 1000))
            delay *= 2
            outcome = attempt()
            made += 1
        }
        return outcome
    }
}
