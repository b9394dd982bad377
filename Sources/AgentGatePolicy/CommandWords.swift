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
        let name = ExecDetails.basename(word)
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

    // MARK: Options

    /// The operands after `words[0]`'s leading options (the first non-option word ends them, as
    /// POSIX utilities read their arguments). `valued` lists the options taking a value: a short
    /// one ("-n") also accepts it attached ("-n5"), a long one ("--signal") also as "--signal=X".
    static func operands(_ words: ArraySlice<String>, valued: Set<String>) -> ArraySlice<String> {
        var index = words.startIndex + 1
        while index < words.endIndex {
            let word = words[index]
            if word == "--" { return words[(index + 1)...] }
            guard word.utf8.first == 0x2D, word.utf8.count > 1 else { break }
            index += takesValue(word, valued: valued) ? 2 : 1
        }
        return words[min(index, words.endIndex)...]
    }

    /// Every word after `words[0]` that is no option or option value, wherever options stand
    /// (as GNU tools read their arguments); after `--`, all are.
    static func allOperands(_ words: ArraySlice<String>, valued: Set<String> = []) -> [String] {
        var result: [String] = []
        var index = words.startIndex + 1
        while index < words.endIndex {
            let word = words[index]
            if word == "--" {
                result += words[(index + 1)...]
                break
            }
            if word.hasPrefix("-"), word.utf8.count > 1 {
                index += takesValue(word, valued: valued) ? 2 : 1
                continue
            }
            result.append(word)
            index += 1
        }
        return result
    }

    /// Walks the words after `arguments[0]`: each option word goes to `option`, which may take
    /// the words after it as values (by advancing `next`) or add operands of its own; every
    /// other word, and every word after `--`, is an operand. Returns the operands in order.
    static func walkArguments(
        _ arguments: ArraySlice<String>, option: (_ word: String, _ next: inout Int, _ operands: inout [String]) -> Void
    ) -> [String] {
        var operands: [String] = []
        var index = arguments.startIndex + 1
        while index < arguments.endIndex {
            let word = arguments[index]
            index += 1
            if word == "--" {
                operands += arguments[index...]
                break
            }
            if word.hasPrefix("-"), word.utf8.count > 1 {
                option(word, &index, &operands)
            } else {
                operands.append(word)
            }
        }
        return operands
    }

    /// The subcommand after leading options (with `valued` options' values skipped), and its arguments.
    static func subcommand(_ words: ArraySlice<String>, valued: Set<String> = []) -> (name: String, arguments: ArraySlice<String>)? {
        var index = words.startIndex + 1
        while index < words.endIndex {
            let word = words[index]
            if word.hasPrefix("-"), word.utf8.count > 1 {
                index += takesValue(word, valued: valued) ? 2 : 1
                continue
            }
            return (word, words[index...])
        }
        return nil
    }

    /// Whether an option is present: the long form exactly (or before "="), or the letter in a
    /// short cluster.
    static func hasOption(_ words: ArraySlice<String>, long: Set<String> = [], letters: Set<Character> = []) -> Bool {
        for word in words.dropFirst() {
            if word == "--" { return false }
            if word.hasPrefix("--") {
                if long.contains(word) || long.contains(String(word.prefix { $0 != "=" })) { return true }
            } else if word.hasPrefix("-"), word.utf8.count > 1, word.dropFirst().contains(where: letters.contains) {
                return true
            }
        }
        return false
    }

    /// Whether option word `word` takes the next word as its value: a valued long option without
    /// "=", a valued short option, or a short cluster ("-vn") whose first valued letter is its last.
    static func takesValue(_ word: String, valued: Set<String>) -> Bool {
        if word.hasPrefix("--") { return !word.contains("=") && valued.contains(word) }
        if valued.contains(word) { return true }
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
        guard text.utf8.contains(UInt8(ascii: "\\")) else { return text } // bytes: no NSString search
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
