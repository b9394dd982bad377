/// What an exec runs: its own argv plus every command hidden inside shell strings and wrappers,
/// so `argv`/`command` policy rules can match what actually executes.
public struct CommandAnalysis: Sendable, Equatable {
    /// Every command to match `argv`/`command` policy rules against: the exec's own argv first;
    /// then, when argv is a shell (basename sh, bash, dash, zsh, ksh, mksh, ash, busybox sh…) given a
    /// command string (`-c STRING`, also combined flags like `-lc`, `-ec`, `-xc`, `--login -c`),
    /// every simple command of that string, recursively (a command that is itself `bash -c …` is
    /// analysed too, depth-capped). Each command's leading assignments are removed; when it starts
    /// with a transparent wrapper (env [-i] [-u X] [NAME=v…], exec, command, builtin, nohup, time,
    /// nice [-n N], timeout DURATION, stdbuf …, xargs [opts]), the unwrapped command is ALSO added
    /// (the wrapped form stays too). Duplicates removed, order stable.
    ///
    /// Also looked into, because their text is otherwise opaque to argv rules: `eval ARGS`,
    /// `su -c STRING`, `trap ACTION SIG`, `alias NAME=VALUE`, `watch CMD`, `find … -exec CMD ;`,
    /// setsid/ionice/`busybox APPLET` wrappers, a brace-expanded command word (`{rm,-rf,/}`),
    /// here-documents and here-strings fed to a shell that reads its script from standard input,
    /// `echo`/`printf`/`cat <<EOF` piped into such a shell, and shell strings run through
    /// sudo/doas/pkexec. The sudo-wrapped command itself is not added unwrapped: sudo's argv is
    /// visible to rules as it is.
    ///
    /// Shell strings are read under every shell dialect that reads them differently (bash's `$'…'`
    /// strings or dash's plain `$`; quotes inside `"${…}"` or not) and the union is kept.
    public var commands: [[String]]
    /// Multi-stage pipelines from shell strings (2+ stages), each stage as its word list. Each
    /// pipeline is listed with its stages unwrapped first (the innermost command once transparent
    /// wrappers are removed: `curl x | env sh` gives [["curl","x"],["sh"]]), then as written when
    /// that differs. A stage that runs several commands (a compound stage `{ :; sh; }`, a loop,
    /// substitutions inside it, a function or alias defined in the string) adds one variant per
    /// other command it runs, with that command as the stage (and, when two neighbouring stages
    /// both do, two-stage variants of their pairs), at most `maximumPipelineVariants` entries per
    /// pipeline. A variant of a pipeline longer than 16 stages lists the 16 stages around the
    /// replaced one.
    public var pipelines: [[[String]]]
    /// True when a shell string was present but did not fully parse (ShellScript.error != nil),
    /// or was not analysed in full (too long, too complex, too many commands or pipelines).
    public var shellParseFailed: Bool
    /// The parse errors and the analysis limits reached, if any (at most 32, distinct).
    public var shellErrors: [String]

    public init(
        commands: [[String]] = [], pipelines: [[[String]]] = [], shellParseFailed: Bool = false,
        shellErrors: [String] = []
    ) {
        self.commands = commands
        self.pipelines = pipelines
        self.shellParseFailed = shellParseFailed
        self.shellErrors = shellErrors
    }

    /// How many levels of shell strings and wrappers are followed (`sh -c "bash -c '…'"` is two).
    public static let maximumDepth = 16

    /// The longest shell string analysed, in bytes. A longer one is cut (at its last line break in
    /// the second half of the allowance, when there is one), and `shellParseFailed` says so.
    public static let maximumScriptLength = 64 * 1024

    /// Bytes of shell text parsed for one analysis in total: nested strings, here-documents fed to
    /// shells and printed scripts included. Past it, shell strings are cut or skipped (flagged).
    public static let maximumTotalScriptLength = 128 * 1024

    /// The parser's work units (about one per word or operator, five per nesting level) for one
    /// analysis, summed over every string and dialect reading: about twice what 64 KiB of dense
    /// shell script needs.
    static let maximumParseSteps = 40_000

    /// At most this many entries of `pipelines` per pipeline of a shell string.
    public static let maximumPipelineVariants = 64

