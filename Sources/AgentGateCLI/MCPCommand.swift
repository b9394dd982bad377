import AgentGatePolicy
import AgentGateStore
import AgentGateSupervisor
import ArgumentParser
import CSupport
import Foundation
import Glibc

/// `agentgate mcp -- SERVER_CMD [ARGS]`: a gateway between an MCP client (on stdin/stdout) and
/// a stdio MCP server it starts, deciding each tools/call with the policy.
struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Run a stdio MCP server behind a gateway that decides each tools/call with the policy.",
        discussion: """
        The client talks to this command on stdin/stdout; the server runs under agentgate-supervise \
        (its own execs, files and connects are decided by the same policy) unless --no-supervise. \
        A refused call is answered with a tool result with isError: true that says why, and never \
        reaches the server; an asked one waits for a person (agentgate approvals). Every call is \
        recorded in the database, in a session of the gateway's own (agent mcp:NAME); the server's \
        session is that id with -server appended. Inside a supervised session, the session decides, \
        records and asks instead, and the server runs under its filter. See README, "MCP gateway".
        """)

    @OptionGroup var policyOption: PolicyOption
    @Option(help: "SQLite database (default: $AGENTGATE_DB or the user's).") var db: String?
    @Option(help: "The server's name, recorded as the agent mcp:NAME (default: from the command).") var name: String?
    @Flag(help: "Run the server bare, not under agentgate-supervise: only its tools/call requests are decided (weaker).")
    var noSupervise = false
    @Argument(parsing: .postTerminator, help: "The MCP server's command, after --.") var command: [String] = []

    func validate() throws {
        guard !command.isEmpty, !command[0].isEmpty else { throw ValidationError("give the MCP server's command after --") }
    }

    func run() throws {
        let serverName = name.map(Self.cleaned) ?? Self.serverName(command)
        let agent = "mcp:\(serverName)"
        let environment = ProcessInfo.processInfo.environment
        // Inside a supervised session the server is held by the session's filter already, and
        // the session's policy and database are closed to the agent: the session's supervisor
        // decides and records each call (and puts asks to a person) over the hook socket.
        if !noSupervise {
            let sessionSocket: (fd: Int32, inherited: Bool)?
            do throws(HookChannel.Failure) { sessionSocket = try HookChannel.sessionSocket(environment) } catch {
                printError("\(error.description); the server was not started", tool: "agentgate mcp")
                throw ExitCode(2)
            }
            if let sessionSocket {
                // A socket connected by name takes one request: each call connects anew.
                if !sessionSocket.inherited { close(sessionSocket.fd) }
                try runInSession(serverName: serverName, environment: environment)
            }
        }
        let loaded = try policyOption.load(agent: agent)
        // Short: the server's session (this id with -server) names a control socket, whose
        // address has room for 107 bytes in all.
        let sessionID = "mcp-" + String(UInt64.random(in: 1 ... .max), radix: 16)
        let recorder = MCPRecorder(db: db, environment: environment, session: SessionRecord(
            id: sessionID, agent: agent, command: command, cwd: AgentGatePaths.currentDirectory(),
            policyPath: loaded.source, policySHA256: loaded.sha256, startTimeMicros: AuditClock.nowMicros(),
            mode: loaded.policy.mode.name))

        var argv = command
        var program = command[0]
        // Asks go to the server's supervisor, whose approvers (terminal, `agentgate approve`, the
        // dashboard) answer them: over a socketpair whose one end only the supervisor inherits.
        var askChannel: (gateway: Int32, supervisor: Int32)?
        if !noSupervise {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0,
                  fcntl(pair[1], F_SETFD, 0) == 0 else {
                printError("cannot make the socket for asks: \(String(cString: strerror(errno)))", tool: "agentgate mcp")
                throw ExitCode(1)
            }
            askChannel = (pair[0], pair[1])
            let supervise = Self.superviseProgram()
            program = supervise.path
            argv = [supervise.argv0, "--quiet", "--session", sessionID + "-server", "--agent", agent, "--ask-fd", String(pair[1])]
            if let policy = policyOption.policy { argv += ["--policy", policy] }
            if let db { argv += ["--db", db] }
            argv += ["--"] + command
        } else if !program.contains("/") {
            guard let found = ProgramLookup.resolve(program, path: environment["PATH"]) else {
                printError("cannot find \(program) in $PATH", tool: "agentgate mcp")
                throw ExitCode(127)
            }
            program = found
        }
        let gateway = MCPGateway(policy: loaded.policy, policySHA256: loaded.sha256, recorder: recorder, home: AgentGatePaths.home(environment),
                                 askChannel: askChannel?.gateway)
        let status = gateway.run(program: program, argv: argv, spawned: { if let askChannel { close(askChannel.supervisor) } })
        throw ExitCode(status)
    }

    /// Runs the server bare (the session's filter holds it) with the session deciding its calls.
    private func runInSession(serverName: String, environment: [String: String]) throws -> Never {
        let session = environment[HookChannel.sessionVariable] ?? ""
        if policyOption.policy != nil || db != nil {
            printError("inside session \(session), its own policy decides and its database records; --policy and --db are not used",
                       tool: "agentgate mcp")
        }
        var program = command[0]
        if !program.contains("/") {
            guard let found = ProgramLookup.resolve(program, path: environment["PATH"]) else {
                printError("cannot find \(program) in $PATH", tool: "agentgate mcp")
                throw ExitCode(127)
            }
            program = found
        }
        let gateway = MCPGateway(session: MCPGateway.Session(environment: environment, id: session, server: serverName),
                                 home: AgentGatePaths.home(environment))
        throw ExitCode(gateway.run(program: program, argv: command))
    }

    /// The server's name: the command's, or for an interpreter (python server.py, npx pkg) its
    /// first argument that isn't an option, without directory or extension.
    static func serverName(_ command: [String]) -> String {
        let interpreters = ["python", "python3", "node", "npx", "uvx", "uv", "bun", "bunx", "deno", "sh", "bash", "ruby", "perl", "java"]
        var name = ExecDetails.basename(command[0])
        if interpreters.contains(name) || name.hasPrefix("python") {
            if let argument = command.dropFirst().first(where: { !$0.hasPrefix("-") && $0 != "run" }) {
                name = ExecDetails.basename(argument)
                if let dot = name.lastIndex(of: "."), dot != name.startIndex { name = String(name[..<dot]) }
            }
        }
        return cleaned(name)
    }

    /// `name` with only ASCII letters, digits and `-_.@` (others become `_`), at most 64 of them.
    static func cleaned(_ name: String) -> String {
        let cleaned = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@".contains($0)) ? $0 : "_" }.prefix(64))
        return cleaned.isEmpty ? "server" : cleaned
    }

    /// agentgate-supervise next to this binary, else this binary run by that name (the
    /// multi-call binary: see Sources/agentgate/main.swift).
    static func superviseProgram() -> (path: String, argv0: String) {
        let own = HookRunner.ownExecutable()
        let sibling = (own as NSString).deletingLastPathComponent + "/agentgate-supervise"
        if access(sibling, X_OK) == 0 { return (sibling, sibling) }
        return (own, "agentgate-supervise")
    }
}

