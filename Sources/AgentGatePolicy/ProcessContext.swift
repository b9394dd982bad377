/// What a rule's `when:` may test about the process that acts: who it runs as, with which
/// capabilities, in which cgroup, which program it is and what started it.
///
/// The supervisor builds one per process from /proc (capabilities from `CapEff`/`CapPrm`, the
/// cgroup from /proc/PID/cgroup) and from the execs it observed, caches it, and refreshes it when
/// the process execs or changes credentials. `agentgate check` and policy test cases build one
/// from their arguments.
public struct ProcessContext: Sendable, Equatable {
    /// Effective user and group ids.
    public var uid: UInt32
    public var gid: UInt32
    /// Capability sets as bit masks (bit N = capability N, as in /proc/PID/status).
    public var effectiveCapabilities: UInt64
    public var permittedCapabilities: UInt64
    /// The unified-hierarchy cgroup path (the `0::` line of /proc/PID/cgroup), e.g.
    /// `/user.slice/user-1000.slice/session-2.scope`.
    public var cgroup: String
    /// The process's executable (absolute path).
    public var executable: String
    /// The command lines this process exec'd, oldest first (the process itself, before its
    /// current image, and with it).
    public var commands: [[String]]
    /// Ancestors, nearest first, up to the supervisor.
    public var ancestors: [ProcessImage]
    /// The agent's name.
    public var agent: String

    public init(uid: UInt32 = 0, gid: UInt32 = 0, effectiveCapabilities: UInt64 = 0, permittedCapabilities: UInt64 = 0,
                cgroup: String = "/", executable: String = "", commands: [[String]] = [],
                ancestors: [ProcessImage] = [], agent: String = "") {
        self.uid = uid
        self.gid = gid
        self.effectiveCapabilities = effectiveCapabilities
        self.permittedCapabilities = permittedCapabilities
        self.cgroup = cgroup
        self.executable = executable
        self.commands = commands
        self.ancestors = ancestors
        self.agent = agent
    }
}

/// One process in an ancestry: its executable and the command lines it exec'd.
public struct ProcessImage: Sendable, Equatable {
    public var executable: String
    public var commands: [[String]]

    public init(executable: String, commands: [[String]] = []) {
        self.executable = executable
        self.commands = commands
    }
}

/// The facts of a `ProcessContext` by the names a policy test case's `context:` gives them;
/// `agentgate check`'s options set the same facts, and `WhenKey.facts` says which facts each
/// `when:` key tests. Each fact reads its values here, once for every place that supplies it.
public enum ProcessFact: String, CaseIterable, Sendable {
    case uid, gid, caps, permittedCaps = "permitted_caps", cgroup, exe, commands, ancestors, agent

    /// The spellings, for messages.
    public static let spellings = allCases.map(\.rawValue).joined(separator: ", ")

    /// Whether the fact takes a list of values (a single value stands for a list of one).
    public var takesList: Bool {
        switch self {
        case .caps, .permittedCaps, .commands, .ancestors: true
        case .uid, .gid, .cgroup, .exe, .agent: false
        }
    }

    /// What a single value must be, for messages.
    public var expectedValue: String {
        switch self {
        case .uid, .gid: "a number"
        case .cgroup: "a cgroup path"
        case .exe: "an executable path"
        case .agent: "an agent name"
        case .caps, .permittedCaps, .commands, .ancestors: "a string or a list"
        }
    }

    /// Sets the fact in `context` from its values (one for a fact that takes no list).
    public func set(_ values: [String], in context: inout ProcessContext) throws(ProcessFactError) {
        switch self {
        case .uid, .gid:
            guard let text = values.first, let id = UInt32(text) else {
                throw ProcessFactError(index: 0, value: values.first ?? "", message: "expected \(rawValue) to be a number")
            }
            if self == .uid { context.uid = id } else { context.gid = id }
        case .caps, .permittedCaps:
            var mask: UInt64 = 0
            for (index, name) in values.enumerated() {
                guard let bit = CapabilityName.number(name) else {
                    throw ProcessFactError(index: index, value: name, message: "unknown capability \"\(name)\"")
                }
                mask |= 1 << UInt64(bit)
            }
            if self == .caps { context.effectiveCapabilities = mask } else { context.permittedCapabilities = mask }
        case .cgroup: context.cgroup = values.first ?? ""
        case .exe: context.executable = values.first ?? ""
        case .agent: context.agent = values.first ?? ""
        case .commands:
            context.commands = values.map { ExecDetails(commandLine: $0).argv }
        case .ancestors:
            // Each ancestor is a command line; its program is taken as its executable.
            context.ancestors = values.map { line in
                let argv = ExecDetails(commandLine: line).argv
                return ProcessImage(executable: ExecDetails.assumedProgram(argv.first ?? ""), commands: [argv])
            }
        }
    }
}

/// A value a process fact can't take: which one (by position) and why.
public struct ProcessFactError: Error, Sendable, Equatable {
    public var index: Int
    public var value: String
    public var message: String
}

/// Hands the policy the acting process's context, only when a rule with `when:` needs it: most
/// decisions never look, so the supervisor reads /proc only for those that do.
public protocol ProcessContextSource {
    /// The context, or nil when it can't be known (the process is gone, /proc unreadable). A
    /// rule whose condition can't be evaluated counts as matching when it denies or asks and as
    /// not matching when it allows, so an unknown context never grants anything.
    mutating func processContext() -> ProcessContext?
}

/// A context known up front (tests, `agentgate check`).
public struct KnownProcessContext: ProcessContextSource {
    public var context: ProcessContext?
    public init(_ context: ProcessContext?) { self.context = context }
    public mutating func processContext() -> ProcessContext? { context }
}

/// Capability names as the kernel spells them, for policy files. The supervisor names the sets
/// it reads through libcap, and a test checks this table against libcap's.
public enum CapabilityName {
    /// Index = capability number (linux/capability.h).
    public static let all = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
        "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ]

    /// The number of a name (any case, `CAP_` optional), or nil.
    public static func number(_ name: String) -> Int? {
        var upper = name.uppercased()
        if !upper.hasPrefix("CAP_") { upper = "CAP_" + upper }
        return all.firstIndex(of: upper)
    }

    /// The names of the bits set in `mask`, lowest first.
    public static func names(_ mask: UInt64) -> [String] {
        (0..<64).compactMap { bit in
            mask & (1 << UInt64(bit)) == 0 ? nil : (bit < all.count ? all[bit] : "CAP_\(bit)")
        }
    }
}
