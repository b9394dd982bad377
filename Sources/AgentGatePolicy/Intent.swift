/// What kind of thing an action does, for people reviewing it.
public enum IntentCategory: String, Sendable, CaseIterable {
    case packageInstall = "package_install", remoteScript = "remote_script", destructiveDelete = "destructive_delete",
         gitPush = "git_push", gitForcePush = "git_force_push", privilegeChange = "privilege_change",
         networkTool = "network_tool", credentialRead = "credential_read", run, read, write, connect
}

/// A one-line, human-readable statement of what the agent is trying to do.
public struct Intent: Sendable, Equatable {
    public var category: IntentCategory
    /// e.g. "agent wants to install npm package: left-pad". Control and bidirectional-override
    /// characters are replaced (the text comes from the agent and is shown in terminals), and
    /// quoted commands are truncated to about 200 characters with "…".
    public var text: String

    public init(category: IntentCategory, text: String) {
        self.category = category
        self.text = text
    }

    /// kind is the existing `ActionKind` enum (.exec, .fsRead, .fsWrite, .netEgress) in Action.swift.
    /// target: absolute program path for exec, absolute path for fs_*, "host:port"/"[v6]:port"/"unix:/path" for net_egress.
    /// argv: the exec's argv (nil for other kinds). home: the user's home directory (to recognise credential paths and to abbreviate them as ~/...).
    public static func describe(_ kind: ActionKind, target: String, argv: [String]?, home: String?) -> Intent {
        let analysis = kind == .exec ? argv.map { CommandAnalysis.analyze(argv: $0) } : nil
        return describe(kind, target: target, argv: argv, analysis: analysis, home: home)
    }

    /// Same, reusing an analysis already computed for the exec.
    public static func describe(
        _ kind: ActionKind, target: String, argv: [String]?, analysis: CommandAnalysis?, home: String?
    ) -> Intent {
        let home = HomeDirectory(home)
        switch kind {
        case .exec:
            return ExecIntent.describe(target: target, argv: argv, analysis: analysis, home: home)
        case .fsRead:
            let path = target.hasPrefix("/") ? PathLexical.clean(target) : target
            if CredentialPaths.contains(path, home: home) {
                return Intent(.credentialRead, "agent wants to read credentials: \(home.abbreviate(path))")
            }
            return Intent(.read, "agent wants to read \(home.abbreviate(path))")
        case .fsWrite:
            let path = target.hasPrefix("/") ? PathLexical.clean(target) : target
            return Intent(.write, "agent wants to write \(home.abbreviate(path))")
        case .netEgress:
            if target.hasPrefix("unix:") {
                return Intent(.connect, "agent wants to connect to unix socket \(target.dropFirst("unix:".count))")
            }
            return Intent(.connect, "agent wants to connect to \(target)")
        }
    }

    /// Builds an intent with its text made safe to display.
    fileprivate init(_ category: IntentCategory, _ text: String) {
        self.init(category: category, text: IntentText.display(text, limit: IntentText.textLimit))
    }
}

// MARK: - Text

enum IntentText {
    /// Quoted commands and paths are cut to this many characters.
    static let detailLimit = 200
    /// The whole text is cut to this many characters.
    static let textLimit = 320