/// The gateway's session in the database: made at start, one event per tools/call, finished at
/// exit. A database that can't be written is reported once on stderr; calls are still decided.
final class MCPRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var store: AuditStore?
    let sessionID: String

    /// Records nothing (the session's supervisor records the calls).
    init(recordingNothingFor sessionID: String) {
        self.sessionID = sessionID
    }

    init(db: String?, environment: [String: String], session: SessionRecord) {
        sessionID = session.id
        let path = AgentGatePaths.database(db, environment: environment)
        let isDefault = (db ?? "").isEmpty && (environment["AGENTGATE_DB"] ?? "").isEmpty
        do {
            let store = try AuditStore(path: path, creatingBelow: isDefault ? AgentGatePaths.databaseDirectoryRoot(environment) : nil)
            try store.createSession(session)
            self.store = store
        } catch {
            printError("the gateway's calls are not recorded: \(error)", tool: "agentgate mcp")
        }
    }

    func record(_ event: DecisionEvent) {
        lock.lock()
        defer { lock.unlock() }
        guard let store else { return }
        do {
            try store.insert(events: [event], sessionID: sessionID)
        } catch {
            printError("a call was not recorded: \(error)", tool: "agentgate mcp")
        }
    }

    func finish(status: Int32) {
        lock.lock()
        defer { lock.unlock() }
        guard let store else { return }
        try? store.finishSession(id: sessionID, endTimeMicros: AuditClock.nowMicros(), exitStatus: status)
        store.close()
        self.store = nil
    }
}

