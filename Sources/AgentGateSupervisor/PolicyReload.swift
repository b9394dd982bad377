import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Logging
import Synchronization

/// One version of the session's policy: what decides, and the digest its decisions record.
final class PolicyVersion: Sendable {
    let policy: Policy
    /// SHA-256 over the policy's files (`LoadedPolicy.sha256`); nil when unknown.
    let sha256: String?
    /// The session's counts against this version's `limits:` and `runaway:`; nil without them.
    /// A reload starts them again from zero.
    let rateLimiter: RateLimiter?
    /// Where symlinks take the places its file rules name (resolved when put in force).
    let symlinkAliases: SymlinkAliases

    init(policy: Policy, sha256: String?, runawayHook: RunawayHook) {
        self.policy = policy
        self.sha256 = sha256
        self.rateLimiter = RateLimiter(policy: policy, runawayHook: runawayHook)
        self.symlinkAliases = SymlinkAliases(policy: policy)
    }
}

/// The policy in force, which a reload replaces while the session runs.
///
/// Every receiver and worker keeps its own reference to the version it last used
/// (`ThreadScratch.policy(in:)`) and takes the lock only when `generation` has moved, so a
/// notification costs one atomic load. A trapped call keeps the version it started with
/// (`TrappedCall.policyVersion`) until it is recorded: the rule that decided and the rule whose
/// id and reason are recorded come from the same policy, even across a reload.
///
/// Every version ever in force is kept until the session ends (reloads are rare; a policy is
/// small), so a call can refer to its version without counting references on the hot path.
final class PolicyInForce: Sendable {
    private let generation = Atomic<UInt64>(0)
    /// Every version put in force, the current one last.
    private let versions: Mutex<[PolicyVersion]>

    /// What a runaway session triggers, whichever version's limiter finds it.
    let runawayHook = RunawayHook()

    init(policy: Policy, sha256: String?) {
        versions = Mutex([PolicyVersion(policy: policy, sha256: sha256, runawayHook: runawayHook)])
    }

    var version: PolicyVersion { versions.withLock { $0[$0.count - 1] } }

    /// The current generation; moves on every `replace`.
    @inline(__always)
    var currentGeneration: UInt64 { generation.load(ordering: .acquiring) }

    func replace(policy: Policy, sha256: String?) {
        let version = PolicyVersion(policy: policy, sha256: sha256, runawayHook: runawayHook)
        versions.withLock { $0.append(version) }
        // After the store: a thread that sees the new generation finds the new version.
        generation.add(1, ordering: .releasing)
    }
}

extension ThreadScratch {
    /// The policy in force for the next decision on this thread: the cached version unless a
    /// reload moved the generation (one atomic load when nothing changed).
    @inline(__always)
    func policy(in force: PolicyInForce) -> PolicyVersion {
        let generation = force.currentGeneration
        if let cached = policyVersion, generation == policyGeneration { return cached }
        let version = force.version
        policyVersion = version
        policyGeneration = generation
        return version
    }
}

/// Where a running session's policy is read again from: fixed when the session starts.
public struct PolicyReloadSource: Sendable {
    /// A policy read again.
    public struct Loaded: Sendable {
        public var policy: Policy
        public var sha256: String
        public init(policy: Policy, sha256: String) {
            self.policy = policy
            self.sha256 = sha256
        }
    }

    /// The policy file, as announced (for messages).
    public var path: String
    /// Every file the policy was read from, resolved: their directories are watched.
    public var files: [String]
    /// Reads the policy again, or says why it can't be used.
    public var load: @Sendable () -> Result<Loaded, PolicyReloadFailure>

    public init(path: String, files: [String], load: @escaping @Sendable () -> Result<Loaded, PolicyReloadFailure>) {
        self.path = path
        self.files = files
        self.load = load
    }
}

