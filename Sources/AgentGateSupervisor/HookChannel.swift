import AgentGatePolicy
import AgentGateStore
import CSupport
import Foundation
import Glibc
import Logging
import Synchronization

/// What an agent hook (`agentgate hook claude-code`) asks a session's supervisor: decide this
/// tool call with the session's policy, and record it in the session.
public struct HookRequest: Codable, Sendable, Equatable {
    /// `$AGENTGATE_SESSION` as the hook saw it: must be the session that answers (a mismatch is
    /// refused, never recorded elsewhere).
    public var session: String
    /// "claude-code" or "codex" ("mcp" for `agentgate mcp`).
    public var agent: String
    public var call: ToolCall
    /// Set by `agentgate mcp` running inside the session: the tools/call to decide instead of
    /// `call` (by the `mcp` rules, an ask put to a person).
    public var mcp: HookMCPCall?

    public init(session: String, agent: String, call: ToolCall, mcp: HookMCPCall? = nil) {
        self.session = session
        self.agent = agent
        self.call = call
        self.mcp = mcp
    }
}

/// A tools/call that `agentgate mcp`, run inside a session, has the session's supervisor decide
/// (the policy isn't readable there), record in the session, and put to a person when it asks.
public struct HookMCPCall: Codable, Sendable, Equatable {
    /// The server's name (`mcp:NAME` is recorded as the executable's agent).
    public var server: String
    /// The tool, as its server names it (what `tool:` globs in an `mcp` rule).
    public var tool: String
    /// Every named argument as text: what `arguments:` globs.
    public var arguments: [String: String]

    public init(server: String, tool: String, arguments: [String: String]) {
        self.server = server
        self.tool = tool
        self.arguments = arguments
    }

    /// The most bytes of one recorded argument value: the rest is cut, marked with `…`.
    public static let recordedValueBytes = 4096

    /// A tools/call's argv as the audit records it: the tool, then `name=value` per argument
    /// (sorted), each value redacted (a sensitive name hides its whole value; the store redacts
    /// secrets in text) and cut.
    public static func recordedArguments(tool: String, arguments: [String: String]) -> [String] {
        [tool] + arguments.sorted { $0.key < $1.key }.map { name, value in
            guard !Redactor.isSensitiveName(name) else { return "\(name)=\(Redactor.marker)" }
            // Cut (with room for a secret across the cut) before redacting: a value may be MiBs.
            let long = value.utf8.count > recordedValueBytes
            var text = Redactor.redact(text: long ? String(decoding: Array(value.utf8.prefix(recordedValueBytes + 1024)), as: UTF8.self) : value)
            if long || text.utf8.count > recordedValueBytes {
                text = String(decoding: Array(text.utf8.prefix(recordedValueBytes)), as: UTF8.self) + "…"
            }
            return "\(name)=\(text)"
        }
    }
}

/// The supervisor's answer: the decision, or why there is none.
public struct HookAnswer: Codable, Sendable, Equatable {
    public var ok: Bool
    public var error: String?
    /// allow, deny, ask or log, as decided; `answer` is what the agent is told (audit mode and
    /// log allow).
    public var decision: String?
    public var answer: String?
    public var action: String?
    public var target: String?
    public var why: String?

    public init(ok: Bool, error: String? = nil, decision: String? = nil, answer: String? = nil, action: String? = nil,
                target: String? = nil, why: String? = nil) {
        self.ok = ok
        self.error = error
        self.decision = decision
        self.answer = answer
        self.action = action
        self.target = target
        self.why = why
    }
}

/// A hook decision as the audit trail records it, whoever records it (the supervisor for a
/// hook inside its session, `agentgate hook` itself outside one).
public enum HookEvidence {
    /// What the agent is told: Codex acts only on a deny and can't put a question to a person,
    /// so its asks are answered deny (`HookOutput`); the others are told the answer.
    public static func told(_ answer: Decision, agent: String) -> Decision {
        agent == "codex" && answer == .ask ? .deny : answer
    }

    public static func event(call: ToolCall, decided: ToolDecision, agent: String, policy: Policy, policySHA256: String?,
                             pid: Int32, ppid: Int32, executable: String, latencyMicros: Int64, home: String?) -> DecisionEvent {
        var reason = decided.why
        var ruleID: String?
        if let index = decided.verdict?.ruleIndex, policy.rules.indices.contains(index) {
            let rule = policy.rules[index]
            ruleID = rule.displayID
            if let ruleReason = rule.reason, decided.verdict?.reason != .escapesScope { reason = ruleReason }
        }
        let told = told(decided.answer, agent: agent)
        if told != decided.decision && decided.decision != .log { reason += "; answered \(told.name)" }
        let intent = Intent.describe(decided.kind, target: decided.target, argv: decided.argv, home: home).text
        var event = DecisionEvent(
            timeMicros: AuditClock.nowMicros(), pid: pid, ppid: ppid, executable: executable,
            syscall: String(call.tool.prefix(256)), action: recordedAction(decided.kind), target: decided.target,
            argv: decided.argv.map(DecisionRecorder.recordable),
            decision: RecordedDecision(decided.decision), ruleIndex: decided.verdict?.ruleIndex, reason: reason,
            latencyMicros: latencyMicros, ruleID: ruleID, intent: intent, notable: decided.decision == .log,
            enforced: decided.verdict?.enforced ?? (policy.mode == .enforce))
        event.policySHA256 = policySHA256
        event.source = .hook
        return event
    }

    static func recordedAction(_ kind: ActionKind) -> RecordedAction {
        switch kind {
        case .exec: .exec
        case .fsRead: .fsRead
        case .fsWrite: .fsWrite
        case .netEgress: .netEgress
        case .mcp: .mcp
        }
    }

}

