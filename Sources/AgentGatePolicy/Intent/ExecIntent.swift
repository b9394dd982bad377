/// Reads an exec's commands for the most significant thing they do.
enum ExecIntent {
    /// Most significant first.
    enum Significance: Int, Comparable {
        case remoteScript, destructiveDelete, privilegeChange, gitForcePush, gitPush, packageInstall, networkTool

        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    static func describe(target: String, argv: [String]?, analysis: CommandAnalysis?, home: HomeDirectory) -> Intent {
        guard let argv, !argv.isEmpty else {
            return Intent(.run, "agent wants to run \(home.abbreviate(target))")
        }
        let analysis = analysis ?? CommandAnalysis.analyze(argv: argv)
        var budget = IntentBudget()
        let pipelines = budget.pipelines(analysis.pipelines)
        let commands = budget.commands(analysis.commands.isEmpty ? [argv] : analysis.commands)
        if let remote = RemoteScript.find(pipelines: pipelines, commands: commands, budget: &budget) { return remote }
        var best: (significance: Significance, intent: Intent)?
        for command in commands {
            guard let candidate = classify(command) else { continue }
            if let best, best.significance <= candidate.significance { continue }
            best = candidate
            if candidate.significance == .destructiveDelete { break }
        }
        if let best { return best.intent }
        let shown = CommandAnalysis.shellCommandString(argv) ?? IntentText.line(argv)
        return Intent(.run, "agent wants to run \(IntentText.display(shown))")
    }

    /// The most significant thing one command does, if anything beyond running a program.
    static func classify(_ command: [String]) -> (significance: Significance, intent: Intent)? {
        var outer = command
        for _ in 0..<CommandAnalysis.maximumDepth {
            guard let inner = CommandWords.unwrapped(outer) else { break }
            outer = inner
        }
        let privilege = CommandWords.privilege(outer)
        // The core command, noting whether xargs feeds it operands.
        var core = command
        var operandsFromInput = false
        for _ in 0..<CommandAnalysis.maximumDepth {
            if let first = core.first, CommandWords.name(first) == "xargs" { operandsFromInput = true }
            if let inner = CommandWords.unwrapped(core) {
                core = inner
            } else if let privilege = CommandWords.privilege(core), !privilege.command.isEmpty {
                core = privilege.command
            } else {
                break
            }
        }
        guard let first = core.first else { return nil }
        let program = CommandWords.name(first)
        if let text = DestructiveCommand.describe(core, program: program, operandsFromInput: operandsFromInput) {
            let asUser = privilege.map { " (as \($0.user))" } ?? ""
            return (.destructiveDelete, Intent(.destructiveDelete, text + asUser))
        }
        if let privilege {
            return (.privilegeChange, Intent(.privilegeChange, PrivilegeCommand.describe(privilege, command: outer)))
        }
        if let text = PrivilegeCommand.describeChange(core, program: program) {
            return (.privilegeChange, Intent(.privilegeChange, text))
        }
        if let push = GitCommand.push(core) {
            return push.force
                ? (.gitForcePush, Intent(.gitForcePush, push.text))
                : (.gitPush, Intent(.gitPush, push.text))
        }
        if let text = PackageInstall.describe(core, program: program) {
            return (.packageInstall, Intent(.packageInstall, text))
        }
        if let text = NetworkCommand.describe(core, program: program) {
            return (.networkTool, Intent(.networkTool, text))
        }
        return nil
    }
}

/// How much of an analysis an intent looks at: the description is for people, and computing it
/// must stay cheap however large or deeply nested the exec's shell strings are.
struct IntentBudget {
    /// Commands and pipelines classified, in the analysis' order (the exec's own argv first).
    static let maximumCommands = 256
    static let maximumPipelines = 64
    static let maximumStages = 64
    /// Bytes of words looked at, over all commands, and over all pipeline stages.
    static let maximumCommandBytes = 256 * 1024
    static let maximumPipelineBytes = 128 * 1024
    /// Substitution texts parsed to find a fetcher (`$(curl …)`), and the bytes read of each.
    static let maximumParses = 6
    static let maximumParsedBytes = 2048
    static let maximumParseSteps = 600

    var commandBytesLeft = maximumCommandBytes
    var pipelineBytesLeft = maximumPipelineBytes
    var parsesLeft = maximumParses

    /// The commands within the caps (a command too large for what is left is passed over).
    mutating func commands(_ all: [[String]]) -> [[String]] {
        var chosen: [[String]] = []
        for command in all.prefix(Self.maximumCommands * 4) {
            guard chosen.count < Self.maximumCommands, commandBytesLeft > 0 else { break }
            if Self.take(command, from: &commandBytesLeft) { chosen.append(command) }
        }
        return chosen
    }

    mutating func pipelines(_ all: [[[String]]]) -> [[[String]]] {
        var chosen: [[[String]]] = []
        for pipeline in all.prefix(Self.maximumPipelines) {
            var stages: [[String]] = []
            for stage in pipeline.prefix(Self.maximumStages) {
                guard Self.take(stage, from: &pipelineBytesLeft) else { break }
                stages.append(stage)
            }
            if stages.count > 1 { chosen.append(stages) }
        }
        return chosen
    }

    /// Charges a command's bytes to `bytesLeft`; false when they do not fit.
    private static func take(_ words: [String], from bytesLeft: inout Int) -> Bool {
        var size = 0
        for word in words {
            size += word.utf8.count + 1
            if size > bytesLeft { return false }
        }
        bytesLeft -= size
        return true
    }

    /// `text` parsed (its first `maximumParsedBytes` bytes), while parses are left.
    mutating func parse(_ text: String) -> ShellScript? {
        guard parsesLeft > 0 else { return nil }
        parsesLeft -= 1
        let head = text.utf8.count > Self.maximumParsedBytes
            ? String(decoding: text.utf8.prefix(Self.maximumParsedBytes), as: UTF8.self) : text
        return ShellScript.parseReporting(head, dialect: .standard, stepLimit: Self.maximumParseSteps).script
    }
}
