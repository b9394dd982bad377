import CSupport
import Foundation
import Glibc

/// One request on a control socket: a JSON object on one line, `{"op": "pause"}`. Ops that
/// need more (an ask's id) add fields; a server answers an op it doesn't know with an error.
public struct ControlRequest: Codable, Sendable, Equatable {
    public var op: String
    /// The ask `approve` and `deny` answer; unused by the other ops.
    public var id: String?
    /// `approve --always` / `deny --never`: also save a rule, so the same action is decided
    /// this way from now on.
    public var always: Bool?
    /// How much that rule covers (`AskBreadth`: usual, exact, directory); nil: usual.
    public var breadth: String?

    public init(op: String, id: String? = nil, always: Bool? = nil, breadth: String? = nil) {
        self.op = op
        self.id = id
        self.always = always
        self.breadth = breadth
    }
}

/// One pending ask, as `approvals` lists it.
public struct AskListing: Codable, Sendable, Equatable {
    public var id: String
    public var session: String
    /// Seconds since the call was paused, and until the timeout denies it.
    public var ageSeconds: Int
    public var secondsLeft: Int
    public var action: String
    public var target: String
    public var intent: String
    public var pid: Int32
    public var executable: String
    public var agent: String
    /// The rule that asked: `3 (ask: every install)`.
    public var rule: String
    /// What `approve ID --always` would save (`exec npm install *`, into which file, and any
    /// narrowing), or why it can't; nil when rules can't be saved in this session.
    public var always: String?

    enum CodingKeys: String, CodingKey {
        case id, session, action, target, intent, pid, executable, agent, rule, always
        case ageSeconds = "age_seconds", secondsLeft = "seconds_left"
    }

    public init(id: String, session: String, ageSeconds: Int, secondsLeft: Int, action: String, target: String,
                intent: String, pid: Int32, executable: String, agent: String, rule: String) {
        self.id = id
        self.session = session
        self.ageSeconds = ageSeconds
        self.secondsLeft = secondsLeft
        self.action = action
        self.target = target
        self.intent = intent
        self.pid = pid
        self.executable = executable
        self.agent = agent
        self.rule = rule
    }
}

/// The answer to one request, one JSON line: `{"ok": true}` or `{"ok": false, "error": "…"}`,
/// with what the op reports.
public struct ControlResponse: Codable, Sendable, Equatable {
    public var ok: Bool
    public var error: String?
    /// The session answering.
    public var session: String?
    /// Whether its trapped calls are held (`agentgate pause`).
    public var paused: Bool?
    /// `approvals`: the session's pending asks, oldest first.
    public var asks: [AskListing]?
    /// `approve` / `deny`: what the answer did (`allowed once`, a saved rule's file…).
    public var message: String?
    /// `status`: the session's counters (`agentgate serve`'s /metrics); absent from older supervisors.
    public var metrics: SupervisorMetrics?

    public init(ok: Bool, error: String? = nil, session: String? = nil, paused: Bool? = nil,
                asks: [AskListing]? = nil, message: String? = nil, metrics: SupervisorMetrics? = nil) {
        self.ok = ok
        self.error = error
        self.session = session
        self.paused = paused
        self.asks = asks
        self.message = message
        self.metrics = metrics
    }

    static func failure(_ message: String) -> ControlResponse { ControlResponse(ok: false, error: message) }
}

/// What one supervisor has counted since its session started, as `status` reports it.
public struct SupervisorMetrics: Codable, Sendable, Equatable {
    /// Decisions made, by action and decision: `{"exec": {"allow": 3, "deny": 1}}`.
    public var decisions: [String: [String: UInt64]]
    /// Upper bounds of the decision latency buckets, in seconds; a last bucket, +Inf, follows.
    public var latencyBounds: [Double]
    /// Decisions per bucket (not cumulative): `latencyBounds.count + 1` numbers.
    public var latencyCounts: [UInt64]
    public var latencySumSeconds: Double
    /// Events handed to the audit writer and not yet written.
    public var auditQueueDepth: Int
    /// Audit writes that failed (events kept in the fallback file or lost).
    public var auditWriteErrors: UInt64
    /// Asks waiting on a person.
    public var asksPending: Int

    enum CodingKeys: String, CodingKey {
        case decisions
        case latencyBounds = "latency_bounds", latencyCounts = "latency_counts", latencySumSeconds = "latency_sum_seconds"
        case auditQueueDepth = "audit_queue_depth", auditWriteErrors = "audit_write_errors", asksPending = "asks_pending"
    }

