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
    public var commands: [[String]]
    /// Multi-stage pipelines from shell strings (2+ stages), each stage as its word list.
    public var pipelines: [[[String]]]
    /// True when a shell string was present but did not fully parse (ShellScript.error != nil).
    public var shellParseFailed: Bool
    /// The parse errors, if any.
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
    /// match argv[0] by this name.
    public static func programName(_ argv0: String) -> String {
        var path = Substring(argv0)
        while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        guard path != "/", let slash = path.lastIndex(of: "/") else { return String(path) }
        return String(path[path.index(after: slash)...])
    }

    /// The command string argv hands to a shell (`sh -c STRING`, `bash -lc STRING`, `busybox sh -c
    /// STRING`), or nil when argv is not a shell given one.
    public static func shellCommandString(_ argv: [String]) -> String? {
        if case .commandString(let script)? = CommandWords.shellInput(argv) { return script }
        return nil
    }
}

/// Accumulates an analysis; `seen` sets keep it duplicate-free and each distinct command or shell
/// string is expanded once.
private struct AnalysisBuilder {
    var analysis = CommandAnalysis()
    private var seenCommands: Set<[String]> = []
    private var seenPipelines: Set<[[String]]> = []
    private var parsedScripts: Set<String> = []
    private static let maximumErrors = 32

    mutating func add(_ words: [String], depth: Int) {
        guard !words.isEmpty, seenCommands.insert(words).inserted else { return }
        analysis.commands.append(words)
        guard depth < CommandAnalysis.maximumDepth else { return }
        if let expanded = CommandWords.braceExpandedProgram(words) { add(expanded, depth: depth + 1) }
        for inner in CommandWords.wrappedCommands(words) { add(inner, depth: depth + 1) }
        for script in CommandWords.embeddedScripts(words) { addScript(script, depth: depth + 1) }
    }

    mutating func addScript(_ source: String, depth: Int) {
        guard parsedScripts.insert(source).inserted else { return }
        let script = ShellScript.parse(source)
        if let error = script.error {
            analysis.shellParseFailed = true
            if analysis.shellErrors.count < Self.maximumErrors { analysis.shellErrors.append(error) }
        }
        for command in script.commands {
            add(command.words, depth: depth)
            if !command.inputDocuments.isEmpty, depth < CommandAnalysis.maximumDepth,
               CommandWords.readsShellScriptFromStandardInput(command.words) {
                for document in command.inputDocuments { addScript(document, depth: depth + 1) }
            }
        }
        for stages in script.pipelines where stages.count > 1 {
            let commands = stages.map { script.commands[$0] }.filter { !$0.words.isEmpty }
            guard commands.count > 1 else { continue }
            let pipeline = commands.map(\.words)
            if seenPipelines.insert(pipeline).inserted { analysis.pipelines.append(pipeline) }
            guard depth < CommandAnalysis.maximumDepth else { continue }
            // `echo 'rm -rf /' | sh`, `cat <<EOF | sh`: the printed text is the script.
            for stage in 1..<commands.count where CommandWords.readsShellScriptFromStandardInput(pipeline[stage]) {
                for text in CommandWords.printedText(commands[stage - 1]) { addScript(text, depth: depth + 1) }
            }
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

    /// The program name with a login shell's leading "-" removed ("-bash" → "bash").
    static func name(_ word: String) -> String {
        let name = CommandAnalysis.programName(word)
        return name.hasPrefix("-") && name.count > 1 ? String(name.dropFirst()) : name
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
            guard argument.count > 1, argument.hasPrefix("-") || argument.hasPrefix("+") else { break }
            // A cluster of single-letter options; -o/-O (and +o/+O) take the next word.
            var valueCount = 0
            for letter in argument.dropFirst() {
                switch letter {
                case "c" where argument.hasPrefix("-"): readsCommandString = true
                case "s" where argument.hasPrefix("-"): readsStandardInput = true
                case "o", "O": valueCount += 1
                case "C" where program == "fish": readsCommandString = true
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

    /// Whether `words` (through wrappers and sudo) is a shell reading its script from stdin.
    static func readsShellScriptFromStandardInput(_ words: [String]) -> Bool {
        shellInput(innermostCommand(words)) == .standardInput
    }

    /// The operands after `words[0]`'s options. `valued` lists the options taking a value: a short
    /// one ("-n") also accepts it attached ("-n5"), a long one ("--signal") also as "--signal=X".
    static func operands(_ words: ArraySlice<String>, valued: Set<String>) -> ArraySlice<String> {
        var index = words.startIndex + 1
        while index < words.endIndex {
            let word = words[index]
            if word == "--" { return words[(index + 1)...] }
            guard word.hasPrefix("-"), word.count > 1 else { break }
            if word.hasPrefix("--") {
                index += !word.contains("=") && valued.contains(word) ? 2 : 1
                continue
            }
            var takesNext = false
            let letters = Array(word.dropFirst())
            for (offset, letter) in letters.enumerated() where valued.contains("-" + String(letter)) {
                takesNext = offset == letters.count - 1
                break
            }
            index += takesNext ? 2 : 1
        }
        return words[min(index, words.endIndex)...]
    }

    /// The command a transparent wrapper runs (`nohup make` → `make`), or nil. One level only.
    static func unwrapped(_ words: [String]) -> [String]? {
        guard let first = words.first else { return nil }
        let all = words[...]
        let inner: ArraySlice<String>
        switch name(first) {
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
            guard words.count > 1, !words[1].hasPrefix("-") else { return nil }
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
            guard word.hasPrefix("-"), word.count > 1 else { break }
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
    private static func splitArguments(_ text: String) -> [String] {
        ShellScript.parse(text).commands.first?.words ?? []
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
        guard let first = words.first, first.count > 2, first.hasPrefix("{"), first.hasSuffix("}") else { return nil }
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
            guard word.hasPrefix("-"), word.count > 1 else { break }
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
            } else if word.hasPrefix("-c"), word.count > 2, !word.hasPrefix("--") {
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
            while let option = arguments.first, option.count > 1, option.hasPrefix("-"),
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