/// Why a policy read again was not put in force.
public struct PolicyReloadFailure: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reloads the session's policy on request (SIGHUP, see `Supervisor.waitForSession`) and when
/// one of its files changes (inotify on their directories, so an editor's write-and-rename is
/// seen too; a burst of changes is one reload). A policy that fails to load is rejected with
/// its error and the policy in force stays. Each outcome is a line on the supervisor's log and
/// an event of the supervisor's own in the audit (syscall `policy-reload`).
final class PolicyReloader: Sendable {
    private let source: PolicyReloadSource
    private let policies: PolicyInForce
    private let log: Logger
    private let writer: AuditWriter?
    /// Told of each reload, put in force or rejected (webhooks, the journal, OTLP).
    private let sinks: EventSinks?
    /// Serialises reloads (the watcher's and SIGHUP's); never taken on the notification path.
    private let reloading = Mutex<Void>(())
    private let stopping = Atomic<Bool>(false)
    private let watcher = Mutex<Thread?>(nil)
    /// The write end of the pipe that wakes the watcher to stop (-1: no watcher).
    private let wakeFD = Atomic<Int32>(-1)

    /// How long the files must stay quiet before a change is loaded, and the longest a burst
    /// of changes can delay it.
    static let quietMilliseconds: Int32 = 150
    static let longestDelayNanoseconds: UInt64 = 2_000_000_000

    init(source: PolicyReloadSource, policies: PolicyInForce, log: Logger, writer: AuditWriter?, sinks: EventSinks? = nil) {
        self.sinks = sinks
        self.source = source
        self.policies = policies
        self.log = log
        self.writer = writer
    }

    /// Reads the policy again and puts it in force if it loads. `announceUnchanged`: say so
    /// when the files hold the policy already in force (a SIGHUP is answered; a touched file
    /// is not).
    /// Returns whether the files loaded (changed or not), and what happened.
    @discardableResult
    func reload(announceUnchanged: Bool) -> (loaded: Bool, message: String) {
        reloading.withLock { _ in
            let inForce = policies.version
            switch source.load() {
            case .failure(let failure):
                log.error("policy reload from \(source.path) rejected; the policy in force stays (sha256 \(Self.short(inForce.sha256))): \(failure)")
                record(decision: .deny, reason: "policy reload rejected: \(failure)", sha256: inForce.sha256)
                sinks?.publish(SinkEvent(.reload(accepted: false, policySHA256: inForce.sha256,
                                                 message: "policy reload from \(source.path) rejected: \(failure)")))
                return (false, "policy reload from \(source.path) rejected; the policy in force stays: \(failure)")
            case .success(let loaded):
                if loaded.sha256 == inForce.sha256 {
                    if announceUnchanged { log.notice("policy unchanged in \(source.path) (sha256 \(Self.short(loaded.sha256)))") }
                    return (true, "policy unchanged in \(source.path) (sha256 \(Self.short(loaded.sha256)))")
                }
                policies.replace(policy: loaded.policy, sha256: loaded.sha256)
                log.notice("policy reloaded from \(source.path) (sha256 \(Self.short(loaded.sha256)))")
                record(decision: .allow, reason: "policy reloaded (was sha256 \(inForce.sha256 ?? "unknown"))", sha256: loaded.sha256)
                sinks?.publish(SinkEvent(.reload(accepted: true, policySHA256: loaded.sha256,
                                                 message: "policy reloaded from \(source.path) (sha256 \(loaded.sha256))")))
                return (true, "policy reloaded from \(source.path) (sha256 \(Self.short(loaded.sha256)))")
            }
        }
    }

    static func short(_ sha256: String?) -> String {
        guard let sha256 else { return "unknown" }
        return sha256.count > 12 ? sha256.prefix(12) + "…" : sha256
    }

    private func record(decision: RecordedDecision, reason: String, sha256: String?) {
        writer?.record(Self.event(target: source.path, decision: decision, reason: reason, sha256: sha256))
    }

    /// A `policy-reload` event of the supervisor's own (pid and executable are the supervisor's):
    /// a policy put in force (decision log) or refused (deny).
    static func event(target: String, decision: RecordedDecision = .log, reason: String, sha256: String?) -> DecisionEvent {
        var event = DecisionEvent(
            timeMicros: AuditClock.nowMicros(), pid: getpid(), ppid: getppid(),
            executable: ProcessTable.readLink("/proc/self/exe") ?? "agentgate-supervise", syscall: "policy-reload",
            action: .syscall, target: target, decision: decision, reason: reason, latencyMicros: 0)
        event.policySHA256 = sha256
        return event
    }

