import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Logging
import Synchronization
import SystemPackage

/// How to run one supervised session.
public struct SupervisorOptions: Sendable {
    /// The command as given (argv[0] first).
    public var command: [String]
    /// argv[0] resolved against PATH.
    public var programPath: String
    public var environment: [String]
    /// Also shows the supervisor's informational diagnostics (a kernel feature it goes without).
    public var verbose = false
    /// Where the supervisor's own diagnostics go (see `StandardErrorLogHandler`).
    public var logger: Logger = .supervisorStandardError()
    /// Called with every decision as it is made (`-v`, `--log`): a denial's echo is written
    /// before the process that caused it sees the failure.
    public var decisionEcho: (@Sendable (DecisionEvent) -> Void)? = nil
    /// The user's home directory, for intent lines (`~/.ssh/id_rsa`).
    public var home: String?
    /// The agent's name, which `when: {agent: …}` rules test (default: the command's basename).
    public var agentName: String?
    /// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6+). Off by default: it wins on a single
    /// process's round trips but lost on parallel builds here (docs/performance.md).
    public var syncWakeUp = false
    /// Two-step, not ADDFD_FLAG_SEND: a stop of the supervisor (SIGSTOP, a terminal's SIGTSTP, a
    /// cgroup freeze) interrupts ADDFD's wait, and with FLAG_SEND the kernel has then already
    /// answered the call: the agent's open returned 0, no fd (make soak's SIGSTOP fault, 2 runs
    /// of 3). Two-step ADDFD is withdrawn and simply restarted.
    public var injection: FDInjection = .addfdThenSend
    /// Two receivers keep a parallel build's processes from queueing behind one another.
    public var receiverThreads = 2
    /// Grace between SIGTERM and SIGKILL for descendants that outlive the command.
    public var descendantGraceMilliseconds = 2000
    /// Files the agent may never read or change (the audit database, the policy), as given;
    /// they are resolved to their real paths.
    public var protectedFiles: [String] = []
    /// Directories the agent may never write to (the user's AgentGate configuration, where
    /// policies are found without being named).
    public var protectedDirectories: [String] = []
    /// Directories whose own mode, owner, times and attributes the agent may not change (what
    /// is inside is decided as usual): the audit database's, where `chmod 000` would stop every
    /// later session from recording and `chmod 777` would let other users replace its files.
    public var protectedDirectoryNodes: [String] = []
    /// The most processes the session may have at once (0: no limit). Applied through the
    /// session's cgroup where the supervisor can create one, else through RLIMIT_NPROC (which
    /// counts every process of the user, so it is set to the user's current count plus this).
    public var maxProcesses = 4096
    /// The most memory the session's cgroup may use, when the memory controller is delegated
    /// (nil: three quarters of the machine's memory).
    public var maxMemoryBytes: UInt64? = nil
    /// A name for the session's cgroup (a session id).
    public var sessionName = "session"
    /// Where the session's control socket (`agentgate pause/resume/kill`) goes, named after
    /// `sessionName`; nil: no control socket.
    public var controlDirectory: ControlDirectory? = nil
    /// SHA-256 of the policy's files, recorded with every decision (nil: not recorded).
    public var policySHA256: String? = nil
    /// Where the policy is read again on SIGHUP and when its files change; nil: it never is
    /// (the built-in policy).
    public var policyReload: PolicyReloadSource? = nil
    /// Saves the rules Always and Never answers ask for; nil: those answers apply once.
    public var ruleSaver: PolicyFileAmender? = nil
    /// Capture the agent's DNS (see `DNSCapture`), so connects are decided by the names the
    /// agent resolved. Off, connects are decided by address alone.
    public var capturesDNS = true
    /// Where decisions go besides the audit database (journal, OTLP, webhooks), started by the
    /// caller; nil: nowhere.
    public var eventSinks: EventSinks? = nil
    /// A stream socket the process that started the supervisor puts asks on (`ParentAskServer`:
    /// `agentgate mcp`'s tools/call asks); close-on-exec, so the agent never has it. nil: none.
    public var parentAskDescriptor: Int32? = nil

    public init(command: [String], programPath: String, environment: [String]) {
        self.command = command
        self.programPath = programPath
        self.environment = environment
    }
}

/// Runs a command under the seccomp filter and answers its notifications until the whole
/// process tree has ended.
/// CMD's own exec failed: the session ran nothing.
public struct CommandExecFailure: Sendable {
    public let path: String
    public let errno: Errno
    /// The policy's refusal of the exec, when that is why it failed.
    public let denial: DecisionEvent?

    /// `cannot execute /usr/bin/sh: permission denied`.
    public var message: String {
        let why = switch errno {
        case .permissionDenied: "permission denied"
        case .noSuchFileOrDirectory: "no such file or directory"
        default: String(cString: strerror(errno.rawValue)).lowercased()
        }
        return "cannot execute \(path): \(why)"
    }

