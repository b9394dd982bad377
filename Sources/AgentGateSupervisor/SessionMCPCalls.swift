import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Logging
import Synchronization

/// tools/calls that `agentgate mcp`, run inside the session, has the session decide over the
/// hook socket (`HookMCPCall`): decided with the `mcp` rules of the session's policy and recorded
/// in the session (source `mcp`). An ask is put to the session's approvers on one of a few
/// threads started with the session (the hook socket's own thread answers one request at a
/// time and must not wait for a person); when all are waiting, the call is denied, saying so.
final class SessionMCPCalls: Sendable {
    /// The most asks of in-session gateways that may wait for a person at once.
    static let askThreads = 2

    private struct Job: Sendable {
        let call: HookMCPCall
        let peer: HookPeer
        /// A dup of the request's channel, answered and closed by the thread.
        let channel: Int32
        let verdict: Verdict
        let version: PolicyVersion
        let started: UInt64
    }

    private struct State {
        var jobs: [Job] = []
        /// Processes whose ask is queued or waiting: one each, so one process can't hold every
        /// thread.
        var asking: Set<pid_t> = []
        var stopping = false
    }

    /// A server's name as a gateway gives it (its command's, or `--name`): what the record says.
    static func isServerName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || "._@-".utf8.contains($0)
        }
    }

    private let state = Mutex(State())
    private let work = CountingSemaphore()
    private let threads = SessionThreads()
    /// Keys of the asks' outcomes in the broker (apart from notification ids and the parent's asks').
    private let nextKey = Atomic<UInt64>(UInt64.max / 4 * 3)
    private let core: SupervisorCore
    private let log: Logger

    init(core: SupervisorCore, log: Logger) {
        self.core = core
        self.log = log
    }

    /// Starts the ask threads; false when none could be made.
    func start() -> Bool {
        threads.start(Self.askThreads, stackSize: 512 << 10) { [self] in run() }
    }

    /// Ends the threads: a waiting ask was released by `AskBroker.stop` (called first), queued
    /// ones are denied.
    func stop() {
        core.asks.stop()
        let left = state.withLock { state -> [Job] in
            state.stopping = true
            defer { state.jobs = [] }
            return state.jobs
        }
        for job in left { finish(job, allowed: false, told: "denied: the session ended before anyone answered", outcome: nil) }
        threads.stop(wake: { work.signal() }, join: { true })
    }

    /// Decides `call` for `peer`: the answer now, or nil when it was handed to an ask thread
    /// (which answers on the peer's channel).
    func decide(_ call: HookMCPCall, peer: HookPeer, started: UInt64) -> HookAnswer? {
        guard call.tool.utf8.count <= 256, !call.tool.isEmpty, call.arguments.count <= 256,
              call.arguments.keys.allSatisfy({ $0.utf8.count <= 256 }), Self.isServerName(call.server) else {
            return HookAnswer(ok: false, error: "a malformed MCP call (a tool or argument name over 256 bytes, over 256 arguments, or a server name that isn't [A-Za-z0-9._@-]{1,64})")
        }
        let version = core.policies.version
        // Decided as the gateway decides outside a session, where it runs as agent mcp:NAME
        // (`when: {agent: …}` rules name it so).
        var context = core.contexts.context(tid: peer.pid)
        context?.agent = "mcp:\(call.server)"
        let verdict = version.policy.evaluateMCP(tool: call.tool, arguments: ToolArguments(call.arguments), context: context)
        if verdict.decision == .ask && verdict.enforced {
            func refused(_ why: String) -> HookAnswer {
                answer(call, peer: peer, verdict: verdict, version: version, started: started, allowed: false, told: "denied: " + why, outcome: nil)
            }
            enum Queueing { case queued, stopping, busy, alreadyAsking }
            let channel = fcntl(peer.channel, F_DUPFD_CLOEXEC, 0)
            guard channel >= 0 else { return refused("the supervisor can't keep the call's channel (\(String(cString: strerror(errno))))") }
            // The job's peer holds no pidfd: the request's is closed once this handler returns.
            let held = HookPeer(pid: peer.pid, ppid: peer.ppid, executable: peer.executable, pidfd: -1)
            let job = Job(call: call, peer: held, channel: channel, verdict: verdict, version: version, started: started)
            let queueing = state.withLock { state -> Queueing in
                if state.stopping { return .stopping }
                if state.asking.contains(peer.pid) { return .alreadyAsking }
                guard state.asking.count < Self.askThreads else { return .busy }
                state.asking.insert(peer.pid)
                state.jobs.append(job)
                return .queued
            }
            switch queueing {
            case .queued:
                work.signal()
                return nil
            case .stopping:
                close(channel)
                return refused("the session is ending")
            case .busy:
                close(channel)
                return refused("\(Self.askThreads) MCP asks already wait for a person")
            case .alreadyAsking:
                close(channel)
                return refused("this process already has an MCP ask waiting for a person")
            }
        }
        let allowed = !verdict.enforced || verdict.decision != .deny
        return answer(call, peer: peer, verdict: verdict, version: version, started: started, allowed: allowed,
                      told: nil, outcome: nil)
    }

    private func run() {
        while true {
            work.wait()
            let job: Job? = state.withLock { state in
                guard !state.stopping, !state.jobs.isEmpty else { return nil }
                return state.jobs.removeFirst()
            }
            guard let job else {
                if state.withLock({ $0.stopping }) { return }
                continue
            }
            ask(job)
            _ = state.withLock { $0.asking.remove(job.peer.pid) }
        }
    }

    private func ask(_ job: Job) {
        let policy = job.version.policy, key = nextKey.add(1, ordering: .relaxed).newValue
        let shown = ParentAskServer.shownArguments(tool: job.call.tool, arguments: job.call.arguments)
        let channel = job.channel
        let result = core.asks.waitOnBehalfOfParent(key: key, policy: job.version, isGone: { ParentAskChannel.peerHasGone(channel) }, makeAsk: { id in
            let now = agentgate_monotonic_ns()
            return PendingAsk(
                id: id, createdAt: now, createdAtMicros: AuditClock.nowMicros(), pid: job.peer.pid,
                executable: job.peer.executable, agent: core.contexts.agent,
                action: AskedAction(kind: .mcp, target: job.call.tool, argv: shown), shownTarget: shown.joined(separator: " "),
                intent: Intent.describe(.mcp, target: job.call.tool, argv: nil, home: core.recorder.home).text,
                rule: TrappedCall.askingRule(job.verdict, policy: policy), ruleIndex: job.verdict.ruleIndex,
                deadline: now + UInt64(policy.askTimeout.seconds) * 1_000_000_000)
        }, announce: { [log] ask in
            log.notice("""
                ask \(ask.id): the MCP call \(DenialExplanation.printable(ask.shownTarget)) by pid \(ask.pid) is paused; \
                answer with `agentgate approve \(ask.id)` or `agentgate deny \(ask.id)` (denied in \(policy.askTimeout))
                """)
        })
        switch result {
        case .settled(let outcome):
            _ = core.asks.takeOutcome(notificationID: key)
            finish(job, allowed: outcome.answer.allows, told: outcome.toldToAgent, outcome: outcome)
        case .unavailable(let why):
            finish(job, allowed: false, told: "denied: nobody could be asked (\(why))", outcome: nil)
        case .interrupted, .gone:
            finish(job, allowed: false, told: "denied: the call was withdrawn before anyone answered", outcome: nil)
        }
    }

    private func finish(_ job: Job, allowed: Bool, told: String, outcome: AskOutcome?) {
        let reply = answer(job.call, peer: job.peer, verdict: job.verdict, version: job.version, started: job.started,
                           allowed: allowed, told: told, outcome: outcome)
        _ = HookServer.send(job.channel, ControlLine.encode(HookServer.shortened(reply)),
                            deadline: agentgate_monotonic_ns() + 2_000_000_000)
        close(job.channel)
    }

    /// Records the call in the session and makes the gateway's answer. `told` follows the
    /// rule's reason (what an ask came to); `outcome` is the ask's, for the record.
    private func answer(_ call: HookMCPCall, peer: HookPeer, verdict: Verdict, version: PolicyVersion, started: UInt64,
                        allowed: Bool, told: String?, outcome: AskOutcome?) -> HookAnswer {
        let policy = version.policy
        var why = policy.explanation(of: verdict)
        var ruleID: String?
        if let index = verdict.ruleIndex, policy.rules.indices.contains(index) {
            ruleID = policy.rules[index].displayID
            if let reason = policy.rules[index].reason { why = reason }
        }
        let subject = ruleID.map { "rule \($0): " } ?? ""
        var recordedWhy = why
        if let outcome { recordedWhy += "; " + outcome.description } else if let told { recordedWhy += "; " + told }
        var event = DecisionEvent(
            timeMicros: AuditClock.nowMicros(), pid: peer.pid, ppid: peer.ppid, executable: peer.executable,
            syscall: "tools/call", action: .mcp, target: call.tool, argv: DecisionRecorder.recordable(HookMCPCall.recordedArguments(tool: call.tool, arguments: call.arguments)),
            decision: RecordedDecision(verdict.decision), ruleIndex: verdict.ruleIndex, reason: recordedWhy,
            latencyMicros: Int64((agentgate_monotonic_ns() - started) / 1000), ruleID: ruleID,
            intent: "call MCP tool \(call.tool) of \(call.server)", notable: verdict.decision == .log, enforced: verdict.enforced)
        event.policySHA256 = version.sha256
        event.source = .mcp
        event.answeredVia = outcome?.responder.via
        event.answeredBy = outcome?.responder.user
        core.recorder.counts.count(verdict.decision)
        core.recorder.echo?(event)
        core.recorder.writer?.record(event)
        return HookAnswer(ok: true, decision: verdict.decision.name, answer: allowed ? "allow" : "deny", action: "mcp",
                          target: call.tool, why: subject + why + (told.map { "; " + $0 } ?? ""))
    }
}
