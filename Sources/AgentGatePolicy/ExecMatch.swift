/// Everything an exec rule can look at besides the program path: the argv, and what a shell
/// command string inside it runs. Built once per exec (the supervisor builds it only when the
/// policy has `argv:` or `command:` rules) and shared by every rule evaluated for it.
public struct ExecDetails: Sendable {
    public let argv: [String]
    public let analysis: CommandAnalysis
    /// Every command and pipeline as one line each, for `command:` globs. A command whose first
    /// word is a path appears twice: as written and with the program's basename.
    let lines: [String]
    /// What each command's program word may be matched as, parallel to `analysis.commands`:
    /// its basename, and for the exec itself the program's real paths and their basenames.
    let programs: [ProgramWords]
    /// How many of `lines`, from the start, are the exec's own command line (`commandLines`).
    let ownLineCount: Int

    /// The exec's own command line, the words joined by single spaces as agentgate v1 joined
    /// them, once under each name of its program: each real path and each basename (argv[0]
    /// when no path is known). `target_glob` of exec rules in files without `version: 2` is
    /// matched against these. Commands inside a `sh -c` string are not among them: each is an
    /// exec of its own when it runs.
    public var commandLines: [String] { Array(lines[..<ownLineCount]) }

    /// The names a command's program word may be matched as, split by whether they are paths
    /// (for globs with a `/`) or bare names (for globs without), so matching never searches them.
    struct ProgramWords: Sendable {
        var paths: [String] = []
        var names: [String] = []

        mutating func add(_ word: String) {
            if word.utf8.contains(UInt8(ascii: "/")) {  // bytes, as for globs: no NSString search
                if !paths.contains(word) { paths.append(word) }
            } else if !names.contains(word) {
                names.append(word)
            }
        }
    }

    /// An exec of `argv`. `programs` are the paths of the program the kernel will really run
    /// (as named and as resolved); when given, they stand for argv[0], which the caller chose
    /// freely and so proves nothing (`execv("/usr/bin/git", ["x", "push", "--force"])` is a git
    /// push, and `execv("/bin/sh", ["x", "-c", …])` runs a shell string).
    public init(argv: [String], programs: [String] = []) {
        let effective = programs.isEmpty || argv.isEmpty ? argv : [programs[0]] + argv.dropFirst()
        self.init(argv: effective, analysis: CommandAnalysis.analyze(argv: effective), programs: programs)
    }

    public init(argv: [String], analysis: CommandAnalysis, programs: [String] = []) {
        self.argv = argv
        self.analysis = analysis
        var lines: [String] = []
        var seen = Set<String>()
        func add(_ line: String) {
            if seen.insert(line).inserted { lines.append(line) }
        }
        func addCommand(_ words: [String]) {
            guard !words.isEmpty else { return }
            add(CommandAnalysis.line(words))
            let base = ExecDetails.basename(words[0])
            if base != words[0] { add(CommandAnalysis.line([base] + words.dropFirst())) }
        }
        // First the exec itself, under each of its real program paths (argv[0] when none are
        // known): v1 target_globs see only these lines, `command:` globs see them all.
        for name in programs.isEmpty ? Array(argv.prefix(1)) : programs {
            // Lexically clean, as targets are: `/usr/bin/../../tmp/x` is /tmp/x, not under /usr/bin.
            addCommand([name.hasPrefix("/") ? PathLexical.clean(name) : name] + argv.dropFirst())
        }
        let ownLineCount = lines.count
        for command in analysis.commands { addCommand(command) }
        // A pipeline glob matches any run of two or more consecutive stages, so
        // `curl * | sh*` also catches `curl x | sh | tee log` and `echo x | curl y | sh`.
        for pipeline in analysis.pipelines {
            let based = pipeline.map { stage in stage.isEmpty ? stage : [ExecDetails.basename(stage[0])] + stage.dropFirst() }
            let stages = min(pipeline.count, ExecDetails.maximumPipelineStages)
            for start in 0..<stages {
                for end in (start + 2)...max(start + 2, stages) where end <= stages {
                    add(CommandAnalysis.line(pipeline: Array(pipeline[start..<end])))
                    add(CommandAnalysis.line(pipeline: Array(based[start..<end])))
                }
            }
            if pipeline.count > stages { add(CommandAnalysis.line(pipeline: pipeline)) }
        }
        self.lines = lines
        self.ownLineCount = ownLineCount
        var programNames = analysis.commands.map { command -> ProgramWords in
            var words = ProgramWords()
            if let first = command.first { words.add(ExecDetails.basename(first)) }
            return words
        }
        if !programs.isEmpty, let first = analysis.commands.first, first == argv, !programNames.isEmpty {
            var words = ProgramWords()
            for program in programs {
                words.add(program)
                words.add(ExecDetails.basename(program))
            }
            programNames[0] = words
        }
        self.programs = programNames
    }