    /// At most this many entries in `commands` and in `pipelines`; past them the analysis is
    /// flagged as incomplete.
    public static let maximumCommands = 8192
    public static let maximumPipelines = 1024

    public static func analyze(argv: [String]) -> CommandAnalysis {
        var builder = AnalysisBuilder()
        builder.add(argv, depth: 0)
        return builder.analysis
    }

    /// Renders words as one command line: words joined by single spaces (no quoting), the form
    /// `command:` globs match against. Pipelines render as stage lines joined by " | ".
    public static func line(_ words: [String]) -> String {
        words.joined(separator: " ")
    }

    public static func line(pipeline: [[String]]) -> String {
        pipeline.map { line($0) }.joined(separator: " | ")
    }


    /// The command string argv hands to a shell (`sh -c STRING`, `bash -lc STRING`, `busybox sh -c
    /// STRING`), or nil when argv is not a shell given one.
    public static func shellCommandString(_ argv: [String]) -> String? {
        if case .commandString(let script)? = CommandWords.shellInput(argv) { return script }
        return nil
    }
}

/// Accumulates an analysis; `seen` sets keep it duplicate-free and each distinct command or shell
/// string is expanded once. Every budget is global to the analysis, so nesting cannot multiply it.
private struct AnalysisBuilder {
    var analysis = CommandAnalysis()
    private var seenCommands: Set<[String]> = []
    private var seenPipelines: Set<[[String]]> = []
    private var parsedScripts: Set<String> = []
    private var scriptBytesLeft = CommandAnalysis.maximumTotalScriptLength
    private var parseStepsLeft = CommandAnalysis.maximumParseSteps
    private static let maximumErrors = 32
    /// Stages around a replaced one in a variant of a long pipeline.
    private static let variantWindow = 16

    /// Records that the analysis is incomplete or a string malformed.
    mutating func note(_ error: String) {
        analysis.shellParseFailed = true
        if analysis.shellErrors.count < Self.maximumErrors, !analysis.shellErrors.contains(error) {
            analysis.shellErrors.append(error)
        }
    }

    mutating func add(_ words: [String], depth: Int) {
        guard let first = words.first else { return }
        guard analysis.commands.count < CommandAnalysis.maximumCommands else {
            note("more than \(CommandAnalysis.maximumCommands) commands: the rest were not analysed")
            return
        }
        guard seenCommands.insert(words).inserted else { return }
        analysis.commands.append(words)
        guard depth < CommandAnalysis.maximumDepth else { return }
        if first.utf8.first == 0x7B, let expanded = CommandWords.braceExpandedProgram(words) { add(expanded, depth: depth + 1) }
        // Most commands run nothing else: one name lookup spares them every recogniser.
        guard CommandWords.mayRunOtherCommands(CommandWords.name(first)) else { return }
        for inner in CommandWords.wrappedCommands(words) { add(inner, depth: depth + 1) }
        for script in CommandWords.embeddedScripts(words) { addScript(script, depth: depth + 1) }
    }

    mutating func addScript(_ source: String, depth: Int) {
        guard !source.isEmpty else { return }
        let allowance = min(CommandAnalysis.maximumScriptLength, scriptBytesLeft)
        guard allowance > 0, parseStepsLeft > 0 else {
            note("shell strings too long or complex in all: the rest were not analysed")
            return
        }
        var text = source
        var truncated = false
        if source.utf8.count > allowance {
            text = Self.prefix(of: source, bytes: allowance)
            truncated = true
        }
        // Deduplicated on what is parsed, so a huge string is not hashed in full.
        guard parsedScripts.insert(text).inserted else { return }
        if truncated {
            note(allowance == CommandAnalysis.maximumScriptLength
                ? "shell string truncated: only its first \(text.utf8.count) bytes were analysed"
                : "shell strings longer than \(CommandAnalysis.maximumTotalScriptLength) bytes in all: truncated")
        }
        scriptBytesLeft -= text.utf8.count
        let (script, steps) = ShellScript.parseAllDialects(text, stepLimit: parseStepsLeft)
        parseStepsLeft -= steps
        if let error = script.error { note(error) }
        for command in script.commands {
            add(command.words, depth: depth)
            if !command.inputDocuments.isEmpty, depth < CommandAnalysis.maximumDepth,
               CommandWords.readsShellScriptFromStandardInput(command.words) {
                for document in command.inputDocuments { addScript(document, depth: depth + 1) }
            }
        }
        addPipelines(of: script, depth: depth)
    }