/// The hook side of a session's hook socket.
///
/// The supervisor hands the agent one end of a socketpair (the fd in `$AGENTGATE_HOOK_FD`, the
/// session in `$AGENTGATE_SESSION`). A hook makes a socketpair of its own, sends one end over
/// the session's socket, writes its request on the other and reads the answer there, so
/// concurrent hooks never read each other's answers. The only thing the socket does is decide
/// and record tool calls in this one session (an in-session `agentgate mcp`'s ask waits for a
/// person): it can't answer an ask, control the session, or reach any other session (the agent can't open another session's socket: it only inherits
/// its own, and the control directory is closed to it).
/// A request of protocol 2, sent by `agentgate-hook` (a small C program, so that a hook in a
/// session starts in a millisecond instead of loading the Swift runtime): the agent's hook input
/// exactly as it came on the hook's stdin, which the supervisor parses, maps, decides and
/// records, and answers with the hook's whole output. On the channel: the session, the agent and
/// the hook's PATH (`P` before it, or `-` for none), each ended by a NUL, then the input to the
/// end of the stream.
public struct RawHookRequest: Sendable, Equatable {
    public var session: String
    public var agent: String
    public var path: String?
    public var input: [UInt8]

    public init(session: String, agent: String, path: String?, input: [UInt8]) {
        self.session = session
        self.agent = agent
        self.path = path
        self.input = input
    }

    /// The request as it goes on the channel.
    public var encoded: [UInt8] {
        Array(session.utf8) + [0] + Array(agent.utf8) + [0] + (path.map { [UInt8(ascii: "P")] + Array($0.utf8) } ?? [UInt8(ascii: "-")]) + [0] + input
    }

    /// Parses what came on a channel: nil when the three fields aren't there.
    public init?(encoded bytes: [UInt8]) {
        var fields: [String] = []
        var start = 0
        while fields.count < 3 {
            guard let end = bytes[start...].firstIndex(of: 0) else { return nil }
            fields.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end + 1
        }
        guard let marker = fields[2].utf8.first, marker == UInt8(ascii: "P") || (marker == UInt8(ascii: "-") && fields[2].utf8.count == 1)
        else { return nil }
        self.init(session: fields[0], agent: fields[1], path: marker == UInt8(ascii: "P") ? String(fields[2].dropFirst()) : nil,
                  input: Array(bytes[start...]))
    }
}

/// What `agentgate-hook` does with a protocol-2 answer: exit with `status`, having written
/// `output` to stdout and `errorText` to stderr. On the channel: `STATUS LENGTH\n`, the output's
/// LENGTH bytes, then the error text to the end of the stream.
public struct RawHookReply: Sendable, Equatable {
    public var status: Int32
    public var output: [UInt8]
    public var errorText: [UInt8]

    public init(status: Int32, output: [UInt8] = [], errorText: [UInt8] = []) {
        self.status = status
        self.output = output
        self.errorText = errorText
    }

    /// A refusal, as `agentgate hook` words one: exit 2 (the agent blocks the call).
    public static func blocked(_ message: String) -> RawHookReply {
        RawHookReply(status: 2, errorText: Array("agentgate hook: \(message); the tool call is blocked\n".utf8))
    }

    public var encoded: [UInt8] { Array("\(status) \(output.count)\n".utf8) + output + errorText }

    /// Parses an answer as `agentgate-hook` does (for tests): nil when it isn't one.
    public init?(encoded bytes: [UInt8]) {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let head = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard head.count == 2, let status = Int32(head[0]), let length = Int(head[1]), length >= 0,
              bytes.count - newline - 1 >= length else { return nil }
        self.init(status: status, output: Array(bytes[(newline + 1)..<(newline + 1 + length)]),
                  errorText: Array(bytes[(newline + 1 + length)...]))
    }
}

public enum HookChannel {
    /// The hello of a channel whose request is a `RawHookRequest` (protocol 2); any other hello
    /// is protocol 1 (a JSON `HookRequest` line, a JSON `HookAnswer` line back).
    public static let rawHello = "agentgate-hook/2"
    /// The largest hook input a protocol-2 request carries: the supervisor parses it, so its
    /// memory and time are bounded by this (a 30 MiB input took ~1 GB and ~5 s, a 969 KB one of
    /// 2,500 deep arguments ~6 s, found by review). agentgate-hook sends at most this much, its
    /// header included, and runs `agentgate hook` for more (a Write of a large file),
    /// which parses it in its own process and sends only the call it maps it to.
    public static let maximumRawInput = 256 << 10
    /// Room for a protocol-2 request's session, agent and PATH.
    public static let maximumRawHeader = 64 << 10
    public static let descriptorVariable = "AGENTGATE_HOOK_FD"
    public static let sessionVariable = "AGENTGATE_SESSION"
    /// The path of the session's hook socket, for hooks whose agent doesn't pass inherited
    /// descriptors on to them (Claude Code, a Node program, starts its hooks with fds 0-2 only).
    public static let socketVariable = "AGENTGATE_HOOK_SOCKET"
    /// The most bytes a request (or answer) may have.
    static let maximumLength = 4 << 20

