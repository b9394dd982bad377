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
    /// Echoed in the answer: an answer to an earlier request is never taken for this one's.
    public var id: UInt64
    /// The MCP tool, as the server names it.
    public var tool: String
    /// Every named argument as text (`MCPToolCallRequest.argumentTexts`): what the policy decides
    /// on, and what the person is shown (the supervisor makes that text itself).
    public var arguments: [String: String]
    /// How long the parent waits at most: the ask is denied by then whatever the policy's
    /// ask_timeout says.
    public var waitSeconds: Int

    public init(id: UInt64, tool: String, arguments: [String: String], waitSeconds: Int) {
        self.id = id
        self.tool = tool
        self.arguments = arguments
        self.waitSeconds = waitSeconds
    }
}

/// The supervisor's answer to a `ParentAskRequest`.
public struct ParentAskAnswer: Codable, Sendable, Equatable {
    /// The request's id.
    public var id: UInt64
    /// Whether the call may go ahead.
    public var allowed: Bool
    /// How it was settled, for the record: `asked (ask k3x9p): allowed once by alice with
    /// agentgate (pid 12)`, `… denied by the timeout: …`, or why nobody could be asked.
    public var why: String
    /// The same without who answered, for the agent: `allowed once by a person`.
    public var told: String
    /// The ask's id, when one was put to a person.
    public var ask: String?
    /// `tty`, `socket` or `timeout`, and the person, as the audit stores them.
    public var via: String?
    public var by: String?
    /// The rule that decided in the supervisor's policy (its id), when one did.
    public var rule: String?