    /// `text` on one line for display: control characters and whitespace runs become one space,
    /// bidirectional overrides become U+FFFD, and past `limit` characters it ends with "…".
    /// Reads at most `8 × limit` characters of `text` (then it ends with "…" too), so a huge
    /// script, even one of blanks, costs nothing extra.
    static func display(_ text: String, limit: Int = detailLimit) -> String {
        var out = String.UnicodeScalarView()
        var count = 0
        var pendingSpace = false
        var examined = 0
        for scalar in text.unicodeScalars {
            examined += 1
            if examined > 8 * limit {
                out.append("…")
                return String(out)
            }
            let value = scalar.value
            if value < 0x20 || (0x7F...0x9F).contains(value) || scalar.properties.isWhitespace {
                pendingSpace = count > 0
                continue
            }
            let isBidiControl = (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
                || value == 0x200E || value == 0x200F || value == 0x061C
            if count + (pendingSpace ? 1 : 0) >= limit {
                out.append("…")
                return String(out)
            }
            if pendingSpace {
                out.append(" ")
                count += 1
                pendingSpace = false
            }
            out.append(isBidiControl ? "\u{FFFD}" : scalar)
            count += 1
        }
        return String(out)
    }

    /// A command line for display.
    static func command(_ words: [String]) -> String {
        display(line(words))
    }

    /// `CommandAnalysis.line(words)`, or enough of its start for `display` (which reads at most
    /// 8 × its limit characters): a huge argv is not joined in full.
    static func line(_ words: [String]) -> String {
        let enough = 8 * textLimit + 8
        var line = ""
        for word in words {
            if !line.isEmpty { line += " " }
            if line.utf8.count + word.utf8.count > enough {
                // The separating space may already have reached the budget: never a negative prefix.
                line += String(decoding: word.utf8.prefix(max(0, enough - line.utf8.count)), as: UTF8.self)
                return line
            }
            line += word
        }
        return line
    }

    /// `CommandAnalysis.line(pipeline:)`, bounded like `line(_:)`.
    static func line(pipeline: [[String]]) -> String {
        var words: [String] = []
        var length = 0
        for (index, stage) in pipeline.enumerated() {
            if index > 0 { words.append("|") }
            words += stage.prefix(8 * textLimit)
            length += stage.reduce(0) { $0 + $1.utf8.count + 1 }
            if length > 8 * textLimit { break }
        }
        return line(words)
    }

    /// "a, b, c" for up to `limit` items, then "… (+N more)".
    static func list(_ items: [String], limit: Int = 10) -> String {
        let shown = items.prefix(limit).map { display($0, limit: 80) }.joined(separator: ", ")
        return items.count > limit ? shown + ", … (+\(items.count - limit) more)" : shown
    }
}

// MARK: - Paths

/// The user's home directory, for recognising and abbreviating paths under it.
struct HomeDirectory {
    /// Clean, without a trailing slash; nil when unknown or "/".
    let path: String?

    init(_ home: String?) {
        guard let home, home.hasPrefix("/") else {
            path = nil
            return
        }
        let cleaned = PathLexical.clean(home)
        path = cleaned == "/" ? nil : cleaned
    }

    /// `path` relative to home ("" for home itself), or nil outside it.
    func relative(_ path: String) -> Substring? {
        guard let home = self.path, path.hasPrefix(home) else { return nil }
        let rest = path.dropFirst(home.count)
        if rest.isEmpty { return rest }
        guard rest.hasPrefix("/") else { return nil }
        return rest.dropFirst()
    }

    /// "~/x" for a path under home, the path unchanged otherwise.
    func abbreviate(_ path: String) -> String {
        guard let rest = relative(path) else { return IntentText.display(path) }
        return IntentText.display(rest.isEmpty ? "~" : "~/" + rest)
    }
}

/// Files whose reading exposes secrets.
enum CredentialPaths {
    /// Directories under home whose whole content is secret.
    private static let homeDirectories = [".ssh", ".aws", ".gnupg", ".config/gcloud", ".azure", ".password-store"]
    /// Single files under home.
    private static let homeFiles: Set<String> = [
        ".kube/config", ".docker/config.json", ".netrc", ".git-credentials", ".npmrc", ".pypirc",
        ".config/gh/hosts.yml",
    ]
    /// Private key file names recognised anywhere (not the `.pub` halves).
    private static let keyNames: Set<String> = [
        "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa", "id_ecdsa_sk", "id_ed25519_sk",
    ]
    /// Committed templates of `.env` files, which hold no secrets.
    private static let environmentTemplates: Set<String> = [
        ".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults",
    ]
    /// Where public CA certificates live; their `.pem` files are not private keys.
    private static let certificateDirectories = [
        "/etc/ssl/certs/", "/etc/pki/ca-trust/", "/etc/pki/tls/certs/", "/etc/ca-certificates/",
        "/usr/share/ca-certificates/", "/usr/local/share/ca-certificates/", "/usr/lib/ssl/certs/",
    ]