/// The running gateway: the server as a child on two pipes, the client's lines decided on this
/// thread, the server's lines copied to the client on another.
final class MCPGateway: @unchecked Sendable {
    /// The supervised session the gateway runs in, which decides and records its calls.
    struct Session {
        /// Names the session's hook socket (`HookChannel.sessionSocket`).
        let environment: [String: String]
        let id: String
        let server: String
    }

    /// The policy the gateway decides with, or nil inside a session (which decides).
    let policy: Policy?
    let session: Session?
    let policySHA256: String
    let recorder: MCPRecorder
    let home: String
    /// The server's supervisor's end for asks (`ParentAskChannel`), or nil (the server runs bare).
    let askChannel: Int32?
    /// The channel failed once (no answer in time, or the supervisor gone): asks are denied from
    /// then on, so an answer that comes late can never be taken for a later call's.
    private var askChannelBroken: String?
    private var askCount: UInt64 = 0
    /// Whole lines to the client, from both threads.
    private let outputLock = NSLock()
    private var clientGone = false
    private var serverInput: Int32 = -1
    private var child: pid_t = 0

    /// How long the server has to exit after its stdin is closed, before SIGTERM (then SIGKILL).
    static let exitGraceSeconds: UInt64 = 10

    init(policy: Policy, policySHA256: String, recorder: MCPRecorder, home: String, askChannel: Int32? = nil) {
        self.policy = policy
        self.session = nil
        self.policySHA256 = policySHA256
        self.recorder = recorder
        self.home = home
        self.askChannel = askChannel
    }

    init(session: Session, home: String) {
        self.policy = nil
        self.session = session
        self.policySHA256 = ""
        self.recorder = MCPRecorder(recordingNothingFor: session.id)
        self.home = home
        self.askChannel = nil
    }

