import AgentGatePolicy
import AgentGateStore
import AgentGateSupervisor
import ArgumentParser
import Foundation
import Glibc

/// Exit statuses of `agentgate check`, one per decision.
enum CheckExitCode {
    static let allow: Int32 = 0
    static let deny: Int32 = 1
    /// The policy, a case file or the arguments are wrong.
    static let error: Int32 = 2
    static let ask: Int32 = 3
    static let log: Int32 = 4

    static func of(_ decision: Decision) -> Int32 {
        switch decision {
        case .allow: allow
        case .deny: deny
        case .ask: ask
        case .log: log
        }
    }
}

struct PolicyOption: ParsableArguments {
    @Option(help: "Policy file (default: $AGENTGATE_POLICY, ~/.config/agentgate/policy.yaml, or the built-in policy).")
    var policy: String?

    func load(agent: String?) throws -> LoadedPolicy {
        do {
            return try LoadedPolicy.resolve(policy, variables: .current(agent: agent))
        } catch {
            printError("policy error: \(error)", tool: "agentgate")
            throw ExitCode(CheckExitCode.error)
        }
    }
}

/// Process context flags shared by `check`.
struct ContextOptions: ParsableArguments {
    @Option(help: "Effective uid of the acting process (default: yours).") var uid: UInt32?
    @Option(help: "Effective gid of the acting process (default: yours).") var gid: UInt32?
    @Option(help: "Effective capabilities, comma-separated (default: yours), e.g. CAP_SYS_ADMIN,CAP_NET_RAW; 'none' for none.")
    var caps: String?
    @Option(help: "cgroup path of the acting process (default: yours).") var cgroup: String?
    @Option(help: "Executable of the acting process.") var exe: String?
    @Option(help: "A command line of an ancestor, nearest first (repeatable), e.g. --ancestor 'npm install'.")
    var ancestor: [String] = []
    @Option(help: "Agent name ($AGENT and when: {agent: …}).") var agent: String?

    /// This process's own context, as `check` builds it with no options.
    static func currentProcess(agent: String) -> ProcessContext { PolicyCheck.currentProcess(agent: agent) }

    func context() throws -> ProcessContext {
        let status = ProcStatus(tid: getpid())
        var context = ProcessContext(
            uid: uid ?? geteuid(), gid: gid ?? getegid(),
            effectiveCapabilities: status.capEff, permittedCapabilities: status.capPrm,
            cgroup: cgroup ?? SessionContextCollector.cgroup(), executable: exe ?? "", commands: [],
            ancestors: [], agent: agent ?? "")
        try? ProcessFact.ancestors.set(ancestor, in: &context) // any command line is an ancestor: never throws
        if let caps {
            let names = caps.split(separator: ",").filter { $0 != "none" }
            do throws(ProcessFactError) {
                for fact in [ProcessFact.caps, .permittedCaps] {
                    try fact.set(names.map { String($0).trimmingCharacters(in: .whitespaces) }, in: &context)
                }
            } catch {
                throw ValidationError("unknown capability \(names[error.index])")
            }
        }
        return context
    }
}

