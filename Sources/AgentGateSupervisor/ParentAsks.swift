import AgentGatePolicy
import AgentGateStore
import CSupport
import Foundation
import Glibc
import Logging
import Synchronization

/// An ask the process that started the supervisor puts to the session's approvers: `agentgate
/// mcp` runs its MCP server under the supervisor and, when the policy asks about a tools/call,
/// has the person answer it here (at the terminal, with `agentgate approve`, or on the
/// dashboard), exactly like an ask of the server's own calls.
public struct ParentAskRequest: Codable, Sendable, Equatable {
    /// The MCP tool, as the server names it.
    public var tool: String
    /// Every named argument as text (`MCPToolCallRequest.argumentTexts`): what the policy decides on.
    public var arguments: [String: String]
    /// What the person is shown: the tool, then `name=value` per argument, redacted and cut.
    public var shown: [String]

    public init(tool: String, arguments: [String: String], shown: [String]) {
        self.tool = tool
        self.arguments = arguments
        self.shown = shown
    }
}

/// The supervisor's answer to a `ParentAskRequest`.
public struct ParentAskAnswer: Codable, Sendable, Equatable {
    /// Whether the call may go ahead.
    public var allowed: Bool
    /// How it was settled: `allowed once by alice with agentgate (pid 12)`, `denied by the
    /// timeout: …`, or why nobody could be asked.
    public var why: String
    /// The ask's id, when one was put to a person.
    public var ask: String?

    public init(allowed: Bool, why: String, ask: String? = nil) {
        self.allowed = allowed
        self.why = why
        self.ask = ask
    }
}

/// The parent's side of the ask channel: one request at a time, each a JSON line answered by one.
public enum ParentAskChannel {
    /// The most bytes a request may have (MCP arguments can be large; the gateway's own line limit).
    public static let maximumLength = 16 << 20

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let errno: Int32
        public let description: String
    }

    /// Sends `request` on `fd` and waits up to `timeoutMilliseconds` for the answer.
    public static func ask(_ request: ParentAskRequest, fd: Int32, timeoutMilliseconds: Int) throws(Failure) -> ParentAskAnswer {
        guard let body = try? JSONEncoder().encode(request) else { throw Failure(errno: 0, description: "cannot encode the ask") }
        guard body.count < maximumLength else { throw Failure(errno: E2BIG, description: "the call's arguments are too large to ask about") }
        let deadline = agentgate_monotonic_ns() + UInt64(timeoutMilliseconds) * 1_000_000
        guard writeAll(fd, Array(body) + [0x0A]) else {
            throw Failure(errno: errno, description: "the supervisor took no ask: \(String(cString: strerror(errno)))")
        }
        guard let line = readLine(fd, deadline: deadline) else {
            throw Failure(errno: ETIMEDOUT, description: "the supervisor did not answer the ask")
        }
        guard let answer = try? JSONDecoder().decode(ParentAskAnswer.self, from: Data(line)) else {
            throw Failure(errno: EPROTO, description: "the supervisor's answer to the ask is malformed")
        }
        return answer
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            written += n
        }
        return true
    }

    /// One line (without its newline) read before `deadline` (nil: none, the peer closed, or
    /// over `maximumLength`).
    static func readLine(_ fd: Int32, deadline: UInt64?) -> [UInt8]? {
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let deadline {
                let now = agentgate_monotonic_ns()
                guard now < deadline else { return nil }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, Int32(min(UInt64(Int32.max), (deadline - now) / 1_000_000 + 1)))
                if ready < 0 && errno == EINTR { continue }
                guard ready > 0 else { return nil }
            }
            // Peeked first so a read never takes bytes past the newline (the next request's).
            let peeked = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK)) }
            if peeked < 0 && errno == EINTR { continue }
            guard peeked > 0 else { return nil }
            let end = chunk[..<peeked].firstIndex(of: 0x0A)
            let take = end.map { $0 + 1 } ?? peeked
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, take, 0) }
            guard n == take else { return nil }
            if let end {
                line += chunk[..<end]
                return line
            }
            line += chunk[..<n]
            guard line.count <= maximumLength else { return nil }
        }
    }
}

