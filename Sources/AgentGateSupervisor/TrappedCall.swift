import AgentGatePolicy
import CSupport
import Glibc
import SystemPackage

/// Why the supervisor refuses a call on its own account (an unreadable argument, a
/// self-protection rule…): the errno the agent's call fails with, and the reason recorded.
struct Refusal: Error, Sendable, Equatable {
    let errno: Errno
    let reason: String

    init(_ errno: Errno, _ reason: String) {
        self.errno = errno
        self.reason = reason
    }

    /// From a raw errno value (EPERM, or a C helper's -rc negated).
    init(_ errno: Int32, _ reason: String) {
        self.init(Errno(rawValue: errno), reason)
    }

    init(errno: Int32, reason: String) {
        self.init(Errno(rawValue: errno), reason)
    }

    var code: Int32 { errno.rawValue }
}

/// One trapped call being decided, made in dispatch: the notification, the facts about its
/// process (looked up once), its syscall's name and the shared core. Every answer that is
/// recorded goes through it, so the response always precedes the record and is written once.
struct TrappedCall: Sendable {
    let notification: Notification
    let process: ProcessFacts
    let syscall: String
    let core: SupervisorCore
    /// The policy in force when the call arrived: it decides the call and names the rule
    /// recorded, even if the policy is reloaded meanwhile. Not reference-counted: every
    /// version lives as long as the session (`PolicyInForce`).
    unowned(unsafe) let policyVersion: PolicyVersion

    var policy: Policy { policyVersion.policy }

    /// The policy's verdict on one action of the calling process (`SupervisorCore.decide`).
    /// File actions are counted against the policy's limits here; an exec, decided for several
    /// names, is counted once by its handler (`rateLimited`).
    func decide(_ kind: ActionKind, target: String, _ n: Notification, exec: ExecDetails? = nil) -> Verdict {
        let verdict = core.decide(kind, target: target, tid: n.tid, id: n.id, exec: exec, policy: policyVersion.policy,
                                  aliases: policyVersion.symlinkAliases)
        guard kind != .exec else { return verdict }
        return settled(rateLimited(verdict, kind, target: target, n, exec: exec), kind, target: target, argv: nil)
    }

    /// The policy's verdict on a file action, counted against its limits, without asking: an
    /// enforced `ask` is returned as it is, for the caller to ask outside any lock (`settled`).
    func decideBeforeAsking(_ kind: ActionKind, target: String, _ n: Notification) -> Verdict {
        rateLimited(core.decide(kind, target: target, tid: n.tid, id: n.id, policy: policyVersion.policy, aliases: policyVersion.symlinkAliases), kind, target: target, n, exec: nil)
    }

    /// `verdict`, or the verdict of a limit the action is over (see `RateLimiter`).
    func rateLimited(_ verdict: Verdict, _ kind: ActionKind, target: String, _ n: Notification, exec: ExecDetails?,
                     resolvedName: String? = nil) -> Verdict {
        guard let rateLimiter = policyVersion.rateLimiter else { return verdict }
        return rateLimiter.verdict(verdict, kind, target: target, exec: exec, at: n.receivedAt, resolvedName: resolvedName)
    }

    /// Counts a denial toward `runaway:`; when the session becomes a runaway, says so, records
    /// it, and runs the runaway action (pausing the session) if one is set.
    private func noteDenial() {
        guard let rateLimiter = policyVersion.rateLimiter, rateLimiter.noteDenial(at: notification.receivedAt),
              let runaway = policy.runaway else { return }
        let acted = rateLimiter.triggerRunaway()
        let outcome = acted ? "the session is paused" : "pausing is not available, so the session goes on"
        core.log.notice("runaway session: \(runaway.denials) denials within \(runaway.window); \(outcome)")
        var entry = DecisionRecorder.Entry(syscall: "runaway", action: .exec, target: "session", decision: .log,
                                           reason: "\(runaway.explanation) (then: \(runaway.action.rawValue)); \(outcome)")
        entry.isSyscall = true
        record(entry)
    }