    public struct Failure: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) { self.description = description }
    }

    /// The session's hook socket named by the environment, or nil outside a session; a
    /// variable that names no such socket is a failure (fail closed: the agent said it is in
    /// a session).
    public static func inheritedSocket(_ environment: [String: String]) throws(Failure) -> Int32? {
        try sessionSocket(environment)?.fd
    }

    /// `inheritedSocket`, saying also whether the descriptor is the inherited one (kept for
    /// every request) or a connection made by name (one request, then closed by its owner).
    public static func sessionSocket(_ environment: [String: String]) throws(Failure) -> (fd: Int32, inherited: Bool)? {
        let path = environment[socketVariable].flatMap { $0.isEmpty ? nil : $0 }
        let session = environment[sessionVariable] ?? ""
        func byName(_ path: String) throws(Failure) -> (fd: Int32, inherited: Bool) { (try connect(path, session: session), false) }
        guard let text = environment[descriptorVariable] else {
            return try path.map { path throws(Failure) in try byName(path) }
        }
        guard let fd = Int32(text), fd >= 0 else { throw Failure(description: "$\(descriptorVariable) is \"\(text)\", not a descriptor") }
        var type: Int32 = 0, domain: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else {
            // Not inherited (the agent started this hook with its standard fds only): the
            // session's socket by its path, when the supervisor named one.
            if let path { return try byName(path) }
            throw Failure(description: "$\(descriptorVariable) names fd \(fd), which is not the session's hook socket (\(String(cString: strerror(errno))))")
        }
        length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length)
        guard domain == AF_UNIX, type == Int32(SOCK_SEQPACKET.rawValue) else {
            if let path { return try byName(path) }
            throw Failure(description: "$\(descriptorVariable) names fd \(fd), which is not the session's hook socket")
        }
        return (fd, true)
    }

    /// How long a hook waits for the session's socket to take its connection.
    static let connectDeadlineNanoseconds: UInt64 = 3_000_000_000

    /// The session's hook socket at `path` (`$AGENTGATE_HOOK_SOCKET`), connected. The name is
    /// taken only as the supervisor makes it, SESSION.hook in a control directory of this user
    /// (a directory, not a link, owned by the user or root, closed to group and others), and
    /// the listener must be this user's or root's: a variable pointing anywhere else (a project's settings
    /// can set the environment) is refused, as a bad descriptor is. Under the supervisor the
    /// connect is itself trapped: only the session's own socket is reachable (other sessions'
    /// control directories are closed to the agent), and the supervisor there answers only
    /// processes of its session.
    static func connect(_ path: String, session: String) throws(Failure) -> Int32 {
        guard !session.isEmpty, !session.contains("/"), path.hasSuffix("/" + session + ".hook") else {
            throw Failure(description: "$\(socketVariable) (\(path)) is not $\(sessionVariable).hook in a control directory")
        }
        let directory = String(path.dropLast(session.utf8.count + ".hook".utf8.count + 1))
        var info = stat()
        guard directory.hasPrefix("/"), lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR,
              info.st_uid == geteuid() || info.st_uid == 0, info.st_mode & 0o077 == 0 else {
            throw Failure(description: "$\(socketVariable) (\(path)) is not in a control directory of yours (mode 0700)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot make a socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw Failure(description: "$\(socketVariable) is too long for a socket path")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        // A full backlog answers EAGAIN on a non-blocking unix socket: retried until the deadline.
        let deadline = agentgate_monotonic_ns() + connectDeadlineNanoseconds
        while true {
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc == 0 { break }
            let error = errno
            if (error == EAGAIN || error == EINTR) && agentgate_monotonic_ns() < deadline {
                usleep(2_000)
                continue
            }
            close(fd)
            throw Failure(description: "cannot reach the session's hook socket \(path): \(String(cString: strerror(error)))")
        }
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = UInt32(MemoryLayout.size(ofValue: credentials))
        guard agentgate_getsockopt(fd, SOL_SOCKET, Int32(AGENTGATE_SO_PEERCRED), &credentials, &length) == 0,
              credentials.1 == geteuid() || credentials.1 == 0 else {
            close(fd)
            throw Failure(description: "the socket at \(path) is not a hook socket of yours")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Asks the supervisor at the other end of `socket` to decide and record `request`.
    public static func ask(_ request: HookRequest, socket: Int32, timeoutMilliseconds: Int = 3000) throws(Failure) -> HookAnswer {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw Failure(description: "cannot make a socketpair: \(String(cString: strerror(errno)))")
        }
        defer { close(pair[0]) }
        let hello: [UInt8] = Array("agentgate-hook/1".utf8)
        let sent = hello.withUnsafeBytes { agentgate_send_fd(socket, $0.baseAddress, $0.count, pair[1]) }
        close(pair[1])
        guard sent >= 0 else {
            throw Failure(description: "cannot reach the session's supervisor: \(String(cString: strerror(-sent)))")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(request), data.count < maximumLength else {
            throw Failure(description: "the tool call is too large to send to the session's supervisor")
        }
        guard ControlLine.writeAll(pair[0], Array(data) + [UInt8(ascii: "\n")]) else {
            throw Failure(description: "cannot send the tool call to the session's supervisor: \(String(cString: strerror(errno)))")
        }
        let deadline = agentgate_monotonic_ns() + UInt64(timeoutMilliseconds) * 1_000_000
        guard let line = readLine(pair[0], deadline: deadline) else {
            throw Failure(description: "no answer from the session's supervisor")
        }
        guard let answer = try? JSONDecoder().decode(HookAnswer.self, from: Data(line)) else {
            throw Failure(description: "an answer from the session's supervisor that isn't one")
        }
        return answer
    }

    /// Everything up to the end of the stream, at most `limit` bytes, by `deadline`; or why not.
    static func readToEnd(_ fd: Int32, limit: Int, deadline: UInt64) -> Result<[UInt8], Failure> {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let now = agentgate_monotonic_ns()
            guard now < deadline else { return .failure(Failure(description: "the request did not end in time")) }
            let events = agentgate_poll_one(fd, Int16(POLLIN), Int32(min((deadline - now) / 1_000_000 + 1, 60_000)))
            if events == -EINTR { continue }
            guard events > 0 else { return .failure(Failure(description: "the request did not end in time")) }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n >= 0 else { return .failure(Failure(description: "cannot read the request: \(String(cString: strerror(errno)))")) }
            if n == 0 { return .success(buffer) }
            buffer += chunk.prefix(n)
            guard buffer.count <= limit else { return .failure(Failure(description: "the request is over \(limit) bytes")) }
        }
    }

    /// One line of at most `maximumLength` bytes, by `deadline`.
    static func readLine(_ fd: Int32, deadline: UInt64) -> [UInt8]? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) { return Array(buffer[..<newline]) }
            guard buffer.count <= maximumLength else { return nil }
            let now = agentgate_monotonic_ns()
            guard now < deadline else { return nil }
            let events = agentgate_poll_one(fd, Int16(POLLIN), Int32(min((deadline - now) / 1_000_000 + 1, 60_000)))
            if events == -EINTR { continue }
            guard events > 0 else { return nil }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return nil }
            buffer += chunk.prefix(n)
        }
    }
}

