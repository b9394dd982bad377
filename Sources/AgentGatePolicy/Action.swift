/// An enum spelled in policy files and audit records by `name`; parsing is the inverse of it,
/// so each spelling is written once.
public protocol PolicySpelled: CaseIterable {
    var name: String { get }
}

extension PolicySpelled {
    /// Parses a policy-file spelling; nil for any other text.
    public init?(name: String) {
        guard let match = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }
}

/// The kind of operation the supervised agent attempts; each rule may restrict itself to one kind.
public enum ActionKind: UInt8, Sendable, CaseIterable, PolicySpelled {
    /// `execve`/`execveat`; the target is the program's absolute path.
    case exec
    /// Opening a path for reading; the target is an absolute path.
    case fsRead
    /// Opening, creating, renaming or removing a path for writing; the target is an absolute path.
    case fsWrite
    /// `connect`/`sendto` to a remote endpoint; the target is `host:port`, `[v6]:port`,
    /// `unix:/path` or `unix:@abstract`.
    case netEgress
    /// A call of an MCP tool, as an agent hook reports it; the target is the tool's name as
    /// the agent names it (`mcp__server__tool`). The kernel never sees this kind: only hooks
    /// (and, later, the MCP gateway) decide it.
    case mcp

    /// The spelling used in policy files and audit records.
    public var name: String {
        switch self {
        case .exec: "exec"
        case .fsRead: "fs_read"
        case .fsWrite: "fs_write"
        case .netEgress: "net_egress"
        case .mcp: "mcp"
        }
    }

    /// Whether targets of this kind are filesystem paths (and so subject to a rule's `scope`).
    public var targetIsPath: Bool { self != .netEgress && self != .mcp }

    /// Kinds a per-action `default:` mapping may leave out, and what they then default to:
    /// `mcp` came after policies that name every other kind, so those keep loading (a tool no
    /// rule names is asked about).
    public var defaultWhenUnnamed: Decision? { self == .mcp ? .ask : nil }
}

/// What a rule (or the policy default) decides.
public enum Decision: UInt8, Sendable, CaseIterable, PolicySpelled {
    case allow
    case deny
    /// A person decides (at the session's terminal, or with `agentgate approve`/`deny`); the
    /// call is denied when nobody answers within `ask_timeout`.
    case ask
    /// Allow, and mark the event as notable in the audit trail.
    case log

    /// Whether the action goes ahead (when the policy is enforced).
    public var allows: Bool { self == .allow || self == .log }

    /// Orders decisions so the stricter of two wins where an action has several names:
    /// deny > ask > log > allow.
    public var strictness: Int {
        switch self {
        case .allow: 0
        case .log: 1
        case .ask: 2
        case .deny: 3
        }
    }

    /// The spelling used in policy files and audit records.
    public var name: String {
        switch self {
        case .allow: "allow"
        case .deny: "deny"
        case .ask: "ask"
        case .log: "log"
        }
    }
}

/// Whether a policy's decisions are enforced or only recorded.
public enum PolicyMode: UInt8, Sendable, CaseIterable, PolicySpelled {
    /// Denials fail the syscall.
    case enforce
    /// Every action is decided and recorded as it would have been, but nothing is blocked: for
    /// learning a policy. The supervisor's own protections still apply.
    case audit

    /// The spelling used in policy files.
    public var name: String { self == .enforce ? "enforce" : "audit" }
}
