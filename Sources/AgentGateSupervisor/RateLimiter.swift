import AgentGatePolicy
import Synchronization

/// Counts one session's actions against the policy's `limits:` and its denials against
/// `runaway:`. One lock-free `WindowCounter` per limit, shared by every receiver thread: the
/// count is the session's, whichever process (or fork) acts. Only exists when the policy has
/// limits or a runaway rule, so a policy without them pays nothing.
final class RateLimiter: Sendable {
    let policy: Policy
    private let counters: [WindowCounter]
    private let denials: WindowCounter?
    /// What a runaway session triggers, beyond the notice and the audit event.
    private let runawayHook: RunawayHook

    init?(policy: Policy, runawayHook: RunawayHook = RunawayHook()) {
        guard !policy.limits.isEmpty || policy.runaway != nil else { return nil }
        self.policy = policy
        self.runawayHook = runawayHook
        counters = policy.limits.map { WindowCounter(window: $0.window) }
        denials = policy.runaway.map { WindowCounter(window: $0.window) }
    }

    /// `verdict` when the action is within every limit that counts it (and is then counted), else
    /// the verdict of the first limit it is over. Only actions the policy allows are counted.
    /// A connect attributed to `resolvedName` counts toward limits that match its name or its address.
    func verdict(_ verdict: Verdict, _ kind: ActionKind, target: String, exec: ExecDetails?, at now: UInt64,
                 resolvedName: String? = nil) -> Verdict {
        guard verdict.decision.allows, !counters.isEmpty else { return verdict }
        for index in counters.indices
        where (resolvedName == nil ? policy.limit(index, counts: kind, target: target, exec: exec, verdict: verdict)
                : policy.limit(index, countsConnection: target, resolvedName: resolvedName, verdict: verdict))
            && !counters[index].admit(at: now, limit: policy.limits[index].count) {
            return policy.overLimit(index, enforced: verdict.enforced)
        }
        return verdict
    }

    /// Counts one denial; true when it makes the session a runaway (the window reaches the
    /// rule's number of denials). Triggers once each time the count reaches it.
    func noteDenial(at now: UInt64) -> Bool {
        guard let denials, let runaway = policy.runaway else { return false }
        return denials.add(at: now) == runaway.denials
    }

    /// Sets what a runaway session triggers (pausing it).
    func onRunaway(_ action: @escaping @Sendable (RunawayRule) -> Void) {
        runawayHook.set(action)
    }

    /// Runs the runaway action; false when none is set.
    func triggerRunaway() -> Bool {
        guard let runaway = policy.runaway else { return false }
        return runawayHook.run(runaway)
    }
}

/// What a runaway session triggers, beyond the notice and the audit event: set once by whoever
/// can pause the session, and shared by the rate limiter of every policy version (a reload
/// builds a new one). Taken only when a runaway triggers, never per notification.
final class RunawayHook: Sendable {
    private let action = Mutex<(@Sendable (RunawayRule) -> Void)?>(nil)

    init() {}

    func set(_ action: @escaping @Sendable (RunawayRule) -> Void) {
        self.action.withLock { $0 = action }
    }

    /// Runs the action; false when none is set.
    func run(_ rule: RunawayRule) -> Bool {
        guard let action = action.withLock({ $0 }) else { return false }
        action(rule)
        return true
    }
}
