import AgentGatePolicy
import AgentGateStore
import AgentGateSupervisor
import ArgumentParser
import CSupport
import Foundation
import Glibc
import Synchronization

/// `agentgate hook`: answers coding agents' PreToolUse hooks with the policy.
struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "Answer a coding agent's PreToolUse hook with the policy, and install that hook.",
        discussion: """
        Inside agentgate-supervise the session's supervisor decides and records the call ($AGENTGATE_SESSION); \
        outside one the policy is looked up as for every command and the decision is recorded in the \
        database as a session of the agent's own. See README, "Agent hooks".
        """,
        subcommands: [ClaudeCodeHookCommand.self, CodexHookCommand.self, HookInstallCommand.self, HookUninstallCommand.self])
}

/// Options shared by the two agents' hook commands.
struct HookAnswerOptions: ParsableArguments {
    @OptionGroup var policyOption: PolicyOption
    @Option(help: "SQLite database for the decisions outside a session (default: $AGENTGATE_DB or the user's).")
    var db: String?
    @Flag(help: "Decide without recording (outside a session).") var noRecord = false
}

struct ClaudeCodeHookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claude-code",
        abstract: "Answer Claude Code's PreToolUse hook: the event on stdin, the decision on stdout.",
        discussion: "Exit status 0 with the decision as JSON; 2 (Claude Code blocks the call) with the reason on stderr when the input or the policy is broken.")
    @OptionGroup var options: HookAnswerOptions
    func run() throws { try HookRunner.run(.claudeCode, policy: options.policyOption.policy, db: options.db, noRecord: options.noRecord) }
}

struct CodexHookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codex",
        abstract: "Answer Codex's PreToolUse hook: the event on stdin, the decision on stdout.",
        discussion: "Codex sends the same fields as Claude Code (and turn_id, model) and reads the same answer. Exit status as for claude-code.")
    @OptionGroup var options: HookAnswerOptions
    func run() throws { try HookRunner.run(.codex, policy: options.policyOption.policy, db: options.db, noRecord: options.noRecord) }
}

/// The hook's one run: read, map, decide (here or in the session's supervisor), record, answer.
public enum HookRunner {
    /// Exit 2 blocks the call in both agents; the reason goes to stderr.
    static let failureStatus: Int32 = 2

    static func fail(_ message: String) -> ExitCode {
        printError(message + "; the tool call is blocked", tool: "agentgate hook")
        return ExitCode(failureStatus)
    }

    /// `agentgate hook claude-code` or `agentgate hook codex` with no options: run without the
    /// argument parser, whose reflection over every command was a fifth of the hook's start-up
    /// (an agent runs the hook before every tool call). Returns only when `arguments` (without
    /// the program name) are something else.
    public static func runIfPlainHook(_ arguments: [String]) {
        guard arguments.count == 2, arguments[0] == "hook", let agent = HookAgent(rawValue: arguments[1]) else { return }
        do {
            try run(agent, policy: nil, db: nil, noRecord: false)
            Glibc.exit(0)
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
            printError("\(error); the tool call is blocked", tool: "agentgate hook")
            Glibc.exit(failureStatus)
        }
    }

