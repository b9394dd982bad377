import Foundation
import Yams

extension Policy {
    /// Why `verdict` came out as it did, in one line for people.
    public func explanation(of verdict: Verdict) -> String {
        if verdict.reason == .rateLimited, let index = verdict.limitIndex, limits.indices.contains(index) {
            return limits[index].explanation
        }
        guard let index = verdict.ruleIndex else {
            let decision = verdict.decision
            let text = "no rule matched, fell through to default (\(decision.name))"
            return text
        }
        let rule = rules[index]
        var text: String
        switch verdict.reason {
        case .escapesScope:
            text = "matched an allow rule (rule \(rule.displayID) at \(rule.location)) but the path escapes its scope "
                + (rule.expandedScope ?? "")
        case .noApprover:
            text = "matched rule \(rule.displayID) at \(rule.location) (ask)"
        case .matchedRule, .defaultDecision, .rateLimited:
            text = "matched rule \(rule.displayID) at \(rule.location)"
        case .askAnswered, .askTimedOut, .askInterrupted, .askWithdrawn:
            text = "matched rule \(rule.displayID) at \(rule.location) (ask), \(verdict.reason.text)"
        }
        if let reason = rule.reason { text += ": \(reason)" }
        return text
    }
}

/// One action to decide, as written in a policy test case or given to `agentgate check`.
public struct PolicyCheckInput: Sendable {
    public var kind: ActionKind
    /// Program path for exec (`ExecDetails.assumedProgram` when not given), path or network target otherwise.
    public var target: String
    public var exec: ExecDetails?
    public var context: ProcessContext?

    public init(kind: ActionKind, target: String, exec: ExecDetails? = nil, context: ProcessContext? = nil) {
        self.kind = kind
        self.target = target
        self.exec = exec
        self.context = context
    }
}

/// A policy test case file:
/// ```yaml
/// policy: ../default.yaml          # optional, relative to this file; --policy overrides it
/// variables: {PWD: /home/dev/project, HOME: /home/dev, TMPDIR: /tmp, AGENT: claude, env: {CARGO_HOME: /opt/cargo}}
/// cases:
///   - name: reading an SSH key is denied
///     action: fs_read              # exec (default), fs_read, fs_write, net_egress
///     target: $HOME/.ssh/id_rsa    # variables as in policies
///     expect: deny                 # allow, deny, ask, log
///     rule: no-ssh-keys            # optional: the id (or number) of the rule that must decide
///   - name: npm install is logged
///     command: npm install left-pad   # exec: a command line (pipelines allowed), or argv: [npm, install]
///     context: {uid: 1000, caps: [CAP_NET_RAW], cgroup: /user.slice, exe: /usr/bin/bash,
///               ancestors: ["npm install"], agent: claude}
///     expect: log
/// ```
public struct PolicyCaseFile: Sendable {
    public struct Case: Sendable {
        public var name: String
        public var line: Int
        public var input: PolicyCheckInput
        public var expected: Decision
        public var expectedRule: String?
        /// What the case looks like in reports: the command line or the target.
        public var summary: String
    }

    public var path: String
    /// The policy named in the file (absolute), if any.
    public var policyPath: String?
    public var variables: PolicyVariables
    public var cases: [Case]

    /// Parses a case file. `defaults` supplies variables the file doesn't set.
    public static func load(path: String, defaults: PolicyVariables) throws(PolicyLoadError) -> PolicyCaseFile {
        let text = try Policy.readPolicyFile(path, includedFrom: nil)
        let root = try Policy.compose(yaml: text, source: path)
        var reader = CaseReader(source: path)
        return try reader.file(root, path: path, defaults: defaults)
    }