    /// 127 when CMD wasn't found, else 126 (as a shell does).
    public var exitStatus: Int32 { errno == .noSuchFileOrDirectory ? 127 : 126 }
}

public final class Supervisor: Sendable {
    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH]

    let options: SupervisorOptions
    let policy: Policy
    let writer: AuditWriter?
    /// The supervisor's diagnostics: `options.logger`, down to `info` with `verbose`.
    let log: Logger
    /// How many decisions of each kind the session has had (for its closing summary).
    public let counts = DecisionCounts()
    private let commandExecError = Mutex<Errno?>(nil)
    /// Who ended the session with `agentgate kill`, once someone has.
    let killer = Mutex<String?>(nil)

    /// `alice (uid 1000)` when the session was ended with `agentgate kill`.
    public var killedBy: String? { killer.withLock { $0 } }

    /// Why CMD itself could not be executed, once `run` has returned: `cannot execute
    /// /usr/bin/sh: permission denied`, with the policy's rule when the policy refused it.
    /// nil when CMD was executed.
    public var commandExecFailure: CommandExecFailure? {
        guard let errno = commandExecError.withLock({ $0 }) else { return nil }
        return CommandExecFailure(path: options.programPath, errno: errno, denial: counts.firstExecDenial)
    }

    public init(options: SupervisorOptions, policy: Policy, writer: AuditWriter?) {
        self.options = options
        self.policy = policy
        self.writer = writer
        var log = options.logger
        if options.verbose && log.logLevel > .info { log.logLevel = .info }
        self.log = log
    }

    /// /proc/sys/kernel/yama/ptrace_scope, or nil without Yama.
    static func yamaPtraceScope() -> Int? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 16) { buffer -> Int? in
            let n = agentgate_read_small_file(AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", buffer.baseAddress!, buffer.count)
            guard n > 0 else { return nil }
            return Int(String(cBuffer: buffer.baseAddress!, count: n).filter { $0.isNumber })
        }
    }

    /// Runs the session. Returns the command's exit status, or 128+N when it was killed by
    /// signal N. Throws when the command could not be started under supervision, in which case
    /// it never ran.
    public func run() throws(SupervisorError) -> Int32 {
        let table = SyscallTable(supervisorPGID: getpgrp())
        let filter = try CompiledFilter(table: table)
        let sizes = agentgate_notif_sizes_check()
        guard sizes == 0 else {
            throw SupervisorError(.kernelUnsupported, "this kernel's seccomp notification ABI is not supported", result: sizes)
        }
        // Every path and address is read from the agent's memory, which takes ptrace access to
        // one's own child: Yama's ptrace_scope 2 reserves that for CAP_SYS_PTRACE, 3 forbids it.
        if let scope = Self.yamaPtraceScope(), scope >= 3 {
            throw SupervisorError(.kernelUnsupported, "kernel.yama.ptrace_scope is \(scope): no process may read another's memory, "
                                  + "not even root's, so the supervisor can't read the agent's arguments; the setting can't be "
                                  + "lowered until the next boot (boot with kernel.yama.ptrace_scope at 0, 1 or 2)")
        }
        if ProcStatus(tid: getpid()).capEff & (1 << 19) == 0, let scope = Self.yamaPtraceScope(), scope >= 2 {
            throw SupervisorError(.kernelUnsupported, "kernel.yama.ptrace_scope is \(scope), so the supervisor can't read the "
                                  + "agent's memory without CAP_SYS_PTRACE; run it as root, or set the scope to 0 or 1 "
                                  + "(sysctl kernel.yama.ptrace_scope=1)")
        }

        // Before anything else is started: the capture's helper must not be a child of ours
        // once we reap orphans (become_subreaper below).
        var dns: DNSCapture? = nil
        if options.capturesDNS {
            switch DNSCapture.start() {
            case .success(let capture): dns = capture
            case .failure(let failure):
                log.warning("the agent's DNS can't be captured (\(failure.message)), so it is refused; run with --no-dns-capture to let it through, decided by address alone (host-name rules then match no connect)")
            }
        }

        // Signals arrive on a signalfd in this thread; every thread started later inherits the
        // block, and the child gets the original mask back.
        var originalMask = sigset_t()
        var handled = sigset_t()
        // Terminal stop signals are taken too: if the agent hands the terminal's foreground to our
        // group, ^Z or a background read must not stop the supervisor.
        let handledSignals = Self.forwardedSignals + [SIGCHLD, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU]
        handledSignals.withUnsafeBufferPointer { agentgate_sigset(&handled, $0.baseAddress, Int32($0.count)) }
        agentgate_sigmask(SIG_BLOCK, &handled, &originalMask)
        let signalFD = agentgate_signalfd(&handled)
        guard signalFD >= 0 else { throw SupervisorError(.spawn, "signalfd failed", result: signalFD) }
        defer { agentgate_close(signalFD) }
        agentgate_install_interrupt_handler(BlockingOperations.interruptSignal)
        signal(SIGPIPE, SIG_IGN)

        // The tasks RLIMIT_NPROC counts now, before any of the threads below exists.
        let userProcessesBefore = options.maxProcesses > 0 ? Self.userProcessCount() : 0
        // The blocking-call workers are made on a thread of their own (they inherit the signal
        // block above) while the agent is spawned: all of them exist before its first call is
        // received (`receivers.start()` waits for them), as `BlockingOperations` requires.
        let blocking = BlockingOperations()
        let workersStarting = Thread(stackSize: 256 << 10) { blocking.start() }
        let startingWorkers = workersStarting.start(detached: false)
        var workersHandedOver = false
        defer {
            // Left early (the agent could not be spawned or a thread started): end the workers.
            if !workersHandedOver {
                workersStarting.join()
                blocking.stop()
            }
        }

        _ = agentgate_become_subreaper() // orphans of the agent stay ours to supervise and reap
        let nofile = agentgate_raise_nofile()

        // The control socket exists before the agent does; it goes when the session does.
        let control = try openControlSocket()
        defer { control?.stop() }

        let terminalFD: Int32 = isatty(0) != 0 && agentgate_tcgetpgrp(0) == getpgrp() ? 0 : -1
        // Following the agent's stops (^Z) only makes sense when a job-control shell above us
        // can continue us: we lead a foreground job of our own, below a parent in our session.
        let parent = getppid()
        let underJobControl = terminalFD >= 0 && getsid(parent) == getsid(0) && getpgid(parent) != getpgrp()

        // Limits: the session's cgroup where possible, RLIMIT_NPROC otherwise; no real-time
        // scheduling; and the agent goes first when memory runs out.
        let cgroup = SessionCgroup.create(name: "agentgate-\(getpid())", maxProcesses: options.maxProcesses,
                                          maxMemoryBytes: options.maxMemoryBytes ?? Self.defaultMemoryLimit())
        // RLIMIT_NPROC counts this supervisor's threads too, and most start after the count
        // above: the blocking-call workers, the receivers (standby ones included), and at most eight
        // more (main, control socket, policy reload, the DNS forwarder's two, audit writer, hooks,
        // the parent's asks), and the in-session MCP gateways' ask threads.
        let supervisorThreadsToCome = BlockingOperations.workerCount + ExecTracer.threadCount + max(1, options.receiverThreads)
            + SupervisorCore.askCapacity + 8 + SessionMCPCalls.askThreads
        let nprocLimit: Int64 = options.maxProcesses > 0 && cgroup?.hasProcessLimit != true
            ? Int64(userProcessesBefore + supervisorThreadsToCome + options.maxProcesses) : -1
        let allowsRealtime = policy.allowedUnsupervised.contains(.realtime)
        let allowsKernel = policy.allowedUnsupervised.contains(.kernel)

        // Agent hooks inside the session decide and record their tool calls here (HookChannel).
        // Hooks that don't inherit the socket (a Node agent starts them with fds 0-2) reach it by
        // name, next to the control socket: SESSION.hook.
        let hooks = HookServer.open(listenPath: control.map { String($0.socketPath.dropLast(".sock".count)) + ".hook" }, log: log)
        defer { hooks?.stop(log: log) }
        // Without a hook socket, an outer session's variables must not reach this agent either.
        let agentEnvironment = hooks?.environment(options.environment, session: options.sessionName)
            ?? options.environment.filter { entry in
                ![HookChannel.descriptorVariable, HookChannel.sessionVariable, HookChannel.socketVariable].contains { entry.hasPrefix($0 + "=") }
            }

        var spawned = agentgate_spawned()
        var stage: Int32 = 0
        let resetSignals: [Int32] = [SIGPIPE]
        let procsFiles = cgroup?.procsFiles ?? []
        // The agent is born in the v2 group (clone3 CLONE_INTO_CGROUP) when it comes first.
        let cgroupDirectory: Int32 = cgroup?.unifiedFirst == true
            ? open(cgroup!.directories[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1
        defer { if cgroupDirectory >= 0 { close(cgroupDirectory) } }
        let rc = withCStrings(options.command) { argv in
            withCStrings(agentEnvironment) { envp in
                withCStrings(procsFiles) { cgroupFiles in
                    options.programPath.withCString { path in
                        withUnsafePointer(to: &filter.bpf) { bpf in
                            withUnsafePointer(to: &originalMask) { mask in
                                resetSignals.withUnsafeBufferPointer { reset in
                                    var config = agentgate_spawn_config(
                                        path: path, argv: argv, envp: envp, filter: bpf, terminal_fd: terminalFD,
                                        child_mask: mask, nofile_soft_limit: nofile,
                                        reset_signals: reset.baseAddress, reset_count: Int32(reset.count),
                                        nproc_limit: nprocLimit, realtime_forbidden: !allowsRealtime,
                                        core_dumps_forbidden: !allowsKernel,
                                        oom_score_adj_floor: 500,
                                        cgroup_procs: UnsafeRawPointer(cgroupFiles).assumingMemoryBound(to: UnsafePointer<CChar>?.self),
                                        cgroup_count: Int32(procsFiles.count),
                                        cgroup_directory_fd: cgroupDirectory)
                                    return agentgate_spawn(&config, &spawned, &stage)
                                }
                            }
                        }
                    }
                }
            }
        }
        // Only now: a non-dumpable parent makes its child non-dumpable too, and the child's
        // listener must be taken (pidfd_getfd) with no more than the same uid.
        _ = agentgate_set_undumpable() // same-uid agents can't ptrace us or open our /proc/PID/mem
        hooks?.agentStarted()
        guard rc == 0 else {
            cgroup?.remove()
            throw SupervisorError.spawnFailure(stage: stage, result: rc)
        }
        let listener = Listener(fd: spawned.listener)
        if !spawned.killable_recv {
            // Before Linux 5.19 a signal interrupts the agent's wait even after the supervisor
            // has received the call: a call it already performed (a mkdir) is then restarted
            // by the kernel and may see its own effect (EEXIST), or fails with EINTR.
            log.info("""
                this kernel lacks SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19); \
                a signal during a supervised call can make it fail or repeat
                """)
        }
        defer { agentgate_close(spawned.listener); agentgate_close(spawned.pidfd); agentgate_close(spawned.exec_report) }
        if options.syncWakeUp {
            let sync = agentgate_notif_set_sync_wakeup(spawned.listener)
            if sync != 0 {
                log.info("SYNC_WAKE_UP unavailable (\(Errno(rawValue: -sync))); using default wake-ups")
            }
        }

        // The control sockets' directory: the agent may neither reach nor change a session's socket.
        let protectedDirectories = options.protectedDirectories + (options.controlDirectory.map { [$0.path] } ?? [])
        let core = SupervisorCore(listener: listener, table: table, policy: policy, policySHA256: options.policySHA256, log: log,
                                  recorder: DecisionRecorder(writer: writer, echo: options.decisionEcho, counts: counts,
                                                             home: options.home, sinks: options.eventSinks),
                                  injection: options.injection, supervisorPID: getpid(),
                                  protectedFiles: Self.namesTheKernelMayUse(options.protectedFiles),
                                  protectedDirectories: Self.namesTheKernelMayUse(protectedDirectories),
                                  protectedDirectoryNodes: Self.namesTheKernelMayUse(options.protectedDirectoryNodes),
                                  agentName: options.agentName ?? ExecDetails.basename(options.command.first ?? ""),
                                  waitsKillably: spawned.killable_recv, dns: dns, refusesDNS: options.capturesDNS,
                                  hookSocket: hooks?.listenIdentity, blocking: blocking)
        // The OTLP export reads the same counters as `status` (on its own thread, every 10 s and
        // at the end). The asks are held weakly: the sinks outlive the core.
        if let sinks = options.eventSinks {
            let counts = core.recorder.counts, writer = writer
            sinks.provideMetrics { [weak asks = core.asks] in Self.metrics(counts: counts, writer: writer, asks: asks) }
        }
        core.contexts.setRoot(spawned.pid)
        core.contexts.recordExec(tid: spawned.pid, tgid: spawned.pid, argv: options.command)
        let reaper = SessionReaper(root: getpid(), cgroup: cgroup)
        let receivers = Receivers(core: core, reaper: reaper, count: max(1, options.receiverThreads))
        // A runaway session (`runaway:` in the policy) is paused as `agentgate pause` pauses it,
        // when it has a control socket through which `agentgate resume` can let it go on.
        if control != nil { core.policies.runawayHook.set { _ in receivers.pause() } }
        // Every supervisor thread is started now, before the agent can ask for anything.
        // Asks are put to the person at the terminal when the supervisor runs in its foreground.
        let prompt = terminalFD >= 0 ? TerminalPrompt(core: core) : nil
        // Made before the control socket's thread (which answers `reload`); it watches the files below.
        let reloader = options.policyReload.map { PolicyReloader(source: $0, policies: core.policies, log: log, writer: writer,
                                                                     sinks: options.eventSinks) }
        if let control, !startControl(control, core: core, receivers: receivers, reaper: reaper, reloader: reloader) {
            throw abandon(spawned.pid, cgroup: cgroup, "could not start the control socket's thread; the command was not run")
        }
        // `agentgate mcp` inside the session has its tools/calls decided here; their asks wait
        // on threads of their own.
        let mcpCalls = hooks.map { _ in SessionMCPCalls(core: core, log: log) }
        if let mcpCalls, !mcpCalls.start() {
            throw abandon(spawned.pid, cgroup: cgroup, "could not start the threads for MCP asks; the command was not run")
        }
        // The hook socket stops first (it is idempotent): no request comes once the asks end.
        defer { hooks?.stop(log: log); mcpCalls?.stop() }
        if let hooks, !hooks.start(log: log, admit: { core.membership(of: $0) == .session },
                                   handle: { [self] request, peer in hookAnswer(request, peer: peer, core: core, mcpCalls: mcpCalls) },
                                   handleRaw: { [self] request, peer in rawHookReply(request, peer: peer, core: core) }) {
            throw abandon(spawned.pid, cgroup: cgroup, "could not start the agent hooks' thread; the command was not run")
        }
        if let prompt, !prompt.start() {
            throw abandon(spawned.pid, cgroup: cgroup, "could not start the terminal prompt's thread; the command was not run")
        }
        defer { prompt?.stop() }
        // Asks wait for an answer over the control socket and at the terminal.
        if control != nil || prompt != nil { core.asks.enableAnswers(prompting: prompt != nil) }
        if let saver = options.ruleSaver { installRuleSaving(saver, core: core) }
        // After the two lines above: the parent's first ask finds its approvers and rule saving.
        let parentAsks = options.parentAskDescriptor.map { ParentAskServer(fd: $0) }
        if let parentAsks, !parentAsks.start(core: core, log: log) {
            throw abandon(spawned.pid, cgroup: cgroup, "could not start the thread for the gateway's asks; the command was not run")
        }
        defer { parentAsks?.stop(asks: core.asks) }
        let forwarder = dns.map { DNSForwarder(capture: $0, core: core) }
        if let forwarder, !forwarder.start() {
            throw abandon(spawned.pid, cgroup: cgroup, "could not start the DNS forwarder's threads; the command was not run")
        }
        defer { forwarder?.stop() }
        if startingWorkers { workersStarting.join() } else { core.blocking.start() }
        workersHandedOver = true
        core.execTracer.start()
        defer { core.execTracer.stop() }
        // Watching before the agent's first call is answered: no edit made once it runs is missed.
        reloader?.startWatching()
        defer { reloader?.stop() }
        receivers.start()

        let status = waitForSession(child: spawned.pid, signalFD: signalFD, terminalFD: terminalFD,
                                    followStops: underJobControl, reaper: reaper, core: core, reloader: reloader, prompt: prompt)
        let execError = agentgate_spawn_exec_error(spawned.exec_report)
        if execError != 0 { commandExecError.withLock { $0 = Errno(rawValue: execError) } }

        receivers.stop()
        prompt?.stop() // it gives the terminal back before the supervisor takes it below
        // Connects and sends that block run on threads of their own and record their decision
        // when they finish. The agent is gone, so interrupt them and wait (bounded), so every
        // decision is recorded before the caller closes the audit writer.
        let drainDeadline = agentgate_monotonic_ns() + 2_000_000_000
        while !core.blocking.isEmpty && agentgate_monotonic_ns() < drainDeadline {
            core.blocking.interruptWaiting(core.listener)
            usleep(2000)
        }
        core.blocking.stop()
        // Test hook: what the per-process tables hold once every process has exited.
        if getenv("AGENTGATE_DEBUG_TABLE_SIZES") != nil {
            core.images.sweep()
            core.processes.sweepExited()
            let images = core.images.counts
            let contexts = core.contexts.counts
            core.log.warning("table sizes: pidfds=\(core.processes.count) contexts=\(contexts.contexts) command-histories=\(contexts.commandHistories) pending-exec-checks=\(images.pendingChecks) loader-programs=\(images.loaderPrograms) approved-images=\(images.approvedImages) open-process-records=\(core.recorder.writer?.openProcessCount ?? 0)")
        }
        core.processes.closeAll()
        core.images.closeAll()
        if let cgroup {
            // Every member has been reaped by now; the kernel may take a moment to notice.
            let deadline = agentgate_monotonic_ns() + 1_000_000_000
            while !cgroup.remove() && agentgate_monotonic_ns() < deadline { usleep(10_000) }
        }
        if terminalFD >= 0 { _ = agentgate_tcsetpgrp(terminalFD, getpgrp()) }
        return status
    }

    /// Ends the agent that was spawned but must not run: a thread of the session could not start.
    private func abandon(_ child: pid_t, cgroup: SessionCgroup?, _ message: String) -> SupervisorError {
        kill(child, SIGKILL)
        var status: Int32 = 0
        waitpid(child, &status, 0)
        cgroup?.remove()
        return SupervisorError(.spawn, message)
    }

    /// Whether the supervisor's session has a controlling terminal (a hangup takes it away).
    static func hasControllingTerminal() -> Bool {
        let fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// Three quarters of the machine's memory: the agent can't take the rest from the host.
    static func defaultMemoryLimit() -> UInt64? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return nil }
        return UInt64(pages) * UInt64(size) / 4 * 3
    }

    /// Every name under which the agent's calls can reach `paths`, as the kernel resolves them:
    /// as given, with the directory resolved, and with the deepest existing ancestor resolved
    /// (a protected directory whose parents don't exist yet, below a symlinked home, is reached
    /// through the real path once the agent creates them).
    static func namesTheKernelMayUse(_ paths: [String]) -> [String] {
        var names = Set<String>()
        for path in paths {
            names.insert(path)
            names.insert(FilePaths.resolvedDirectory(of: path))
            names.insert(FilePaths.resolvedExisting(path))
        }
        return names.sorted()
    }

    /// Tasks of the real uid: RLIMIT_NPROC counts every thread of every process of the user
    /// (this supervisor's own threads among them), not just the session's processes. A
    /// process's task directory has two links more than it has threads.
    static func userProcessCount() -> Int {
        guard let proc = opendir("/proc") else { return 0 }
        defer { closedir(proc) }
        let uid = getuid()
        var count = 0
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard pid_t(name) != nil else { continue }
            var info = stat()
            guard stat("/proc/" + name, &info) == 0 && info.st_uid == uid else { continue }
            var tasks = stat()
            count += stat("/proc/" + name + "/task", &tasks) == 0 && tasks.st_nlink > 2 ? Int(tasks.st_nlink) - 2 : 1
        }
        return count
    }

    /// Forwards signals, follows job control, reaps, and when the command exits ends the
    /// descendants it left behind (see README: nothing outlives the session unsupervised).
    private func waitForSession(child: pid_t, signalFD: Int32, terminalFD: Int32, followStops: Bool,
                                reaper: SessionReaper, core: SupervisorCore, reloader: PolicyReloader?,
                                prompt: TerminalPrompt?) -> Int32 {
        let hadControllingTerminal = Self.hasControllingTerminal()
        var exitStatus: Int32? = nil
        var terminateDeadline: UInt64? = nil
        var warnedUnreachable = false
        var lastSweep = agentgate_monotonic_ns()
        var tracerBusiness = false
        var nudges = 0
        while true {
            if nudges > 0 { core.execTracer.nudge(); nudges -= 1 }
            // While a performed call may block, its agent's signals are looked at every 50 ms
            // (BlockingOperations); 250 ms otherwise bounds how late the first look can come.
            let timeout: Int32 = tracerBusiness || nudges > 0 ? 2 : exitStatus != nil || !core.blocking.isEmpty ? 50 : 250
            let events = agentgate_poll_one(signalFD, Int16(POLLIN), timeout)
            if events > 0 {
                while true {
                    var fromProcess: Int32 = 0
                    var sender: Int32 = 0
                    let signo = agentgate_signalfd_read(signalFD, &fromProcess, &sender)
                    if signo <= 0 { break }
                    switch signo {
                    case SIGCHLD, SIGTSTP, SIGTTIN, SIGTTOU: break // reaped below / never stop the supervisor
                    case SIGHUP where fromProcess != 0 && !(hadControllingTerminal && !Self.hasControllingTerminal()):
                        // SIGHUP sent by a process (`kill -HUP <supervisor>`, `systemctl reload`)
                        // while the session's terminal is still there reloads the policy, and is
                        // not passed on. A hangup still ends the agent: the kernel signals the
                        // terminal's foreground group (the agent's) itself, and when the terminal
                        // has gone away (we had a controlling terminal and no longer do, as after
                        // a hangup, when the shell passes SIGHUP on to its jobs) or the kernel
                        // sent it, SIGHUP is forwarded to the agent as before (below).
                        if exitStatus == nil {
                            if let reloader { reloader.reload(announceUnchanged: true) } else {
                                log.notice("SIGHUP: the built-in policy is in force; there is no policy file to reload")
                            }
                        }
                    case SIGCONT:
                        // We were continued after a job-control stop: hand the terminal back.
                        // (Not while the prompt holds the terminal: it continues the agent itself.)
                        if exitStatus == nil && prompt?.holdsTerminal != true {
                            if terminalFD >= 0 { _ = agentgate_tcsetpgrp(terminalFD, child) }
                            kill(-child, SIGCONT)
                        }
                    default:
                        // A terminal signal already reached the agent's foreground group; one
                        // sent to us by a process is passed on.
                        let foreground = terminalFD >= 0 && agentgate_tcgetpgrp(terminalFD) == child
                        if exitStatus == nil && (fromProcess != 0 || !foreground) { kill(child, signo) }
                    }
                }
            }
            core.blocking.interruptWaiting(core.listener)
            let now = agentgate_monotonic_ns()
            if now &- lastSweep > 1_000_000_000 {
                // Per-process state of processes that have exited: pidfds held for exec checks
                // and the process cache. Bounded anyway; this returns the fds promptly.
                core.images.sweep()
                core.processes.sweepExited()
                lastSweep = now
            }

            // Reap everything that has changed state, but for what the exec check's tracers
            // must take (a ptrace stop, a tracee's exit): those are left, and looked at again soon.
            var noChildren = false
            tracerBusiness = false
            while true {
                var code: Int32 = 0
                var value: Int32 = 0
                let peeked = agentgate_wait_peek(&code, &value)
                if peeked == -ECHILD { noChildren = true; break }
                if peeked <= 0 { break }
                if ExecTracer.isTracerBusiness(pid: peeked, code: code) { tracerBusiness = true; break }
                let pid = agentgate_wait_any(peeked, 1, &code, &value)
                if pid <= 0 { continue }
                if code == Int32(CLD_TRAPPED) {
                    // A tracee stopped between the look and the wait: its tracer must look again.
                    // (Again at the next looks: a nudge sent just before it waits is lost.)
                    core.execTracer.nudge()
                    nudges = 25
                    tracerBusiness = true
                    break
                }
                if code == Int32(CLD_EXITED) || code == Int32(CLD_KILLED) || code == Int32(CLD_DUMPED) {
                    // The agent's first process and the orphans we adopted: their exits are ours to see.
                    core.recorder.writer?.recordProcessExit(pid: pid, timeMicros: AuditClock.nowMicros(),
                                                            exitStatus: ProcessSnapshot.exitStatus(code: code, value: value))
                }
                guard pid == child else { continue }
                switch code {
                case Int32(CLD_EXITED): exitStatus = value
                case Int32(CLD_KILLED), Int32(CLD_DUMPED): exitStatus = 128 + value
                case Int32(CLD_STOPPED):
                    // The agent was stopped (^Z): take the terminal back and stop ourselves, as
                    // a shell job would; SIGCONT above resumes both. Without a job-control shell
                    // to continue us, stopping would leave every other agent process's trapped
                    // calls hanging: the stopped process waits alone until it is continued.
                    // A stop the terminal prompt made is not followed: it continues the agent.
                    if followStops && prompt?.causedStop(of: child) != true {
                        if terminalFD >= 0 { _ = agentgate_tcsetpgrp(terminalFD, getpgrp()) }
                        kill(getpid(), SIGSTOP)
                    }
                default: break
                }
            }
            guard exitStatus != nil else { continue }
            if noChildren && reaper.cgroup?.members().isEmpty != false { return exitStatus! }
            var reached = true
            if terminateDeadline == nil {
                terminateDeadline = now + UInt64(options.descendantGraceMilliseconds) * 1_000_000
                // After `agentgate kill` nothing gets a grace period.
                reached = reaper.signalAll(killedBy == nil ? SIGTERM : SIGKILL, processes: core.processes)
            } else if let deadline = terminateDeadline, now >= deadline {
                reached = reaper.signalAll(SIGKILL, processes: core.processes)
                terminateDeadline = now + 1_000_000_000
            }
            if !reached && !warnedUnreachable {
                log.warning("cannot list the session's remaining processes; ending those it knows")
                warnedUnreachable = true
            }
        }
    }
}