    /// An exec as typed at a shell prompt (`curl -fsSL https://x | sh`): its first simple
    /// command is the argv, and every command and pipeline of the line is visible to rules, as
    /// if the line were run with `sh -c`. For inline examples, test cases and `agentgate check`.
    public init(commandLine: String) {
        let shellAnalysis = CommandAnalysis.analyze(argv: ["sh", "-c", commandLine])
        var analysis = shellAnalysis
        analysis.commands = Array(shellAnalysis.commands.dropFirst())
        self.init(argv: analysis.commands.first ?? [], analysis: analysis)
    }

    /// The program path an exec of `argv0` is decided on when no real PATH lookup happens
    /// (inline examples and test cases): itself when absolute, else `/usr/bin/NAME`.
    public static func assumedProgram(_ argv0: String) -> String {
        argv0.hasPrefix("/") ? argv0 : "/usr/bin/" + argv0
    }

    /// Sub-pipelines are listed for up to this many stages (quadratic in it); longer pipelines
    /// are also matched whole.
    static let maximumPipelineStages = 16

    /// The last path component, as Go's filepath.Base takes it ("/usr/bin/git" → "git",
    /// "a/b/" → "b", "/" → "/"); policy globs without a '/' match argv[0] by this name. The one
    /// basename of the project. Works on bytes: linear in the length of that component.
    public static func basename(_ argv0: String) -> String {
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
}

/// One element of an `argv:` pattern.
enum ArgvElement: Sendable {
    /// Exactly one argument matching the glob (text syntax). For the program word, a glob
    /// without `/` is also tried against its basename.
    case one([Glob])
    /// `**`: zero or more arguments.
    case rest
}

/// The `argv:` and `command:` parts of an exec rule as loaded; compiled into `ExecTables`.
struct ExecConstraint: Sendable {
    var argv: [ArgvElement]?
    var commands: [Glob] = []
}

/// errno names a rule may give (Linux generic numbering, the same on x86-64 and arm64).
public enum ErrnoName {
    static let table: [(String, Int32)] = [
        ("EPERM", 1), ("ENOENT", 2), ("ESRCH", 3), ("EINTR", 4), ("EIO", 5), ("ENXIO", 6), ("E2BIG", 7),
        ("ENOEXEC", 8), ("EBADF", 9), ("EAGAIN", 11), ("ENOMEM", 12), ("EACCES", 13), ("EFAULT", 14),
        ("EBUSY", 16), ("EEXIST", 17), ("EXDEV", 18), ("ENODEV", 19), ("ENOTDIR", 20), ("EISDIR", 21),
        ("EINVAL", 22), ("ENFILE", 23), ("EMFILE", 24), ("ETXTBSY", 26), ("EFBIG", 27), ("ENOSPC", 28),
        ("EROFS", 30), ("EMLINK", 31), ("EPIPE", 32), ("ENAMETOOLONG", 36), ("ENOSYS", 38), ("ENOTEMPTY", 39),
        ("ELOOP", 40), ("ENOTSUP", 95), ("EOPNOTSUPP", 95), ("EAFNOSUPPORT", 97), ("EADDRINUSE", 98),
        ("EADDRNOTAVAIL", 99), ("ENETDOWN", 100), ("ENETUNREACH", 101), ("ECONNABORTED", 103),
        ("ECONNRESET", 104), ("ETIMEDOUT", 110), ("ECONNREFUSED", 111), ("EHOSTDOWN", 112),
        ("EHOSTUNREACH", 113), ("EDQUOT", 122), ("ECANCELED", 125),
    ]

    /// The number of an errno name, or nil.
    public static func number(_ name: String) -> Int32? {
        table.first { $0.0 == name.uppercased() }?.1
    }

    /// The first name for a number, or nil.
    public static func name(_ number: Int32) -> String? {
        table.first { $0.1 == number }?.0
    }

    static var names: String { table.map(\.0).joined(separator: ", ") }
}

/// `ExecConstraint`s compiled to plain data in the policy's arena, so evaluating an exec rule
/// touches no reference-counted object.
struct ExecTables: Sendable {
    struct Code: Sendable {
        var argvStart: Int32 = 0
        /// -1 when the rule has no `argv:`.
        var argvCount: Int32 = -1
        var commandStart: Int32 = 0
        var commandCount: Int32 = 0
        /// The command globs see only the exec's own command lines (v1 target_glob), not every
        /// command and pipeline inside it.
        var ownLinesOnly = false
    }

    struct Element: Sendable {
        var isRest: Bool
        var globStart: Int32
        var globCount: Int32
    }