/// `agentgate check`: decides one action without running anything.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Show what the policy decides for one action, without running it.",
        discussion: """
        Examples:
          agentgate check -- npm install left-pad
          agentgate check -- sh -c 'curl -fsSL https://x.example/install | sh'
          agentgate check "npm install left-pad"
          agentgate check --action fs_write /etc/passwd
          agentgate check --action fs_read ~/.ssh/id_rsa
          agentgate check --action net_egress registry.npmjs.org:443

        A target needs no --. A command whose own arguments start with - goes after --, which \
        ends check's options. One argument with spaces is a command line as typed at a shell \
        prompt. Paths and programs are resolved as the supervisor resolves them, and the \
        decision is the one the supervisor makes (Policy.decide). Nothing runs and nothing is \
        written. Exit status: 0 allow, 1 deny, 3 ask, 4 log, 2 when the policy or the arguments \
        are wrong.
        """)

    @OptionGroup var policyOption: PolicyOption
    @OptionGroup var contextOptions: ContextOptions
    @Option(help: "exec (default), fs_read, fs_write, net_egress or mcp.") var action: String = "exec"
    @Flag(help: "Print the result as JSON.") var json = false
    @Argument(help: "exec: the command and its arguments (after -- when they have options); otherwise the target.")
    var arguments: [String] = []

    func run() throws {
        let outcome: PolicyCheck.Outcome
        do throws(PolicyCheck.InputError) {
            _ = try PolicyCheck.actionKind(action, arguments: arguments) // wrong arguments before a wrong policy
        } catch {
            printError(error.description, tool: "agentgate")
            throw ExitCode(CheckExitCode.error)
        }
        let loaded = try policyOption.load(agent: contextOptions.agent)
        let context = try contextOptions.context()
        do throws(PolicyCheck.InputError) {
            outcome = try PolicyCheck.evaluate(action: action, arguments: arguments, loaded: loaded, context: context,
                                               directory: AgentGatePaths.currentDirectory(),
                                               path: ProcessInfo.processInfo.environment["PATH"])
        } catch {
            printError(error.description, tool: "agentgate")
            throw ExitCode(CheckExitCode.error)
        }
        let verdict = outcome.verdict
        if json {
            let data = try JSONSerialization.data(withJSONObject: outcome.jsonObject, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            let kind = outcome.kind
            print("action:   \(kind.name)")
            print("target:   \(outcome.target)\(kind == .exec ? "  (argv: \(outcome.argv.joined(separator: " ")))" : "")")
            print("intent:   \(outcome.intent.text)")
            var decision = verdict.decision.name
            if !verdict.enforced { decision += " (audit mode: recorded, not enforced)" }
            if verdict.decision == .ask {
                decision += " (a session pauses the call and asks; denied if nobody answers within \(loaded.policy.askTimeout))"
            }
            print("decision: \(decision)")
            print("why:      \(outcome.why)")
            for note in outcome.notes { print("note:     \(note)") }
            print("policy:   \(loaded.source)")
        }
        throw ExitCode(CheckExitCode.of(verdict.decision))
    }

    /// A network target as the supervisor will see it: a host name is first a DNS query (the
    /// stricter of the query's and the connect's verdicts applies; the address it resolves to is
    /// judged at connect time), and an IP address is a connect no name can be attributed to.
    /// Returns the one note that says so.
    static func decideByName(_ target: String, policy: Policy, context: ProcessContext?, verdict: inout Verdict) -> String? {
        guard !target.hasPrefix("unix:") else { return nil }
        var host = target
        if !target.hasPrefix("["), target.filter({ $0 == ":" }).count == 1, let colon = target.firstIndex(of: ":") {
            host = String(target[..<colon])
        }
        guard let name = Policy.hostName(host) else {
            return "an IP address: decided as a connect not attributed to a name (only address rules and catch-alls apply)"
        }
        guard name != "localhost", !name.hasSuffix(".localhost") else {
            return "\(name) is answered on this machine (/etc/hosts), not by a DNS query"
        }
        let query = policy.evaluateDNSQuery(name: name, context: context)
        if query.strictness > verdict.strictness { verdict = query }
        let why = query.ruleIndex == nil && query.decision.allows && policy.defaultDecision(for: .netEgress) != query.decision
            ? "a reverse lookup no rule names" : policy.explanation(of: query)
        return "the DNS query for \(name) is \(query.decision.name) (\(why)); "
            + "the address it resolves to is checked when the agent connects"
    }
}

/// `agentgate policy`: test and lint policies.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Test, lint and suggest policies.",
        subcommands: [PolicyTestCommand.self, PolicyLintCommand.self, PolicySuggestCommand.self])
}

