import AgentGatePolicy
import AgentGateReports
import AgentGateStore
import AgentGateSupervisor
import ArgumentParser
import Foundation
import Glibc

/// `agentgate-supervise [options] -- CMD [ARG...]`
public struct SuperviseCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "agentgate-supervise",
        abstract: "Run a command under AgentGate's seccomp supervisor.",
        discussion: """
        Every exec, file open and connect of CMD and its descendants is decided against the policy \
        and recorded in SQLite.

        Exit status: CMD's own, or 128+N when CMD was killed by signal N. 2: bad policy, database or \
        usage (CMD never ran). 125: the supervisor could not start CMD under its filter (CMD never \
        ran). 126/127: CMD could not be executed / was not found.
        """,
        version: AgentGateVersion.string)

    @Option(help: "Policy file (default: $AGENTGATE_POLICY, ~/.config/agentgate/policy.yaml, or the built-in policy).")
    var policy: String?

    @Option(help: "SQLite database (default: $AGENTGATE_DB or $XDG_DATA_HOME/agentgate/agentgate.db).")
    var db: String?

    @Option(help: "Agent name recorded with the session (default: CMD's name).")
    var agent: String?

    @Option(help: "Session id (default: a new UUID).")
    var session: String?

    @Flag(name: .shortAndLong, help: "Print decisions on stderr as they are made: execs, connects and every refusal; -vv: every decision.")
    var verbose: Int

    @Option(name: .customLong("log"), help: ArgumentHelp(
        "Append every decision, one line each, to FILE (a file, or another terminal such as /dev/pts/3).",
        valueName: "FILE"))
    var logFile: String?

    @Flag(name: .shortAndLong, help: "Say nothing on stderr but errors (not even which policy is in force).")
    var quiet = false

    @Option(help: "The most processes the session may have at once (0: no limit). Uses the session's cgroup where the supervisor can create one, else RLIMIT_NPROC.")
    var maxProcesses = 4096

    @Option(help: "Notification wake-up mode: default, or sync (SYNC_WAKE_UP, Linux 6.6+).")
    var wakeup: WakeupMode = .default

    @Option(help: "How opened fds reach the agent: atomic (ADDFD_FLAG_SEND) or two-step (ADDFD then SEND).")
    var fdInjection: FDInjection = .addfdThenSend

    @Flag(name: .customLong("no-dns-capture"), help: ArgumentHelp(
        "Leave the agent's DNS alone: connects are then decided by address only, and host-name rules match none of them.",
        discussion: "By default every query to port 53 goes to the session's own forwarder, which decides it and remembers the answer, so a connect is decided by the name the agent resolved."))
    var noDNSCapture = false

    @Flag(help: ArgumentHelp(
        "Learning mode: decide and record every action as the policy would, block nothing (but the supervisor's own files), ask nobody.",
        discussion: "Then `agentgate policy suggest SESSION` writes the rules that would have let the session run."))
    var learn = false

    @Flag(help: "Also send every decision to systemd's journal, with AGENTGATE_* fields (as `audit: {journal: true}` in the policy).")
    var journal = false

    @Option(help: ArgumentHelp(
        "Also export decisions as OTLP log records and the supervisor's metrics as OTLP metrics, over OTLP/HTTP JSON to URL (http only; e.g. a collector on loopback at http://127.0.0.1:4318).",
        discussion: "Without it, OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT) turns the export on; OTEL_EXPORTER_OTLP_HEADERS and OTEL_SERVICE_NAME apply either way.",
        valueName: "URL"))
    var otlp: String?

    @Option(help: "Threads receiving notifications.")
    var threads = 2

    @Option(name: .customLong("db-max-size"), help: ArgumentHelp(
        "Before the session starts, when the database's rows take more than SIZE, remove its oldest ended sessions (as `agentgate clean` does) down to about 3/4 of SIZE.",
        valueName: "SIZE (bytes, or with K, M, G)"))
    var databaseMaxSize: String?

    @Option(help: ArgumentHelp(
        "Run the supervisor and CMD in a transient systemd unit NAME (through systemd-run), with --property limits.",
        discussion: "The session's unit, its cgroup and its invocation id are recorded with the session.",
        valueName: "NAME"))
    var unit: String?

    @Flag(help: "With --unit: a transient scope (the default, in the caller's terminal) or a service (started by the manager; stdin, stdout, stderr and the exit status still reach the caller).")
    var unitKind: UnitKindFlag?

    @Flag(help: "With --unit: the system manager (the default for root) or the user's (the default otherwise).")
    var manager: UnitManagerFlag?

    @Option(name: .customLong("property"), help: ArgumentHelp(
        "With --unit: a unit property for systemd-run, e.g. MemoryMax=4G, CPUQuota=200%, TasksMax=512 (repeatable).",
        valueName: "K=V"))
    var properties: [String] = []

    /// Set by `--unit` for the supervisor it re-executes in the unit: the unit it must be in.
    @Option(name: .customLong("in-unit"), help: .hidden)
    var inUnit: String?

    /// The file the caller hands the session over in (see `UnitLaunch`).
    @Option(name: .customLong("unit-handoff"), help: .hidden)
    var unitHandoff: String?

    /// Set by `agentgate mcp`: a unix stream socket it puts its tools/call asks on (`ParentAskServer`).
    @Option(name: .customLong("ask-fd"), help: .hidden)
    var askFD: Int32?

    @Argument(parsing: .postTerminator, help: "The command to supervise, after --.")
    var command: [String] = []

    public init() {}

    /// The `sessions.mode` of a session run with `--learn` (the policy ran in audit mode).
    public static let learningMode = "learn"

    enum WakeupMode: String, ExpressibleByArgument { case sync, `default` }
    enum UnitKindFlag: String, EnumerableFlag { case scope, service }
    enum UnitManagerFlag: String, EnumerableFlag { case system, user }

    public func validate() throws {
        if command.isEmpty { throw ValidationError("missing the command to run, after --") }
        if unit == nil && (unitKind != nil || manager != nil || !properties.isEmpty) {
            throw ValidationError("--scope, --service, --user, --system and --property go with --unit NAME")
        }
        if unit != nil && inUnit != nil { throw ValidationError("--unit: this supervisor already runs in unit \(inUnit!)") }
        if (inUnit == nil) != (unitHandoff == nil) { throw ValidationError("--in-unit and --unit-handoff go together") }
        for property in properties where !property.contains("=") || property.hasPrefix("=") {
            throw ValidationError("--property \(property): expected NAME=VALUE, e.g. MemoryMax=4G")
        }
        if threads < 1 || threads > 64 { throw ValidationError("--threads must be between 1 and 64") }
        if maxProcesses < 0 { throw ValidationError("--max-processes must be 0 (no limit) or more") }
        if let otlp {
            do throws(OTLPConfiguration.Invalid) {
                _ = try OTLPConfiguration.resolve(option: otlp, environment: [:])
            } catch {
                throw ValidationError(error.description)
            }
        }
        if askFD != nil && unit != nil { throw ValidationError("--ask-fd can't go with --unit (the descriptor doesn't reach the unit)") }
        if let databaseMaxSize, Self.byteCount(databaseMaxSize) == nil {
            throw ValidationError("--db-max-size \(databaseMaxSize): expected a size like 500M, 2G or 1048576")
        }
    }

    /// Checks that `fd` is a unix stream socket and makes it close-on-exec.
    static func takeAskDescriptor(_ fd: Int32) throws {
        var type: Int32 = 0, domain: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard fd > 2, getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else {
            throw ValidationError("--ask-fd \(fd): not an open socket (\(String(cString: strerror(errno))))")
        }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0, domain == AF_UNIX,
              type == Int32(SOCK_STREAM.rawValue) else {
            throw ValidationError("--ask-fd \(fd): not a unix stream socket")
        }
        guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else {
            throw ValidationError("--ask-fd \(fd): \(String(cString: strerror(errno)))")
        }
    }

    /// "500M" → 524288000; nil when it isn't a positive size.
    static func byteCount(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text)
        var multiplier: Int64 = 1
        if let last = digits.last?.uppercased().first, let unit = units[last] {
            multiplier = unit
            digits = digits.dropLast()
        }
        guard let value = Int64(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    public func run() throws {
        // First, before anything is started: the agent must never inherit it.
        if let askFD { try Self.takeAskDescriptor(askFD) }
        if let unit { try launchInUnit(unit) }
        var placement: SessionUnit? = nil
        if let inUnit, let unitHandoff { placement = try takeOverInUnit(inUnit, handoff: unitHandoff) }
        let cwd = AgentGatePaths.currentDirectory()
        let environment = ProcessInfo.processInfo.environment
        let agentName = agent ?? ExecDetails.basename(command[0])
        let variables = PolicyVariables.current(agent: agentName, environment: environment)
        let loaded: LoadedPolicy
        do {
            loaded = try LoadedPolicy.resolve(policy, variables: variables, environment: environment)
        } catch {
            printError("policy error: \(error)")
            throw ExitCode(2)
        }
        if !quiet {
            printError(loaded.announcement)
            if loaded.origin != .option && loaded.origin != .environment && access("policy.yaml", F_OK) == 0 {
                printError("./policy.yaml is not loaded unless named (an agent could have written it); use --policy policy.yaml")
            }
        }
        guard let program = ProgramLookup.resolve(command[0], path: environment["PATH"]) else {
            printError("\(command[0]): command not found")
            throw ExitCode(127)
        }

        let databasePath = AgentGatePaths.database(db, environment: environment)
        let isDefaultDatabase = (db ?? "").isEmpty && (environment["AGENTGATE_DB"] ?? "").isEmpty
        let store: AuditStore
        do {
            store = try AuditStore(path: databasePath, creatingBelow: isDefaultDatabase
                                   ? AgentGatePaths.databaseDirectoryRoot(environment) : nil)
        } catch {
            let hint = isDefaultDatabase
                ? "; use --db FILE or set AGENTGATE_DB to keep it somewhere writable"
                : error.code == .cannotCreateDirectory ? "; create it first, or choose another --db" : ""
            printError("cannot open the audit database: \(error)\(hint)")
            throw ExitCode(2)
        }
        // Records an earlier session could only write to the fallback file go in first.
        if let notice = AuditSession.importEarlierRecords(into: store) { printError(notice) }
        // Size-based retention: a failure leaves the database as it was, and the session runs.
        if let limit = databaseMaxSize.flatMap(Self.byteCount) {
            do {
                if let removed = try store.enforceSizeLimit(maxBytes: limit), !quiet {
                    printError("the audit database was over \(databaseMaxSize!): removed its \(removed.sessionIDs.count) oldest ended sessions (\(removed.eventsRemoved) events, \(removed.processesRemoved) process records)")
                }
            } catch {
                printError("warning: --db-max-size: the oldest sessions could not be removed: \(error)")
            }
        }
        let sessionID = session ?? UUID().uuidString.lowercased()
        let context = SessionContextCollector.collect(program: program, environment: Self.environ())
        let record = SessionRecord(
            id: sessionID, agent: agentName, command: command, cwd: cwd,
            policyPath: loaded.source, policySHA256: loaded.sha256, startTimeMicros: AuditClock.nowMicros(),
            endTimeMicros: nil, exitStatus: nil, mode: learn ? Self.learningMode : loaded.policy.mode.name,
            context: context, unit: placement)
        let audit: AuditSession
        do throws(AuditSession.BeginError) {
            audit = try AuditSession.begin(record, in: store)
        } catch .duplicateSession {
            printError("a session with id \"\(sessionID)\" is already in \(databasePath); choose another --session (or leave it out for a new id)")
            throw ExitCode(2)
        } catch .cannotRecord(let error) {
            printError("cannot record the session: \(error)")
            throw ExitCode(2)
        }
        if let reason = audit.startFallbackReason {
            printError("warning: cannot record the session in the database (\(reason)); recording it in \(store.fallbackPath)")
        }

        var options = SupervisorOptions(command: command, programPath: program, environment: Self.environ())
        options.verbose = verbose > 0
        // Quiet: not even a reload's notice; a rejected reload is an error and still shows.
        if quiet { options.logger.logLevel = .warning }
        let echo: DecisionEcho
        do {
            echo = try DecisionEcho(standardError: verbose == 0 ? nil : verbose == 1 ? .notable : .everything,
                                    logPath: logFile)
        } catch {
            Self.finish(audit, exitStatus: 2)
            printError(error.description)
            throw ExitCode(2)
        }
        if echo.isEchoing { options.decisionEcho = echo.write }
        options.syncWakeUp = wakeup == .sync
        options.injection = fdInjection
        options.receiverThreads = threads
        // The agent may not read or rewrite its own audit trail or the policy it runs under.
        // Nor `agentgate serve`'s token: with it, an agent that may reach loopback could answer
        // its own asks over HTTP.
        // Nor the user's other audit databases when this session records elsewhere (--db): the
        // default one and $AGENTGATE_DB's, with their keys (found by review: a `--db` session
        // could read the default database's key and break it).
        let userDatabases = Set([AgentGatePaths.database(nil, environment: environment),
                                 AgentGatePaths.dataDirectory(environment).path + "/agentgate.db",
                                 AgentGatePaths.home(environment) + "/.local/share/agentgate/agentgate.db"])
        options.protectedFiles = AuditDatabaseFiles(databasePath: databasePath).all
            + userDatabases.subtracting([databasePath]).sorted().flatMap { AuditDatabaseFiles(databasePath: $0).all }
            + loaded.files + echo.protectedFiles + AgentGatePaths.serverTokenCandidates(environment)
        // AgentGate's own database directory (the default location) itself, whichever database
        // this session records in: chmod 000 or a rename would stop every later session
        // recording there. A directory named with --db or AGENTGATE_DB is the user's (a project,
        // whose tar -x sets its times), and stays as the policy decides.
        options.protectedDirectoryNodes = Set([AgentGatePaths.dataDirectory(environment).path,
                                               AgentGatePaths.home(environment) + "/.local/share/agentgate"]
                                              + (isDefaultDatabase ? [databasePath].compactMap { path in
                                                  path.lastIndex(of: "/").flatMap { $0 == path.startIndex ? nil : String(path[..<$0]) } } : []))
            .sorted()
        // Where policies are found without being named: never writable from inside a session.
        // Nor where the control sockets of this user's other sessions are: an agent could answer
        // their asks, or put a socket of its own in place of theirs.
        options.protectedDirectories = [LoadedPolicy.configurationDirectory(environment)] + LoadedPolicy.systemPolicyDirectories
            + ControlDirectory.candidates(environment: environment)
            // Nor where spill files wait for their import into any of this user's databases.
            + (AuditDatabaseFiles.spillDirectory().map { [$0] } ?? [])
        options.policySHA256 = loaded.sha256.isEmpty ? nil : loaded.sha256
        options.policyReload = loaded.reloadSource(variables: variables, environment: environment)
        if learn, let reload = options.policyReload {
            // A policy read again is learned under too: nothing it says is enforced.
            options.policyReload = PolicyReloadSource(path: reload.path, files: reload.files) {
                reload.load().map { PolicyReloadSource.Loaded(policy: $0.policy.inMode(.audit), sha256: $0.sha256) }
            }
        }
        options.ruleSaver = loaded.ruleSaver(variables: variables, environment: environment)
        options.capturesDNS = !noDNSCapture
        options.maxProcesses = maxProcesses
        options.sessionName = sessionID
        do {
            options.controlDirectory = try ControlDirectory.resolve(environment: environment, create: true)
        } catch {
            Self.finish(audit, exitStatus: 2)
            printError(error.description)
            throw ExitCode(2)
        }
        options.agentName = agentName
        options.home = variables.home
        if learn && !quiet {
            printError("learning mode: every decision is recorded as the policy would make it, nothing is blocked "
                       + "(but the audit database, the policy and AgentGate's configuration) and nobody is asked")
        } else if loaded.policy.mode == .audit && !quiet {
            printError("audit mode (\(loaded.source)): every decision is recorded, nothing is blocked")
        }
        // The journal, OTLP and webhooks: started before the agent, each on its own thread.
        let sinks: EventSinks?
        do {
            sinks = try startEventSinks(loaded.policy, sessionID: sessionID, agent: agentName, environment: environment)
        } catch {
            Self.finish(audit, exitStatus: 2)
            printError("\(error)")
            throw ExitCode(2)
        }
        options.eventSinks = sinks
        options.parentAskDescriptor = askFD
        // A webhook's secret is the supervisor's, not the agent's to read or replace: its file
        // is protected, and its variable is not passed on to the agent.
        var secretVariables: Set<String> = []
        for webhook in loaded.policy.outputs.webhooks {
            switch webhook.secret {
            case .file(let path): options.protectedFiles.append(path)
            case .environment(let name): secretVariables.insert(name)
            }
        }
        if !secretVariables.isEmpty {
            options.environment = options.environment.filter { entry in
                !secretVariables.contains(String(entry.prefix { $0 != "=" }))
            }
        }
        let supervisor = Supervisor(options: options, policy: learn ? loaded.policy.inMode(.audit) : loaded.policy,
                                    writer: audit.writer)

        let status: Int32
        do {
            status = try supervisor.run()
        } catch {
            if let account = sinks?.finish() { printError("not every event reached its destination: \(account)") }
            Self.finish(audit, exitStatus: 125)
            printError(error.description)
            throw ExitCode(125)
        }
        // What the journal, OTLP and webhooks did not deliver, said as the audit's fallbacks are.
        if let account = sinks?.finish() { printError("not every event reached its destination: \(account)") }
        Self.finish(audit, exitStatus: status)
        if let killer = supervisor.killedBy {
            printError("session \(sessionID) was killed by \(killer) with agentgate kill")
        }
        if let failure = supervisor.commandExecFailure {
            printError(failure.message + (failure.denial.map { " (denied by the policy: \(AuditFormat.why($0)))" } ?? ""))
        }
        if !quiet {
            printError(Self.summary(sessionID: sessionID, exitStatus: status, counts: supervisor.counts,
                                    namedDatabase: databasePath != AgentGatePaths.database(nil, environment: environment.filter { $0.key != "AGENTGATE_DB" }),
                                    databasePath: databasePath))
            if learn {
                var suggest = [Self.agentgateCommand(), "policy", "suggest"]
                if databasePath != AgentGatePaths.database(nil, environment: environment.filter { $0.key != "AGENTGATE_DB" }) {
                    suggest += ["--db", databasePath]
                }
                suggest.append(sessionID.count > 8 && UUID(uuidString: sessionID) != nil ? String(sessionID.prefix(8)) : sessionID)
                printError("learned; the rules that would have let it run: " + suggest.map(ShellQuoting.quote).joined(separator: " "))
            }
        }
        throw ExitCode(status)
    }

    /// The event sinks this session asks for (`--journal`, the policy's `audit:` and
    /// `webhooks:`, `--otlp` or OTEL_EXPORTER_OTLP_*), started; nil when there are none.
    private func startEventSinks(_ policy: Policy, sessionID: String, agent: String,
                                 environment: [String: String]) throws -> EventSinks? {
        var configuration = EventSinks.Configuration(journal: journal || policy.outputs.journal,
                                                     webhooks: policy.outputs.webhooks)
        do throws(OTLPConfiguration.Invalid) {
            configuration.otlp = try OTLPConfiguration.resolve(option: otlp, environment: environment)
        } catch {
            throw ValidationError("otlp: \(error.description)")
        }
        guard !configuration.isEmpty else { return nil }
        let sinks = try EventSinks.make(configuration, session: SinkSession(sessionID: sessionID, agent: agent),
                                        environment: environment,
                                        warn: { message in printError("warning: \(message)") })
        guard sinks.start() else { throw ValidationError("could not start the event sinks' threads") }
        return sinks.isEmpty ? nil : sinks
    }

    /// `--unit NAME`: re-executes this supervisor under systemd-run, waits, and exits with its
    /// status; never returns. Status 2 when the unit couldn't be started (the agent never ran).
    private func launchInUnit(_ name: String) throws -> Never {
        let environment = ProcessInfo.processInfo.environment
        let kind: UnitLaunch.Kind = unitKind == .service ? .service : .scope
        let launch: UnitLaunch
        let systemdRun: String
        let control: ControlDirectory
        do {
            launch = UnitLaunch(unit: try UnitLaunch.unitName(name, kind: kind), kind: kind,
                                manager: manager.map { $0 == .user ? .user : .system } ?? (geteuid() == 0 ? .system : .user),
                                properties: properties)
            systemdRun = try launch.preflight(environment: environment)
            control = try ControlDirectory.resolve(environment: environment, create: true)
        } catch let error as UnitLaunch.Failure {
            printError(error.description)
            throw ExitCode(2)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        // Decided here, so that the caller knows it before the unit starts.
        let sessionID = session ?? UUID().uuidString.lowercased()
        guard let socket = control.socketPath(session: sessionID) else {
            printError("the session id \"\(sessionID)\" can't name a control socket in \(control.path); choose another --session")
            throw ExitCode(2)
        }
        let handoff = String(socket.dropLast(".sock".count)) + ".unit-handoff"
        do throws(UnitLaunch.Failure) {
            try UnitLaunch.writeHandoff(at: handoff, kind: kind, environment: Self.environ())
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        var arguments = launch.systemdRunArguments(session: sessionID, cwd: AgentGatePaths.currentDirectory(),
                                                   interactive: isatty(0) == 1 && isatty(1) == 1)
        arguments.append(UnitLaunch.selfPath())
        arguments += ["--in-unit", launch.unit, "--unit-handoff", handoff, "--session", sessionID] + reexecutedOptions()
        arguments += ["--"] + command
        if !quiet {
            printError("session \(sessionID): starting \(launch.kind.rawValue) \(launch.unit) with the \(launch.manager.rawValue) manager")
        }
        let status: Int32
        do throws(UnitLaunch.Failure) {
            status = try UnitLaunch.run(systemdRun, arguments)
        } catch {
            unlink(handoff)
            printError(error.description)
            throw ExitCode(2)
        }
        // Still there: the supervisor never started in the unit, so neither did CMD.
        if unlink(handoff) == 0 {
            printError("systemd-run could not start \(launch.unit) (exit \(status); its error is above); \(command[0]) was not run")
            throw ExitCode(2)
        }
        throw ExitCode(status)
    }

    /// Every option of this invocation but the unit's, for the supervisor re-executed in it.
    /// (A new option of the supervisor goes here too.)
    private func reexecutedOptions() -> [String] {
        var options: [String] = []
        if let policy { options += ["--policy", policy] }
        if let db { options += ["--db", db] }
        if let agent { options += ["--agent", agent] }
        if verbose > 0 { options.append("-" + String(repeating: "v", count: verbose)) }
        if let logFile { options += ["--log", logFile] }
        if quiet { options.append("--quiet") }
        options += ["--max-processes", "\(maxProcesses)", "--wakeup", wakeup.rawValue, "--fd-injection", fdInjection.rawValue,
                    "--threads", "\(threads)"]
        if noDNSCapture { options.append("--no-dns-capture") }
        if learn { options.append("--learn") }
        if journal { options.append("--journal") }
        if let otlp { options += ["--otlp", otlp] }
        return options
    }

    /// In the unit: checks that this process is in it (else nothing runs), takes the caller's
    /// handoff, and returns where the session runs.
    private func takeOverInUnit(_ name: String, handoff: String) throws -> SessionUnit {
        // systemd's own INVOCATION_ID for a service, before the caller's environment replaces it.
        let started = ProcessInfo.processInfo.environment
        let placement: SessionUnit
        switch SystemdUnitPlacement.current(expected: name, environment: started) {
        case .success(let found): placement = found
        case .failure(let mismatch):
            unlink(handoff)
            printError("\(mismatch); \(command[0]) was not run")
            throw ExitCode(2)
        }
        do {
            if let environment = try UnitLaunch.takeHandoff(at: handoff, unit: name) {
                UnitLaunch.replaceEnvironment(with: environment)
            }
        } catch {
            printError("\(error); \(command[0]) was not run")
            throw ExitCode(2)
        }
        setenv("AGENTGATE_UNIT", name, 1)
        if !placement.invocationID.isEmpty { setenv("INVOCATION_ID", placement.invocationID, 1) }
        return placement
    }

    /// `session 1f2e3d4c ended (exit 0): 12 allowed, 1 denied, 0 asked — agentgate show 1f2e3d4c`,
    /// with a command that works when copied into another shell (the binary by path when it
    /// isn't on PATH, and `--db` unless the database is the default one).
    static func summary(sessionID: String, exitStatus: Int32, counts: DecisionCounts,
                        namedDatabase: Bool, databasePath: String) -> String {
        let shortID = sessionID.count > 8 && UUID(uuidString: sessionID) != nil ? String(sessionID.prefix(8)) : sessionID
        let status = exitStatus > 128 && exitStatus < 128 + 65 ? "killed by signal \(exitStatus - 128)" : "exit \(exitStatus)"
        var counted = "\(counts.allowedCount + counts.loggedCount) allowed, \(counts.deniedCount) denied, \(counts.askedCount) asked"
        if counts.loggedCount > 0 { counted += " (\(counts.loggedCount) flagged)" }
        var show = [agentgateCommand(), "show"]
        if namedDatabase { show += ["--db", databasePath] }
        show.append(shortID)
        return "session \(shortID) ended (\(status)): \(counted) — \(show.map(ShellQuoting.quote).joined(separator: " "))"
    }

    /// How the user runs `agentgate`: its name when PATH finds this installation's copy, else
    /// its path beside this binary.
    static func agentgateCommand() -> String {
        // The directory as the user named it (`.build/debug`, not the build tree it links to).
        let invoked = CommandLine.arguments.first.flatMap { $0.contains("/") ? $0 : nil }
        let own = URL(fileURLWithPath: invoked ?? CommandLine.executablePathname).deletingLastPathComponent().standardized.path
        let sibling = own + "/agentgate"
        if let found = ProgramLookup.resolve("agentgate", path: ProcessInfo.processInfo.environment["PATH"]),
           FilePaths.resolved(found) == FilePaths.resolved(sibling) {
            return "agentgate"
        }
        return access(sibling, X_OK) == 0 ? sibling : "agentgate"
    }

    /// Ends the audit trail, and says so if anything didn't reach the database.
    static func finish(_ audit: AuditSession, exitStatus: Int32) {
        if let message = audit.finish(exitStatus: exitStatus) { printError(message) }
    }

    /// The supervisor's environment exactly as received, for the agent.
    static func environ() -> [String] {
        var result: [String] = []
        var pointer = Glibc.environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }
}

extension FDInjection: ExpressibleByArgument {}