/// Receivers started with the session and parked until a receiver waits for a person (an
/// `ask`): one then takes its place, so the agent's other calls are answered as before. When
/// the wait ends, one receiver parks again. Every thread exists before the agent starts: none is
/// created on the agent's demand (see `BlockingOperations`).
final class ReceiverStandby: Sendable {
    /// The most receivers that may wait for a person at once.
    let capacity: Int
    /// Parked receivers not yet called on.
    private let available: Atomic<Int>
    /// Receivers more than the session's count: the next to finish a call parks.
    private let surplus = Atomic<Int>(0)
    /// Parked receivers wait on it. Never freed: it lives as long as the process.
    private let semaphore = CountingSemaphore()

    init(capacity: Int) {
        self.capacity = capacity
        // Each standby receiver counts itself in when it parks.
        self.available = Atomic(0)
    }

    /// A receiver is about to wait for a person: calls a parked one in. False when every one is
    /// already in use (the ask is then not asked).
    func beginWait() -> Bool {
        var current = available.load(ordering: .acquiring)
        while current > 0 {
            let (exchanged, original) = available.compareExchange(expected: current, desired: current - 1, ordering: .acquiringAndReleasing)
            if exchanged {
                semaphore.signal()
                return true
            }
            current = original
        }
        return false
    }

