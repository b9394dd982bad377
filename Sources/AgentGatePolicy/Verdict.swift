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

    /// A short human-readable explanation for logs and audit records.
    public var text: String {
        switch self {
        case .matchedRule: "matched rule"
        case .defaultDecision: "no rule matched, fell through to default"
        case .escapesScope: "matched an allow rule but the path escapes its scope"
        case .noApprover: "no approver"
        }
    }
}

/// The outcome of evaluating one action against a policy.
public struct Verdict: Sendable, Equatable {
    /// The decision as recorded: `ask` stays `ask` (see `enforcedAllow`).
    public var decision: Decision
    /// 0-based index into `Policy.rules` of the deciding rule; nil when the default applied.
    public var ruleIndex: Int?
    public var reason: VerdictReason

    public init(decision: Decision, ruleIndex: Int?, reason: VerdictReason) {
        self.decision = decision
        self.ruleIndex = ruleIndex
        self.reason = reason
    }

    /// Whether the supervisor lets the action proceed. `ask` behaves as deny until an approver exists.
    public var enforcedAllow: Bool { decision == .allow }
}