    static func run(_ agent: HookAgent, policy: String?, db: String?, noRecord: Bool) throws {
        let started = agentgate_monotonic_ns()
        let environment = currentEnvironment()
        // Outside a session the policy is loaded on a thread of its own while this one reads,
        // parses and maps the tool call: the load is a third of a call (README, Agent hooks).
        // Inside one the supervisor decides, and nothing is loaded.
        let outsideSession = environment[HookChannel.descriptorVariable] == nil && (environment[HookChannel.socketVariable] ?? "").isEmpty
        let policyLoad = outsideSession ? BackgroundResult { () throws(PolicyLoadError) -> LoadedPolicy in
            // The environment read once above: Foundation builds a new dictionary at every read.
            try LoadedPolicy.resolve(policy, variables: .current(agent: agent.rawValue, environment: environment), environment: environment)
        } : nil
        // Every way out waits for it: the process must not exit (and run its exit handlers)
        // under a thread that is still loading.
        defer { _ = policyLoad?.value }
        let bytes: [UInt8]
        do throws(HookInputError) { bytes = try readStandardInput() } catch { throw fail(error.description) }
        let call: ToolCall
        let input: HookInput
        do throws(HookInputError) {
            switch try HookEvent.parse(bytes, agent: agent) {
            case .toolUse(let event): input = event
            case .sessionEnd(let agent, let sessionID):
                endSession(agent: agent, sessionID: sessionID, db: db, noRecord: noRecord, environment: environment)
                return
            }
            call = try HookMapping.toolCall(input, path: environment["PATH"])
        } catch {
            throw fail(error.description)
        }
        // Inside a session: the supervisor decides with the session's policy (which the agent
        // can't read) and records it there.
        let socket: Int32?
        do throws(HookChannel.Failure) { socket = try HookChannel.inheritedSocket(environment) } catch { throw fail(error.description) }
        if let socket {
            let request = HookRequest(session: environment[HookChannel.sessionVariable] ?? "", agent: agent.rawValue, call: call)
            let answer: HookAnswer
            do throws(HookChannel.Failure) { answer = try HookChannel.ask(request, socket: socket) } catch { throw fail(error.description) }
            guard answer.ok, let given = answer.answer.flatMap(Decision.init(name:)) else {
                throw fail("the session's supervisor refused: \(answer.error ?? "no decision")")
            }
            let text = reason(decision: answer.decision ?? given.name, action: answer.action ?? "", target: answer.target ?? "",
                              argv: nil, why: answer.why ?? "")
            if let output = HookOutput.answer(for: agent, decision: given, reason: text) { print(output) }
            return
        }
        let loaded: LoadedPolicy
        switch (policyLoad ?? BackgroundResult { () throws(PolicyLoadError) -> LoadedPolicy in
            try LoadedPolicy.resolve(policy, variables: .current(agent: agent.rawValue, environment: environment), environment: environment)
        }).value {
        case .success(let value): loaded = value
        case .failure(let error): throw fail("policy error: \(error)")
        }
        let context = ContextOptions.currentProcess(agent: agent.rawValue)
        let decided = loaded.policy.decide(call, context: context)
        let text = reason(decision: decided.decision.name, action: decided.kind.name, target: decided.target, argv: decided.argv,
                          why: decided.why)
        if !noRecord {
            let event = HookEvidence.event(
                call: call, decided: decided, agent: agent.rawValue, policy: loaded.policy, policySHA256: loaded.sha256.isEmpty ? nil : loaded.sha256,
                pid: getpid(), ppid: getppid(), executable: ownExecutable(),
                latencyMicros: Int64((agentgate_monotonic_ns() - started) / 1000), home: AgentGatePaths.home(environment))
            if let problem = record(event, input: input, loaded: loaded, db: db, environment: environment) {
                printError("the decision was not recorded: \(problem)", tool: "agentgate hook")
            }
        }
        if let output = HookOutput.answer(for: agent, decision: decided.answer, reason: text) { print(output) }
    }