    static func contains(_ path: String, home: HomeDirectory) -> Bool {
        let name = CommandAnalysis.programName(path)
        if name == ".env" || (name.hasPrefix(".env.") && !environmentTemplates.contains(name)) { return true }
        if ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"].contains(path) { return true }
        if keyNames.contains(name) { return true }
        if name.hasSuffix(".pem") || name.hasSuffix(".key") {
            let isCertificateBundle = certificateDirectories.contains { path.hasPrefix($0) }
                || name.contains("cacert") || name.contains("ca-bundle") || name.contains("ca-certificates")
                || path == "/etc/ssl/cert.pem"
            if !isCertificateBundle { return true }
        }
        guard let relative = home.relative(path), !relative.isEmpty else { return false }
        for directory in homeDirectories where relative == directory || relative.hasPrefix(directory + "/") {
            return true
        }
        if homeFiles.contains(String(relative)) { return true }
        if relative.hasPrefix(".cargo/credentials"), !relative.dropFirst(".cargo/".count).contains("/") { return true }
        return false
    }
}

// MARK: - Exec

/// Reads an exec's commands for the most significant thing they do.
private enum ExecIntent {
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
private struct IntentBudget {
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

/// Option scanning shared by the recognisers below.
private enum Arguments {
    /// The words after `words[0]` that are not options or option values (after `--`, all are).
    static func operands(_ words: ArraySlice<String>, valued: Set<String> = []) -> [String] {
        var result: [String] = []
        var index = words.startIndex + 1
        while index < words.endIndex {
            let word = words[index]
            if word == "--" {
                result += words[(index + 1)...]
                break
            }
            if word.hasPrefix("-"), word.utf8.count > 1 {
                index += takesNextWord(word, valued: valued) ? 2 : 1
                continue
            }
            result.append(word)
            index += 1
        }
        return result
    }

    /// Whether option word `word` takes the next word as its value: a valued long option without
    /// "=", or a short cluster whose first valued letter is its last ("-vp" with "-p" valued).
    static func takesNextWord(_ word: String, valued: Set<String>) -> Bool {
        if word.hasPrefix("--") { return !word.contains("=") && valued.contains(word) }
        if valued.contains(word) { return true }
        guard word.utf8.count <= CommandWords.maximumOptionCluster + 1 else { return false }
        let letters = word.dropFirst()
        for (offset, letter) in letters.enumerated() where valued.contains("-" + String(letter)) {
            return offset == letters.count - 1
        }
        return false
    }

    /// Whether an option is present: the long form exactly, or the letter in a short cluster.
    static func has(_ words: ArraySlice<String>, long: Set<String> = [], letters: Set<Character> = []) -> Bool {
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

    /// The subcommand after leading options (with `valued` options' values skipped), and its arguments.
    static func subcommand(_ words: ArraySlice<String>, valued: Set<String> = []) -> (name: String, arguments: ArraySlice<String>)? {
        var index = words.startIndex + 1
        while index < words.endIndex {
            let word = words[index]
            if word.hasPrefix("-"), word.utf8.count > 1 {
                index += takesNextWord(word, valued: valued) ? 2 : 1
                continue
            }
            return (word, words[index...])
        }
        return nil
    }
}

// MARK: Remote scripts

private enum RemoteScript {
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
        case "base64": return Arguments.has(words, long: ["--decode"], letters: ["d", "D"])
        case "openssl": return core.count > 1 && ["base64", "enc"].contains(core[1]) && core.contains("-d")
        case "xxd": return Arguments.has(words, long: ["--revert"], letters: ["r"])
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

// MARK: Destructive commands

private enum DestructiveCommand {
    /// `operandsFromInput`: xargs supplies more operands, so `rm -rf` alone deletes something.
    static func describe(_ core: [String], program: String, operandsFromInput: Bool = false) -> String? {
        let words = core[...]
        switch program {
        case "rm":
            return recursiveRemove(words, operandsFromInput: operandsFromInput)
        case "find":
            let removes = CommandWords.findCommands(core).contains { command in
                ["rm", "shred", "unlink", "rmdir"].contains(CommandWords.name(CommandWords.innermostCommand(command).first ?? ""))
            }
            guard core.contains("-delete") || removes else { return nil }
            var paths: [String] = []
            for word in core.dropFirst() {
                if ["-H", "-L", "-P"].contains(word) || word.hasPrefix("-O") || word.hasPrefix("-D") { continue }
                if word.hasPrefix("-") || word == "(" || word == "!" { break }
                paths.append(word)
            }
            return "agent wants to delete files found under \(IntentText.list(paths.isEmpty ? ["."] : paths))"
        case "shred":
            let files = Arguments.operands(words, valued: ["-n", "--iterations", "-s", "--size", "--random-source"])
            return files.isEmpty ? nil : "agent wants to shred \(IntentText.list(files))"
        case "dd":
            let harmless: Set<String> = ["/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty"]
            guard let output = core.first(where: { $0.hasPrefix("of=/dev/") }).map({ String($0.dropFirst(3)) }),
                  !harmless.contains(output), !output.hasPrefix("/dev/fd/") else { return nil }
            return "agent wants to overwrite \(IntentText.display(output)) with dd"
        case "mkfs", "mke2fs", "mkswap", "wipefs":
            return formatDescription(words, program: program)
        case "git":
            guard let git = GitCommand.invocation(core) else { return nil }
            switch git.subcommand {
            case "clean":
                guard Arguments.has(git.arguments, long: ["--force"], letters: ["f"]),
                      !Arguments.has(git.arguments, long: ["--dry-run"], letters: ["n"]) else { return nil }
                return "agent wants to delete untracked files: \(IntentText.command(core))"
            case "reset":
                guard git.arguments.contains("--hard") else { return nil }
                return "agent wants to discard uncommitted changes: \(IntentText.command(core))"
            default:
                return nil
            }
        default:
            if program.hasPrefix("mkfs.") { return formatDescription(words, program: program) }
            return nil
        }
    }