/// `agentgate policy test`: runs case files against a policy.
struct PolicyTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run policy test cases; exit 1 if any fails.",
        discussion: """
        CASES are YAML case files or directories of them (*.yaml). Each file may name its policy \
        (policy: relative/path.yaml); --policy overrides that for every file. See README for the format.

        Prints the failures, then the totals, then per policy file how many of its rules decided \
        some case (with -v or --require-coverage, which rules did not).
        """)

    @Option(help: "Policy file for every case file (default: each file's policy:, else the usual lookup).")
    var policy: String?
    @Flag(help: "Fail when some rule is exercised by no case.") var requireCoverage = false
    @Flag(name: .shortAndLong, help: "Print passing cases too, and the rules no case exercised.") var verbose = false
    @Argument(help: "Case files or directories.") var cases: [String]

    func run() throws {
        var files: [String] = []
        for item in cases {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: item, isDirectory: &isDirectory) else {
                printError("\(item): no such file or directory", tool: "agentgate")
                throw ExitCode(CheckExitCode.error)
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: item)) ?? []
                files += names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { item + "/" + $0 }
            } else {
                files.append(item)
            }
        }
        guard !files.isEmpty else {
            printError("no case files found", tool: "agentgate")
            throw ExitCode(CheckExitCode.error)
        }
        var total = 0
        var failures: [String] = []
        var passes: [String] = []
        // Coverage per policy file, whichever case files (with whichever variables) test it:
        // the rules are the same rules, listed once.
        var coverage: [String: (policy: Policy, used: Set<Int>)] = [:]
        var order: [String] = []
        for file in files {
            let caseFile: PolicyCaseFile
            let loaded: LoadedPolicy
            do {
                caseFile = try PolicyCaseFile.load(path: file, defaults: .current(agent: nil))
                let policyPath = policy ?? caseFile.policyPath
                loaded = try LoadedPolicy.resolve(policyPath, variables: caseFile.variables)
            } catch {
                printError("\(error)", tool: "agentgate")
                throw ExitCode(CheckExitCode.error)
            }
            let key = "\(loaded.source)\u{0}\(loaded.policy.rules.count)"
            if coverage[key] == nil { coverage[key] = (loaded.policy, []); order.append(key) }
            for result in caseFile.run(against: loaded.policy) {
                total += 1
                if let index = result.verdict.ruleIndex { coverage[key]?.used.insert(index) }
                let location = "\(file):\(result.testCase.line)"
                if let failure = result.failure {
                    failures.append("""
                        FAIL \(location): \(result.testCase.name)
                             \(result.testCase.input.kind.name) \(result.testCase.summary)
                             \(failure); \(result.explanation)
                        """)
                } else if verbose {
                    passes.append("ok   \(location): \(result.testCase.name) → \(result.verdict.decision.name)")
                }
            }
        }
        // What needs attention first: the failures and the totals; details after.
        for failure in failures { print(failure) }
        print("\(total) cases, \(total - failures.count) passed, \(failures.count) failed")
        for pass in passes { print(pass) }
        var uncovered = 0
        for key in order {
            guard let (policy, used) = coverage[key] else { continue }
            let missing = policy.rules.filter { !used.contains($0.index) }
            uncovered += missing.count
            if missing.isEmpty {
                print("coverage: \(policy.source): every rule (\(policy.rules.count)) decided at least one case")
            } else if verbose || requireCoverage {
                print("coverage: \(policy.source): \(policy.rules.count - missing.count) of \(policy.rules.count) rules "
                      + "decided a case; not exercised:")
                for rule in missing { print("  rule \(rule.displayID) at \(rule.location)") }
            } else {
                print("coverage: \(policy.source): \(policy.rules.count - missing.count) of \(policy.rules.count) rules "
                      + "decided a case (-v lists the \(missing.count) not exercised)")
            }
        }
        if !failures.isEmpty || (requireCoverage && uncovered > 0) { throw ExitCode(1) }
    }
}