    /// The first `bytes` bytes of `source`, ending at a line break in their second half if any.
    private static func prefix(of source: String, bytes: Int) -> String {
        var head = Array(source.utf8.prefix(bytes))
        var index = head.count - 1
        while index >= bytes / 2 {
            if head[index] == 0x0A {
                head.removeSubrange((index + 1)...)
                break
            }
            index -= 1
        }
        return String(decoding: head, as: UTF8.self)
    }

    private mutating func addPipelines(of script: ShellScript, depth: Int) {
        for stages in script.stagesOrPipelines where stages.count > 1 {
            guard analysis.pipelines.count < CommandAnalysis.maximumPipelines else {
                note("more than \(CommandAnalysis.maximumPipelines) pipelines: the rest were not analysed")
                return
            }
            // Each stage's commands with words (an assignment-only command runs nothing by itself).
            var options: [[Int]] = []
            options.reserveCapacity(stages.count)
            for stage in stages {
                if stage.count == 1 {
                    if !script.commands[stage[0]].words.isEmpty { options.append(stage) }
                    continue
                }
                let withWords = stage.filter { !script.commands[$0].words.isEmpty }
                if !withWords.isEmpty { options.append(withWords) }
            }
            guard options.count > 1 else { continue }
            var emitted = 0
            let written = options.map { script.commands[$0[0]].words }
            let base = written.map(CommandWords.unwrappedStage)
            emit(base, &emitted)
            if base != written { emit(written, &emitted) }
            // One variant per other command a stage runs, and pairs of neighbouring stages' others.
            let count = base.count
            for stage in 0..<count where options[stage].count > 1 {
                for command in options[stage].dropFirst() {
                    guard emitted < CommandAnalysis.maximumPipelineVariants else { break }
                    let start = count <= Self.variantWindow
                        ? 0 : min(max(0, stage - Self.variantWindow / 2), count - Self.variantWindow)
                    var variant = Array(base[start..<min(count, start + Self.variantWindow)])
                    variant[stage - start] = CommandWords.unwrappedStage(script.commands[command].words)
                    emit(variant, &emitted)
                }
            }
            for stage in 0..<(count - 1) where options[stage].count > 1 && options[stage + 1].count > 1 {
                for first in options[stage].dropFirst() {
                    for second in options[stage + 1].dropFirst() {
                        guard emitted < CommandAnalysis.maximumPipelineVariants else { break }
                        emit([CommandWords.unwrappedStage(script.commands[first].words),
                              CommandWords.unwrappedStage(script.commands[second].words)], &emitted)
                    }
                }
            }
            if emitted >= CommandAnalysis.maximumPipelineVariants {
                note("a pipeline runs too many commands: only \(CommandAnalysis.maximumPipelineVariants) of its variants are listed")
            }
            guard depth < CommandAnalysis.maximumDepth else { continue }
            // `echo 'rm -rf /' | sh`, `cat <<EOF | sh`: the printed text is the script.
            for stage in 1..<count where options[stage].contains(where: {
                CommandWords.readsShellScriptFromStandardInput(script.commands[$0].words)
            }) {
                for previous in options[stage - 1] {
                    for text in CommandWords.printedText(script.commands[previous]) { addScript(text, depth: depth + 1) }
                }
            }
        }
    }

    /// Adds one pipeline entry unless already listed or past a cap.
    private mutating func emit(_ pipeline: [[String]], _ emitted: inout Int) {
        guard pipeline.count > 1, !pipeline.contains(where: \.isEmpty) else { return }
        guard analysis.pipelines.count < CommandAnalysis.maximumPipelines else {
            note("more than \(CommandAnalysis.maximumPipelines) pipelines: the rest were not analysed")
            return
        }
        guard emitted < CommandAnalysis.maximumPipelineVariants else { return }
        if seenPipelines.insert(pipeline).inserted {
            analysis.pipelines.append(pipeline)
            emitted += 1
        }
    }
}