    /// The environment as getenv(3) sees it (of two entries with one name, the first), read
    /// from `environ`: Foundation's ProcessInfo.environment took 0.2 ms of a hook call. Only
    /// names of ASCII bytes are kept: Swift compares strings by canonical equivalence, under
    /// which `AGENTGATE_HOO\u{212A}_FD` (a Kelvin sign) is `AGENTGATE_HOOK_FD`, and the C
    /// fast path's getenv, comparing bytes, would pick another entry.
    static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = Glibc.environ
        while let entry = pointer.pointee {
            pointer += 1
            let length = strlen(entry)
            let bytes = UnsafeRawBufferPointer(start: entry, count: length)
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")), bytes[..<equals].allSatisfy({ $0 < 0x80 }) else { continue }
            let name = String(decoding: bytes[..<equals], as: UTF8.self)
            if result[name] == nil { result[name] = String(decoding: bytes[(equals + 1)...], as: UTF8.self) }
        }
        return result
    }

    static func reason(decision: String, action: String, target: String, argv: [String]?, why: String) -> String {
        HookOutput.reason(decision: decision, action: action, target: target, argv: argv, why: why)
    }

    /// The agent's own session in the user's database: one per agent session id, made on first
    /// use. An agent session resumed after its SessionEnd closed it goes on in the next
    /// continuation (`…-r2`, `-r3`…): an ended session takes no more events.
    static func record(_ event: DecisionEvent, input: HookInput, loaded: LoadedPolicy, db: String?,
                       environment: [String: String]) -> String? {
        do {
            let store = try openStore(db: db, environment: environment)
            defer { store.closeLeavingJournal() }
            var attempt = 1
            while true {
                let session = SessionRecord(
                    id: sessionID(agent: input.agent, input.sessionID, continuation: attempt), agent: input.agent.rawValue,
                    command: [input.agent.rawValue], cwd: input.cwd, policyPath: loaded.source, policySHA256: loaded.sha256,
                    startTimeMicros: AuditClock.nowMicros(), mode: loaded.policy.mode.name)
                var failure: StoreError?
                do throws(StoreError) {
                    try store.insert(events: [event], creatingIfAbsent: session)
                } catch {
                    failure = error
                }
                guard let failure else { return nil }
                guard failure.code == .constraintViolation, attempt < maximumContinuations else { throw failure }
                attempt += 1
            }
        } catch {
            return "\(error)"
        }
    }

    /// How many times one agent session may be resumed after its end and still be recorded.
    static let maximumContinuations = 64

    static func openStore(db: String?, environment: [String: String]) throws -> AuditStore {
        let path = AgentGatePaths.database(db, environment: environment)
        let isDefault = (db ?? "").isEmpty && (environment["AGENTGATE_DB"] ?? "").isEmpty
        return try AuditStore(path: path, creatingBelow: isDefault ? AgentGatePaths.databaseDirectoryRoot(environment) : nil)
    }

    /// Claude Code's SessionEnd: the agent's session (its latest continuation) is marked ended,
    /// so listings stop showing it running. Nothing is printed, and the exit status is 0
    /// whatever happens (SessionEnd blocks nothing); a problem goes to stderr. Under a
    /// supervisor there is nothing to do: the session ends with its agent.
    static func endSession(agent: HookAgent, sessionID base: String, db: String?, noRecord: Bool, environment: [String: String]) {
        guard !noRecord, (environment[HookChannel.socketVariable] ?? "").isEmpty,
              environment[HookChannel.descriptorVariable] == nil else { return }
        do {
            let store = try openStore(db: db, environment: environment)
            defer { store.close() }
            var open: String?
            for attempt in 1...maximumContinuations {
                let id = sessionID(agent: agent, base, continuation: attempt)
                guard let session = try store.session(id: id) else { break }
                guard session.agent == agent.rawValue else { continue }
                if session.endTimeMicros == nil { open = id }
            }
            if let open { try store.finishSession(id: open, endTimeMicros: AuditClock.nowMicros(), exitStatus: 0) }
        } catch {
            printError("the session's end was not recorded: \(error)", tool: "agentgate hook")
        }
    }

    /// `claude-code-<session_id>`: an agent's sessions never share an id with a supervised one.
    static func sessionID(_ input: HookInput) -> String { sessionID(agent: input.agent, input.sessionID, continuation: 1) }

    /// The id of an agent session's `continuation`th recorded session (`-r2` from the second).
    static func sessionID(agent: HookAgent, _ sessionID: String, continuation: Int) -> String {
        "\(agent.rawValue)-\(sessionID)" + (continuation > 1 ? "-r\(continuation)" : "")
    }

    /// The command `hook install` writes: agentgate-hook beside this binary when it is there (it
    /// starts in about a millisecond; inside a session the supervisor decides, outside it runs
    /// this binary's `hook`), or this binary's `hook AGENT`.
    static func hookCommand(agent: HookAgent) -> String {
        let own = ownExecutable()
        let client = String(own[..<(own.lastIndex(of: "/") ?? own.startIndex)]) + "/agentgate-hook"
        var info = stat()
        if own.hasPrefix("/"), stat(client, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(client, X_OK) == 0 {
            return ShellQuoting.quote(client) + " " + agent.rawValue
        }
        return ShellQuoting.quote(own) + " hook " + agent.rawValue
    }

    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard count > 0 else { return CommandLine.arguments.first ?? "agentgate" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// All of stdin, up to `HookInput.maximumLength` bytes and 10 s: an agent that never closes
    /// it gets a refusal, not a hung hook.
    static func readStandardInput() throws(HookInputError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = agentgate_monotonic_ns() + 10_000_000_000
        while true {
            let now = agentgate_monotonic_ns()
            guard now < deadline else { throw HookInputError("stdin did not end within 10 s") }
            let ready = agentgate_poll_one(0, Int16(POLLIN), Int32((deadline - now) / 1_000_000 + 1))
            if ready == -EINTR { continue }
            guard ready > 0 else { throw HookInputError(ready == 0 ? "stdin did not end within 10 s" : "cannot read stdin") }
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw HookInputError("cannot read stdin: \(String(cString: strerror(errno)))") }
            if n == 0 { return bytes }
            bytes += chunk.prefix(n)
            guard bytes.count <= HookInput.maximumLength else {
                throw HookInputError("the input is over \(HookInput.maximumLength >> 20) MiB")
            }
        }
    }
}