    public init(decisions: [String: [String: UInt64]], latencyBounds: [Double], latencyCounts: [UInt64], latencySumSeconds: Double,
                auditQueueDepth: Int, auditWriteErrors: UInt64, asksPending: Int) {
        self.decisions = decisions
        self.latencyBounds = latencyBounds
        self.latencyCounts = latencyCounts
        self.latencySumSeconds = latencySumSeconds
        self.auditQueueDepth = auditQueueDepth
        self.auditWriteErrors = auditWriteErrors
        self.asksPending = asksPending
    }
}

/// The ops a supervisor answers.
public enum ControlOperation: String, Sendable, CaseIterable {
    case status, pause, resume, kill
    /// The pending asks (`agentgate approvals`).
    case approvals
    /// Answers an ask (`agentgate approve ID [--always]`, `agentgate deny ID [--never]`).
    case approve, deny
    /// Reads the policy files again and puts the policy in force if it loads (as SIGHUP does).
    case reload
}

enum ControlLine {
    /// The most bytes one request line may have.
    static let maximumLength = 64 * 1024

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data(#"{"ok":false,"error":"cannot encode the answer"}"#.utf8)
        return Array(data) + [UInt8(ascii: "\n")]
    }

    static func decode<T: Decodable>(_ type: T.Type, _ line: [UInt8]) -> T? {
        try? JSONDecoder().decode(type, from: Data(line))
    }

    /// Writes all of `bytes`; false on an error.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Reads one line (without its newline) into `buffer`'s front, waiting at most until
    /// `deadline` (CLOCK_MONOTONIC ns). nil at end of input, on an error, a timeout or an
    /// over-long line.
    static func readLine(_ fd: Int32, buffer: inout [UInt8], deadline: UInt64) -> [UInt8]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            guard buffer.count <= maximumLength else { return nil }
            let now = agentgate_monotonic_ns()
            guard now < deadline else { return nil }
            let events = agentgate_poll_one(fd, Int16(POLLIN), Int32(min((deadline - now) / 1_000_000 + 1, 60_000)))
            if events == -EINTR { continue }
            guard events > 0 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            buffer += chunk.prefix(n)
        }
    }
}

/// Runs `body` with `path` as a sockaddr_un; -ENAMETOOLONG when it doesn't fit.
func withUnixSocketAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else { return -ENAMETOOLONG }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
    }
}

/// The `agentgate` side of a control socket.
public enum ControlClient {
    public struct Failure: Error, CustomStringConvertible {
        public enum Kind: Sendable { case notRunning, unreachable, noAnswer }
        public let kind: Kind
        public let description: String
    }

    /// Sends one request to the supervisor listening on `socketPath` and returns its answer.
    public static func send(_ request: ControlRequest, to socketPath: String,
                            timeoutMilliseconds: Int = 5000) throws(Failure) -> ControlResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(kind: .unreachable, description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var rc: Int32
        repeat {
            rc = withUnixSocketAddress(socketPath) { connect(fd, $0, $1) == 0 ? 0 : -errno }
        } while rc == -EINTR
        switch -rc {
        case 0: break
        case ENOENT, ECONNREFUSED, ENOTDIR:
            throw Failure(kind: .notRunning, description: "its control socket \(socketPath) is \(rc == -ECONNREFUSED ? "not answering" : "missing")")
        default:
            throw Failure(kind: .unreachable, description: "cannot connect to \(socketPath): \(String(cString: strerror(-rc)))")
        }
        guard ControlLine.writeAll(fd, ControlLine.encode(request)) else {
            throw Failure(kind: .noAnswer, description: "cannot send to \(socketPath): \(String(cString: strerror(errno)))")
        }
        var buffer: [UInt8] = []
        let deadline = agentgate_monotonic_ns() + UInt64(timeoutMilliseconds) * 1_000_000
        guard let line = ControlLine.readLine(fd, buffer: &buffer, deadline: deadline) else {
            throw Failure(kind: .noAnswer, description: "no answer from \(socketPath)")
        }
        guard let response = ControlLine.decode(ControlResponse.self, line) else {
            throw Failure(kind: .noAnswer, description: "an answer from \(socketPath) that isn't a control response")
        }
        return response
    }
}