/// The process at the other end of a hook's channel, as it was when the channel came: the
/// process that made the socketpair (SO_PEERCRED), pinned by a pidfd so that a pid reused or a
/// program run since is noticed before anything is recorded in its name.
struct HookPeer: Sendable {
    let pid: pid_t
    let ppid: pid_t
    let executable: String
    let pidfd: Int32
    /// The request's channel: a handler that answers later (an ask) takes a dup of it.
    var channel: Int32 = -1

    /// Whether the pinned process still runs, as the same program as when the channel came.
    var isUnchanged: Bool {
        var target: pid_t = 0
        var isDirectory = false
        guard agentgate_process_handle_target(pidfd, &target, &isDirectory) == 0, target == pid else { return false }
        return ProcessTable.readLink("/proc/\(pid)/exe") == executable
    }
}

/// The supervisor side of the hook socket: one thread, one request at a time, every read and
/// write on a channel bounded by a deadline (so a hook that never writes, or never reads its
/// answer, holds up only the agent's own hooks, and never the end of the session).
final class HookServer: Sendable {
    /// The end the agent inherits (not close-on-exec); closed in the supervisor once spawned.
    let agentFD: Int32
    private let serverFD: Int32
    /// The same channel by name, for hooks that don't inherit `agentFD`: a listening socket in
    /// the session's control directory (closed to the agent but for connecting to this one
    /// socket, see ConnectHandler), its path and the identity of its node; -1/nil without one.
    private let listenFD: Int32
    let listenPath: String?
    let listenIdentity: ImageIdentity?
    private let wakeFDs: (read: Int32, write: Int32)
    private let thread = Mutex<Thread?>(nil)
    private let stopped = Atomic<Bool>(false)
    /// The channel being answered, so `stop` can cut its I/O short (shutdown) under the lock
    /// that the thread also holds to close it (no shutdown of a reused descriptor).
    private let current = Mutex<Int32>(-1)
    private let finished = CountingSemaphore()
    /// How long one request may take to arrive, and its answer to be taken.
    static let requestDeadlineNanoseconds: UInt64 = 2_000_000_000
    /// The longest text in an answer (a target or reason is echoed, shortened, never whole).
    static let answerFieldLimit = 4096
    /// How long `stop` waits for the thread once its I/O has been cut short.
    static let stopWaitMilliseconds = 5000

    private init(agentFD: Int32, serverFD: Int32, wakeFDs: (Int32, Int32), listenFD: Int32, listenPath: String?,
                 listenIdentity: ImageIdentity?) {
        self.agentFD = agentFD
        self.serverFD = serverFD
        self.wakeFDs = wakeFDs
        self.listenFD = listenFD
        self.listenPath = listenPath
        self.listenIdentity = listenIdentity
    }