    /// Starts watching the policy's directories (before the agent runs). Without inotify, only
    /// SIGHUP reloads, and the log says so.
    func startWatching() {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            log.warning("cannot watch the policy files (inotify: \(String(cString: strerror(errno)))); only SIGHUP reloads the policy")
            return
        }
        var names: [Int32: Set<String>] = [:]
        var directories: [String: Int32] = [:]
        for file in source.files {
            guard let slash = file.lastIndex(of: "/") else { continue }
            let directory = slash == file.startIndex ? "/" : String(file[..<slash])
            let name = String(file[file.index(after: slash)...])
            let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB)
            let wd = directories[directory] ?? inotify_add_watch(fd, directory, mask)
            guard wd >= 0 else {
                log.warning("cannot watch \(directory) for policy changes (\(String(cString: strerror(errno)))); SIGHUP reloads the policy")
                continue
            }
            directories[directory] = wd
            names[wd, default: []].insert(name)
        }
        var wake: [Int32] = [-1, -1]
        guard pipe(&wake) == 0 else {
            agentgate_close(fd)
            log.warning("cannot start the policy watcher; only SIGHUP reloads the policy")
            return
        }
        for end in wake {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        let watched = names, wakeRead = wake[0]
        let thread = Thread(stackSize: 256 << 10) { [self] in
            watch(fd: fd, wakeFD: wakeRead, names: watched)
            agentgate_close(fd)
            agentgate_close(wakeRead)
        }
        watcher.withLock { $0 = thread }
        wakeFD.store(wake[1], ordering: .sequentiallyConsistent)
        if !thread.start(detached: false) {
            watcher.withLock { $0 = nil }
            wakeFD.store(-1, ordering: .sequentiallyConsistent)
            agentgate_close(fd)
            agentgate_close(wake[0])
            agentgate_close(wake[1])
            log.warning("cannot start the policy watcher; only SIGHUP reloads the policy")
        }
    }

    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        let wake = wakeFD.exchange(-1, ordering: .sequentiallyConsistent)
        if wake >= 0 {
            var byte: UInt8 = 1
            _ = write(wake, &byte, 1)
        }
        watcher.withLock { $0 }?.join()
        if wake >= 0 { agentgate_close(wake) }
    }

    /// Waits up to `milliseconds` for a change; false when woken to stop, or on timeout.
    private func waitForChange(fd: Int32, wakeFD: Int32, milliseconds: Int32) -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        guard poll(&fds, 2, milliseconds) > 0 else { return false }
        return fds[1].revents == 0 && fds[0].revents & Int16(POLLIN) != 0
    }

    private func watch(fd: Int32, wakeFD: Int32, names: [Int32: Set<String>]) {
        let capacity = 16 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { buffer.deallocate() }
        /// Whether anything read names a policy file.
        func drain() -> Bool {
            var relevant = false
            while true {
                let count = read(fd, buffer, capacity)
                guard count > 0 else { return relevant }
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= count {
                    let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                    let nameStart = offset + MemoryLayout<inotify_event>.size
                    let nameBytes = UnsafeRawBufferPointer(start: buffer + nameStart, count: Int(event.len))
                    let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                    if event.mask & UInt32(IN_Q_OVERFLOW) != 0 || names[event.wd]?.contains(name) == true { relevant = true }
                    offset = nameStart + Int(event.len)
                }
            }
        }
        while !stopping.load(ordering: .relaxed) {
            guard waitForChange(fd: fd, wakeFD: wakeFD, milliseconds: 1000), drain() else { continue }
            // Coalesce: wait until the files have been quiet for a moment (bounded).
            let deadline = agentgate_monotonic_ns() + Self.longestDelayNanoseconds
            while !stopping.load(ordering: .relaxed) && agentgate_monotonic_ns() < deadline
                    && waitForChange(fd: fd, wakeFD: wakeFD, milliseconds: Self.quietMilliseconds) {
                _ = drain()
            }
            if stopping.load(ordering: .relaxed) { break }
            reload(announceUnchanged: false)
        }
    }
}
