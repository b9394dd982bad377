/// One simple command inside a shell script, after quote removal.
public struct ShellSimpleCommand: Sendable, Hashable {
    /// Leading `NAME=value` assignments, as written after quote removal ("FOO=bar").
    public var assignments: [String]
    /// The command words after quote removal. Parameter expansions and command substitutions
    /// are kept as literal text (e.g. "$HOME", "$(date)") — the parser never expands. (Only when a
    /// hostile script nests far past `ShellScript.maximumNesting` may very long substitution texts
    /// be abbreviated with "…", to keep the total text copied linear in the input.)
    public var words: [String]
    /// Bodies of here-documents and here-strings redirected into this command (`<<EOF`, `<<<word`),
    /// in source order: a shell reading its script from standard input runs them.
    public var inputDocuments: [String]

    public init(assignments: [String] = [], words: [String] = [], inputDocuments: [String] = []) {
        self.assignments = assignments
        self.words = words
        self.inputDocuments = inputDocuments
    }
}

/// The quoting rules that differ between the shells a command string may be run by. `sh` is bash
/// on some systems and dash on others, so a string read one way may hide commands the other way
/// runs: `ShellScript.parseAllDialects` reads it every way that matters.
public struct ShellDialect: Sendable, Hashable {
    /// `$'…'` is an ANSI-C string with backslash escapes (bash, ksh, zsh, busybox ash). dash reads
    /// `$` followed by an ordinary single-quoted string, so `$'\'` ends at the second quote.
    public var ansiCQuoting: Bool
    /// Inside `"${…}"`, single quotes quote (bash: `"${x:-'"'}"` is one word). POSIX sh and dash
    /// treat them as ordinary characters there.
    public var singleQuotesInDoubleQuotedExpansions: Bool

    /// bash: ANSI-C strings, and single quotes honoured inside `"${…}"`.
    public static let bash = ShellDialect(ansiCQuoting: true, singleQuotesInDoubleQuotedExpansions: true)
    /// dash / POSIX sh: neither.
    public static let posix = ShellDialect(ansiCQuoting: false, singleQuotesInDoubleQuotedExpansions: false)
    /// What `ShellScript.parse(_:)` uses: bash's `$'…'` strings with POSIX rules inside `"${…}"`,
    /// the reading under which the most scripts parse without error.
    public static let standard = ShellDialect(ansiCQuoting: true, singleQuotesInDoubleQuotedExpansions: false)
}

/// A parsed script.
public struct ShellScript: Sendable, Equatable {
    /// Every simple command in source order, including those nested in ( ), { }, $( ), backticks,
    /// <( ) >( ), if/while/for/case bodies, function bodies and alias values (`alias s='sh -x'`
    /// records `sh -x`). Commands nested past `maximumNesting` come last, after the rest.
    public var commands: [ShellSimpleCommand]
    /// Every pipeline as indexes into `commands`, one entry per stage, in order (single-stage
    /// pipelines included). `a | b && c` gives [[0,1],[2]]. A compound stage (`( … )`, `{ … }`,
    /// a loop) of a multi-stage pipeline is represented by the first command inside it (see
    /// `pipelineStages` for all of them); a compound command on its own is no pipeline (the
    /// pipelines inside it are listed).
    public var pipelines: [[Int]]
    /// Parallel to `pipelines`: for each stage, every command that runs as part of it, the one
    /// listed in `pipelines` first. That is every command inside a compound stage or inside the
    /// stage's substitutions (they inherit its standard input), and, when a stage calls a function
    /// or alias defined in the script, the commands of its body or value (transitively). At most
    /// `maximumStageCommands` per stage. Empty when the script was built by hand.
    public var pipelineStages: [[[Int]]]
    /// nil when the whole string parsed; otherwise what was wrong (unterminated quote, unbalanced
    /// parenthesis…). The parser still returns every command it could recover (best effort: a
    /// hostile string must not hide a command just by being malformed).
    public var error: String?

    public init(
        commands: [ShellSimpleCommand] = [], pipelines: [[Int]] = [], pipelineStages: [[[Int]]] = [],
        error: String? = nil
    ) {
        self.commands = commands
        self.pipelines = pipelines
        self.pipelineStages = pipelineStages
        self.error = error
    }

    /// How deeply constructs may nest before the parser stops descending into them; this bounds
    /// its stack use. Deeper text is not skipped but flattened: each construct past the cap is
    /// parsed after the rest of the input as if it were at top level (so its commands and
    /// pipelines are still found, out of source order), and `error` reports the nesting.
    public static let maximumNesting = 32

    /// The most commands `pipelineStages` lists for one stage.
    public static let maximumStageCommands = 64