    func decide(_ kind: ActionKind, target: String, tid: pid_t, id: UInt64, exec: ExecDetails? = nil) -> Verdict {
        core.decide(kind, target: target, tid: tid, id: id, exec: exec, policy: policyVersion.policy, aliases: policyVersion.symlinkAliases)
    }

    /// The policy's verdict on a connect or send (`SupervisorCore.egressVerdict`), counted
    /// against the policy's limits, and asked about when it asks.
    /// `shownAs` names the target for asks ("registry.example:443 (104.16.0.35)").
    func egressVerdict(_ target: String, _ n: Notification, resolvedName: String? = nil, shownAs: String? = nil) -> Verdict {
        let verdict = rateLimited(core.egressVerdict(target, n, policy: policyVersion.policy, resolvedName: resolvedName),
                                  .netEgress, target: target, n, exec: nil, resolvedName: resolvedName)
        return settled(verdict, .netEgress, target: shownAs ?? target, argv: nil)
    }

    func protectedReason(_ target: String, isWrite: Bool) -> String? {
        core.protectedReason(target, isWrite: isWrite, policy: policyVersion.policy)
    }

    /// The agent's /proc/TID/status: as read for this notification when it was, else read now.
    func agentStatus() -> ProcStatus { process.status ?? ProcStatus(tid: notification.tid) }

    /// Hands `entry` to the recorder, once the call has been answered some other way.
    func record(_ entry: DecisionRecorder.Entry) {
        // An ask whose wait a signal interrupted is no decision: the call restarts and takes
        // the same ask up again, and its answer is recorded then.
        if entry.verdict?.reason == .askInterrupted {
            if core.recorder.echo != nil { agentgate_notif_flush_deferred() }
            return
        }
        var entry = entry
        if entry.verdict?.reason.isAskOutcome == true { entry.askOutcome = core.asks.takeOutcome(notificationID: notification.id) }
        core.recorder.record(entry, notification: notification, process: process, respondedAt: agentgate_monotonic_ns(),
                             policy: policyVersion)
        if policyVersion.rateLimiter != nil, !entry.decision.allows, entry.verdict?.enforced ?? true { noteDenial() }
    }

    /// Fails the call with `errno`, then records `entry`.
    func fail(_ errno: Int32, recording entry: DecisionRecorder.Entry) {
        core.listener.fail(notification.id, errno: errno)
        record(entry)
    }

    /// Fails the call with the refusal's errno and records it as a denial of `action` on `target`.
    func deny(_ refusal: Refusal, action: ActionKind, target: String, argv: [String]? = nil) {
        core.listener.fail(notification.id, errno: refusal.code)
        var entry = DecisionRecorder.Entry.denied(syscall: syscall, action: action, target: target, reason: refusal.reason,
                                                  errno: refusal.code)
        entry.argv = argv
        record(entry)
    }

    /// Fails the call with `errno`, recording the policy's verdict when the policy decided, else a
    /// denial for `reason`.
    func fail(_ errno: Int32, action: ActionKind, target: String, verdict: Verdict?, reason: String) {
        if let verdict {
            finish(verdict: verdict, action: action, target: target, errno: errno)
        } else {
            deny(Refusal(errno, reason), action: action, target: target)
        }
    }

    /// Fails the call with the refusal's errno and records it as a syscall refused on its own
    /// account (action `syscall`).
    func denySyscall(_ refusal: Refusal, target: String) {
        core.listener.fail(notification.id, errno: refusal.code)
        record(.deniedSyscall(syscall, target: target, reason: refusal.reason, errno: refusal.code))
    }