    /// The outcome of every case against `policy`.
    public func run(against policy: Policy) -> [CaseResult] {
        cases.map { testCase in
            let verdict = policy.decide(testCase.input.kind, target: testCase.input.target, exec: testCase.input.exec,
                                          context: testCase.input.context)
            var failure: String?
            let actualRule = verdict.ruleIndex.map { policy.rules[$0] }
            if verdict.decision != testCase.expected {
                failure = "expected \(testCase.expected.name), got \(verdict.decision.name)"
            } else if let expectedRule = testCase.expectedRule, actualRule?.displayID != expectedRule {
                failure = "expected rule \(expectedRule) to decide, but "
                    + (actualRule.map { "rule \($0.displayID) did" } ?? "no rule matched (the default applied)")
            }
            return CaseResult(testCase: testCase, verdict: verdict, failure: failure,
                              explanation: policy.explanation(of: verdict))
        }
    }
}

/// One case's outcome.
public struct CaseResult: Sendable {
    public var testCase: PolicyCaseFile.Case
    public var verdict: Verdict
    /// nil when the case passed.
    public var failure: String?
    /// Which rule decided, and why.
    public var explanation: String
}

private struct CaseReader {
    var source: String
    static let fileKeys = "policy, variables, cases"
    static let caseKeys = "name, action, target, command, argv, context, expect, rule"
    static let contextKeys = ProcessFact.spellings