    /// `listenPath`: where to listen by name too (nil: the inherited socket only; a path that
    /// can't be bound leaves the inherited socket only, and says so in the log).
    static func open(listenPath: String? = nil, log: Logger? = nil) -> HookServer? {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &pair) == 0 else { return nil }
        // The agent's end goes high: a low number the agent inherits would be skipped by its own
        // opens (the kernel hands out the lowest free fd), which it wouldn't be without the
        // supervisor, and a low number is more likely to be closed and reused for another file.
        // Above 63 only when the table was grown while the process was single-threaded:
        // growing it now, with threads sharing it, waits for an RCU grace period (~10 ms here).
        var limit = rlimit()
        let ceiling = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? min(UInt64(limit.rlim_cur), 1024) : 1024
        let base: Int32 = DescriptorTable.isGrown && ceiling > 64 ? Int32(ceiling) - 24 : 48
        if case let high = fcntl(pair[1], F_DUPFD, base), high >= 0 {
            close(pair[1])
            pair[1] = high
        }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            close(pair[0])
            close(pair[1])
            return nil
        }
        for fd in [pair[0], pipeFDs[0], pipeFDs[1]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(pair[0], F_SETFL, O_NONBLOCK)
        var listening: (fd: Int32, path: String, identity: ImageIdentity)? = nil
        if let listenPath {
            switch listen(at: listenPath) {
            case .success(let found): listening = found
            case .failure(let failure): log?.warning("hook socket: \(failure.description); hooks must inherit the session's socket")
            }
        }
        return HookServer(agentFD: pair[1], serverFD: pair[0], wakeFDs: (pipeFDs[0], pipeFDs[1]),
                          listenFD: listening?.fd ?? -1, listenPath: listening?.path, listenIdentity: listening?.identity)
    }

    /// A listening SOCK_SEQPACKET socket bound at `path` (0600), with the identity of its node.
    /// Called once the session's control socket is bound, which no live session holds: a
    /// socket left at `path` is a dead supervisor's, and is replaced.
    private static func listen(at path: String) -> Result<(fd: Int32, path: String, identity: ImageIdentity), HookChannel.Failure> {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(.init(description: "cannot make a socket: \(String(cString: strerror(errno)))")) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return .failure(.init(description: "\(path) is too long for a socket path"))
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o600) == 0, Glibc.listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            if bound == 0 { unlink(path) }
            return .failure(.init(description: "cannot listen at \(path): \(reason)"))
        }
        let node = Glibc.open(path, Int32(AGENTGATE_O_PATH) | O_CLOEXEC | O_NOFOLLOW)
        guard node >= 0 else {
            close(fd)
            unlink(path)
            return .failure(.init(description: "cannot open \(path): \(String(cString: strerror(errno)))"))
        }
        defer { close(node) }
        let identity = ImageIdentity(fd: node)
        guard identity.inode != 0 else {
            close(fd)
            unlink(path)
            return .failure(.init(description: "cannot identify \(path)"))
        }
        return .success((fd, path, identity))
    }

    /// The agent's environment with the hook socket named in it (and any outer session's
    /// variables replaced).
    func environment(_ environment: [String], session: String) -> [String] {
        let names = [HookChannel.descriptorVariable, HookChannel.sessionVariable, HookChannel.socketVariable]
        return environment.filter { entry in !names.contains { entry.hasPrefix($0 + "=") } }
            + ["\(HookChannel.descriptorVariable)=\(agentFD)", "\(HookChannel.sessionVariable)=\(session)"]
            + (listenPath.map { ["\(HookChannel.socketVariable)=\($0)"] } ?? [])
    }

    /// Closes the agent's end in the supervisor (the agent has its copy).
    func agentStarted() {
        close(agentFD)
    }

    /// Starts answering: `admit` says whether a pid is a process of the session (only those may
    /// ask), `handle` decides and records a request for the peer.
    func start(log: Logger, admit: @escaping @Sendable (pid_t) -> Bool,
               handle: @escaping @Sendable (HookRequest, HookPeer) -> HookAnswer?,
               handleRaw: @escaping @Sendable (RawHookRequest, HookPeer) -> RawHookReply) -> Bool {
        let handlers = Handlers(request: handle, raw: handleRaw)
        // Room for the hook input's parsing and mapping (protocol 2), which `agentgate hook`
        // otherwise does on a main thread's 8 MiB; only the pages used are ever touched.
        let thread = Thread(stackSize: 8 << 20) { [self] in
            serve(log: log, admit: admit, handle: handlers)
            finished.signal()
        }
        guard thread.start(detached: false) else { return false }
        self.thread.withLock { $0 = thread }
        return true
    }

    /// Stops answering, within a bound whatever the agent left behind: the thread is woken and
    /// the channel it is answering is shut down; descriptors still queued on the socket (a
    /// channel's own end parked there, say) are closed, so nothing of the agent outlives it.
    func stop(log: Logger? = nil) {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        var byte: UInt8 = 1
        _ = write(wakeFDs.write, &byte, 1)
        current.withLock { channel in if channel >= 0 { _ = shutdown(channel, Int32(SHUT_RDWR)) } }
        if let thread = thread.withLock({ $0 }) {
            guard finished.wait(milliseconds: Self.stopWaitMilliseconds) else {
                // Never reached (every wait in the thread is bounded), but the session must end
                // with its agent: leave the thread and its descriptors to the process's exit.
                log?.error("hook socket: the hooks' thread did not stop within \(Self.stopWaitMilliseconds) ms; left behind")
                return
            }
            thread.join()
        }
        drainQueued()
        close(serverFD)
        close(wakeFDs.read)
        close(wakeFDs.write)
        if listenFD >= 0 {
            close(listenFD)
            // Only the node made here: a session that took the id over since has its own.
            if let listenPath, let listenIdentity {
                let node = Glibc.open(listenPath, Int32(AGENTGATE_O_PATH) | O_CLOEXEC | O_NOFOLLOW)
                if node >= 0 {
                    if ImageIdentity(fd: node) == listenIdentity { unlink(listenPath) }
                    close(node)
                }
            }
        }
    }

    /// Closes the descriptors still queued on the server socket (bounded: close purges the rest).
    private func drainQueued() {
        var hello = [UInt8](repeating: 0, count: 64)
        for _ in 0..<4096 {
            var channel: Int32 = -1
            let count = hello.withUnsafeMutableBytes { agentgate_receive_fd(serverFD, $0.baseAddress, $0.count, &channel) }
            if channel >= 0 { close(channel) }
            if count < 0 && count != -Int(EMSGSIZE) { return }
            if count == 0 && channel < 0 { return } // end of file (close purges anything left)
        }
    }

    /// What answers the two kinds of request.
    struct Handlers: Sendable {
        let request: @Sendable (HookRequest, HookPeer) -> HookAnswer?
        let raw: @Sendable (RawHookRequest, HookPeer) -> RawHookReply
    }

    private func serve(log: Logger, admit: @Sendable (pid_t) -> Bool, handle: Handlers) {
        var fds = [pollfd(fd: serverFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFDs.read, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
        while !stopped.load(ordering: .relaxed) {
            for index in fds.indices { fds[index].revents = 0 }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 || fds[1].revents != 0 { return }
            if fds[2].revents & Int16(POLLIN) != 0 {
                // A hook that connected by name: its hello and channel come on the connection,
                // within the request deadline.
                let connection = accept(listenFD, nil, nil)
                if connection < 0 && errno != EAGAIN && errno != EINTR {
                    // EMFILE, ENOMEM…: the connection stays queued and the listener readable;
                    // wait a little rather than spin.
                    usleep(100_000)
                } else if connection >= 0 && !Self.connectedBySupervisor(connection) {
                    // Every connect from the session's agent is performed by this supervisor
                    // (ConnectHandler): any other connection is no hook of the session's, and
                    // must not hold the thread.
                    close(connection)
                } else if connection >= 0 {
                    _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                    _ = fcntl(connection, F_SETFL, O_NONBLOCK)
                    current.withLock { $0 = connection }
                    if stopped.load(ordering: .relaxed) { _ = shutdown(connection, Int32(SHUT_RDWR)) }
                    let deadline = agentgate_monotonic_ns() + Self.requestDeadlineNanoseconds
                    var channel: Int32 = -1
                    var isRaw = false
                    while channel < 0 {
                        let now = agentgate_monotonic_ns()
                        guard now < deadline else { break }
                        let events = agentgate_poll_one(connection, Int16(POLLIN), Int32((deadline - now) / 1_000_000 + 1))
                        if events == -EINTR { continue }
                        guard events > 0 else { break }
                        var hello = [UInt8](repeating: 0, count: 64)
                        let count = hello.withUnsafeMutableBytes { agentgate_receive_fd(connection, $0.baseAddress, $0.count, &channel) }
                        if count == -Int(EAGAIN) || count == -Int(EINTR) { continue }
                        isRaw = Self.isRawHello(hello, count: count)
                        break
                    }
                    current.withLock { current in
                        close(connection)
                        current = -1
                    }
                    if channel >= 0 { serve(channel: channel, isRaw: isRaw, log: log, admit: admit, handle: handle) }
                }
            }
            if fds[0].revents & Int16(POLLIN) == 0 {
                // Every copy of the agent's end is closed: nothing more can come on it.
                if fds[0].revents & Int16(POLLHUP | POLLERR) != 0 { fds[0].fd = -1 }
                continue
            }
            var hello = [UInt8](repeating: 0, count: 64)
            var channel: Int32 = -1
            let count = hello.withUnsafeMutableBytes { agentgate_receive_fd(serverFD, $0.baseAddress, $0.count, &channel) }
            if count < 0 { continue }
            guard channel >= 0 else {
                // End of file: every copy of the agent's end is closed. The socket then polls
                // readable (POLLIN with POLLHUP) for good: stop polling it, or this thread spins.
                if count == 0 && fds[0].revents & Int16(POLLHUP) != 0 { fds[0].fd = -1 }
                continue
            }
            serve(channel: channel, isRaw: Self.isRawHello(hello, count: count), log: log, admit: admit, handle: handle)
        }
    }

    private static func isRawHello(_ hello: [UInt8], count: Int) -> Bool {
        count == HookChannel.rawHello.utf8.count && hello.prefix(count).elementsEqual(HookChannel.rawHello.utf8)
    }

    /// Whether this process made the connection at the other end of `connection` (SO_PEERCRED).
    private static func connectedBySupervisor(_ connection: Int32) -> Bool {
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = UInt32(MemoryLayout.size(ofValue: credentials))
        return agentgate_getsockopt(connection, SOL_SOCKET, Int32(AGENTGATE_SO_PEERCRED), &credentials, &length) == 0
            && credentials.0 == getpid()
    }

    /// Answers the one request on `channel`, and closes it.
    private func serve(channel: Int32, isRaw: Bool, log: Logger, admit: @Sendable (pid_t) -> Bool, handle: Handlers) {
        current.withLock { $0 = channel }
        // A stop that came before the channel was published could not shut it down.
        if stopped.load(ordering: .relaxed) { _ = shutdown(channel, Int32(SHUT_RDWR)) }
        if isRaw {
            answerRaw(channel, log: log, admit: admit, handle: handle.raw)
        } else {
            answer(channel, log: log, admit: admit, handle: handle.request)
        }
        current.withLock { current in
            close(channel)
            current = -1
        }
    }

    /// Who made `channel`, taken as soon as it came; nil (with why) when it may not ask.
    private func peer(of channel: Int32, admit: (pid_t) -> Bool) -> Result<HookPeer, HookChannel.Failure> {
        // Only a socketpair's unnamed end: not a socket of another family (TCP names pid 0)
        // nor one connected to a listener (SO_PEERCRED would name the listener).
        var address = sockaddr_storage()
        var addressLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(channel, $0, &addressLength) }
        } != 0 || Int(addressLength) > MemoryLayout<sa_family_t>.size
        guard !named else { return .failure(.init(description: "the channel is not an unnamed socketpair")) }
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = UInt32(MemoryLayout.size(ofValue: credentials))
        guard agentgate_getsockopt(channel, SOL_SOCKET, Int32(AGENTGATE_SO_PEERCRED), &credentials, &length) == 0,
              credentials.0 > 0 else {
            return .failure(.init(description: "the channel names no process"))
        }
        let pid = credentials.0
        // The process itself, not its number: SO_PEERPIDFD (Linux 6.5) is the one that made
        // the channel (or fails once it has exited); on older kernels, a pidfd of the pid,
        // checked below to be a process of the session.
        var pidfd: Int32 = -1
        length = UInt32(MemoryLayout<Int32>.size)
        let peerPidfd = agentgate_getsockopt(channel, SOL_SOCKET, Int32(AGENTGATE_SO_PEERPIDFD), &pidfd, &length)
        if peerPidfd == -ENOPROTOOPT {
            pidfd = agentgate_pidfd_open_flags(pid, 0)
        } else if peerPidfd != 0 {
            pidfd = -1
        }
        guard pidfd >= 0 else { return .failure(.init(description: "the process that made the channel (pid \(pid)) has exited")) }
        _ = fcntl(pidfd, F_SETFD, FD_CLOEXEC)
        let executable = ProcessTable.readLink("/proc/\(pid)/exe") ?? ""
        let found = HookPeer(pid: pid, ppid: ProcStatus(tid: pid).ppid, executable: executable, pidfd: pidfd)
        guard !executable.isEmpty, found.isUnchanged else {
            close(pidfd)
            return .failure(.init(description: "the process that made the channel (pid \(pid)) has exited"))
        }
        guard admit(pid) else {
            close(pidfd)
            return .failure(.init(description: "the process that made the channel (pid \(pid)) is not in this session"))
        }
        return .success(found)
    }

    private func answer(_ channel: Int32, log: Logger, admit: (pid_t) -> Bool, handle: @Sendable (HookRequest, HookPeer) -> HookAnswer?) {
        var domain: Int32 = 0, type: Int32 = 0
        var optionLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(channel, SOL_SOCKET, SO_DOMAIN, &domain, &optionLength) == 0, domain == AF_UNIX else { return }
        optionLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(channel, SOL_SOCKET, SO_TYPE, &type, &optionLength) == 0, type == Int32(SOCK_STREAM.rawValue) else { return }
        let deadline = agentgate_monotonic_ns() + Self.requestDeadlineNanoseconds
        let reply: HookAnswer
        switch peer(of: channel, admit: admit) {
        case .failure(let failure):
            log.warning("hook socket: refused a channel: \(failure.description)")
            reply = HookAnswer(ok: false, error: "refused: \(failure.description)")
        case .success(let peer):
            defer { close(peer.pidfd) }
            if let line = HookChannel.readLine(channel, deadline: deadline) {
                if let request = try? JSONDecoder().decode(HookRequest.self, from: Data(line)) {
                    if peer.isUnchanged {
                        var withChannel = peer
                        withChannel.channel = channel
                        // nil: handed to a thread that answers on the channel later (an ask).
                        guard let now = handle(request, withChannel) else { return }
                        reply = now
                    } else {
                        log.warning("hook socket: refused a request: pid \(peer.pid) (\(peer.executable)) exited or ran another program since it made the channel")
                        reply = HookAnswer(ok: false, error: "refused: the process that made the channel exited or ran another program")
                    }
                } else {
                    reply = HookAnswer(ok: false, error: "not a hook request")
                }
            } else {
                reply = HookAnswer(ok: false, error: "no complete hook request within 2 s")
            }
        }
        _ = Self.send(channel, ControlLine.encode(Self.shortened(reply)),
                      deadline: agentgate_monotonic_ns() + Self.requestDeadlineNanoseconds)
    }

    /// A protocol-2 request: read to the end of the stream (the hook's whole input), decided by
    /// `handle`, answered with the hook's output. Every failure is an answer that blocks the call.
    private func answerRaw(_ channel: Int32, log: Logger, admit: (pid_t) -> Bool, handle: @Sendable (RawHookRequest, HookPeer) -> RawHookReply) {
        var domain: Int32 = 0, type: Int32 = 0
        var optionLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(channel, SOL_SOCKET, SO_DOMAIN, &domain, &optionLength) == 0, domain == AF_UNIX else { return }
        optionLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(channel, SOL_SOCKET, SO_TYPE, &type, &optionLength) == 0, type == Int32(SOCK_STREAM.rawValue) else { return }
        let reply: RawHookReply
        switch peer(of: channel, admit: admit) {
        case .failure(let failure):
            log.warning("hook socket: refused a channel: \(failure.description)")
            reply = .blocked("the session's supervisor refused: refused: \(failure.description)")
        case .success(let peer):
            defer { close(peer.pidfd) }
            let deadline = agentgate_monotonic_ns() + Self.requestDeadlineNanoseconds
            switch HookChannel.readToEnd(channel, limit: HookChannel.maximumRawInput + HookChannel.maximumRawHeader, deadline: deadline) {
            case .failure(let problem):
                reply = .blocked(problem.description)
            case .success(let bytes):
                if let request = RawHookRequest(encoded: bytes) {
                    if peer.isUnchanged {
                        reply = handle(request, peer)
                    } else {
                        log.warning("hook socket: refused a request: pid \(peer.pid) (\(peer.executable)) exited or ran another program since it made the channel")
                        reply = .blocked("the session's supervisor refused: refused: the process that made the channel exited or ran another program")
                    }
                } else {
                    reply = .blocked("the session's supervisor refused: not a hook request")
                }
            }
        }
        _ = Self.send(channel, reply.encoded, deadline: agentgate_monotonic_ns() + Self.requestDeadlineNanoseconds)
    }


    /// `answer` with every text cut to `answerFieldLimit` bytes (the record keeps them whole).
    static func shortened(_ answer: HookAnswer) -> HookAnswer {
        func cut(_ text: String?) -> String? {
            guard let text, text.utf8.count > answerFieldLimit else { return text }
            var kept = Substring.UnicodeScalarView()
            var bytes = 0
            for scalar in text.unicodeScalars {
                bytes += String(scalar).utf8.count
                guard bytes <= answerFieldLimit - 32 else { break }
                kept.append(scalar)
            }
            return String(kept) + "… (\(text.utf8.count) bytes)"
        }
        var shortened = answer
        shortened.error = cut(answer.error)
        shortened.target = cut(answer.target)
        shortened.why = cut(answer.why)
        shortened.decision = cut(answer.decision)
        shortened.answer = cut(answer.answer)
        shortened.action = cut(answer.action)
        return shortened
    }

    /// Sends all of `bytes` by `deadline` (never waits past it for a peer that doesn't read).
    static func send(_ fd: Int32, _ bytes: [UInt8], deadline: UInt64) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 {
                offset += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            guard n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) else { return false }
            let now = agentgate_monotonic_ns()
            guard now < deadline else { return false }
            let events = agentgate_poll_one(fd, Int16(POLLOUT), Int32(min((deadline - now) / 1_000_000 + 1, 60_000)))
            if events == -EINTR { continue }
            guard events > 0 else { return false }
        }
        return true
    }
}

