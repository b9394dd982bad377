/// The kind of operation the supervised agent attempts; each rule may restrict itself to one kind.
public enum ActionKind: UInt8, Sendable, CaseIterable {
    /// `execve`/`execveat`; the target is the program's absolute path.
    case exec
    /// Opening a path for reading; the target is an absolute path.
    case fsRead
    /// Opening, creating, renaming or removing a path for writing; the target is an absolute path.
    case fsWrite
    /// `connect`/`sendto` to a remote endpoint; the target is `host:port`, `[v6]:port`,
    /// `unix:/path` or `unix:@abstract`.
    case netEgress

    /// The spelling used in policy files and audit records.
    public var name: String {
        switch self {
        case .exec: "exec"
        case .fsRead: "fs_read"
        case .fsWrite: "fs_write"
        case .netEgress: "net_egress"
        }
    }

    /// Parses a policy-file spelling (`exec`, `fs_read`, `fs_write`, `net_egress`).
    public init?(name: String) {
        switch name {
        case "exec": self = .exec
        case "fs_read": self = .fsRead
        case "fs_write": self = .fsWrite
        case "net_egress": self = .netEgress
        default: return nil
        }
    }

    /// Whether targets of this kind are filesystem paths (and so subject to a rule's `scope`).
    public var targetIsPath: Bool { self != .netEgress }
}

/// What a rule (or the policy default) decides.
public enum Decision: UInt8, Sendable, CaseIterable {
    case allow
    case deny
    /// Would ask an operator; until an approver exists the supervisor enforces it as deny.
    case ask
    /// Allow, and mark the event as notable in the audit trail.
    case log

    /// Whether the action goes ahead (when the policy is enforced).
    public var allows: Bool { self == .allow || self == .log }

    /// The spelling used in policy files and audit records.
    public var name: String {
        switch self {
        case .allow: "allow"
        case .deny: "deny"
        case .ask: "ask"
        case .log: "log"
        }
    }

    /// Parses a policy-file spelling (`allow`, `deny`, `ask`, `log`).
    public init?(name: String) {
        switch name {
        case "allow": self = .allow
        case "deny": self = .deny
        case "ask": self = .ask
        case "log": self = .log
        default: return nil
        }
    }
}

/// Whether a policy's decisions are enforced or only recorded.
public enum PolicyMode: UInt8, Sendable, CaseIterable {
    /// Denials fail the syscall.
    case enforce
    /// Every action is decided and recorded as it would have been, but nothing is blocked: for
    /// learning a policy. The supervisor's own protections still apply.
    case audit

    public var name: String { self == .enforce ? "enforce" : "audit" }

    public init?(name: String) {
        switch name {
        case "enforce": self = .enforce
        case "audit": self = .audit
        default: return nil
        }
    }
}