    /// `rm` with -r/-R/--recursive (with or without -f), in any spelling.
    private static func recursiveRemove(_ words: ArraySlice<String>, operandsFromInput: Bool) -> String? {
        var recursive = false
        var operands: [String] = []
        var optionsEnded = false
        for word in words.dropFirst() {
            if !optionsEnded, word == "--" {
                optionsEnded = true
            } else if !optionsEnded, word.hasPrefix("--") {
                if word == "--recursive" { recursive = true }
            } else if !optionsEnded, word.hasPrefix("-"), word.utf8.count > 1 {
                if word.contains("r") || word.contains("R") { recursive = true }
            } else {
                operands.append(word)
            }
        }
        guard recursive else { return nil }
        if operandsFromInput {
            let named = operands.isEmpty ? "" : IntentText.list(operands) + " and "
            return "agent wants to recursively delete \(named)paths read by xargs"
        }
        guard !operands.isEmpty else { return nil }
        return "agent wants to recursively delete \(IntentText.list(operands))"
    }

    private static func formatDescription(_ words: ArraySlice<String>, program: String) -> String? {
        guard let device = words.dropFirst().last(where: { !$0.hasPrefix("-") }) else { return nil }
        if program == "wipefs" { return "agent wants to wipe filesystem signatures on \(IntentText.display(device))" }
        return "agent wants to format \(IntentText.display(device)) (\(program))"
    }
}

// MARK: Privilege

private enum PrivilegeCommand {
    static func describe(_ privilege: CommandWords.Privilege, command: [String]) -> String {
        if !privilege.command.isEmpty {
            return "agent wants to run as \(IntentText.display(privilege.user)): \(IntentText.command(privilege.command))"
        }
        if let script = privilege.commandString {
            return "agent wants to run as \(IntentText.display(privilege.user)): \(IntentText.display(script))"
        }
        if privilege.opensShell {
            if privilege.tool == "su" || privilege.tool == "runuser" {
                return "agent wants to switch user to \(IntentText.display(privilege.user))"
            }
            return "agent wants to open a shell as \(IntentText.display(privilege.user))"
        }
        return "agent wants to use \(privilege.tool): \(IntentText.command(command))"
    }