    mutating func file(_ root: Node, path: String, defaults: PolicyVariables) throws(PolicyLoadError) -> PolicyCaseFile {
        guard case .mapping(let mapping) = root else {
            throw error(at: root, "expected a mapping with keys \(Self.fileKeys)")
        }
        var variables = defaults
        var policyPath: String?
        var caseNodes: [Node] = []
        for (keyNode, value) in mapping {
            switch try scalar(keyNode, "a key") {
            case "policy":
                policyPath = PolicyParser.resolve(try scalar(value, "a policy file path"), relativeTo: path)
            case "variables":
                guard case .mapping(let variableMap) = value else { throw error(at: value, "expected a mapping of variables") }
                // Variables of another machine: scopes are taken as written, not resolved here.
                variables.scopeResolver = .lexical
                for (nameNode, valueNode) in variableMap {
                    let name = try scalar(nameNode, "a variable name")
                    switch name {
                    case "PWD": variables.workingDirectory = try scalar(valueNode, "an absolute path")
                    case "HOME": variables.home = try scalar(valueNode, "an absolute path")
                    case "TMPDIR": variables.temporaryDirectory = try scalar(valueNode, "an absolute path")
                    case "AGENT": variables.agent = try scalar(valueNode, "an agent name")
                    case "env":
                        guard case .mapping(let environment) = valueNode else {
                            throw error(at: valueNode, "expected env to be a mapping of NAME: value")
                        }
                        variables.environment = [:]
                        for (envName, envValue) in environment {
                            variables.environment[try scalar(envName, "a name")] = try scalar(envValue, "a value")
                        }
                    default:
                        throw error(at: nameNode, "unknown variable \"\(name)\"; expected PWD, HOME, TMPDIR, AGENT, env")
                    }
                }
            case "cases":
                guard case .sequence(let sequence) = value else { throw error(at: value, "expected \"cases\" to be a list") }
                caseNodes = Array(sequence)
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\"; expected one of \(Self.fileKeys)")
            }
        }
        var cases: [PolicyCaseFile.Case] = []
        for node in caseNodes { cases.append(try testCase(node, variables: variables)) }
        return PolicyCaseFile(path: path, policyPath: policyPath, variables: variables, cases: cases)
    }

    mutating func testCase(_ node: Node, variables: PolicyVariables) throws(PolicyLoadError) -> PolicyCaseFile.Case {
        guard case .mapping(let mapping) = node else { throw error(at: node, "expected a case (a mapping with keys \(Self.caseKeys))") }
        var name: String?
        var kind = ActionKind.exec
        var target: String?
        var command: String?
        var argv: [String]?
        var context: ProcessContext?
        var expected: Decision?
        var rule: String?
        for (keyNode, value) in mapping {
            switch try scalar(keyNode, "a key") {
            case "name": name = try scalar(value, "a name")
            case "action":
                let text = try scalar(value, "an action")
                guard let parsed = ActionKind(name: text) else {
                    throw error(at: value, "unknown action \"\(text)\"; expected exec, fs_read, fs_write, net_egress")
                }
                kind = parsed
            case "target": target = try expand(try scalar(value, "a target"), value, variables)
            case "command": command = try expand(try scalar(value, "a command line"), value, variables)
            case "argv":
                guard case .sequence(let items) = value else { throw error(at: value, "expected argv to be a list") }
                var words: [String] = []
                for item in items { words.append(try expand(try scalar(item, "an argument"), item, variables)) }
                argv = words
            case "context": context = try self.context(value, variables: variables)
            case "expect":
                let text = try scalar(value, "a decision")
                guard let decision = Decision(name: text) else {
                    throw error(at: value, "unknown decision \"\(text)\"; expected allow, deny, ask, log")
                }
                expected = decision
            case "rule": rule = try scalar(value, "a rule id or number")
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in case; expected one of \(Self.caseKeys)")
            }
        }
        guard let expected else { throw error(at: node, "case is missing \"expect\"") }
        var exec: ExecDetails?
        var summary: String
        if kind == .exec {
            if let argv, command != nil { _ = argv; throw error(at: node, "give either command or argv, not both") }
            if let command {
                exec = ExecDetails(commandLine: command)
                summary = command
            } else if let argv, !argv.isEmpty {
                exec = ExecDetails(argv: argv)
                summary = argv.joined(separator: " ")
            } else if let target {
                exec = ExecDetails(argv: [target])
                summary = target
            } else {
                throw error(at: node, "an exec case needs command, argv or target")
            }
            if target == nil {
                guard let program = exec?.argv.first else { throw error(at: node, "the command line is empty") }
                target = ExecDetails.assumedProgram(program)
            }
        } else {
            guard command == nil, argv == nil else {
                throw error(at: node, "command and argv are for exec cases; use target for \(kind.name)")
            }
            guard let target else { throw error(at: node, "a \(kind.name) case needs a target") }
            summary = target
        }
        let mark = node.mark
        return PolicyCaseFile.Case(
            name: name ?? "\(kind.name) \(summary)", line: mark?.line ?? 0,
            input: PolicyCheckInput(kind: kind, target: target ?? "", exec: exec, context: context),
            expected: expected, expectedRule: rule, summary: summary)
    }

    mutating func context(_ node: Node, variables: PolicyVariables) throws(PolicyLoadError) -> ProcessContext {
        guard case .mapping(let mapping) = node else { throw error(at: node, "expected context to be a mapping with keys \(Self.contextKeys)") }
        var context = ProcessContext(agent: variables.agent ?? "")
        for (keyNode, value) in mapping {
            let key = try scalar(keyNode, "a key")
            guard let fact = ProcessFact(rawValue: key) else {
                throw error(at: keyNode, "unknown key \"\(key)\" in context; expected one of \(Self.contextKeys)")
            }
            let items = fact.takesList ? try list(value) : [(text: try scalar(value, fact.expectedValue), node: value)]
            var values = items.map(\.text)
            if fact == .exe { values = [try expand(values[0], value, variables)] }
            do throws(ProcessFactError) {
                try fact.set(values, in: &context)
            } catch {
                throw self.error(at: items[min(error.index, items.count - 1)].node, error.message)
            }
        }
        return context
    }

    func list(_ node: Node) throws(PolicyLoadError) -> [(text: String, node: Node)] {
        if case .sequence(let items) = node {
            var result: [(text: String, node: Node)] = []
            for item in items { result.append((try scalar(item, "a string"), item)) }
            return result
        }
        return [(try scalar(node, "a string or a list"), node)]
    }

    func expand(_ text: String, _ node: Node, _ variables: PolicyVariables) throws(PolicyLoadError) -> String {
        do {
            return try variables.expand(text, escapeGlob: false).text
        } catch {
            throw self.error(at: node, error.message)
        }
    }

    func scalar(_ node: Node, _ expected: String) throws(PolicyLoadError) -> String {
        guard case .scalar(let value) = node, node.null == nil else {
            throw error(at: node, "expected \(expected)")
        }
        return value.string
    }

    func error(at node: Node, _ message: String) -> PolicyLoadError {
        PolicyLoadError(file: source, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, message: message)
    }
}