    /// Answers a policy verdict on `action`: fails with `errno` when given, else lets the call
    /// continue in the kernel; then records the verdict.
    func finish(verdict: Verdict, action: ActionKind, target: String, errno: Int32?, note: String? = nil) {
        if let errno { core.listener.fail(notification.id, errno: errno) } else { core.listener.continueSyscall(notification.id) }
        var entry = DecisionRecorder.Entry(syscall: syscall, action: action, target: target, verdict: verdict, errno: errno)
        entry.note = note
        record(entry)
    }

    /// Fails a call whose path the kernel can't resolve with the kernel's own errno, whatever the
    /// policy says of the name: the call fails anyway, and stat (which isn't supervised) tells
    /// the same. Nobody is asked about it. The policy's verdict is recorded, so an attempt on a
    /// name the policy denies (a missing key) still shows as a denial.
    func failUnresolved(action: ActionKind, target: String, errno: Int32) {
        // The supervisor looks paths up as itself: under its own /proc entry, which way a lookup
        // failed would tell what the agent may not see (which fds the supervisor holds). A
        // found one is refused there; so is a missing one.
        if core.isSupervisorProcEntry(target) {
            deny(Refusal(EACCES, SupervisorCore.supervisorProcReason), action: action, target: target)
            return
        }
        // Another process's /proc entry that a rule would allow (or a vanished one): the
        // kernel's errno as bare, but recorded as the refusal it would have been, not an allow.
        if let reason = core.procRefusal(target, writing: action == .fsWrite, tid: notification.tid, tgid: process.tgid) {
            deny(Refusal(errno, reason + "; \(ErrnoName.name(errno) ?? "errno \(errno)") as bare: the path doesn't resolve"),
                 action: action, target: target)
            return
        }
        let verdict = decide(action, target: target, tid: notification.tid, id: notification.id)
        guard verdict.decision != .ask else {
            core.listener.fail(notification.id, errno: errno)
            return
        }
        let note = verdict.decision.allows ? nil : "\(ErrnoName.name(errno) ?? "errno \(errno)") as bare: the path doesn't resolve"
        finish(verdict: verdict, action: action, target: target, errno: errno, note: note)
    }

    /// Lets an allowed call continue in the kernel, then records the verdict.
    func allow(verdict: Verdict, action: ActionKind, target: String, argv: [String]? = nil, note: String? = nil) {
        var entry = DecisionRecorder.Entry(syscall: syscall, action: action, target: target, verdict: verdict, argv: argv)
        if let note { entry.note = note }
        if action == .exec && core.recorder.echo != nil {
            // Echoed (-v, --log): an exec's line comes before anything the new program does.
            record(entry)
            core.listener.continueSyscall(notification.id)
            return
        }
        core.listener.continueSyscall(notification.id)
        record(entry)
    }

    /// Answers a call the supervisor performed for the agent with the kernel's result (its value,
    /// or -errno), then records the verdict with the errno. `recordedAs` names the syscall when
    /// the call performed isn't the one trapped.
    func reply(_ result: Int, verdict: Verdict, action: ActionKind, target: String, recordedAs name: String? = nil,
               note: String? = nil) {
        let errno: Int32? = result < 0 ? Int32(-result) : nil
        if let errno { core.listener.fail(notification.id, errno: errno) } else { core.listener.succeed(notification.id, value: Int64(result)) }
        var entry = DecisionRecorder.Entry(syscall: name ?? syscall, action: action, target: target, verdict: verdict, errno: errno)
        entry.note = note
        record(entry)
    }

    /// Answers a syscall decided on its own account: continues it when allowed, else fails it
    /// with `errno`; then records the decision (action `syscall`).
    func decideSyscall(allowed: Bool, errno: Int32, target: String, reason: String) {
        if allowed { core.listener.continueSyscall(notification.id) } else { core.listener.fail(notification.id, errno: errno) }
        var entry = DecisionRecorder.Entry(syscall: syscall, action: .exec, target: target, decision: allowed ? .allow : .deny,
                                           reason: reason, errno: allowed ? nil : errno)
        entry.isSyscall = true
        record(entry)
    }
}
