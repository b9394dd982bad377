/// One supervised run of an agent: a row of the `sessions` table.
public struct SessionRecord: Sendable, Equatable {
    /// Caller-chosen unique id (e.g. a UUID string).
    public var id: String
    /// Agent name, e.g. "claude-code".
    public var agent: String
    /// The supervised command's argv (redacted by the store before it is written).
    public var command: [String]
    /// Working directory the command started in.
    public var cwd: String
    /// Path of the policy file in force.
    public var policyPath: String
    /// Lowercase hex SHA-256 of the policy file's bytes (see `SHA256Hex`).
    public var policySHA256: String
    /// Start, in microseconds since the Unix epoch.
    public var startTimeMicros: Int64
    /// End, in microseconds since the Unix epoch; nil while running.
    public var endTimeMicros: Int64?
    /// Exit status of the supervised command; nil while running.
    public var exitStatus: Int32?
    /// "enforce" (decisions are applied), "audit" (decided and recorded, never blocked) or
    /// "learn" (`agentgate-supervise --learn`: the policy ran in audit mode, to learn from).
    public var mode: String
    /// Where and as whom the session ran (OS, user, capabilities, environment, interfaces);
    /// nil for sessions recorded before schema v2 or without context. Stored as JSON in
    /// `sessions.context`, with the environment redacted by the store.
    public var context: SessionContext?
    /// The systemd unit the session ran in (`agentgate-supervise --unit`, schema v5); nil for
    /// a session started outside one that agentgate-supervise made.
    public var unit: SessionUnit?

    public init(
        id: String, agent: String, command: [String], cwd: String,
        policyPath: String, policySHA256: String, startTimeMicros: Int64,
        endTimeMicros: Int64? = nil, exitStatus: Int32? = nil,
        mode: String = "enforce", context: SessionContext? = nil, unit: SessionUnit? = nil
    ) {
        self.id = id
        self.agent = agent
        self.command = command
        self.cwd = cwd
        self.policyPath = policyPath
        self.policySHA256 = policySHA256
        self.startTimeMicros = startTimeMicros
        self.endTimeMicros = endTimeMicros
        self.exitStatus = exitStatus
        self.mode = mode
        self.context = context
        self.unit = unit
    }
}

/// The transient systemd unit a session ran in, as the supervisor found itself at start.
public struct SessionUnit: Sendable, Equatable, Codable {
    /// The unit's full name, e.g. "nightly.scope" or "nightly.service".
    public var name: String
    /// The unit's cgroup (v2 path), e.g. "/system.slice/nightly.scope".
    public var cgroup: String
    /// systemd's invocation id of this run of the unit (32 hex digits); "" when systemd
    /// didn't say.
    public var invocationID: String

    public init(name: String, cgroup: String, invocationID: String) {
        self.name = name
        self.cgroup = cgroup
        self.invocationID = invocationID
    }
}

/// One seccomp decision, as recorded right after it was made: a row of the `events` table.
public struct DecisionEvent: Sendable, Equatable {
    /// When the decision was made, in microseconds since the Unix epoch.
    public var timeMicros: Int64
    public var pid: Int32
    public var ppid: Int32
    /// Executable path of the calling process.
    public var executable: String
    /// Syscall name, e.g. "openat".
    public var syscall: String
    /// Policy action class: exec, fs_read, fs_write, net_egress, or syscall.
    public var action: RecordedAction
    /// What the syscall acts on: a path, a host:port, a program. Redacted by the writer
    /// (passwords in URLs, tokens) before it is stored.
    public var target: String
    /// Arguments for exec-like events; nil when not applicable (stored as SQL NULL, not "[]").
    /// Redacted by the writer before it is stored.
    public var argv: [String]?
    /// The verdict: allow, deny, ask or log (allowed and flagged).
    public var decision: RecordedDecision
    /// 0-based index of the matching policy rule; nil when the default applied.
    public var ruleIndex: Int?
    /// Why, in words: the rule's `reason:` when it has one, else the verdict's text.
    public var reason: String
    /// The errno returned to the caller on denial; nil when the call went ahead.
    public var errno: Int32?
    /// Time from notification to decision, in microseconds.
    public var latencyMicros: Int64
    /// The deciding rule's `id:`, or its 1-based number as a string ("7") when it has none;
    /// nil when the default applied.
    public var ruleID: String?
    /// One line saying what the agent was trying to do, e.g. "agent wants to install npm
    /// package: left-pad". Redacted by the writer before it is stored.
    public var intent: String?
    /// The rule's decision was `log`: allowed, and flagged for review.
    public var notable: Bool
    /// False when the session runs in audit mode: decided and recorded, but not blocked.
    public var enforced: Bool
    /// SHA-256 of the policy in force when the decision was made (it changes when the policy
    /// is reloaded); nil for events recorded before schema v3, or without a policy.
    public var policySHA256: String? = nil
    /// For an `ask`: how it was settled (`tty`, `socket` or `timeout`), and by whom (the
    /// person: `alice (uid 1000)`; nil for a timeout). nil for every other event.
    public var answeredVia: String? = nil
    public var answeredBy: String? = nil
    /// Which layer decided: the supervisor (`.kernel`) or an agent hook (`.hook`).
    public var source: RecordedSource = .kernel
    /// An allowed read the writer folds into its process's aggregate for the path
    /// (`audit: {reads: aggregate}`) rather than storing as a row of its own.
    public var isAggregatedRead = false
    /// Read back from an aggregate (schema v8): how many reads it stands for, and the last
    /// one's time (`timeMicros` is the first's). nil for an event stored as its own row.
    public var readCount: Int64? = nil
    public var lastReadMicros: Int64? = nil