/// Where `hook install`/`uninstall` write: the project's or the user's Claude Code settings
/// (.claude/settings.json), or Codex's hooks.json (.codex/hooks.json, or $CODEX_HOME's, by
/// default ~/.codex): both files keep hooks in the same shape.
struct HookSettingsOptions: ParsableArguments {
    @Argument(help: "The agent: claude-code or codex.") var agent: String
    @Flag(help: "The project's .claude/settings.json (.codex/hooks.json), in the current directory (the default).") var project = false
    @Flag(help: "Your own ~/.claude/settings.json ($CODEX_HOME/hooks.json, by default ~/.codex/hooks.json).") var user = false

    func hookAgent() throws -> HookAgent {
        guard let known = HookAgent(rawValue: agent) else {
            printError("unknown agent \(agent); expected claude-code or codex", tool: "agentgate")
            throw ExitCode(2)
        }
        return known
    }

    func settingsPath() throws -> String {
        let known = try hookAgent()
        guard !(project && user) else {
            printError("give --project or --user, not both", tool: "agentgate")
            throw ExitCode(2)
        }
        switch known {
        case .claudeCode:
            return user ? AgentGatePaths.home() + "/.claude/settings.json" : AgentGatePaths.currentDirectory() + "/.claude/settings.json"
        case .codex:
            guard user else { return AgentGatePaths.currentDirectory() + "/.codex/hooks.json" }
            let codexHome = ProcessInfo.processInfo.environment["CODEX_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            return (codexHome ?? AgentGatePaths.home() + "/.codex") + "/hooks.json"
        }
    }
}

struct HookInstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Add agentgate's hooks to Claude Code's settings.json (PreToolUse, SessionEnd) or Codex's hooks.json (PreToolUse), keeping what is there.",
        discussion: "Installing twice adds one entry. The hook runs agentgate-hook beside this agentgate binary (a small program that passes the call to the session's supervisor inside agentgate-supervise, and runs `agentgate hook` outside), or this agentgate binary when there is none, by its absolute path.")
    @OptionGroup var options: HookSettingsOptions

    func run() throws {
        let path = try options.settingsPath()
        let agent = try options.hookAgent()
        let command = HookRunner.hookCommand(agent: agent)
        do {
            let changed = try ClaudeSettings.edit(path) { ClaudeSettings.install(command: command, agent: agent, into: &$0) }
            print(changed ? "installed the AgentGate hook in \(path): \(command)" : "the AgentGate hook is already in \(path)")
        } catch let error as ClaudeSettings.Failure {
            printError(error.description, tool: "agentgate")
            throw ExitCode(1)
        }
    }
}

