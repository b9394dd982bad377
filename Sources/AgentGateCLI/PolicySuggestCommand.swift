import AgentGatePolicy
import AgentGateStore
import ArgumentParser
import Foundation
import Glibc

/// `agentgate policy suggest SESSION`: the rules that would have let a recorded session run.
struct PolicySuggestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suggest",
        abstract: "Suggest the policy that would have let a session (best: one run with agentgate-supervise --learn) run.",
        discussion: """
        Prints a unified diff against the base policy: one allow rule per program, host, file or \
        directory the base did not allow, each with a comment saying what it was learned from. \
        Paths are written with $PWD, $HOME and $TMPDIR (the session's own); sibling files are \
        collapsed into DIR/** where no deny rule is in the way; connects are named by host. \
        Nothing the built-in policy denies by name (SSH keys, cloud and token files, shell \
        start-up files, metadata endpoints) nor a credential file by its name (.env, *.pem, id_*) \
        is ever allowed: those are listed as held back.

        The base: --base FILE, else the policy the session ran under when that file is unchanged \
        (same sha256), else the built-in policy. Exit status: 0; 1 when the suggested policy would \
        still refuse some recorded action; 2 on bad input.
        """)

    @OptionGroup var database: DatabaseOption
    @Argument(help: "The session: an id or a unique prefix (see `agentgate sessions`).") var session: String
    @Option(help: "The policy file to grow (default: the session's own policy if unchanged, else the built-in).")
    var base: String?
    @Option(help: "Write the whole suggested policy to FILE instead of printing a diff.") var output: String?
    @Flag(help: "With --output: replace an existing file.") var force = false
    @Option(help: "How many files under one directory make it DIR/**.") var threshold = PolicySuggestion.defaultThreshold

    func validate() throws {
        if threshold < 1 { throw ValidationError("--threshold must be 1 or more") }
    }

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let id = try DatabaseOption.resolveSession(session, in: store)
        guard let record = try exitingTwoWhenGone({ try store.session(id: id) }) else {
            printError("no session \"\(id)\" in \(store.path)", tool: "agentgate")
            throw ExitCode(2)
        }
        let variables = Self.variables(of: record)
        let label = id.count > 8 && UUID(uuidString: id) != nil ? String(id.prefix(8)) : id

        // The base policy: its text (edited), the policy it loads as, and a name for the diff.
        let (baseText, baseSource, baseName) = try Self.base(named: base, record: record, variables: variables)
        let basePolicy: Policy
        let builtIn: Policy
        do {
            basePolicy = try Policy.parse(yaml: baseText, source: baseSource, variables: variables)
            builtIn = try Policy.builtInDefault(variables: variables)
        } catch {
            printError("policy error: \(error)", tool: "agentgate")
            throw ExitCode(2)
        }

        let events = try store.events(sessionID: id)
        let learning = record.mode == SuperviseCommand.learningMode || record.mode == "audit"
        if !learning {
            printError("note: session \(label) was enforced, not learned (agentgate-supervise --learn): what was refused "
                       + "stopped it, so it may not have done all it would", tool: "agentgate")
        }
        let searchPath = record.context?.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        var actions: [LearnedAction] = []
        var refusedBySupervisor: [PolicySuggestion.HeldBack] = []
        for stored in events {
            let event = stored.event
            guard let kind = Self.kind(event.action) else { continue }
            // In a learning session only the supervisor's own protections were enforced: never
            // something to allow.
            if learning, event.enforced, event.decision == .deny, event.ruleIndex == nil {
                refusedBySupervisor.append(.init(kind: kind, target: event.target, reason: "refused by the supervisor itself: \(event.reason)"))
                continue
            }
            var aliases: [String] = []
            if kind == .exec, let name = Self.namedPath(argv0: event.argv?.first, resolved: event.target, path: searchPath) {
                aliases.append(name)
            }
            actions.append(LearnedAction(kind: kind, target: event.target, argv: event.argv, pid: event.pid,
                                         executable: event.executable, aliases: aliases))
        }
        var suggestion = PolicySuggestion.suggest(actions: actions, base: basePolicy, builtIn: builtIn, variables: variables,
                                                  label: label, threshold: threshold)
        var seen = Set<String>()
        suggestion.heldBack += refusedBySupervisor.filter { seen.insert("\($0.kind.name) \($0.target)").inserted }

        let command = record.command.joined(separator: " ")
        let header = [
            "# suggested by agentgate policy suggest from session \(label) (\(command.count > 80 ? String(command.prefix(80)) + "…" : command))",
            "# base: \(baseName); $PWD \(variables.workingDirectory), $HOME \(variables.home), $TMPDIR \(variables.temporaryDirectory)",
            "# review every rule below before using this policy",
        ].map { Self.oneLine($0) }
        let newText: String
        do throws(PolicyTextEdit.Failure) {
            newText = try suggestion.render(into: baseText, base: basePolicy, header: header)
        } catch {
            printError("cannot add rules to \(baseName): \(error)", tool: "agentgate")
            throw ExitCode(2)
        }
        // The suggestion must load, and let through what the session did.
        let suggested: Policy
        do {
            suggested = try Policy.parse(yaml: newText, source: baseSource, variables: variables)
        } catch {
            printError("internal error: the suggested policy does not load: \(error)", tool: "agentgate")
            throw ExitCode(2)
        }
        let stillRefused = PolicySuggestion.stillRefused(actions, by: suggested, heldBack: suggestion.heldBack)

        if let output {
            try Self.writeFile(newText, to: output, force: force)
        } else {
            print(UnifiedDiff.diff(baseText, newText, oldLabel: baseName, newLabel: "suggested (session \(label))"), terminator: "")
        }
        printError("\(suggestion.rules.count) rule\(suggestion.rules.count == 1 ? "" : "s") learned from \(actions.count) recorded actions"
                   + (suggestion.heldBack.isEmpty ? "" : ", \(suggestion.heldBack.count) held back (listed in the file's header)")
                   + (output.map { "; wrote \($0)" } ?? ""), tool: "agentgate")
        if !stillRefused.isEmpty {
            for action in stillRefused.prefix(10) {
                printError("still refused by the suggested policy: \(action.kind.name) \(Self.oneLine(action.target))", tool: "agentgate")
            }
            throw ExitCode(1)
        }
    }

    /// The path an exec was most likely run by, when it differs from the resolved program (the
    /// audit records the resolved one; the supervisor decided both): argv[0] when absolute, else
    /// argv[0] found on the session's PATH, kept only when it still resolves to that program.
    static func namedPath(argv0: String?, resolved: String, path: String) -> String? {
        guard let argv0, !argv0.isEmpty else { return nil }
        let candidates = argv0.hasPrefix("/") ? [argv0]
            : argv0.contains("/") ? [] : path.split(separator: ":").map { "\($0)/\(argv0)" }.filter { $0.hasPrefix("/") }
        for candidate in candidates where access(candidate, X_OK) == 0 {
            return candidate != resolved && FilePaths.resolved(candidate) == resolved ? candidate : nil
        }
        return nil
    }

    static func kind(_ action: RecordedAction) -> ActionKind? {
        switch action {
        case .exec: .exec
        case .fsRead: .fsRead
        case .fsWrite: .fsWrite
        case .netEgress: .netEgress
        default: nil
        }
    }

    /// The session's own $PWD, $HOME and $TMPDIR (from its record), resolved as the kernel
    /// named the paths it recorded.
    static func variables(of record: SessionRecord) -> PolicyVariables {
        let environment = record.context?.environment ?? [:]
        let home = environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? AgentGatePaths.home()
        let temporary = environment["TMPDIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        return PolicyVariables(workingDirectory: FilePaths.resolved(record.cwd), home: FilePaths.resolved(home),
                               temporaryDirectory: FilePaths.resolved(temporary), agent: record.agent,
                               environment: environment, scopeResolver: .init { FilePaths.resolvedExisting($0) })
    }

    /// The base's text, the source it parses as (relative includes resolve from it), and its name.
    static func base(named: String?, record: SessionRecord, variables: PolicyVariables) throws -> (String, String, String) {
        if let named {
            guard let text = readText(named) else {
                printError("cannot read the base policy \(named)", tool: "agentgate")
                throw ExitCode(2)
            }
            return (text, named, named)
        }
        let path = record.policyPath
        if path.hasPrefix("/"), let text = readText(path) {
            if let loaded = try? LoadedPolicy.resolve(path, variables: variables), loaded.sha256 == record.policySHA256 {
                return (text, path, path)
            }
            printError("note: \(path) changed since the session ran (sha256 differs); the base is the built-in policy "
                       + "(name one with --base)", tool: "agentgate")
        } else if path != "builtin:default.yaml" {
            printError("note: the session's policy \(path) is gone; the base is the built-in policy (name one with --base)", tool: "agentgate")
        }
        return (Policy.builtInDefaultYAML, "builtin:default.yaml", "builtin:default.yaml")
    }

    static func readText(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(data: data, encoding: .utf8)
    }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    }

    static func writeFile(_ text: String, to path: String, force: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0o644)
        guard fd >= 0 else {
            let error = errno
            printError(error == EEXIST ? "\(path) already exists; use --force to replace it"
                       : "cannot write \(path): \(String(cString: strerror(error)))", tool: "agentgate")
            throw ExitCode(2)
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                printError("cannot write \(path): \(String(cString: strerror(errno)))", tool: "agentgate")
                throw ExitCode(2)
            }
            written += n
        }
    }
}