    public init(
        timeMicros: Int64, pid: Int32, ppid: Int32, executable: String, syscall: String,
        action: RecordedAction, target: String, argv: [String]? = nil, decision: RecordedDecision,
        ruleIndex: Int? = nil, reason: String, errno: Int32? = nil, latencyMicros: Int64,
        ruleID: String? = nil, intent: String? = nil, notable: Bool = false, enforced: Bool = true
    ) {
        self.timeMicros = timeMicros
        self.pid = pid
        self.ppid = ppid
        self.executable = executable
        self.syscall = syscall
        self.action = action
        self.target = target
        self.argv = argv
        self.decision = decision
        self.ruleIndex = ruleIndex
        self.reason = reason
        self.errno = errno
        self.latencyMicros = latencyMicros
        self.ruleID = ruleID
        self.intent = intent
        self.notable = notable
        self.enforced = enforced
    }
}

/// A decision event as read back from the store, with its row id and session.
public struct StoredEvent: Sendable, Equatable {
    /// The `events.id` row id; increases in insertion order.
    public var id: Int64
    public var sessionID: String
    public var event: DecisionEvent
    /// Position in the session's hash chain (1-based); nil for rows from before schema v2.
    public var seq: Int64?
    /// Lowercase hex SHA-256 chain hash of this row; nil for rows from before schema v2.
    public var hash: String?

    public init(id: Int64, sessionID: String, event: DecisionEvent, seq: Int64? = nil, hash: String? = nil) {
        self.id = id
        self.sessionID = sessionID
        self.event = event
        self.seq = seq
        self.hash = hash
    }
}

/// One process image in a session's tree: a row of the `processes` table. A process that
/// execs gets a new row (same pid); its exit fills the latest row for that pid.
public struct ProcessRecord: Sendable, Equatable {
    public var pid: Int32
    public var ppid: Int32
    /// The image's executable path (`/proc/PID/exe`).
    public var executable: String
    /// The image's argv (redacted by the writer before it is stored).
    public var argv: [String]
    /// Effective user and group ids (the ids permission checks use).
    public var uid: UInt32
    public var gid: UInt32
    /// Effective capabilities by name (`Capabilities.names(ofMask:)`), e.g. ["CAP_CHOWN"].
    public var capabilities: [String]
    /// The cgroup v2 path (`/proc/PID/cgroup`, "0::" stripped).
    public var cgroup: String
    /// When the image started (exec or first sight), µs since the Unix epoch.
    public var startTimeMicros: Int64
    /// When the process exited, µs since the Unix epoch; nil while running or unknown.
    public var exitTimeMicros: Int64?
    /// Exit status (the exit code, or 128+N when killed by signal N); nil while running.
    public var exitStatus: Int32?

    public init(
        pid: Int32, ppid: Int32, executable: String, argv: [String], uid: UInt32, gid: UInt32,
        capabilities: [String], cgroup: String, startTimeMicros: Int64,
        exitTimeMicros: Int64? = nil, exitStatus: Int32? = nil
    ) {
        self.pid = pid
        self.ppid = ppid
        self.executable = executable
        self.argv = argv
        self.uid = uid
        self.gid = gid
        self.capabilities = capabilities
        self.cgroup = cgroup
        self.startTimeMicros = startTimeMicros
        self.exitTimeMicros = exitTimeMicros
        self.exitStatus = exitStatus
    }
}

/// A process row as read back from the store.
public struct StoredProcess: Sendable, Equatable {
    public var id: Int64
    public var sessionID: String
    public var process: ProcessRecord

    public init(id: Int64, sessionID: String, process: ProcessRecord) {
        self.id = id
        self.sessionID = sessionID
        self.process = process
    }
}