    /// Parses `source` as POSIX shell / bash (`ShellDialect.standard`). Never expands anything and
    /// never fails: problems are reported in `error`. Runs in time linear in the input.
    public static func parse(_ source: String) -> ShellScript {
        parse(source, dialect: .standard)
    }

    /// Parses `source` with one dialect's quoting rules.
    public static func parse(_ source: String, dialect: ShellDialect) -> ShellScript {
        parseReporting(source, dialect: dialect).script
    }

    /// Parses `source` under every dialect that reads it differently (only strings using `$'…'` or
    /// single quotes inside `"${…}"` are parsed more than once, at most four times) and returns
    /// the union: the first reading's commands, then each other reading's commands that are not
    /// already listed, and every distinct pipeline. `error` is nil when any reading parsed cleanly.
    public static func parseAllDialects(_ source: String) -> ShellScript {
        parseAllDialects(source, stepLimit: nil).script
    }

    /// `parseAllDialects` with a cap on the parser's work, summed over the readings; also returns
    /// the work done.
    static func parseAllDialects(_ source: String, stepLimit: Int?) -> (script: ShellScript, steps: Int) {
        var remainingSteps = stepLimit
        let first = parseReporting(source, dialect: .standard, stepLimit: remainingSteps)
        var steps = first.steps
        remainingSteps = remainingSteps.map { max(0, $0 - first.steps) }
        var sensitivity = first.sensitivity
        guard sensitivity.ansiC || sensitivity.quotesInExpansions else { return (first.script, steps) }
        var readings = [first.script]
        var tried: Set<ShellDialect> = [.standard]
        while true {
            // Every dialect that differs from a tried one only in rules the input turned out to use.
            let candidates = [ShellDialect.posix, .bash, ShellDialect(ansiCQuoting: false, singleQuotesInDoubleQuotedExpansions: true)]
            guard let dialect = candidates.first(where: { candidate in
                !tried.contains(candidate)
                    && (sensitivity.ansiC || candidate.ansiCQuoting == ShellDialect.standard.ansiCQuoting)
                    && (sensitivity.quotesInExpansions
                        || candidate.singleQuotesInDoubleQuotedExpansions == ShellDialect.standard.singleQuotesInDoubleQuotedExpansions)
            }) else { break }
            tried.insert(dialect)
            if let steps = remainingSteps, steps <= 0 { break }
            let reading = parseReporting(source, dialect: dialect, stepLimit: remainingSteps)
            steps += reading.steps
            remainingSteps = remainingSteps.map { max(0, $0 - reading.steps) }
            sensitivity.ansiC = sensitivity.ansiC || reading.sensitivity.ansiC
            sensitivity.quotesInExpansions = sensitivity.quotesInExpansions || reading.sensitivity.quotesInExpansions
            readings.append(reading.script)
        }
        return (union(readings), steps)
    }

    /// Which dialect-dependent constructs a parse met.
    struct DialectSensitivity {
        var ansiC = false
        var quotesInExpansions = false
    }

    static func parseReporting(
        _ source: String, dialect: ShellDialect, stepLimit: Int? = nil
    ) -> (script: ShellScript, sensitivity: DialectSensitivity, steps: Int) {
        var source = source
        return source.withUTF8 { bytes in
            var parser = ShellParser(bytes, dialect: dialect, stepLimit: stepLimit)
            parser.parseScript()
            parser.parseDeferred()
            return (parser.finish(), parser.sensitivity, parser.stepsTaken)
        }
    }

    /// The first script's commands, then the others' commands not already present (by value),
    /// with every distinct pipeline renumbered.
    static func union(_ scripts: [ShellScript]) -> ShellScript {
        guard var result = scripts.first else { return ShellScript() }
        guard scripts.count > 1 else { return result }
        var indexOf: [ShellSimpleCommand: Int] = [:]
        for (index, command) in result.commands.enumerated() where indexOf[command] == nil { indexOf[command] = index }
        var seenPipelines = Set(result.stagesOrPipelines)
        var anyClean = result.error == nil
        for script in scripts.dropFirst() {
            anyClean = anyClean || script.error == nil
            let mapped = script.commands.map { command -> Int in
                if let index = indexOf[command] { return index }
                result.commands.append(command)
                indexOf[command] = result.commands.count - 1
                return result.commands.count - 1
            }
            for stages in script.stagesOrPipelines {
                let renumbered = stages.map { $0.map { mapped[$0] } }
                guard seenPipelines.insert(renumbered).inserted else { continue }
                result.pipelines.append(renumbered.map { $0[0] })
                result.pipelineStages.append(renumbered)
            }
        }
        if anyClean { result.error = nil }
        return result
    }

    /// `pipelineStages`, or the single-command stages of `pipelines` when it was not filled in.
    var stagesOrPipelines: [[[Int]]] {
        pipelineStages.count == pipelines.count ? pipelineStages : pipelines.map { $0.map { [$0] } }
    }
}