/// The supervisor's side: a thread of its own, started with the session, reads the parent's
/// asks from the descriptor it was given (`--ask-fd`, which the agent never inherits) and puts
/// each to the session's approvers.
final class ParentAskServer: Sendable {
    private let fd: Int32
    private let thread = Mutex<Thread?>(nil)
    /// Keys for the asks' outcomes, apart from notification ids (which the kernel counts up from 0).
    private let nextKey = Atomic<UInt64>(UInt64.max / 2)

    init(fd: Int32) {
        self.fd = fd
    }

    func start(core: SupervisorCore, log: Logger) -> Bool {
        let thread = Thread(stackSize: 512 << 10) { [self] in serve(core: core, log: log) }
        guard thread.start(detached: false) else { return false }
        self.thread.withLock { $0 = thread }
        return true
    }

    /// The session is ending: a pending ask is released, the thread's read ends, and it is joined.
    func stop(asks: AskBroker) {
        asks.stop()
        shutdown(fd, Int32(SHUT_RDWR))
        thread.withLock { $0 }?.join()
        close(fd)
    }

    private func serve(core: SupervisorCore, log: Logger) {
        while let line = ParentAskChannel.readLine(fd, deadline: nil) {
            let answer: ParentAskAnswer
            if let request = try? JSONDecoder().decode(ParentAskRequest.self, from: Data(line)) {
                answer = decide(request, core: core, log: log)
            } else {
                answer = ParentAskAnswer(allowed: false, why: "a malformed ask")
            }
            guard let body = try? JSONEncoder().encode(answer), ParentAskChannel.writeAll(fd, Array(body) + [0x0A]) else { return }
        }
    }

    private func decide(_ request: ParentAskRequest, core: SupervisorCore, log: Logger) -> ParentAskAnswer {
        let version = core.policies.version
        let policy = version.policy
        // Decided again with the session's policy in force (it may have been reloaded), so the
        // ask's rule is this policy's and an Always or Never answer saves into it.
        let verdict = policy.evaluateMCP(tool: request.tool, arguments: ToolArguments(request.arguments))
        guard verdict.decision == .ask, verdict.enforced else {
            let allowed = !verdict.enforced || verdict.decision != .deny
            return ParentAskAnswer(allowed: allowed, why: "the session's policy now says \(verdict.decision.name): \(policy.explanation(of: verdict))")
        }
        let pid = getppid()
        let timeout = UInt64(policy.askTimeout.seconds) * 1_000_000_000
        let key = nextKey.add(1, ordering: .relaxed).newValue
        let shownTarget = request.shown.isEmpty ? request.tool : request.shown.joined(separator: " ")
        let result = core.asks.waitOnBehalfOfParent(key: key, policy: version, makeAsk: { id in
            let now = agentgate_monotonic_ns()
            return PendingAsk(
                id: id, createdAt: now, createdAtMicros: AuditClock.nowMicros(), pid: pid,
                executable: "agentgate mcp", agent: core.contexts.agent,
                action: AskedAction(kind: .mcp, target: request.tool, argv: request.shown.isEmpty ? nil : request.shown),
                shownTarget: shownTarget,
                intent: Intent.describe(.mcp, target: request.tool, argv: nil, home: core.recorder.home).text,
                rule: TrappedCall.askingRule(verdict, policy: policy), ruleIndex: verdict.ruleIndex, deadline: now + timeout)
        }, announce: { ask in
            log.notice("""
                ask \(ask.id): the MCP call \(DenialExplanation.printable(shownTarget)) is paused; \
                answer with `agentgate approve \(ask.id)` or `agentgate deny \(ask.id)` (denied in \(policy.askTimeout))
                """)
        })
        switch result {
        case .settled(let outcome):
            _ = core.asks.takeOutcome(notificationID: key)
            return ParentAskAnswer(allowed: outcome.answer.allows, why: outcome.description, ask: outcome.askID)
        case .unavailable(let why):
            return ParentAskAnswer(allowed: false, why: "nobody could be asked (\(why))")
        case .interrupted, .gone:
            return ParentAskAnswer(allowed: false, why: "the session ended before anyone answered")
        }
    }
}
