import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc

extension TrappedCall {
    /// `verdict`, unless it is an enforced `ask`: then the call pauses (only this one; see
    /// `AskBroker`) until a person answers at the terminal or over the control socket, or
    /// `ask_timeout` passes, and the verdict becomes their answer. Called once the action's
    /// arguments are read and checked and before anything is done for the agent.
    func settled(_ verdict: Verdict, _ kind: ActionKind, target: String, argv: [String]?) -> Verdict {
        guard verdict.decision == .ask, verdict.enforced else { return verdict }
        let n = notification, process = self.process, core = self.core, policy = self.policy
        let timeout = UInt64(policy.askTimeout.seconds) * 1_000_000_000
        let restartKey = "\(n.tid) \(n.number) \(n.args.0) \(n.args.1) \(n.args.2) \(n.args.3) \(n.args.4) \(n.args.5) \(kind.name) \(target)"
        let result = core.asks.wait(notificationID: n.id, tid: n.tid, restartKey: restartKey, listener: core.listener,
                                    policy: policyVersion, makeAsk: { id in
            let now = agentgate_monotonic_ns()
            return PendingAsk(
                id: id, createdAt: now, createdAtMicros: AuditClock.nowMicros(), pid: process.tgid,
                executable: process.executable, agent: core.contexts.agent,
                action: AskedAction(kind: kind, target: target, argv: argv),
                shownTarget: argv.map { $0.joined(separator: " ") } ?? target,
                intent: Intent.describe(kind, target: target, argv: argv, home: core.recorder.home).text,
                rule: Self.askingRule(verdict, policy: policy), ruleIndex: verdict.ruleIndex, deadline: now + timeout)
        }, announce: { ask in
            // The agent chose the target and its program's name: no escape sequences reach a terminal.
            let target = DenialExplanation.printable(ask.shownTarget), program = DenialExplanation.printable(ask.executable)
            core.log.notice("""
                ask \(ask.id): \(kind.name) \(target) by pid \(ask.pid) (\(program)) is paused; \
                answer with `agentgate approve \(ask.id)` or `agentgate deny \(ask.id)` (denied in \(policy.askTimeout))
                """)
        })
        var settled = verdict
        switch result {
        case .settled(let outcome):
            settled.decision = outcome.answer.allows ? .allow : .deny
            if case .timeout = outcome.responder { settled.reason = .askTimedOut } else { settled.reason = .askAnswered }
        case .interrupted:
            settled.reason = .askInterrupted
            settled.errno = Int32(AGENTGATE_ERESTARTSYS)
        case .gone:
            settled.reason = .askWithdrawn
        case .unavailable(let why):
            settled.reason = .noApprover
            if why != AskBroker.nobodyToAsk { core.log.warning("\(kind.name) \(DenialExplanation.printable(target)): \(why); denied") }
        }
        return settled
    }

    /// `3 (ask: every install)`, `default (ask)`, or the limit that asked.
    static func askingRule(_ verdict: Verdict, policy: Policy) -> String {
        if let index = verdict.limitIndex, policy.limits.indices.contains(index) {
            return "limit \(index + 1) (\(policy.limits[index].explanation))"
        }
        guard let index = verdict.ruleIndex, policy.rules.indices.contains(index) else { return "default (ask)" }
        let rule = policy.rules[index]
        return "\(rule.displayID) (ask" + (rule.reason.map { ": \($0)" } ?? "") + ")"
    }
}