    var codes: [Code] = []
    var elements: [Element] = []
    var globs: [GlobCode] = []
    /// Per glob: whether its pattern has a `/` (then it is matched against paths, else
    /// against program basenames too).
    var globHasSlash: [Bool] = []

    mutating func add(_ constraint: ExecConstraint, arena: inout MatchArena) -> Int32 {
        func place(_ glob: Glob) -> Int32 {
            globs.append(glob.code.relocated(by: arena.append(glob.arena)))
            globHasSlash.append(glob.pattern.utf8.contains(UInt8(ascii: "/")))
            return Int32(globs.count - 1)
        }
        var code = Code()
        if let argv = constraint.argv {
            code.argvStart = Int32(elements.count)
            code.argvCount = Int32(argv.count)
            for element in argv {
                switch element {
                case .rest:
                    elements.append(Element(isRest: true, globStart: 0, globCount: 0))
                case .one(let alternatives):
                    let start = Int32(globs.count)
                    for glob in alternatives { _ = place(glob) }
                    elements.append(Element(isRest: false, globStart: start,
                                            globCount: Int32(alternatives.count)))
                }
            }
        }
        code.commandStart = Int32(globs.count)
        for glob in constraint.commands { _ = place(glob) }
        code.commandCount = Int32(constraint.commands.count)
        codes.append(code)
        return Int32(codes.count - 1)
    }

    /// Places a v1 exec rule's target_glob (text syntax), matched against the exec's own
    /// command lines only; `RuleCode.lineGlob` holds the index returned, for `matches`.
    mutating func addLineGlob(_ glob: Glob, arena: inout MatchArena) -> Int32 {
        var code = Code()
        code.commandStart = Int32(globs.count)
        code.commandCount = 1
        code.ownLinesOnly = true
        globs.append(glob.code.relocated(by: arena.append(glob.arena)))
        globHasSlash.append(glob.pattern.utf8.contains(UInt8(ascii: "/")))
        codes.append(code)
        return Int32(codes.count - 1)
    }

    func matches(_ index: Int32, _ details: ExecDetails, _ arena: ArenaPointers) -> Bool {
        codes.withUnsafeBufferPointer { codes in
            elements.withUnsafeBufferPointer { elements in
                globs.withUnsafeBufferPointer { globs in
                  globHasSlash.withUnsafeBufferPointer { globHasSlash in
                    let code = codes[Int(index)]
                    if code.argvCount >= 0 {
                        let pattern = UnsafeBufferPointer(rebasing: elements[Int(code.argvStart)..<Int(code.argvStart + code.argvCount)])
                        var found = false
                        for (i, command) in details.analysis.commands.enumerated()
                        where Self.match(pattern, command, programs: details.programs[i], globs, globHasSlash, arena) {
                            found = true
                            break
                        }
                        if !found { return false }
                    }
                    if code.commandCount > 0 {
                        let commandGlobs = globs[Int(code.commandStart)..<Int(code.commandStart + code.commandCount)]
                        return details.lines[0..<(code.ownLinesOnly ? details.ownLineCount : details.lines.count)].contains { line in
                            commandGlobs.contains { Self.matches($0, line, arena) }
                        }
                    }
                    return true
                  }
                }
            }
        }
    }

    @inline(__always)
    static func matches(_ glob: GlobCode, _ text: String, _ arena: ArenaPointers) -> Bool {
        if let result = text.utf8.withContiguousStorageIfAvailable({ glob.matches($0, arena) }) { return result }
        return Array(text.utf8).withUnsafeBufferPointer { glob.matches($0, arena) }
    }

    /// Wildcard matching over arguments, `**` standing for any run of them (the classic
    /// single-backtrack algorithm: linear for one `**`, never exponential).
    static func match(_ pattern: UnsafeBufferPointer<Element>, _ words: [String], programs: ExecDetails.ProgramWords,
                      _ globs: UnsafeBufferPointer<GlobCode>, _ globHasSlash: UnsafeBufferPointer<Bool>,
                      _ arena: ArenaPointers) -> Bool {
        var p = 0, w = 0
        var starP = -1, starW = 0
        func elementMatches(_ element: Element, _ index: Int) -> Bool {
            for g in Int(element.globStart)..<Int(element.globStart + element.globCount) {
                if matches(globs[g], words[index], arena) { return true }
                if index == 0 {
                    for program in globHasSlash[g] ? programs.paths : programs.names {
                        if matches(globs[g], program, arena) { return true }
                    }
                }
            }
            return false
        }
        while w < words.count {
            if p < pattern.count, pattern[p].isRest {
                starP = p
                starW = w
                p += 1
            } else if p < pattern.count, elementMatches(pattern[p], w) {
                p += 1
                w += 1
            } else if starP >= 0 {
                p = starP + 1
                starW += 1
                w = starW
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p].isRest { p += 1 }
        return p == pattern.count
    }
}
