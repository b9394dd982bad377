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

    /// The last path component of argv[0] ("/usr/bin/git" → "git"); policy globs without a '/'
    /// match argv[0] by this name. Works on bytes: linear in the length of that component.
    public static func programName(_ argv0: String) -> String {
        var word = argv0
        return word.withUTF8 { bytes -> String? in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
            // Trailing slashes go, unless the path is all slashes ("/" stays "/").
            var end = bytes.count
            while end > 1, base[end - 1] == 0x2F { end -= 1 }
            var start = end
            while start > 0, base[start - 1] != 0x2F { start -= 1 }
            if start == end { return "/" } // only "/" is left
            if start == 0, end == bytes.count { return nil } // no slash: the word itself
            return String(decoding: UnsafeBufferPointer(start: base + start, count: end - start), as: UTF8.self)
        } ?? argv0
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

/// Recognisers for shells, wrappers and privilege tools in argv-style word lists. Shared by
/// `CommandAnalysis` and `Intent`.
enum CommandWords {
    /// How a shell invocation gets its script.
    enum ShellInput: Equatable {
        case commandString(String)
        case standardInput
        case scriptFile(String)
    }

    static let shellNames: Set<String> = [
        "sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "lksh", "pdksh", "oksh", "ash", "yash",
        "posh", "rbash", "fish", "csh", "tcsh",
    ]

    /// Transparent wrappers `unwrapped` looks through.
    static let wrapperNames: Set<String> = [
        "env", "exec", "command", "builtin", "nohup", "setsid", "busybox", "toybox", "time", "nice", "timeout",
        "stdbuf", "ionice", "xargs",
    ]
    /// Tools that run a command as another user (`privilege`).
    static let privilegeNames: Set<String> = ["sudo", "doas", "pkexec", "su", "runuser"]
    /// Every program name after which some recogniser here finds other code to analyse.
    private static let codeRunnerNames: Set<String> = wrapperNames.union(privilegeNames).union(shellNames)
        .union(["eval", "trap", "alias", "watch", "find"])

    /// Whether a command named `program` may run other commands this file recognises (wrappers,
    /// shells, privilege tools, eval/trap/alias/watch, find -exec). Others need no further look.
    static func mayRunOtherCommands(_ program: String) -> Bool { codeRunnerNames.contains(program) }

    /// The program name with a login shell's leading "-" removed ("-bash" → "bash").
    static func name(_ word: String) -> String {
        let name = CommandAnalysis.programName(word)
        return name.utf8.first == 0x2D && name.utf8.count > 1 ? String(name.dropFirst()) : name
    }

    static func isShell(_ word: String) -> Bool { shellNames.contains(name(word)) }

    /// How `words` (a shell, possibly `busybox sh`) reads its script; nil when it is no shell.
    static func shellInput(_ words: [String]) -> ShellInput? {
        guard let first = words.first else { return nil }
        var program = name(first)
        var arguments = words.dropFirst()
        if program == "busybox" || program == "toybox" {
            guard let applet = arguments.first else { return nil }
            program = name(applet)
            arguments = arguments.dropFirst()
        }
        guard shellNames.contains(program) else { return nil }
        var readsCommandString = false
        var readsStandardInput = false
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            if argument == "--" || argument == "-" {
                index += 1
                break
            }
            if argument.hasPrefix("--") {
                if program == "fish" {
                    for option in ["--command", "--init-command"] {
                        if argument == option, index + 1 < arguments.endIndex {
                            return .commandString(arguments[index + 1])
                        }
                        if argument.hasPrefix(option + "=") {
                            return .commandString(String(argument.dropFirst(option.count + 1)))
                        }
                    }
                }
                index += argument == "--rcfile" || argument == "--init-file" ? 2 : 1
                continue
            }
            let sign = argument.utf8.first
            guard argument.utf8.count > 1, sign == 0x2D || sign == 0x2B else { break }
            // A cluster of single-letter options; -o/-O (and +o/+O) take the next word.
            var valueCount = 0
            for letter in argument.utf8.dropFirst().prefix(Self.maximumOptionCluster) {
                switch letter {
                case 0x63 where sign == 0x2D: readsCommandString = true // c
                case 0x73 where sign == 0x2D: readsStandardInput = true // s
                case 0x6F, 0x4F: valueCount += 1 // o O
                case 0x43 where program == "fish": readsCommandString = true // C
                default: break
                }
            }
            index += 1 + valueCount
        }
        let operands = arguments[min(index, arguments.endIndex)...]
        if readsCommandString { return operands.first.map { .commandString($0) } }
        if readsStandardInput || operands.isEmpty { return .standardInput }
        return .scriptFile(operands[operands.startIndex])
    }

    /// Letters of one option word looked at: real clusters are short, and a hostile one must not
    /// cost more than that.
    static let maximumOptionCluster = 32

    /// Whether `words` (through wrappers and sudo) is a shell reading its script from stdin.
    static func readsShellScriptFromStandardInput(_ words: [String]) -> Bool {
        guard let first = words.first, mayRunOtherCommands(name(first)) else { return false }
        return shellInput(innermostCommand(words)) == .standardInput
    }

    /// The operands after `words[0]`'s options. `valued` lists the options taking a value: a short
    /// one ("-n") also accepts it attached ("-n5"), a long one ("--signal") also as "--signal=X".
    static func operands(_ words: ArraySlice<String>, valued: Set<String>) -> ArraySlice<String> {
        var index = words.startIndex + 1
        while index < words.endIndex {
            let word = words[index]
            if word == "--" { return words[(index + 1)...] }
            guard word.utf8.first == 0x2D, word.utf8.count > 1 else { break }
            if word.hasPrefix("--") {
                index += !word.contains("=") && valued.contains(word) ? 2 : 1
                continue
            }
            index += takesValue(word, valued: valued) ? 2 : 1
        }
        return words[min(index, words.endIndex)...]
    }

    /// Whether the short-option cluster `word` ("-vn") ends with an option taking the next word as
    /// its value: its first valued letter is its last.
    static func takesValue(_ word: String, valued: Set<String>) -> Bool {
        guard word.utf8.count <= maximumOptionCluster + 1 else { return false }
        let letters = word.unicodeScalars.dropFirst()
        var offset = 0
        for letter in letters {
            offset += 1
            if valued.contains("-" + String(letter)) { return offset == letters.count }
        }
        return false
    }

    /// The innermost command once transparent wrappers (env, command, exec, nohup, time, nice,
    /// timeout, stdbuf, xargs, busybox, setsid, ionice, builtin) are removed; sudo-like tools stay.
    static func unwrappedStage(_ words: [String]) -> [String] {
        var current = words
        for _ in 0..<CommandAnalysis.maximumDepth {
            guard let inner = unwrapped(current) else { break }
            current = inner
        }
        return current
    }

    /// The command a transparent wrapper runs (`nohup make` → `make`), or nil. One level only.
    static func unwrapped(_ words: [String]) -> [String]? {
        guard let first = words.first else { return nil }
        let program = name(first)
        guard wrapperNames.contains(program) else { return nil }
        let all = words[...]
        let inner: ArraySlice<String>
        switch program {
        case "env":
            return envCommand(words)
        case "exec":
            inner = operands(all, valued: ["-a"])
        case "command":
            // `command -v NAME` only looks NAME up.
            let rest = operands(all, valued: [])
            let options = all.dropFirst().prefix(rest.startIndex - all.startIndex - 1)
            if options.contains(where: { !$0.hasPrefix("--") && ($0.contains("v") || $0.contains("V")) }) { return nil }
            inner = rest
        case "builtin", "nohup", "setsid":
            inner = operands(all, valued: [])
        case "busybox", "toybox":
            // `busybox rm -rf /` runs the rm applet.
            guard words.count > 1, words[1].utf8.first != 0x2D else { return nil }
            inner = all.dropFirst()
        case "time":
            inner = operands(all, valued: ["-f", "--format", "-o", "--output"])
        case "nice":
            inner = operands(all, valued: ["-n", "--adjustment"])
        case "timeout":
            inner = operands(all, valued: ["-s", "--signal", "-k", "--kill-after"]).dropFirst()
        case "stdbuf":
            inner = operands(all, valued: ["-i", "-o", "-e", "--input", "--output", "--error"])
        case "ionice":
            inner = operands(all, valued: ["-c", "--class", "-n", "--classdata", "-p", "--pid", "-P", "--pgid", "-u", "--uid"])
        case "xargs":
            inner = operands(all, valued: [
                "-a", "--arg-file", "-d", "--delimiter", "-E", "-I", "-L", "-n", "--max-args", "-P",
                "--max-procs", "-s", "--max-chars", "--process-slot-var",
            ])
        default:
            return nil
        }
        return inner.isEmpty ? nil : Array(inner)
    }

    /// `env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=value…] command…`.
    private static func envCommand(_ words: [String]) -> [String]? {
        var prefix: [String] = []
        var index = 1
        scan: while index < words.count {
            let word = words[index]
            switch word {
            case "--":
                index += 1
                break scan
            case "-":
                index += 1
                continue
            case "--unset", "--chdir":
                index += 2
                continue
            case "--split-string":
                if index + 1 < words.count { prefix += splitArguments(words[index + 1]) }
                index += 2
                continue
            default:
                break
            }
            if word.hasPrefix("--split-string=") {
                prefix += splitArguments(String(word.dropFirst("--split-string=".count)))
                index += 1
                continue
            }
            if word.hasPrefix("--") {
                index += 1
                continue
            }
            guard word.utf8.first == 0x2D, word.utf8.count > 1 else { break }
            let letters = Array(word.dropFirst())
            var consumed = 1
            for (offset, letter) in letters.enumerated() where "uCSP".contains(letter) {
                let attached = String(letters[(offset + 1)...])
                var value: String?
                if attached.isEmpty {
                    value = index + 1 < words.count ? words[index + 1] : nil
                    consumed = 2
                } else {
                    value = attached
                }
                if letter == "S", let value { prefix += splitArguments(value) }
                break
            }
            index += consumed
        }
        while index < words.count, words[index].contains("=") { index += 1 }
        let command = prefix + words[min(index, words.count)...]
        return command.isEmpty ? nil : command
    }

    /// `env -S` splits its string like a shell would split words (without running anything).
    /// Only its first words matter, so the work is capped (a few thousand words; the text is
    /// read up to `maximumScriptLength`): the cost is proportional to the string, whatever it holds.
    private static func splitArguments(_ text: String) -> [String] {
        let limit = CommandAnalysis.maximumScriptLength
        let head = text.utf8.count > limit ? String(decoding: text.utf8.prefix(limit), as: UTF8.self) : text
        return ShellScript.parseReporting(head, dialect: .standard, stepLimit: 2_000).script.commands.first?.words ?? []
    }

    /// Commands `find … -exec CMD ;` (also -execdir, -ok, -okdir, and `+`) runs.
    static func findCommands(_ words: [String]) -> [[String]] {
        guard let first = words.first, name(first) == "find" else { return [] }
        var commands: [[String]] = []
        var index = 1
        while index < words.count {
            guard ["-exec", "-execdir", "-ok", "-okdir"].contains(words[index]) else {
                index += 1
                continue
            }
            var command: [String] = []
            index += 1
            while index < words.count, words[index] != ";", words[index] != "+" {
                command.append(words[index])
                index += 1
            }
            if !command.isEmpty { commands.append(command) }
            index += 1
        }
        return commands
    }

    /// Commands `words` runs as a wrapper: the unwrapped command, or find's -exec commands.
    static func wrappedCommands(_ words: [String]) -> [[String]] {
        if let inner = unwrapped(words) { return [inner] }
        return findCommands(words)
    }

    /// `{rm,-rf,/}` as the command word: bash brace-expands it into `rm -rf /`. Only that plain,
    /// unnested form is expanded (the parser has removed quotes, so a quoted one would match too:
    /// an extra candidate, never a missed one).
    static func braceExpandedProgram(_ words: [String]) -> [String]? {
        guard let first = words.first, first.utf8.count > 2, first.utf8.count <= 4096, first.utf8.first == 0x7B,
              first.utf8.last == 0x7D else { return nil }
        let inside = first.dropFirst().dropLast()
        guard inside.contains(","), !inside.contains("{"), !inside.contains("}") else { return nil }
        let expanded = inside.split(separator: ",", omittingEmptySubsequences: true).map(String.init)
        return expanded.isEmpty ? nil : expanded + words.dropFirst()
    }

    /// sudo, doas, pkexec, su: who the command runs as and what it runs.
    struct Privilege {
        /// "sudo", "doas", "pkexec", "su", "runuser".
        var tool: String
        var user: String
        /// The command run (argv form); empty when there is none or it is a string (`su -c`).
        var command: [String]
        /// `su -c STRING`, `runuser -c STRING`.
        var commandString: String?
        /// `sudo -i`, `sudo -s`, `doas -s`, `su` without a command: an interactive shell.
        var opensShell: Bool
    }

    static func privilege(_ words: [String]) -> Privilege? {
        guard let first = words.first else { return nil }
        let tool = name(first)
        guard privilegeNames.contains(tool) else { return nil }
        switch tool {
        case "sudo":
            return privilegedCommand(
                words, tool: tool,
                valued: ["-u", "-g", "-C", "-D", "-p", "-r", "-t", "-T", "-U", "-R", "--user", "--group",
                         "--close-from", "--chdir", "--prompt", "--role", "--type", "--command-timeout",
                         "--other-user", "--host", "--chroot"],
                userOptions: ["-u", "--user"], shellOptions: ["-i", "-s", "--login", "--shell"])
        case "doas":
            return privilegedCommand(words, tool: tool, valued: ["-u", "-C"], userOptions: ["-u"], shellOptions: ["-s"])
        case "pkexec":
            return privilegedCommand(words, tool: tool, valued: ["--user"], userOptions: ["--user"], shellOptions: [])
        case "su", "runuser":
            return switchUser(words, tool: tool)
        default:
            return nil
        }
    }

    private static func privilegedCommand(
        _ words: [String], tool: String, valued: Set<String>, userOptions: Set<String>, shellOptions: Set<String>
    ) -> Privilege {
        var user = "root"
        var opensShell = false
        var index = 1
        while index < words.count {
            let word = words[index]
            if word == "--" {
                index += 1
                break
            }
            guard word.utf8.first == 0x2D, word.utf8.count > 1 else { break }
            if word.hasPrefix("--") {
                let optionName = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
                let value: String? = word.contains("=")
                    ? String(word.drop { $0 != "=" }.dropFirst())
                    : (valued.contains(word) && index + 1 < words.count ? words[index + 1] : nil)
                if userOptions.contains(optionName), let value { user = value }
                if shellOptions.contains(word) { opensShell = true }
                index += !word.contains("=") && valued.contains(word) ? 2 : 1
                continue
            }
            let letters = Array(word.dropFirst())
            var consumed = 1
            for (offset, letter) in letters.enumerated() {
                let option = "-" + String(letter)
                if shellOptions.contains(option) { opensShell = true }
                guard valued.contains(option) else { continue }
                let attached = String(letters[(offset + 1)...])
                let value = attached.isEmpty ? (index + 1 < words.count ? words[index + 1] : nil) : attached
                if attached.isEmpty { consumed = 2 }
                if userOptions.contains(option), let value { user = value }
                break
            }
            index += consumed
        }
        // sudo accepts NAME=value assignments before the command.
        if tool == "sudo" {
            while index < words.count, let equals = words[index].firstIndex(of: "="), equals != words[index].startIndex,
                  words[index][..<equals].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                index += 1
            }
        }
        let command = Array(words[min(index, words.count)...])
        return Privilege(tool: tool, user: user, command: command, commandString: nil, opensShell: opensShell && command.isEmpty)
    }

    /// `su [options] [-] [user [args…]]` with `-c STRING`.
    private static func switchUser(_ words: [String], tool: String) -> Privilege {
        var commandString: String?
        var user: String?
        var index = 1
        while index < words.count {
            let word = words[index]
            switch word {
            case "-c", "--command":
                if index + 1 < words.count { commandString = words[index + 1] }
                index += 2
                continue
            case "-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w", "--whitelist-environment":
                index += 2
                continue
            default:
                break
            }
            if word.hasPrefix("--command=") {
                commandString = String(word.dropFirst("--command=".count))
            } else if word.hasPrefix("-c"), word.utf8.count > 2, !word.hasPrefix("--") {
                commandString = String(word.dropFirst(2))
            } else if !word.hasPrefix("-"), user == nil {
                user = word
            }
            index += 1
        }
        return Privilege(
            tool: tool, user: user ?? "root", command: [], commandString: commandString,
            opensShell: commandString == nil)
    }

    /// The command at the core of `words`: transparent wrappers and sudo-like tools removed
    /// (`sudo -E env X=1 nohup bash -` → `bash -`).
    static func innermostCommand(_ words: [String]) -> [String] {
        var current = words
        for _ in 0..<CommandAnalysis.maximumDepth {
            if let inner = unwrapped(current) {
                current = inner
            } else if let privilege = privilege(current), !privilege.command.isEmpty {
                current = privilege.command
            } else {
                break
            }
        }
        return current
    }

    /// Shell source text `words` runs: a shell's command string, `eval`'s arguments, `su -c`'s
    /// string, also when reached through sudo-like tools (plain transparent wrappers are left to
    /// the caller, which analyses the unwrapped command by itself).
    static func embeddedScripts(_ words: [String]) -> [String] {
        var current = words
        var throughPrivilege = false
        for _ in 0..<CommandAnalysis.maximumDepth {
            guard let first = current.first else { return [] }
            if let script = CommandAnalysis.shellCommandString(current) { return [script] }
            switch name(first) {
            case "eval":
                let text = current.dropFirst().joined(separator: " ")
                return text.isEmpty ? [] : [text]
            case "trap":
                // trap ACTION SIGNAL…: the action runs when the signal arrives.
                let arguments = operands(current[...], valued: [])
                guard arguments.count > 1, let action = arguments.first, action != "-", !action.isEmpty else { return [] }
                return [action]
            case "alias":
                // alias NAME=VALUE…: the value runs wherever NAME is used as a command.
                return operands(current[...], valued: []).compactMap { definition in
                    definition.firstIndex(of: "=").map { String(definition[definition.index(after: $0)...]) }
                }.filter { !$0.isEmpty }
            case "watch":
                // watch runs its arguments, joined by spaces, with `sh -c`.
                let text = operands(current[...], valued: ["-n", "--interval", "-q", "--equexit"]).joined(separator: " ")
                return text.isEmpty ? [] : [text]
            default:
                break
            }
            if let privilege = privilege(current) {
                if let script = privilege.commandString { return [script] }
                guard !privilege.command.isEmpty else { return [] }
                current = privilege.command
                throughPrivilege = true
                continue
            }
            if throughPrivilege, let inner = unwrapped(current) {
                current = inner
                continue
            }
            return []
        }
        return []
    }

    /// What `echo …`, `printf …` or `cat` of a here-document prints, as candidate scripts (for
    /// `echo 'cmd' | sh`).
    static func printedText(_ command: ShellSimpleCommand) -> [String] {
        let core = innermostCommand(command.words)
        guard let first = core.first else { return [] }
        var arguments = core.dropFirst()
        switch name(first) {
        case "cat":
            return arguments.allSatisfy { $0 == "-" || $0.hasPrefix("-") } ? command.inputDocuments : []
        case "echo":
            var interpretsEscapes = false
            while let option = arguments.first, option.utf8.count > 1, option.utf8.first == 0x2D,
                  option.dropFirst().allSatisfy({ "neE".contains($0) }) {
                if option.contains("e") { interpretsEscapes = true }
                arguments = arguments.dropFirst()
            }
            let text = arguments.joined(separator: " ")
            return text.isEmpty ? [] : [interpretsEscapes ? decodingEscapes(text) : text]
        case "printf":
            if arguments.first == "-v" { arguments = arguments.dropFirst(2) }
            if arguments.first == "--" { arguments = arguments.dropFirst() }
            guard let format = arguments.first else { return [] }
            return [decodingEscapes(format)] + arguments.dropFirst()
        default:
            return []
        }
    }

    /// `\n`, `\t` and `\\` as echo -e and printf read them.
    private static func decodingEscapes(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var result = ""
        var escaping = false
        for character in text {
            if escaping {
                switch character {
                case "n": result.append("\n")
                case "t": result.append("\t")
                case "\\": result.append("\\")
                default: result.append("\\"); result.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                result.append(character)
            }
        }
        if escaping { result.append("\\") }
        return result
    }
}