    /// The wait is over: one receiver too many now runs, and the next to finish a call parks.
    func endWait() { surplus.add(1, ordering: .releasing) }

    /// Whether the calling receiver should park now (one atomic load when none should).
    @inline(__always)
    func shouldPark() -> Bool {
        var current = surplus.load(ordering: .acquiring)
        while current > 0 {
            let (exchanged, original) = surplus.compareExchange(expected: current, desired: current - 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Parks the calling receiver until it is called in (or `release` ends the session).
    func park() {
        available.add(1, ordering: .releasing)
        semaphore.wait()
    }

    /// Wakes every parked receiver, at the session's end.
    func release() {
        for _ in 0..<capacity + 1 { semaphore.signal() }
    }
}

/// The threads that receive notifications and run the handlers.
final class Receivers: Sendable {
    private let core: SupervisorCore
    private let reaper: SessionReaper
    private let count: Int
    private let stopping = Atomic<Bool>(false)
    /// `agentgate pause`: a received notification is held until resumed.
    private let paused = Atomic<Bool>(false)
    private let running = Atomic<Int>(0)
    private let threadIDs = Mutex<[UInt64]>([])
    private let threads = Mutex<[Thread]>([])

    init(core: SupervisorCore, reaper: SessionReaper, count: Int) {
        self.core = core
        self.reaper = reaper
        self.count = count
    }

    /// Starts the receivers, and the standby ones parked.
    func start() {
        let standby = core.asks.standby
        for index in 0..<count + standby.capacity {
            running.add(1, ordering: .sequentiallyConsistent)
            let parked = index >= count
            let thread = Thread { [self] in
                threadIDs.withLock { $0.append(agentgate_thread_self()) }
                loop(startParked: parked)
                running.subtract(1, ordering: .sequentiallyConsistent)
            }
            threads.withLock { $0.append(thread) }
            thread.start(detached: false)
        }
    }

    private func loop(startParked: Bool) {
        // Creates must get exactly the agent's umask: give this thread its own fs_struct, umask 0.
        let ownFileSystem = agentgate_unshare_fs() == 0
        if ownFileSystem { umask(0) }
        var unblock = sigset_t()
        var interrupt = BlockingOperations.interruptSignal
        agentgate_sigset(&unblock, &interrupt, 1)
        agentgate_sigmask(SIG_UNBLOCK, &unblock, nil)
        let scratch = ThreadScratch()
        scratch.hasOwnFileSystemContext = ownFileSystem
        let echoing = core.recorder.echo != nil
        if echoing { agentgate_notif_defer_failures(true) }
        let standby = core.asks.standby
        if startParked { standby.park() }
        var request = seccomp_notif()
        var failures = 0
        while !stopping.load(ordering: .relaxed) {
            // A receiver's wait for a person has ended: one receiver too many runs.
            if standby.shouldPark() {
                standby.park()
                continue
            }
            let rc = core.listener.receive(into: &request)
            if rc == -EINTR { continue }
            if rc == -ENOENT {
                // A notification whose caller died, or no agent process left at all: then the
                // listener reports POLLHUP and RECV fails at once, so wait instead of spinning
                // until the session is wound up.
                let events = agentgate_poll_one(core.listener.fd, Int16(POLLIN), 0)
                if events > 0 && Int16(truncatingIfNeeded: events) & Int16(POLLHUP) != 0 { usleep(20_000) }
                continue
            }
            if rc != 0 {
                failures += 1
                if failures > 100 {
                    // The listener is broken: nothing can be decided any more. End the agent
                    // rather than leave its trapped calls hanging.
                    core.log.error("notification listener failed (\(Errno(rawValue: -rc))); ending the session")
                    reaper.signalAll(SIGKILL, processes: core.processes)
                    return
                }
                continue
            }
            failures = 0
            // Paused: this call waits here, and the rest wait in the kernel's queue.
            if paused.load(ordering: .acquiring) { waitWhilePaused() }
            let notification = Notification(request, receivedAt: agentgate_monotonic_ns())
            SyscallDispatch.dispatch(notification, core: core, scratch: scratch)
            if echoing { agentgate_notif_flush_deferred() }
        }
    }

    var isPaused: Bool { paused.load(ordering: .acquiring) }

    /// Holds every notification received from now on until `resume` (or `stop`).
    func pause() { paused.store(true, ordering: .releasing) }

    func resume() { paused.store(false, ordering: .releasing) }

    private func waitWhilePaused() {
        while paused.load(ordering: .acquiring) && !stopping.load(ordering: .relaxed) { usleep(5000) }
    }

    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        core.asks.stop()
        // A receiver blocked in NOTIF_RECV only wakes for a signal; repeat until all have left.
        while running.load(ordering: .sequentiallyConsistent) > 0 {
            core.asks.standby.release()
            for id in threadIDs.withLock({ $0 }) { _ = agentgate_thread_kill(id, BlockingOperations.interruptSignal) }
            // Short: a receiver leaves as soon as the signal lands, and every session's end
            // waits here (5 ms was most of the wall time of a short session's wind-up).
            usleep(500)
        }
        for thread in threads.withLock({ $0 }) { thread.join() }
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