    /// Runs until the server exits; returns the status to exit with (128+N for signal N).
    /// `spawned` runs once the server has been started (or could not be).
    func run(program: String, argv: [String], spawned: () -> Void = {}) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        var toServer: [Int32] = [-1, -1]
        var fromServer: [Int32] = [-1, -1]
        guard pipe(&toServer) == 0, pipe(&fromServer) == 0 else {
            printError("cannot make pipes: \(String(cString: strerror(errno)))", tool: "agentgate mcp")
            return 1
        }
        // Only the ends dup2'd onto the child's 0 and 1 reach it.
        for fd in toServer + fromServer { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toServer[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromServer[1], 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child gets default signal dispositions and an empty mask (the gateway ignores SIGPIPE).
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let started = posix_spawn(&pid, program, &actions, &attributes, &cArguments, environ)
        close(toServer[0])
        close(fromServer[1])
        spawned()
        guard started == 0 else {
            printError("cannot start \(program): \(String(cString: strerror(started)))", tool: "agentgate mcp")
            close(toServer[1])
            close(fromServer[0])
            recorder.finish(status: 127)
            return 127
        }
        child = pid
        serverInput = toServer[1]
        let serverOutput = fromServer[0]
        let copier = Thread { [self] in
            copyServerOutput(serverOutput)
            let status = waitForServer()
            recorder.finish(status: status)
            exit(status)
        }
        copier.start()
        readClient()
        // Client EOF: the server's stdin is closed; it has a grace period to exit by itself.
        outputLock.lock()
        if serverInput >= 0 { close(serverInput); serverInput = -1 }
        outputLock.unlock()
        let deadline = agentgate_monotonic_ns() + Self.exitGraceSeconds * 1_000_000_000
        while agentgate_monotonic_ns() < deadline { usleep(50_000) }
        kill(pid, SIGTERM)
        sleep(5)
        kill(pid, SIGKILL)
        while true { sleep(1) } // the copier thread exits the process when the server is gone
    }

    /// The server's exit status, as this command's (128+N for a signal).
    private func waitForServer() -> Int32 {
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 {
            guard errno == EINTR else { return 1 }
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// Reads the client's lines until EOF, deciding each.
    private func readClient() {
        var splitter = MCPLineSplitter()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            let items = n > 0 ? splitter.append(chunk[..<n]) : splitter.finish()
            for item in items { handle(item) }
            if n <= 0 { return }
        }
    }

    private func handle(_ item: MCPLineSplitter.Item) {
        switch item {
        case .tooLong:
            writeToClient(MCPFraming.encode(MCPFraming.error(id: nil, code: MCPFraming.invalidRequest,
                message: "agentgate: refused a message over \(MCPFraming.maximumLineLength >> 20) MiB")))
        case .line(let line):
            let outcome = MCPFraming.handle(line: line) { decide($0) }
            if let bytes = outcome.toServer { writeToServer(bytes) }
            if let bytes = outcome.toClient { writeToClient(bytes) }
        }
    }

    /// Decides and records one tools/call.
    func decide(_ request: MCPToolCallRequest) -> MCPCallAnswer {
        if let session { return decide(request, in: session) }
        guard let policy else { return MCPCallAnswer(allowed: false, message: "AgentGate denied the call of tool \(request.tool): no policy") }
        let started = agentgate_monotonic_ns()
        // Every call here is an MCP tool's: decided by the mcp rules and the default for mcp
        // (not the hook's rule for tools no rule names). The name is the server's own.
        let verdict = policy.evaluateMCP(tool: request.tool, arguments: ToolArguments(request.argumentTexts))
        var why = policy.explanation(of: verdict)
        var ruleID: String?
        if let index = verdict.ruleIndex, policy.rules.indices.contains(index) {
            ruleID = policy.rules[index].displayID
            if let reason = policy.rules[index].reason { why = reason }
        }
        var answer: Decision = verdict.enforced ? (verdict.decision == .log ? .allow : verdict.decision) : .allow
        var told = why
        var settled: ParentAskAnswer?
        if answer == .ask {
            let asked = ask(request)
            settled = asked
            answer = asked.allowed ? .allow : .deny
            told += "; " + asked.told
            why += "; " + asked.why
            if let rule = asked.rule, rule != ruleID { why += " (the supervisor's policy: rule \(rule))" }
        }
        let allowed = answer == .allow
        let subject = ruleID.map { "rule \($0): " } ?? ""
        let message = "AgentGate \(allowed ? "allowed" : "denied") the call of tool \(request.tool): \(subject)\(told)"
        var event = DecisionEvent(
            timeMicros: AuditClock.nowMicros(), pid: getpid(), ppid: getppid(), executable: HookRunner.ownExecutable(),
            syscall: "tools/call", action: .mcp, target: request.tool,
            argv: HookMCPCall.recordedArguments(tool: request.tool, arguments: request.argumentTexts),
            decision: RecordedDecision(verdict.decision), ruleIndex: verdict.ruleIndex,
            reason: why, latencyMicros: Int64((agentgate_monotonic_ns() - started) / 1000), ruleID: ruleID,
            intent: "call MCP tool \(request.tool)", notable: verdict.decision == .log, enforced: verdict.enforced)
        event.policySHA256 = policySHA256.isEmpty ? nil : policySHA256
        event.source = .mcp
        event.answeredVia = settled?.via
        event.answeredBy = settled?.by
        recorder.record(event)
        return MCPCallAnswer(allowed: allowed, message: message)
    }


    /// Has the session's supervisor decide and record the call; it answers an ask once a person
    /// has (or its ask_timeout has passed). Any failure denies the call.
    private func decide(_ request: MCPToolCallRequest, in session: Session) -> MCPCallAnswer {
        let call = HookMCPCall(server: session.server, tool: request.tool, arguments: request.argumentTexts)
        let hookRequest = HookRequest(session: session.id, agent: "mcp", call: ToolCall(tool: "mcp__\(session.server)__\(request.tool)", actions: []),
                                      mcp: call)
        askLock.lock()
        defer { askLock.unlock() }
        do throws(HookChannel.Failure) {
            guard let socket = try HookChannel.sessionSocket(session.environment) else {
                throw HookChannel.Failure(description: "the session's hook socket is gone")
            }
            defer { if !socket.inherited { close(socket.fd) } }
            // No bound but the supervisor's: it answers an ask by its ask_timeout, and its end
            // closes if it goes away.
            let answer = try HookChannel.ask(hookRequest, socket: socket.fd, timeoutMilliseconds: Int(Int32.max))
            guard answer.ok else {
                return MCPCallAnswer(allowed: false, message: "AgentGate denied the call of tool \(request.tool): the session's supervisor refused: \(answer.error ?? "no decision")")
            }
            // An answer about anything else (a supervisor that doesn't know MCP calls decides
            // the placeholder tool instead) is no answer.
            guard answer.action == "mcp", answer.target == request.tool else {
                return MCPCallAnswer(allowed: false, message: "AgentGate denied the call of tool \(request.tool): the session's supervisor did not decide it as an MCP call (an older agentgate-supervise?)")
            }
            let allowed = answer.answer == "allow"
            return MCPCallAnswer(allowed: allowed, message: "AgentGate \(allowed ? "allowed" : "denied") the call of tool \(request.tool): \(answer.why ?? "")")
        } catch {
            return MCPCallAnswer(allowed: false, message: "AgentGate denied the call of tool \(request.tool): \(error.description)")
        }
    }

    /// Puts an ask to the server's supervisor and waits for a person's answer (or the policy's
    /// ask_timeout there). Denied when there is nobody to ask.
    private func ask(_ request: MCPToolCallRequest) -> ParentAskAnswer {
        func denied(_ why: String) -> ParentAskAnswer { ParentAskAnswer(id: 0, allowed: false, why: why, told: why) }
        guard let askChannel else {
            return denied("denied: asks are put to a person through the server's supervisor, and --no-supervise runs none")
        }
        askLock.lock()
        defer { askLock.unlock() }
        if let askChannelBroken { return denied("denied: asks can't be put any more (\(askChannelBroken))") }
        askCount += 1
        // The supervisor denies by then (its ask_timeout, or this one if shorter).
        let question = ParentAskRequest(id: askCount, tool: request.tool, arguments: request.argumentTexts,
                                        waitSeconds: (policy?.askTimeout ?? Policy.defaultAskTimeout).seconds)
        do throws(ParentAskChannel.Failure) {
            return try ParentAskChannel.ask(question, fd: askChannel)
        } catch {
            askChannelBroken = error.description
            return denied("denied: \(error.description)")
        }
    }

    /// One ask at a time on the channel.
    private let askLock = NSLock()

    private func writeToServer(_ line: [UInt8]) {
        outputLock.lock()
        let fd = serverInput
        outputLock.unlock()
        guard fd >= 0 else { return }
        // A server that has gone away: its exit ends the gateway (the copier thread).
        _ = writeAll(fd, line + [0x0A])
    }

    private func writeToClient(_ line: [UInt8]) {
        outputLock.lock()
        defer { outputLock.unlock() }
        guard !clientGone else { return }
        if !writeAll(1, line + [0x0A]) { clientGone = true }
    }

    /// Copies the server's output to the client line by line, unchanged (lines are kept whole
    /// so the gateway's own answers never land inside one). A line longer than the limit is
    /// copied as it comes, holding the client's side until its end.
    private func copyServerOutput(_ fd: Int32) {
        var pending: [UInt8] = []
        var streaming = false
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            pending += chunk[..<n]
            if let last = pending.lastIndex(of: 0x0A) {
                let whole = Array(pending[...last])
                pending.removeFirst(last + 1)
                if !streaming { outputLock.lock() }
                if !clientGone, !writeAll(1, whole) { clientGone = true }
                streaming = false
                outputLock.unlock()
            } else if pending.count > MCPFraming.maximumLineLength || streaming {
                if !streaming { outputLock.lock(); streaming = true }
                if !clientGone, !writeAll(1, pending) { clientGone = true }
                pending.removeAll(keepingCapacity: true)
            }
        }
        if !streaming { outputLock.lock() }
        if !pending.isEmpty, !clientGone { _ = writeAll(1, pending) }
        outputLock.unlock()
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            written += n
        }
        return true
    }
}