    public init(id: UInt64, allowed: Bool, why: String, told: String, ask: String? = nil, via: String? = nil, by: String? = nil,
                rule: String? = nil) {
        self.id = id
        self.allowed = allowed
        self.why = why
        self.told = told
        self.ask = ask
        self.via = via
        self.by = by
        self.rule = rule
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

    /// How much longer than `request.waitSeconds` the parent waits for the supervisor's answer
    /// (which the supervisor gives by `waitSeconds`).
    public static let answerGraceSeconds = 10

    /// Sends `request` on `fd` and waits for its answer, up to `request.waitSeconds` and the
    /// grace. Answers to other requests are skipped. A failure leaves the channel unusable
    /// (the caller stops using it: a late answer must never meet a later request).
    public static func ask(_ request: ParentAskRequest, fd: Int32) throws(Failure) -> ParentAskAnswer {
        guard let body = try? JSONEncoder().encode(request) else { throw Failure(errno: 0, description: "cannot encode the ask") }
        guard body.count < maximumLength else { throw Failure(errno: E2BIG, description: "the call's arguments are too large to ask about") }
        let deadline = agentgate_monotonic_ns() + UInt64(request.waitSeconds + answerGraceSeconds) * 1_000_000_000
        guard writeAll(fd, Array(body) + [0x0A]) else {
            throw Failure(errno: errno, description: "the supervisor took no ask: \(String(cString: strerror(errno)))")
        }
        while true {
            guard let line = readLine(fd, deadline: deadline) else {
                throw Failure(errno: ETIMEDOUT, description: "the supervisor did not answer the ask")
            }
            guard let answer = try? JSONDecoder().decode(ParentAskAnswer.self, from: Data(line)) else {
                throw Failure(errno: EPROTO, description: "the supervisor's answer to the ask is malformed")
            }
            if answer.id == request.id { return answer }
        }
    }

    /// Whether the other end of the socket `fd` has been closed (its asker has gone, and its
    /// pending ask is withdrawn).
    static func peerHasGone(_ fd: Int32) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(AGENTGATE_POLLRDHUP), revents: 0)
        return poll(&poller, 1, 0) > 0 && poller.revents & Int16(Int32(AGENTGATE_POLLRDHUP) | POLLHUP | POLLERR) != 0
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
    /// Keys for the asks' outcomes in the broker (where a notification id keys a call's): the
    /// outcome is taken back at once, so a key is held only while its ask is settled.
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
                answer = ParentAskAnswer(id: 0, allowed: false, why: "a malformed ask", told: "denied: a malformed ask")
            }
            guard let body = try? JSONEncoder().encode(answer), ParentAskChannel.writeAll(fd, Array(body) + [0x0A]) else { return }
        }
    }


    private func decide(_ request: ParentAskRequest, core: SupervisorCore, log: Logger) -> ParentAskAnswer {
        let version = core.policies.version
        let policy = version.policy
        // Decided again with the session's policy in force (it may have been reloaded, say by
        // an Always answer's rule), so the ask's rule is this policy's and an Always or Never
        // answer saves into it.
        let verdict = policy.evaluateMCP(tool: request.tool, arguments: ToolArguments(request.arguments))
        let ruleID = verdict.ruleIndex.flatMap { policy.rules.indices.contains($0) ? policy.rules[$0].displayID : nil }
        guard verdict.decision == .ask, verdict.enforced else {
            let allowed = !verdict.enforced || verdict.decision != .deny
            let why = "the session's policy now says \(verdict.decision.name): \(policy.explanation(of: verdict))"
            return ParentAskAnswer(id: request.id, allowed: allowed, why: why, told: why, rule: ruleID)
        }
        let pid = getppid()
        let timeout = UInt64(max(0, min(policy.askTimeout.seconds, request.waitSeconds))) * 1_000_000_000
        let key = nextKey.add(1, ordering: .relaxed).newValue
        let shown = Self.shownArguments(tool: request.tool, arguments: request.arguments)
        let result = core.asks.waitOnBehalfOfParent(key: key, policy: version, isGone: { [fd] in ParentAskChannel.peerHasGone(fd) }, makeAsk: { id in
            let now = agentgate_monotonic_ns()
            return PendingAsk(
                id: id, createdAt: now, createdAtMicros: AuditClock.nowMicros(), pid: pid,
                executable: "agentgate mcp", agent: core.contexts.agent,
                action: AskedAction(kind: .mcp, target: request.tool, argv: shown),
                shownTarget: shown.joined(separator: " "),
                intent: Intent.describe(.mcp, target: request.tool, argv: nil, home: core.recorder.home).text,
                rule: TrappedCall.askingRule(verdict, policy: policy), ruleIndex: verdict.ruleIndex, deadline: now + timeout)
        }, announce: { ask in
            log.notice("""
                ask \(ask.id): the MCP call \(DenialExplanation.printable(ask.shownTarget)) is paused; \
                answer with `agentgate approve \(ask.id)` or `agentgate deny \(ask.id)` (denied in \(policy.askTimeout))
                """)
        })
        switch result {
        case .settled(let outcome):
            _ = core.asks.takeOutcome(notificationID: key)
            return ParentAskAnswer(id: request.id, allowed: outcome.answer.allows, why: outcome.description, told: outcome.toldToAgent,
                                   ask: outcome.askID, via: outcome.responder.via, by: outcome.responder.user, rule: ruleID)
        case .unavailable(let why):
            let text = "denied: nobody could be asked (\(why))"
            return ParentAskAnswer(id: request.id, allowed: false, why: text, told: text, rule: ruleID)
        case .interrupted, .gone:
            let text = "denied: the call was withdrawn before anyone answered"
            return ParentAskAnswer(id: request.id, allowed: false, why: text, told: text, rule: ruleID)
        }
    }

    /// Most bytes of one argument's value shown to the person; the rest is cut, marked `…`.
    static let shownValueBytes = 512

    /// What the person is shown: the tool, then `name=value` per argument, shortest values first
    /// (a long value can't push a short one, say a path, out of a listing that is cut), each
    /// redacted (a sensitive name hides its whole value) and cut, and a last word saying how many
    /// values were hidden or cut, so the person knows not to take the rest as all there is.
    static func shownArguments(tool: String, arguments: [String: String]) -> [String] {
        var hidden = 0
        let ordered = arguments.sorted { ($0.value.utf8.count, $0.key) < ($1.value.utf8.count, $1.key) }
        var words = [tool] + ordered.map { name, value -> String in
            guard !Redactor.isSensitiveName(name) else {
                hidden += 1
                return "\(name)=\(Redactor.marker)"
            }
            // Cut (with room for a secret across the cut) before redacting: a value may be MiBs.
            let long = value.utf8.count > shownValueBytes
            let kept = long ? String(decoding: Array(value.utf8.prefix(shownValueBytes + 1024)), as: UTF8.self) : value
            var text = Redactor.redact(text: kept)
            if text != kept { hidden += 1 }
            if long || text.utf8.count > shownValueBytes {
                hidden += 1
                text = String(decoding: Array(text.utf8.prefix(shownValueBytes)), as: UTF8.self) + "…"
            }
            return "\(name)=\(text)"
        }
        if hidden > 0 { words.append("[\(hidden) value\(hidden == 1 ? "" : "s") redacted or cut]") }
        return words
    }
}

extension AskOutcome {
    /// What the asking agent is told of a settled ask: the answer, never who gave it.
    var toldToAgent: String {
        switch (answer.allows, responder) {
        case (true, _): "allowed by a person"
        case (false, .timeout(let seconds)): "denied: nobody answered within \(seconds) s"
        case (false, _): "denied by a person"
        }
    }
}