struct HookUninstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove agentgate's hooks from Claude Code's settings.json or Codex's hooks.json, and nothing else.")
    @OptionGroup var options: HookSettingsOptions

    func run() throws {
        let path = try options.settingsPath()
        guard access(path, F_OK) == 0 else {
            print("no AgentGate hook: \(path) does not exist")
            return
        }
        do {
            let agent = try options.hookAgent()
            let changed = try ClaudeSettings.edit(path) { ClaudeSettings.uninstall(agent: agent, from: &$0) }
            print(changed ? "removed the AgentGate hook from \(path)" : "no AgentGate hook in \(path)")
        } catch let error as ClaudeSettings.Failure {
            printError(error.description, tool: "agentgate")
            throw ExitCode(1)
        }
    }
}

/// Claude Code's settings.json, edited in place: parsed, changed, written atomically (a new
/// file renamed over it), or left untouched.
enum ClaudeSettings {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Whether a hook command is agentgate's: the agentgate binary (any path) running `hook AGENT`,
    /// or agentgate-hook (any path) running `AGENT`.
    static func isOurs(_ command: String, agent: HookAgent = .claudeCode) -> Bool {
        func program(before suffix: String) -> String? {
            guard command.hasSuffix(suffix) else { return nil }
            var program = String(command.dropLast(suffix.count))
            if program.hasPrefix("'"), program.hasSuffix("'"), program.count >= 2 { program = String(program.dropFirst().dropLast()) }
            return ExecDetails.basename(program)
        }
        return program(before: " hook " + agent.rawValue) == "agentgate" || program(before: " " + agent.rawValue) == "agentgate-hook"
    }

    /// The hook events agentgate's entry is installed for, with the matcher each one's group
    /// gets: every tool's PreToolUse, and SessionEnd (which has no matcher), so the session the
    /// hook records into is closed when Claude Code's session ends.
    /// Codex has no SessionEnd event (its Stop ends a turn), and an event it doesn't know could
    /// make it refuse the file: PreToolUse only.
    static func events(_ agent: HookAgent) -> [(name: String, matcher: String?)] {
        agent == .claudeCode ? [("PreToolUse", "*"), ("SessionEnd", nil)] : [("PreToolUse", "*")]
    }

    /// Adds the hook (or points an existing one at `command`) for every event in `events`;
    /// false when it was already there.
    static func install(command: String, agent: HookAgent = .claudeCode, into settings: inout [String: Any]) -> Bool {
        var hooks = settings["hooks"] as? [String: Any] ?? [:]
        var changed = false
        for event in events(agent) {
            var groups = hooks[event.name] as? [Any] ?? []
            var found = false
            for (index, item) in groups.enumerated() {
                guard var group = item as? [String: Any], var handlers = group["hooks"] as? [Any] else { continue }
                var kept: [Any] = []
                var inGroup = false
                for handler in handlers {
                    guard var entry = handler as? [String: Any], let existing = entry["command"] as? String,
                          isOurs(existing, agent: agent) else {
                        kept.append(handler)
                        continue
                    }
                    // One entry of ours per group: a second in the same group (`agentgate hook`
                    // beside `agentgate-hook`, from an earlier install) would run the hook twice.
                    // Entries in other groups (other matchers) stay, pointed at `command`.
                    if inGroup {
                        changed = true
                        continue
                    }
                    inGroup = true
                    found = true
                    if existing != command {
                        entry["command"] = command
                        changed = true
                    }
                    kept.append(entry)
                }
                handlers = kept
                group["hooks"] = handlers
                groups[index] = group
            }
            if !found {
                var group: [String: Any] = ["hooks": [["type": "command", "command": command] as [String: Any]]]
                if let matcher = event.matcher { group["matcher"] = matcher }
                groups.append(group)
                changed = true
            }
            hooks[event.name] = groups
        }
        settings["hooks"] = hooks
        return changed
    }

