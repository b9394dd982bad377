import AgentGatePolicy
import AgentGateStore
import AgentGateSupervisor
import Foundation
import Glibc

/// What `agentgate check` and `POST /api/v1/check` evaluate: one action decided as a session
/// would decide it, without running anything.
public enum PolicyCheck {
    /// Wrong input (an unknown action, a missing target): the message says what to give.
    public struct InputError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The decision and how it was reached.
    public struct Outcome: @unchecked Sendable {
        public var kind: ActionKind
        public var target: String
        public var argv: [String]
        public var verdict: Verdict
        public var notes: [String]
        public var intent: Intent
        public var why: String
        public var rule: PolicyRule?
        public var loaded: LoadedPolicy

        /// As `agentgate check --json` prints it.
        public var jsonObject: [String: Any] {
            var object: [String: Any] = [
                "action": kind.name, "target": target, "intent": intent.text, "intent_category": intent.category.rawValue,
                "decision": verdict.decision.name, "enforced": verdict.enforced, "why": why, "policy": loaded.source,
                "mode": loaded.policy.mode.name, "notes": notes,
            ]
            if kind == .exec { object["argv"] = argv }
            if let rule {
                var ruleObject: [String: Any] = ["id": rule.displayID, "file": rule.file, "line": rule.line, "column": rule.column]
                if let reason = rule.reason { ruleObject["reason"] = reason }
                if rule.errno != 0 { ruleObject["errno"] = Int(rule.errno) }
                object["rule"] = ruleObject
            }
            return object
        }
    }

    /// The policy `check` decides with: `explicit` (--policy), else as a session finds it, with
    /// `$PWD` as `workingDirectory`.
    public static func loadPolicy(_ explicit: String?, agent: String?, workingDirectory: String? = nil) throws(PolicyLoadError) -> LoadedPolicy {
        try LoadedPolicy.resolve(explicit, variables: .current(agent: agent, workingDirectory: workingDirectory))
    }

    /// This process's own context, as `check` builds it with no options.
    public static func currentProcess(agent: String) -> ProcessContext {
        let status = ProcStatus(tid: getpid())
        return ProcessContext(
            uid: geteuid(), gid: getegid(), effectiveCapabilities: status.capEff, permittedCapabilities: status.capPrm,
            cgroup: SessionContextCollector.cgroup(), executable: "", commands: [], ancestors: [], agent: agent)
    }

    /// The action `action` names, when `arguments` has something for it to decide.
    public static func actionKind(_ action: String, arguments: [String]) throws(InputError) -> ActionKind {
        guard let kind = ActionKind(name: action) else {
            throw InputError(description: "unknown action \(action); expected exec, fs_read, fs_write, net_egress or mcp")
        }
        guard !arguments.isEmpty else {
            throw InputError(description: kind == .exec ? "missing the command to decide (after --, when it has options of its own)"
                             : "missing the \(kind.name) target to decide")
        }
        return kind
    }