    /// chmod setting setuid/setgid, chown to root, setcap, newgrp.
    static func describeChange(_ core: [String], program: String) -> String? {
        let words = core[...]
        switch program {
        case "chmod":
            // Symbolic modes may start with "-" ("-x"), but a setuid mode never does.
            let operands = core.dropFirst().filter { !$0.hasPrefix("-") }
            guard let mode = operands.first, isSetIDMode(mode), operands.count > 1 else { return nil }
            return "agent wants to set the setuid/setgid bit on \(IntentText.list(Array(operands.dropFirst()))) (chmod \(IntentText.display(mode)))"
        case "chown":
            guard !core.contains(where: { $0.hasPrefix("--reference") }) else { return nil }
            let operands = Arguments.operands(words, valued: ["--from"])
            guard let owner = operands.first, operands.count > 1 else { return nil }
            let user = owner.prefix { $0 != ":" && $0 != "." }
            guard user == "root" || user == "0" else { return nil }
            return "agent wants to give root ownership of \(IntentText.list(Array(operands.dropFirst())))"
        case "setcap":
            return "agent wants to set file capabilities: \(IntentText.command(core))"
        case "newgrp":
            let group = Arguments.operands(words).first
            return "agent wants to switch group to \(IntentText.display(group ?? "the default group"))"
        default:
            return nil
        }
    }

    /// Octal modes with the 4000/2000 bits ("4755", "02755") and symbolic ones granting "s" ("u+s", "g=rxs").
    static func isSetIDMode(_ mode: String) -> Bool {
        if !mode.isEmpty, mode.allSatisfy({ ("0"..."7").contains($0) }) {
            return (Int(mode, radix: 8) ?? 0) & 0o6000 != 0
        }
        for clause in mode.split(separator: ",") {
            var operation: Character = " "
            for character in clause {
                if "+-=".contains(character) {
                    operation = character
                } else if character == "s", operation == "+" || operation == "=" {
                    return true
                }
            }
        }
        return false
    }
}

// MARK: Git

private enum GitCommand {
    /// `git [global options] SUBCOMMAND ARGS…`.
    static func invocation(_ core: [String]) -> (subcommand: String, arguments: ArraySlice<String>)? {
        guard let first = core.first, CommandWords.name(first) == "git" else { return nil }
        let valued: Set<String> = [
            "-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--super-prefix", "--exec-path",
        ]
        guard let (name, arguments) = Arguments.subcommand(core[...], valued: valued) else { return nil }
        return (name, arguments)
    }

    static func push(_ core: [String]) -> (force: Bool, text: String)? {
        guard let git = invocation(core), git.subcommand == "push" else { return nil }
        var force = false
        var deletes = false
        var operands: [String] = []
        let arguments = git.arguments
        var index = arguments.startIndex + 1
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                operands += arguments[index...]
                break
            }
            if argument.hasPrefix("--") {
                if argument == "--force" || argument.hasPrefix("--force-with-lease") || argument == "--mirror" { force = true }
                if argument == "--delete" { deletes = true }
                if ["--repo", "--receive-pack", "--exec", "--push-option"].contains(argument) { index += 1 }
                continue
            }
            if argument.hasPrefix("-"), argument.utf8.count > 1 {
                if argument.contains("f") { force = true }
                if argument.contains("d") { deletes = true }
                if argument.hasSuffix("o") { index += 1 }
                continue
            }
            operands.append(argument)
        }
        let remote = operands.first
        let references = operands.dropFirst()
        if references.contains(where: { $0.hasPrefix("+") }) { force = true }
        if references.contains(where: { $0.hasPrefix(":") }) { deletes = true }
        guard let remote else {
            return (force, force ? "agent wants to force-push to the default remote" : "agent wants to push to the default remote")
        }
        let shownReferences = references.map { $0.drop { $0 == "+" || $0 == ":" } }.map(String.init)
        let destination = IntentText.display(([remote] + shownReferences).joined(separator: " "))
        if deletes, !force {
            let branches = shownReferences.isEmpty ? "branches" : IntentText.list(shownReferences)
            return (true, "agent wants to delete \(branches) on \(IntentText.display(remote))")
        }
        return (force, force ? "agent wants to force-push to \(destination)" : "agent wants to push to \(destination)")
    }
}

// MARK: Package installs

private enum PackageInstall {
    /// How one installer's arguments name packages.
    struct Installer {
        var noun: String
        var pluralNoun: String
        /// The text when no package is named ("install npm dependencies").
        var dependencies: String?
        /// Options taking a value (the next word, or attached after "=" or, for "-x", directly).
        var valued: Set<String> = []
        /// Valued options whose value is a requirements source ("-r req.txt").
        var sources: Set<String> = []
        /// Valued options whose value is itself a package ("-e ./pkg").
        var packages: Set<String> = []
    }