extension Supervisor {
    /// Decides a hook's tool call with the session's policy and records it in the session
    /// (source "hook"), as made by the process that asked.
    func hookAnswer(_ request: HookRequest, peer: HookPeer, core: SupervisorCore, mcpCalls: SessionMCPCalls?) -> HookAnswer? {
        let started = agentgate_monotonic_ns()
        let pid = peer.pid
        guard request.session == options.sessionName else {
            log.warning("hook socket: refused a request for session \"\(request.session)\" (pid \(pid)): this is session \"\(options.sessionName)\"")
            return HookAnswer(ok: false, error: "this hook socket belongs to session \(options.sessionName), not \(request.session)")
        }
        if let call = request.mcp {
            guard let mcpCalls else { return HookAnswer(ok: false, error: "this session decides no MCP calls") }
            return mcpCalls.decide(call, peer: peer, started: started)
        }
        guard request.call.tool.utf8.count <= 256, !request.call.tool.isEmpty, request.call.actions.count <= 256 else {
            return HookAnswer(ok: false, error: "a malformed tool call")
        }
        let version = core.policies.version
        // A file reached through a symlink a rule names is decided under that name too, as the
        // kernel layer decides it (SymlinkAliases).
        var call = request.call
        if !version.symlinkAliases.isEmpty {
            for index in call.actions.indices where call.actions[index].kind == .fsRead || call.actions[index].kind == .fsWrite {
                call.actions[index].targets += call.actions[index].targets.flatMap { version.symlinkAliases.names(of: $0) }
            }
        }
        let decided = version.policy.decide(call, context: core.contexts.context(tid: pid))
        let event = HookEvidence.event(
            call: request.call, decided: decided, agent: request.agent, policy: version.policy, policySHA256: version.sha256, pid: pid,
            ppid: peer.ppid, executable: peer.executable, latencyMicros: Int64((agentgate_monotonic_ns() - started) / 1000),
            home: core.recorder.home)
        core.recorder.counts.count(decided.decision)
        core.recorder.echo?(event)
        core.recorder.writer?.record(event)
        return HookAnswer(ok: true, decision: decided.decision.name, answer: decided.answer.name, action: decided.kind.name,
                          target: decided.target, why: event.reason)
    }