    /// Removes agentgate's hook entries, and the groups and keys that only held them; false when
    /// there was none.
    static func uninstall(agent: HookAgent = .claudeCode, from settings: inout [String: Any]) -> Bool {
        guard var hooks = settings["hooks"] as? [String: Any] else { return false }
        var changed = false
        for event in events(agent) {
            guard let groups = hooks[event.name] as? [Any] else { continue }
            var kept: [Any] = []
            var removedHere = false
            for item in groups {
                guard var group = item as? [String: Any], let handlers = group["hooks"] as? [Any] else { kept.append(item); continue }
                let remaining = handlers.filter { handler in
                    guard let command = (handler as? [String: Any])?["command"] as? String, isOurs(command, agent: agent) else { return true }
                    removedHere = true
                    return false
                }
                if remaining.count == handlers.count { kept.append(item); continue }
                if remaining.isEmpty { continue }
                group["hooks"] = remaining
                kept.append(group)
            }
            guard removedHere else { continue }
            changed = true
            if kept.isEmpty { hooks.removeValue(forKey: event.name) } else { hooks[event.name] = kept }
        }
        guard changed else { return false }
        if hooks.isEmpty { settings.removeValue(forKey: "hooks") } else { settings["hooks"] = hooks }
        return true
    }

    /// Reads `path` (a missing file is `{}`), applies `change`, and writes the result when it
    /// changed anything. A file that isn't a JSON object is left as it is.
    static func edit(_ path: String, _ change: (inout [String: Any]) -> Bool) throws -> Bool {
        var settings: [String: Any] = [:]
        var mode: mode_t = 0o644
        if let data = FileManager.default.contents(atPath: path) {
            var info = stat()
            if stat(path, &info) == 0 { mode = info.st_mode & 0o7777 }
            if !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
                    throw Failure(description: "\(path) is not a JSON object; it was left as it is (fix it, then run this again)")
                }
                settings = object
            }
        } else if access(path, F_OK) == 0 {
            throw Failure(description: "cannot read \(path)")
        }
        guard change(&settings) else { return false }
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        } catch {
            throw Failure(description: "cannot write the settings as JSON: \(error)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if access(directory, F_OK) != 0 {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw Failure(description: "cannot create \(directory): \(error)")
            }
        }
        let temporary = directory + "/.settings.json.agentgate-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(data) + [UInt8(ascii: "\n")]
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let error = errno
                close(fd)
                unlink(temporary)
                throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(error)))")
            }
            written += n
        }
        _ = fchmod(fd, mode)
        guard fsync(fd) == 0, close(fd) == 0, rename(temporary, path) == 0 else {
            let error = errno
            unlink(temporary)
            throw Failure(description: "cannot replace \(path): \(String(cString: strerror(error)))")
        }
        return true
    }
}

/// Work started on a thread of its own, whose result is waited for once (`value`).
final class BackgroundResult<Value: Sendable, Failure: Error>: Sendable {
    private let result = Mutex<Result<Value, Failure>?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () throws(Failure) -> Value) {
        let thread = Thread { [self] in
            let outcome: Result<Value, Failure>
            do throws(Failure) { outcome = .success(try work()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            finished.signal()
        }
        thread.stackSize = 8 << 20 // as the main thread's: YAML composing recurses
        thread.start()
    }

    /// The result, once the work has ended.
    var value: Result<Value, Failure> {
        finished.wait()
        defer { finished.signal() } // for a later caller
        return result.withLock { $0! }
    }
}