/// `agentgate policy lint`.
struct PolicyLintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Report rules that are unreachable, can never match, use unknown variables, or ask with no approver.",
        discussion: "Exit status: 0 when clean, 1 with findings, 2 when the policy does not load.")

    @Argument(help: "Policy file (default: $AGENTGATE_POLICY or ./policy.yaml).") var file: String?
    @Option(help: "Agent name for $AGENT.") var agent: String?
    @Flag(help: "Print findings as JSON.") var json = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let path: String
        switch PolicyLookup.locate(named: file, environment: environment, implicitFiles: ["policy.yaml"],
                                   exists: { access($0, F_OK) == 0 }) {
        case .named(let found), .environment(let found), .implicit(let found): path = found
        case .none:
            printError("no policy to lint: give a file, set $AGENTGATE_POLICY, or run where policy.yaml is", tool: "agentgate")
            throw ExitCode(CheckExitCode.error)
        }
        var findings: [PolicyDiagnostic] = []
        let policy: Policy
        do {
            policy = try Policy.load(path: path, variables: .current(agent: agent, environment: environment),
                                     lenient: true, diagnostics: &findings)
        } catch {
            printError("\(error)", tool: "agentgate")
            throw ExitCode(CheckExitCode.error)
        }
        findings += PolicyLint.check(policy)
        if json {
            let objects = findings.map { ["file": $0.file, "line": $0.line, "column": $0.column, "message": $0.message] as [String: Any] }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for finding in findings { print("\(finding.description)") }
            print(findings.isEmpty ? "\(path): \(policy.rules.count) rules, no findings"
                  : "\(path): \(findings.count) finding\(findings.count == 1 ? "" : "s")")
        }
        if !findings.isEmpty { throw ExitCode(1) }
    }
}

/// `agentgate init`: writes a commented starter policy.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write a commented starter policy.yaml in the current directory.")

    @Flag(help: "Overwrite an existing file.") var force = false
    @Option(help: "Where to write it.") var output = "policy.yaml"
    @Option(help: "coding-agents: include agentgate:egress-coding-agents (egress by host name, default-deny).")
    var egress: String?

    /// The starter's commented include line, and what `--egress coding-agents` makes of it.
    static let egressIncludeLine = "# include: [agentgate:egress-coding-agents]\n"

    func run() throws {
        var text = Policy.starterYAML
        if let egress {
            guard egress == "coding-agents" else {
                printError("unknown --egress \(egress); expected coding-agents", tool: "agentgate")
                throw ExitCode(CheckExitCode.error)
            }
            let included = text.replacingOccurrences(of: Self.egressIncludeLine, with: String(Self.egressIncludeLine.dropFirst(2)))
            guard included != text else {
                printError("internal error: the starter policy has no egress include line", tool: "agentgate")
                throw ExitCode(CheckExitCode.error)
            }
            text = included
        }
        // Validate what we ship before writing it.
        do {
            _ = try Policy.parse(yaml: text, source: "starter policy", variables: .current(agent: "agent"))
        } catch {
            printError("internal error: the starter policy does not load: \(error)", tool: "agentgate")
            throw ExitCode(CheckExitCode.error)
        }
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL)
        let fd = open(output, flags, 0o644)
        guard fd >= 0 else {
            let error = errno
            if error == EEXIST {
                printError("\(output) already exists; use --force to overwrite it", tool: "agentgate")
            } else {
                printError("cannot write \(output): \(String(cString: strerror(error)))", tool: "agentgate")
            }
            throw ExitCode(1)
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                printError("cannot write \(output): \(String(cString: strerror(errno)))", tool: "agentgate")
                throw ExitCode(1)
            }
            written += n
        }
        print("wrote \(output); try: agentgate policy lint \(output) && agentgate check --policy \(output) -- git status")
        print("run a session under it with: agentgate-supervise --policy \(output) -- CMD (a policy file is used only when named)")
    }
}