    static let npm = Installer(
        noun: "npm package", pluralNoun: "npm packages", dependencies: "install npm dependencies",
        valued: ["--prefix", "-C", "--registry", "--workspace", "-w", "--omit", "--include", "--tag", "--cache",
                 "--userconfig", "--install-strategy", "--loglevel", "--before"])
    /// pnpm, yarn and bun install npm packages too, but their `-w` is a flag.
    static let otherJavaScript = Installer(
        noun: "npm package", pluralNoun: "npm packages", dependencies: "install npm dependencies",
        valued: ["--prefix", "-C", "--registry", "--filter", "-F", "--dir", "--cwd", "--modules-folder",
                 "--network-timeout", "--cache-folder", "--cache-dir", "--config", "-c"])
    static let python = Installer(
        noun: "Python package", pluralNoun: "Python packages", dependencies: nil,
        valued: ["-r", "--requirement", "--requirements", "-c", "--constraint", "-e", "--editable", "-i",
                 "--index-url", "--extra-index-url", "--index", "-f", "--find-links", "-t", "--target", "--prefix",
                 "--root", "--src", "--platform", "--python-version", "--implementation", "--abi",
                 "--upgrade-strategy", "--no-binary", "--only-binary", "--progress-bar", "-C", "--config-settings",
                 "--global-option", "--report", "--python", "-p", "--trusted-host", "--cache-dir", "--log",
                 "--proxy", "--retries", "--timeout", "--group", "-G", "--optional", "--package", "--extra",
                 "--from", "--with", "-w", "--source", "--directory", "--pip-args", "--suffix", "-E", "--extras"],
        sources: ["-r", "--requirement", "--requirements"],
        packages: ["-e", "--editable"])
    static let rust = Installer(
        noun: "Rust crate", pluralNoun: "Rust crates", dependencies: nil,
        valued: ["--version", "--vers", "--git", "--branch", "--tag", "--rev", "--path", "--root", "--registry",
                 "--index", "--features", "-F", "--target", "--target-dir", "--profile", "-j", "--jobs", "--bin",
                 "--example", "--rename", "--package", "-p", "--manifest-path"],
        sources: ["--git", "--path"])
    static let go = Installer(
        noun: "Go package", pluralNoun: "Go packages", dependencies: "install Go dependencies",
        valued: ["-modfile", "-tags", "-ldflags", "-gcflags", "-asmflags", "-o", "-p", "-mod", "-pkgdir",
                 "-buildmode", "-compiler", "-installsuffix", "-overlay", "-pgo", "-toolexec", "-C"])
    static let ruby = Installer(
        noun: "Ruby gem", pluralNoun: "Ruby gems", dependencies: "install Ruby dependencies",
        valued: ["-v", "--version", "-i", "--install-dir", "-n", "--bindir", "-s", "--source", "--platform",
                 "-P", "--trust-policy", "--build-root", "-g", "--file", "--gemfile", "--path", "--group"])
    static let system = Installer(
        noun: "system package", pluralNoun: "system packages", dependencies: nil,
        valued: ["-o", "--option", "-t", "--target-release", "-c", "--config-file", "--repo", "--enablerepo",
                 "--disablerepo", "--setopt", "--releasever", "--installroot", "-X", "--repository", "--virtual",
                 "--root"])
    static let homebrew = Installer(noun: "Homebrew package", pluralNoun: "Homebrew packages", dependencies: nil)
    static let php = Installer(
        noun: "PHP package", pluralNoun: "PHP packages", dependencies: "install PHP dependencies",
        valued: ["-d", "--working-dir"])

    static func describe(_ core: [String], program: String) -> String? {
        guard let (installer, arguments) = invocation(core, program: program) else { return nil }
        return text(installer, arguments: arguments)
    }

