enum RemoteScript {
    static let fetchers: Set<String> = [
        "curl", "wget", "wget2", "fetch", "http", "https", "xh", "xhs", "curlie", "lwp-request", "GET",
        "nc", "ncat", "netcat", "socat",
    ]
    static let codeOptions: Set<String> = ["-c", "-e", "-E", "-m", "-r", "--eval", "-p", "--print", "-Command", "-command"]

    static func find(pipelines: [[[String]]], commands: [[String]], budget: inout IntentBudget) -> Intent? {
        for pipeline in pipelines {
            var fetcher: [String]?
            var decoded = false
            for stage in pipeline {
                let core = CommandWords.innermostCommand(stage)
                if fetcher != nil || decoded, readsProgramFromStandardInput(core) {
                    let line = IntentText.line(pipeline: pipeline)
                    guard let fetcher else {
                        return Intent(.remoteScript, "agent wants to run an encoded script: \(IntentText.display(line))")
                    }
                    return text(line: line, fetcher: fetcher)
                }
                if fetcher == nil, isFetcher(core) {
                    fetcher = core
                } else if isDecoder(core) {
                    decoded = true
                }
            }
        }
        // The outer exec and the commands inside its strings can all match; show the innermost
        // one that still names the interpreter (`sh -c "$(curl …)"`, not just `$(curl …)`).
        var match: (command: [String], fetcher: [String])?
        for command in commands {
            guard let fetcher = fetchedCode(command, depth: 0, budget: &budget) else { continue }
            if match == nil || !hasSubstitution(command[0]) { match = (command, fetcher) }
        }
        guard let match else { return nil }
        return text(line: IntentText.line(match.command), fetcher: match.fetcher)
    }

    private static func text(line: String, fetcher: [String]) -> Intent {
        let shown = IntentText.display(line)
        if let url = url(in: fetcher), !shown.contains(url) {
            return Intent(.remoteScript, "agent wants to run a remote script from \(IntentText.display(url)): \(shown)")
        }
        return Intent(.remoteScript, "agent wants to run a remote script: \(shown)")
    }

    private static func url(in fetcher: [String]) -> String? {
        let arguments = fetcher.dropFirst()
        return arguments.first { $0.contains("://") }
            ?? arguments.first { !$0.hasPrefix("-") && $0.contains(".") && !$0.contains(" ") }
    }

    static func isFetcher(_ core: [String]) -> Bool {
        guard let first = core.first else { return false }
        return fetchers.contains(CommandWords.name(first))
    }

    /// `base64 -d`, `openssl base64 -d`, `openssl enc -d`, `xxd -r`.
    static func isDecoder(_ core: [String]) -> Bool {
        guard let first = core.first else { return false }
        let words = core[...]
        switch CommandWords.name(first) {
        case "base64": return CommandWords.hasOption(words, long: ["--decode"], letters: ["d", "D"])
        case "openssl": return core.count > 1 && ["base64", "enc"].contains(core[1]) && core.contains("-d")
        case "xxd": return CommandWords.hasOption(words, long: ["--revert"], letters: ["r"])
        default: return false
        }
    }

    static func isInterpreter(_ name: String) -> Bool {
        for prefix in ["python", "pypy", "perl", "ruby", "php", "lua"] where name.hasPrefix(prefix) {
            if name.dropFirst(prefix.count).allSatisfy({ $0.isNumber || $0 == "." }) { return true }
        }
        return ["node", "nodejs", "luajit", "pwsh", "powershell"].contains(name)
    }

    /// Files that are a process's standard input.
    static let standardInputPaths: Set<String> = ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "-"]

    /// A shell or interpreter taking its program from standard input (`sh`, `bash -s`, `python3 -`,
    /// `source /dev/stdin`, `bash /dev/stdin`).
    static func readsProgramFromStandardInput(_ core: [String]) -> Bool {
        switch CommandWords.shellInput(core) {
        case .standardInput?: return true
        case .scriptFile(let file)?: return standardInputPaths.contains(file)
        case .commandString?: return false
        case nil: break
        }
        guard let first = core.first else { return false }
        let program = CommandWords.name(first)
        if program == "source" || program == "." {
            return core.count > 1 && standardInputPaths.contains(core[1])
        }
        guard isInterpreter(program) else { return false }
        for argument in core.dropFirst() {
            if argument == "-" { return true }
            if codeOptions.contains(argument) || !argument.hasPrefix("-") { return false }
        }
        return true
    }

    /// The fetcher whose output `words` runs as code: `sh -c "$(curl …)"`, `bash <(curl …)`,
    /// `eval "$(wget -O- …)"`, `source <(curl …)`, `python3 <(curl …)`, `$(curl …)` as a command.
    /// Parses only through `budget` (a few kilobytes, a few times), never a whole script per level.
    static func fetchedCode(_ words: [String], depth: Int, budget: inout IntentBudget) -> [String]? {
        let core = CommandWords.innermostCommand(words)
        guard let first = core.first else { return nil }
        if let fetcher = fetcherInSubstitution(first, budget: &budget) { return fetcher }
        let program = CommandWords.name(first)
        let arguments = core.dropFirst()
        if program == "eval" {
            for argument in arguments.prefix(8) {
                if let fetcher = fetcherInSubstitution(argument, budget: &budget) { return fetcher }
            }
            return nil
        }
        if program == "source" || program == "." {
            guard let file = arguments.first else { return nil }
            return fetcherInSubstitution(file, budget: &budget)
        }
        switch CommandWords.shellInput(core) {
        case .commandString(let script)?:
            guard depth < 3, hasSubstitution(script), let parsed = budget.parse(script) else { return nil }
            for command in parsed.commands.prefix(8) {
                if let fetcher = fetchedCode(command.words, depth: depth + 1, budget: &budget) { return fetcher }
            }
            return nil
        case .scriptFile(let file)?:
            return fetcherInSubstitution(file, budget: &budget)
        case .standardInput?:
            return nil
        case nil:
            break
        }
        guard isInterpreter(program) else { return nil }
        var nextIsCode = false
        for argument in arguments.prefix(64) {
            if nextIsCode { return fetcherInSubstitution(argument, budget: &budget) }
            if codeOptions.contains(argument) {
                nextIsCode = true
            } else if argument == "-" || !argument.hasPrefix("-") {
                return fetcherInSubstitution(argument, budget: &budget)
            }
        }
        return nil
    }

    /// The fetcher run by a `$( )`, backquote or `<( )` substitution inside `word`.
    private static func fetcherInSubstitution(_ word: String, budget: inout IntentBudget) -> [String]? {
        guard hasSubstitution(word), let parsed = budget.parse(word) else { return nil }
        for command in parsed.commands.prefix(64) {
            let core = CommandWords.innermostCommand(command.words)
            if isFetcher(core) { return core }
        }
        return nil
    }

    /// Whether `text` starts (within the bytes `IntentBudget` parses) with a `$( )`, backquote,
    /// `<( )` or `>( )` substitution somewhere.
    static func hasSubstitution(_ text: String) -> Bool {
        var previous: UInt8 = 0
        for byte in text.utf8.prefix(IntentBudget.maximumParsedBytes) {
            if byte == 0x60 { return true } // `
            if byte == 0x28, previous == 0x24 || previous == 0x3C || previous == 0x3E { return true } // $( <( >(
            previous = byte
        }
        return false
    }
}
