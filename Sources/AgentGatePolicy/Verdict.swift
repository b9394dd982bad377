/// Why a verdict came out the way it did.
public enum VerdictReason: UInt8, Sendable, CaseIterable {
    /// A rule matched and its decision applies as written.
    case matchedRule
    /// No rule matched; the policy's `default` applies.
    case defaultDecision
    /// An allow rule matched but the path lies outside the rule's `scope`, so the verdict is deny.
    case escapesScope
    /// The decision is `ask` (from a rule or the default) and nobody can be asked yet.
    case noApprover
    /// The policy allowed the action, but the session is over one of its `limits:`
    /// (`Verdict.limitIndex`).
    case rateLimited
    /// The decision was `ask`, and a person answered: `decision` is their answer.
    case askAnswered
    /// The decision was `ask`, and nobody answered within `ask_timeout`: denied.
    case askTimedOut
    /// The decision was `ask`, and a signal for the asking thread interrupted the wait: the call
    /// is answered as an interrupted wait (it restarts, or fails with EINTR).
    case askInterrupted
    /// The decision was `ask`, and the call ended (its thread was killed, or the session ended)
    /// before an answer.
    case askWithdrawn

    /// A short human-readable explanation for logs and audit records.
    public var text: String {
        switch self {
        case .matchedRule: "matched rule"
        case .defaultDecision: "no rule matched, fell through to default"
        case .escapesScope: "matched an allow rule but the path escapes its scope"
        case .noApprover: "no approver"
        case .rateLimited: "rate limit"
        case .askAnswered: "asked, and answered"
        case .askTimedOut: "asked, and nobody answered in time"
        case .askInterrupted: "asked, and a signal interrupted the wait"
        case .askWithdrawn: "asked, and the call ended before an answer"
        }
    }

    /// Whether a person or the timeout settled an ask (the record says who).
    public var isAskOutcome: Bool { self == .askAnswered || self == .askTimedOut }
}

/// The outcome of evaluating one action against a policy.
public struct Verdict: Sendable, Equatable {
    /// The decision as recorded: `ask` stays `ask` (see `letsCallProceed`).
    public var decision: Decision
    /// 0-based index into `Policy.rules` of the deciding rule; nil when the default applied.
    public var ruleIndex: Int?
    public var reason: VerdictReason
    /// The rule's `errno:` for a denial; 0 when it has none (the supervisor picks the usual one).
    public var errno: Int32
    /// False when the policy runs in audit mode: the decision is recorded, not enforced.
    public var enforced: Bool
    /// For `rateLimited`: the index in `Policy.limits` of the limit the action is over.
    public var limitIndex: Int?

    public init(decision: Decision, ruleIndex: Int?, reason: VerdictReason, errno: Int32 = 0, enforced: Bool = true) {
        self.decision = decision
        self.ruleIndex = ruleIndex
        self.reason = reason
        self.errno = errno
        self.enforced = enforced
    }

    /// Whether the supervisor lets the action proceed: `allow` and `log` do, and in audit mode
    /// everything does. `ask` behaves as deny until an approver exists.
    public var letsCallProceed: Bool { decision.allows || !enforced }

    /// The decision's strictness: of two verdicts for one action, the stricter wins.
    public var strictness: Int { decision.strictness }

    /// The errno a denial fails with: the rule's own, or `fallback`.
    public func errno(or fallback: Int32) -> Int32 { errno != 0 ? errno : fallback }
}