    /// Which installer `core` runs and its arguments after the install subcommand (the
    /// subcommand word itself first), or nil when it installs nothing.
    private static func invocation(_ core: [String], program: String) -> (Installer, ArraySlice<String>)? {
        let words = core[...]
        switch program {
        case "npm":
            guard let (name, arguments) = Arguments.subcommand(words, valued: npm.valued) else { return nil }
            if ["ci", "clean-install", "ic", "install-clean"].contains(name) { return (npm, arguments.prefix(1)) }
            let installs: Set<String> = [
                "install", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "isntall", "add",
            ]
            return installs.contains(name) ? (npm, arguments) : nil
        case "pnpm", "bun":
            guard let (name, arguments) = Arguments.subcommand(words, valued: otherJavaScript.valued) else { return nil }
            return ["add", "a", "install", "i"].contains(name) ? (otherJavaScript, arguments) : nil
        case "yarn":
            guard var (name, arguments) = Arguments.subcommand(words, valued: otherJavaScript.valued) else {
                return (otherJavaScript, words.suffix(0)) // bare `yarn` installs the dependencies
            }
            if name == "global", let (inner, innerArguments) = Arguments.subcommand(arguments, valued: otherJavaScript.valued) {
                (name, arguments) = (inner, innerArguments)
            }
            return ["add", "install"].contains(name) ? (otherJavaScript, arguments) : nil
        case "uv":
            guard let (name, arguments) = Arguments.subcommand(words, valued: python.valued) else { return nil }
            if name == "add" { return (python, arguments) }
            if name == "pip" || name == "tool", let (inner, innerArguments) = Arguments.subcommand(arguments, valued: python.valued),
               inner == "install" {
                return (python, innerArguments)
            }
            return nil
        case "pipx":
            guard let (name, arguments) = Arguments.subcommand(words, valued: python.valued), name == "install" else { return nil }
            return (python, arguments)
        case "poetry":
            guard let (name, arguments) = Arguments.subcommand(words, valued: python.valued), name == "add" else { return nil }
            return (python, arguments)
        case "cargo":
            var cargo = words
            if cargo.count > 1, cargo[cargo.startIndex + 1].hasPrefix("+") { cargo.remove(at: cargo.startIndex + 1) }
            guard let (name, arguments) = Arguments.subcommand(cargo, valued: ["-Z", "--config", "--color", "-C"]),
                  name == "install" || name == "add" else { return nil }
            return (rust, arguments)
        case "go":
            guard let (name, arguments) = Arguments.subcommand(words, valued: ["-C"]),
                  name == "install" || name == "get" else { return nil }
            return (go, arguments)
        case "gem":
            guard let (name, arguments) = Arguments.subcommand(words), name == "install" else { return nil }
            return (ruby, arguments)
        case "bundle", "bundler":
            guard let (name, arguments) = Arguments.subcommand(words), name == "install" || name == "add" else { return nil }
            return (ruby, name == "install" ? arguments.prefix(1) : arguments)
        case "composer":
            guard let (name, arguments) = Arguments.subcommand(words, valued: php.valued) else { return nil }
            if name == "install" { return (php, arguments.prefix(1)) }
            return name == "require" ? (php, arguments) : nil
        case "apt", "apt-get", "aptitude", "dnf", "yum", "microdnf", "zypper":
            guard let (name, arguments) = Arguments.subcommand(words, valued: system.valued),
                  name == "install" || (program == "zypper" && name == "in") else { return nil }
            return (system, arguments)
        case "apk":
            guard let (name, arguments) = Arguments.subcommand(words, valued: system.valued), name == "add" else { return nil }
            return (system, arguments)
        case "pacman":
            // -S installs; -Ss/-Si/-Sc/-Sg/-Sl/-Sp/-Sw only query, clean or download.
            guard let sync = core.dropFirst().first(where: { $0.hasPrefix("-S") || $0 == "--sync" }),
                  !sync.dropFirst(2).contains(where: { "sicglpw".contains($0) }) else { return nil }
            return (system, ArraySlice([sync] + core.dropFirst().filter { $0 != sync }))
        case "brew":
            guard let (name, arguments) = Arguments.subcommand(words), name == "install" || name == "reinstall" else {
                return nil
            }
            return (homebrew, arguments)
        default:
            guard isPip(program) || isPython(program) else { return nil }
            var pip = words
            if isPython(program) {
                // python -m pip install …
                guard let module = core.firstIndex(of: "-m"), module + 1 < core.count, isPip(core[module + 1]) else {
                    return nil
                }
                pip = core[(module + 1)...]
            }
            guard let (name, arguments) = Arguments.subcommand(pip, valued: python.valued), name == "install" else {
                return nil
            }
            return (python, arguments)
        }
    }

