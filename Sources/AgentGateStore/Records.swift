#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One supervised run of an agent: a row of the `sessions` table.
public struct SessionRecord: Sendable, Equatable {
    /// Caller-chosen unique id (e.g. a UUID string).
    public var id: String
    /// Agent name, e.g. "claude-code".
    public var agent: String
    /// The supervised command's argv.
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

    public init(
        id: String, agent: String, command: [String], cwd: String,
        policyPath: String, policySHA256: String, startTimeMicros: Int64,
        endTimeMicros: Int64? = nil, exitStatus: Int32? = nil
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
    /// Policy action class, e.g. "file.read", "exec", "net.connect".
    public var action: String
    /// What the syscall acts on: a path, a host:port, a program.
    public var target: String
    /// Arguments for exec-like events; nil when not applicable (stored as SQL NULL, not "[]").
    public var argv: [String]?
    /// The verdict, e.g. "allow", "deny".
    public var decision: String
    /// 0-based index of the matching policy rule; nil when the default applied.
    public var ruleIndex: Int?
    /// Why, in words.
    public var reason: String
    /// The errno returned to the caller on denial; nil when the call went ahead.
    public var errno: Int32?
    /// Time from notification to decision, in microseconds.
    public var latencyMicros: Int64

    public init(
        timeMicros: Int64, pid: Int32, ppid: Int32, executable: String, syscall: String,
        action: String, target: String, argv: [String]? = nil, decision: String,
        ruleIndex: Int? = nil, reason: String, errno: Int32? = nil, latencyMicros: Int64
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
    }
}

/// A decision event as read back from the store, with its row id and session.
public struct StoredEvent: Sendable, Equatable {
    /// The `events.id` row id; increases in insertion order.
    public var id: Int64
    public var sessionID: String
    public var event: DecisionEvent

    public init(id: Int64, sessionID: String, event: DecisionEvent) {
        self.id = id
        self.sessionID = sessionID
        self.event = event
    }
}

/// Wall-clock time in the unit the store uses.
public enum AuditClock {
    /// Microseconds since the Unix epoch (CLOCK_REALTIME).
    public static func nowMicros() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }
}