    /// Answers `agentgate-hook` (protocol 2) as `agentgate hook` answers inside a session: the
    /// input parsed and mapped here, then decided and recorded by `hookAnswer`; the hook's
    /// stdout, stderr and exit status come back whole.
    func rawHookReply(_ request: RawHookRequest, peer: HookPeer, core: SupervisorCore) -> RawHookReply {
        guard let agent = HookAgent(rawValue: request.agent) else { return .blocked("unknown agent \"\(request.agent)\"") }
        let call: ToolCall
        // Paths as the hook's process resolves them, not this one: from its /proc/self, and
        // with its rights (a root supervisor must not follow links in directories the hook's
        // process can't search, and tell it where they lead).
        let view = PathView(asProcess: peer.pid)
        let (identity, refusal, _) = core.actAsAgent(tid: peer.pid)
        if let refusal { return .blocked("the paths can't be resolved as the hook's process: \(refusal)") }
        do throws(HookInputError) {
            defer { core.restoreIdentity(identity) }
            switch try HookEvent.parse(request.input, agent: agent) {
            case .toolUse(let input): call = try HookMapping.toolCall(input, path: request.path, view: view)
            // The session ends with its agent: nothing to close.
            case .sessionEnd: return RawHookReply(status: 0)
            }
        } catch {
            return .blocked(error.description)
        }
        // A path into the supervisor's own /proc entry: resolved here it would tell the agent
        // what the supervisor holds; the call is blocked rather than decided as something else.
        if view.reachedOwnProcess {
            return .blocked("a path leads into the session's supervisor's /proc entry")
        }
        if view.exhausted {
            return .blocked("resolving the call's paths took over \(PathView.stepBudget) lookups")
        }
        // Never nil: only an MCP call's ask is answered later.
        let answer = hookAnswer(HookRequest(session: request.session, agent: agent.rawValue, call: call), peer: peer, core: core, mcpCalls: nil)
        guard let answer, answer.ok, let given = answer.answer.flatMap(Decision.init(name:)) else {
            return .blocked("the session's supervisor refused: \(answer?.error ?? "no decision")")
        }
        let text = HookOutput.reason(decision: answer.decision ?? given.name, action: answer.action ?? "", target: answer.target ?? "",
                                     argv: nil, why: answer.why ?? "")
        return RawHookReply(status: 0, output: HookOutput.answer(for: agent, decision: given, reason: text).map { Array(($0 + "\n").utf8) } ?? [])
    }
}

/// The process's fd table, grown once at start so that a high fd costs nothing later.
public enum DescriptorTable {
    private static let grown = Atomic<Bool>(false)

    /// Whether `growWhileSingleThreaded` grew the table (so fds up to 1023 take no expansion).
    static var isGrown: Bool { grown.load(ordering: .acquiring) }

    /// Grows the fd table to 1024 entries (fcntl F_DUPFD to fd 1023, closed at once), but only
    /// while this process has one thread: the kernel waits for an RCU grace period before it
    /// frees a table other threads share (expand_fdtable), about 10 ms on a VM. Call it first
    /// thing in main.
    public static func growWhileSingleThreaded() {
        var tasks = stat()
        guard stat("/proc/self/task", &tasks) == 0, tasks.st_nlink == 3 else { return } // ".", ".." and one thread
        let probe = fcntl(2, F_DUPFD_CLOEXEC, 1023)
        guard probe >= 0 else { return }
        close(probe)
        grown.store(true, ordering: .releasing)
    }
}