    private static func isPip(_ name: String) -> Bool {
        name.hasPrefix("pip") && name.dropFirst(3).allSatisfy { $0.isNumber || $0 == "." }
    }

    private static func isPython(_ name: String) -> Bool {
        name.hasPrefix("python") && name.dropFirst(6).allSatisfy { $0.isNumber || $0 == "." }
    }

    /// `arguments` starts with the subcommand word.
    private static func text(_ installer: Installer, arguments: ArraySlice<String>) -> String {
        var names: [String] = []
        var sources: [String] = []
        var index = arguments.startIndex + 1
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                names += arguments[index...]
                break
            }
            guard argument.hasPrefix("-"), argument.utf8.count > 1 else {
                names.append(argument)
                continue
            }
            var option = argument
            var value: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                option = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            } else if !argument.hasPrefix("--"), argument.count > 2, installer.valued.contains(String(argument.prefix(2))),
                      !installer.valued.contains(argument) {
                option = String(argument.prefix(2))
                value = String(argument.dropFirst(2))
            }
            guard installer.valued.contains(option) else { continue }
            if value == nil, index < arguments.endIndex {
                value = arguments[index]
                index += 1
            }
            guard let value else { continue }
            if installer.sources.contains(option) { sources.append(value) }
            if installer.packages.contains(option) { names.append(value) }
        }
        let from = sources.isEmpty ? "" : " from \(IntentText.list(sources))"
        if names.count == 1 {
            return "agent wants to install \(installer.noun): \(IntentText.list(names))" + (from.isEmpty ? "" : " and packages\(from)")
        }
        if !names.isEmpty {
            return "agent wants to install \(installer.pluralNoun): \(IntentText.list(names))" + (from.isEmpty ? "" : " and packages\(from)")
        }
        if !sources.isEmpty { return "agent wants to install \(installer.pluralNoun)\(from)" }
        return "agent wants to " + (installer.dependencies ?? "install \(installer.pluralNoun)")
    }
}

// MARK: Network tools

private enum NetworkCommand {
    static func describe(_ core: [String], program: String) -> String? {
        let words = core[...]
        switch program {
        case "nc", "ncat", "netcat", "socat", "telnet", "ftp", "tftp":
            return "agent wants to open a raw network connection: \(IntentText.command(core))"
        case "nmap", "masscan":
            return "agent wants to scan the network: \(IntentText.command(core))"
        case "ssh":
            let operands = Arguments.operands(words, valued: [
                "-B", "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p", "-Q",
                "-R", "-S", "-W", "-w",
            ])
            guard let host = operands.first else { return "agent wants to use ssh: \(IntentText.command(core))" }
            let remoteCommand = operands.dropFirst()
            if remoteCommand.isEmpty { return "agent wants to ssh to \(IntentText.display(host))" }
            return "agent wants to ssh to \(IntentText.display(host)) and run: \(IntentText.command(Array(remoteCommand)))"
        case "sftp":
            let operands = Arguments.operands(words, valued: ["-B", "-b", "-c", "-D", "-F", "-i", "-J", "-l", "-o", "-P", "-R", "-S", "-X"])
            guard let host = operands.first else { return "agent wants to use sftp: \(IntentText.command(core))" }
            return "agent wants to open an sftp session to \(IntentText.display(host))"
        case "scp", "rsync":
            let operands = Arguments.operands(words, valued: [
                "-c", "-F", "-i", "-J", "-l", "-o", "-P", "-S", "-X", "-e", "--rsh", "-f", "--filter", "-T",
                "--temp-dir", "-B", "--block-size",
            ])
            guard operands.contains(where: isRemote) else { return nil }
            return "agent wants to copy files over the network: \(IntentText.command(core))"
        default:
            return nil
        }
    }

    /// `[user@]host:path`, `host::module`, `scp://…`, `rsync://…`.
    private static func isRemote(_ operand: String) -> Bool {
        if operand.contains("://") { return true }
        guard let colon = operand.firstIndex(of: ":"), colon != operand.startIndex else { return false }
        return !operand[..<colon].contains("/")
    }
}