    /// Decides `action` on `arguments` (exec: the command and its arguments, or one command
    /// line as typed; otherwise one target), resolving paths and programs from `directory`
    /// with `path` as PATH.
    public static func evaluate(action: String, arguments: [String], loaded: LoadedPolicy, context: ProcessContext,
                                directory: String, path: String?) throws(InputError) -> Outcome {
        let kind = try actionKind(action, arguments: arguments)
        let policy = loaded.policy
        var target: String
        var argv = arguments
        var notes: [String] = []
        var exec: ExecDetails?
        var verdict: Verdict
        /// Decides each name an action has, the stricter verdict winning (as the supervisor does
        /// for a program named through a symlink).
        func decideStrictest(_ targets: [String]) -> Verdict {
            var strictest = policy.decide(kind, target: targets[0], exec: exec, context: context)
            for other in targets.dropFirst() {
                let candidate = policy.decide(kind, target: other, exec: exec, context: context)
                if candidate.strictness > strictest.strictness { strictest = candidate }
            }
            return strictest
        }
        switch kind {
        case .exec:
            // `check "npm install left-pad"`: a command line as typed at a prompt (agentgate v1's form).
            var typed: ExecDetails?
            if arguments.count == 1, arguments[0].contains(where: { $0 == " " || $0 == "\t" }), !isProgram(arguments[0], path: path) {
                let line = ExecDetails(commandLine: arguments[0])
                if !line.argv.isEmpty {
                    typed = line
                    argv = line.argv
                    notes.append("decided as the command line \(arguments[0]), as typed at a shell prompt")
                }
            }
            let program = ActionTargets.program(argv[0], directory: directory, path: path)
            target = program.target
            let programs = program.programs
            notes += program.notes
            // As the supervisor builds them: the program's paths stand for argv[0].
            exec = typed.map { ExecDetails(argv: argv, analysis: $0.analysis, programs: programs) }
                ?? ExecDetails(argv: argv, programs: programs)
            verdict = decideStrictest(programs.reversed())
            // As the supervisor: running a program reads it (its image is mapped where the process
            // can read it), so a rule that denies reading it refuses the exec.
            if verdict.decision.allows, case let read = policy.decide(.fsRead, target: target, context: context),
               !read.decision.allows, read.ruleIndex != nil {
                verdict = read
                notes.append("running \(target) maps it into memory, and the policy \(read.decision == .ask ? "asks about" : "denies") reading it")
            }
            if let analysis = exec?.analysis, analysis.shellParseFailed {
                notes.append("the shell command did not fully parse: \(analysis.shellErrors.joined(separator: "; "))")
            }
        case .fsRead, .fsWrite:
            guard arguments.count == 1 else { throw InputError(description: "give exactly one path for \(kind.name)") }
            let absolute = arguments[0].hasPrefix("/") ? arguments[0] : directory + "/" + arguments[0]
            var targets: [String]
            if kind == .fsWrite {
                let write = ActionTargets.write(absolute)
                (target, targets) = (write.target, write.targets)
                notes += write.notes
            } else {
                let read = ActionTargets.read(absolute)
                (target, targets) = (read.target, [read.target])
                notes += read.notes
            }
            verdict = decideStrictest(targets)
            // As the supervisor: a place a symlink leads to is decided under the name the
            // policy's rules give it too (SymlinkAliases).
            let aliased = SymlinkAliases(policy: policy).stricter(verdict, target: target) {
                policy.decide(kind, target: $0, context: context)
            }
            if aliased.strictness > verdict.strictness {
                verdict = aliased
                notes.append("\(target) is reached through a symlink a rule names: decided under that name too")
            }
        case .mcp:
            guard arguments.count == 1 else {
                throw InputError(description: "give exactly one MCP tool name for mcp, such as mcp__github__create_issue")
            }
            target = arguments[0]
            verdict = policy.decide(.mcp, target: target, context: context)
            notes.append("only agent hooks (agentgate hook) decide mcp actions; the kernel never sees them")
        case .netEgress:
            guard arguments.count == 1 else {
                throw InputError(description: "give exactly one target for net_egress (host:port, [v6]:port or unix:/path)")
            }
            target = arguments[0]
            if target.hasPrefix("unix:"), !target.hasPrefix("unix:@") {
                // A socket path is resolved like an open, relative to the working directory.
                let socketPath = String(target.dropFirst(5))
                let absolute = socketPath.hasPrefix("/") ? socketPath : directory + "/" + socketPath
                let real = FilePaths.resolved(absolute)
                target = "unix:" + real
                if real != socketPath { notes.append("\(socketPath) resolves to \(real)") }
            }
            verdict = policy.decide(kind, target: target, context: context)
            if let note = CheckCommand.decideByName(target, policy: policy, context: context, verdict: &verdict) {
                notes.append(note)
            }
            if target.hasPrefix("unix:/"), access(String(target.dropFirst(5)), F_OK) != 0, errno == ENOENT || errno == ENOTDIR {
                notes.append("\(target.dropFirst(5)) doesn't exist here: a connect to it fails with ENOENT, as without the supervisor, and nothing is decided")
            } else if target.hasPrefix("unix:/"), verdict != policy.evaluate(kind, target: target, context: context) {
                notes.append("reaching a unix socket also writes to its path: decided as fs_write \(target.dropFirst(5)) too")
            }
        }
        // A session's counts live in its supervisor; check decides one action on its own.
        for limit in policy.limits where policy.limit(limit.index, counts: kind, target: target, exec: exec, verdict: verdict) {
            notes.append("counted by limit \(limit.displayID) (at most \(limit.count) per \(limit.window)); check can't count, "
                         + "so this is the verdict within the limit, and over it the verdict is \(limit.decision.name)")
        }
        let intent = Intent.describe(kind, target: target, argv: kind == .exec ? argv : nil,
                                     analysis: exec?.analysis, home: AgentGatePaths.home())
        return Outcome(kind: kind, target: target, argv: argv, verdict: verdict, notes: notes, intent: intent,
                       why: policy.explanation(of: verdict), rule: verdict.ruleIndex.map { policy.rules[$0] }, loaded: loaded)
    }

    /// Whether `word` names a program that exists (so one argument with spaces is a path, not a
    /// command line).
    static func isProgram(_ word: String, path: String?) -> Bool {
        guard let found = ProgramLookup.resolve(word, path: path) else { return false }
        return access(found, X_OK) == 0
    }
}
