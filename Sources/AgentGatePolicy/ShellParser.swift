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

    public init(ansiCQuoting: Bool, singleQuotesInDoubleQuotedExpansions: Bool) {
        self.ansiCQuoting = ansiCQuoting
        self.singleQuotesInDoubleQuotedExpansions = singleQuotesInDoubleQuotedExpansions
    }

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

// MARK: - Parser

private extension UInt8 {
    static let tab: UInt8 = 0x09
    static let newline: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let bang: UInt8 = 0x21
    static let doubleQuote: UInt8 = 0x22
    static let hash: UInt8 = 0x23
    static let dollar: UInt8 = 0x24
    static let ampersand: UInt8 = 0x26
    static let singleQuote: UInt8 = 0x27
    static let leftParen: UInt8 = 0x28
    static let rightParen: UInt8 = 0x29
    static let star: UInt8 = 0x2A
    static let plus: UInt8 = 0x2B
    static let minus: UInt8 = 0x2D
    static let semicolon: UInt8 = 0x3B
    static let less: UInt8 = 0x3C
    static let equals: UInt8 = 0x3D
    static let greater: UInt8 = 0x3E
    static let question: UInt8 = 0x3F
    static let at: UInt8 = 0x40
    static let leftBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let rightBracket: UInt8 = 0x5D
    static let underscore: UInt8 = 0x5F
    static let backquote: UInt8 = 0x60
    static let leftBrace: UInt8 = 0x7B
    static let pipe: UInt8 = 0x7C
    static let rightBrace: UInt8 = 0x7D
    static let tilde: UInt8 = 0x7E

    var isDigit: Bool { self >= 0x30 && self <= 0x39 }
    var isNameStart: Bool { (self >= 0x41 && self <= 0x5A) || (self >= 0x61 && self <= 0x7A) || self == .underscore }
    var isNameCharacter: Bool { isNameStart || isDigit }
    var isBlank: Bool { self == .space || self == .tab }

    /// Bytes that end an unquoted word: blanks, newline and `; & | ( ) < >`.
    var isMetacharacter: Bool {
        switch self {
        case 0x20, 0x09, 0x0A, 0x3B, 0x26, 0x7C, 0x28, 0x29, 0x3C, 0x3E: true
        default: false
        }
    }

    /// Bytes with no special meaning in an unquoted word; the word reader copies runs of them.
    var isPlainWordByte: Bool {
        switch self {
        case 0x20, 0x09, 0x0A, 0x3B, 0x26, 0x7C, 0x28, 0x29, 0x3C, 0x3E, // metacharacters
             0x5C, 0x27, 0x22, 0x24, 0x60: // \ ' " $ `
            false
        default: true
        }
    }

    /// Bytes with no special meaning inside double quotes.
    var isPlainQuotedByte: Bool { self != .doubleQuote && self != .backslash && self != .dollar && self != .backquote }

    /// Bytes after which `(` opens a bash extended-glob group (`@(a|b)`, `!(x)`) inside a word.
    var isExtendedGlobMarker: Bool { self == .at || self == .bang || self == .plus || self == .star || self == .question }
}

/// Words that are reserved when they are a command's first unquoted word.
private enum ReservedWord: String {
    case `if`, then, elif, `else`, fi, `while`, until, `do`, done, `for`, select, `case`, esac
    case function, `in`, coproc, time
    case openBrace = "{", closeBrace = "}", bang = "!", openConditional = "[["

    /// Words that end a compound command's part; a list stops in front of them.
    var closesCompound: Bool {
        switch self {
        case .then, .elif, .else, .fi, .do, .done, .esac, .closeBrace: true
        default: false
        }
    }

    var length: Int { rawValue.utf8.count }

    /// Alphabetic reserved words by their bytes packed big-endian into an integer: a lookup that
    /// needs no String for every command's first word.
    static let byPackedSpelling: [UInt64: ReservedWord] = {
        let all: [ReservedWord] = [
            .if, .then, .elif, .else, .fi, .while, .until, .do, .done, .for, .select, .case, .esac,
            .function, .in, .coproc, .time,
        ]
        var table: [UInt64: ReservedWord] = [:]
        for word in all {
            table[word.rawValue.utf8.reduce(0) { $0 << 8 | UInt64($1) }] = word
        }
        return table
    }()
}

/// Recursive-descent parser over the script's UTF-8 bytes. Every loop consumes input, nesting is
/// capped at `ShellScript.maximumNesting` (deeper constructs are queued and parsed afterwards, each
/// as a script of its own, so text past the cap is flattened rather than skipped), and look-ahead
/// scans are iterative and cached, so hostile input can neither exhaust the stack nor take
/// super-linear time; a step budget is the last-resort bound.
struct ShellParser {
    private var buf: UnsafeBufferPointer<UInt8>
    private var pos = 0
    /// `buf.count` (or the end of the queued piece being parsed), kept in a stored property because
    /// debug builds copy the parser on every non-mutating call (which is also why all helpers are
    /// `mutating`).
    private var end: Int
    private let dialect: ShellDialect
    private(set) var sensitivity = ShellScript.DialectSensitivity()
    private var commands: [ShellSimpleCommand] = []
    /// Pipeline stages as ranges of command indexes (a compound stage spans several commands).
    private var pipelineStages: [[Range<Int>]] = []
    private var error: String?
    private var depth = 0
    private var steps = 0
    private let stepLimit: Int
    private var aborted = false
    private var pendingHereDocuments: [PendingHereDocument] = []
    /// `matchingClose` results by opening index (-1: unterminated), filled for every bracket a scan
    /// passes, so nested look-aheads never rescan the same text.
    private var closeCache: [Int: Int] = [:]
    /// Substitution text copied verbatim into words, in bytes, before long texts are abbreviated:
    /// nesting copies each byte once per level, which must stay linear in the input.
    private var copyBudget: Int
    /// Functions (`f() { … }`, `function f { … }`) and aliases (`alias f='…'`) defined in the
    /// script: their names and the commands of their bodies or values.
    private var definitions: [(name: String, commands: Range<Int>)] = []

    // Constructs nested past the cap, parsed after the input as scripts of their own.
    private enum DeferredKind {
        case list, parameterExpansion(inDoubleQuotes: Bool), arithmetic, hereDocument
    }

    private struct Deferred {
        /// -1: the main input; otherwise an index into `deferredBuffers`.
        var buffer: Int
        var range: Range<Int>
        var kind: DeferredKind
    }

    private var deferred: [Deferred] = []
    /// Texts that are not part of the main input (backquoted text, here-document bodies), kept
    /// for deferred pieces inside them, with their look-ahead caches.
    private var deferredBuffers: [[UInt8]] = []
    private var deferredCaches: [[Int: Int]] = []
    /// Which text `buf` is: -1 the main input, ≥ 0 an index into `deferredBuffers`, -2 a
    /// sub-buffer (`currentBytes`) not stored yet.
    private var currentBuffer = -1
    private var currentBytes: [UInt8] = []
    private let mainBuffer: UnsafeBufferPointer<UInt8>

    /// A `<<WORD` whose body starts after the next newline token.
    private struct PendingHereDocument {
        var delimiter: [UInt8]
        var stripsTabs: Bool
        /// An unquoted delimiter means the body undergoes expansion: its `$( )` runs.
        var expands: Bool
        var commandIndex: Int?
    }

    init(_ bytes: UnsafeBufferPointer<UInt8>, dialect: ShellDialect = .standard, stepLimit: Int? = nil) {
        buf = bytes
        mainBuffer = bytes
        end = bytes.count
        self.dialect = dialect
        self.stepLimit = stepLimit ?? (64 * bytes.count + 100_000)
        copyBudget = 2 * bytes.count + 65_536
    }

    var stepsTaken: Int { steps }

    /// The byte at `index`, or 0 past the end (0 has no meaning to the parser).
    private mutating func byte(_ index: Int) -> UInt8 { index < end ? buf[index] : 0 }

    private mutating func fail(_ message: String) {
        if error == nil { error = message }
    }

    /// Counts one unit of work; false (and everything stops) once the budget is spent.
    private mutating func tick() -> Bool {
        steps += 1
        if steps > stepLimit, !aborted {
            fail("script too complex to analyse")
            aborted = true
        }
        if aborted {
            pos = end
            return false
        }
        return true
    }

    /// Enters one nesting level; false (with an error) past the cap. A level costs a few steps
    /// (it takes stack frames and a copy of the text): nesting bombs meet the budget early.
    private mutating func enter() -> Bool {
        steps += 4
        guard depth < ShellScript.maximumNesting else {
            fail("nesting deeper than \(ShellScript.maximumNesting) levels")
            return false
        }
        depth += 1
        return true
    }

    private mutating func leave() { depth -= 1 }

    // MARK: Flattening past the nesting cap

    /// Queues `range` of the current text, parsed later as `kind` at top level.
    private mutating func queue(_ kind: DeferredKind, _ range: Range<Int>) {
        guard !range.isEmpty, !aborted else { return }
        if currentBuffer == -2 {
            deferredBuffers.append(currentBytes)
            deferredCaches.append([:])
            currentBuffer = deferredBuffers.count - 1
        }
        deferred.append(Deferred(buffer: currentBuffer, range: range, kind: kind))
    }

    /// Queues a text of its own (here-document body, backquoted text), parsed later as `kind`.
    private mutating func queue(_ kind: DeferredKind, bytes: [UInt8]) {
        guard !bytes.isEmpty, !aborted else { return }
        deferredBuffers.append(bytes)
        deferredCaches.append([:])
        deferred.append(Deferred(buffer: deferredBuffers.count - 1, range: 0..<bytes.count, kind: kind))
    }

    /// Past the nesting cap: the bracketed text at `pos` (`(` or `{`) is skipped here and queued.
    private mutating func deferNested(_ kind: DeferredKind) {
        let open = pos
        if let close = matchingClose(from: open) {
            pos = close
            queue(kind, (open + 1)..<max(open + 1, close - 1))
        } else {
            fail("unterminated \(buf[open] == .leftBrace ? "${" : "parenthesis")")
            pos = end
            queue(kind, min(open + 1, end)..<end)
        }
    }

    /// Parses every queued piece, each at nesting level 0; pieces may queue more (each one is a
    /// distinct, smaller part of the input, so this ends, and the step budget bounds it).
    mutating func parseDeferred() {
        var next = 0
        while next < deferred.count, !aborted {
            let item = deferred[next]
            next += 1
            let savedHereDocuments = pendingHereDocuments
            pendingHereDocuments = []
            depth = 0
            if item.buffer < 0 {
                buf = mainBuffer
                currentBuffer = -1
                pos = item.range.lowerBound
                end = item.range.upperBound
                parseDeferredPiece(item.kind)
                end = mainBuffer.count
            } else {
                let bytes = deferredBuffers[item.buffer]
                let savedCache = closeCache
                closeCache = deferredCaches[item.buffer]
                deferredCaches[item.buffer] = [:]
                bytes.withUnsafeBufferPointer { piece in
                    buf = piece
                    currentBuffer = item.buffer
                    pos = item.range.lowerBound
                    end = item.range.upperBound
                    parseDeferredPiece(item.kind)
                }
                deferredCaches[item.buffer] = closeCache
                closeCache = savedCache
                buf = mainBuffer
                currentBuffer = -1
                end = mainBuffer.count
            }
            pendingHereDocuments = savedHereDocuments
        }
        deferred.removeAll()
        pos = end
    }

    private mutating func parseDeferredPiece(_ kind: DeferredKind) {
        switch kind {
        case .list:
            parseScript()
        case .parameterExpansion(let inDoubleQuotes):
            parseParameterExpansionOperands(inDoubleQuotes: inDoubleQuotes, closedByBrace: false)
        case .arithmetic:
            scanExpansions(until: end)
        case .hereDocument:
            scanHereDocumentExpansions()
        }
    }

    // MARK: Result

    mutating func finish() -> ShellScript {
        // Drop commands with neither words nor assignments (`> file` alone, function names,
        // placeholders of constructs that turned out empty) and renumber pipeline stages.
        var newIndex = [Int](repeating: -1, count: commands.count)
        var kept: [ShellSimpleCommand] = []
        kept.reserveCapacity(commands.count)
        for index in commands.indices where !(commands[index].words.isEmpty && commands[index].assignments.isEmpty) {
            newIndex[index] = kept.count
            kept.append(commands[index])
        }
        // nextKept[i]: the first kept command at or after i, so a stage whose first command was
        // dropped is represented by the next command inside it.
        var nextKept = [Int](repeating: commands.count, count: commands.count + 1)
        for index in stride(from: commands.count - 1, through: 0, by: -1) {
            nextKept[index] = newIndex[index] >= 0 ? index : nextKept[index + 1]
        }
        // Definitions by name (the last one first), for stages that call a function or alias.
        var definitionsByName: [String: [Range<Int>]] = [:]
        for definition in definitions.reversed() { definitionsByName[definition.name, default: []].append(definition.commands) }
        let limit = ShellScript.maximumStageCommands
        // Work listing stage commands, over the whole script: past it, stages list only their
        // first command (a hostile script of many piped compound stages or chained functions).
        var listingBudget = 65_536
        var pipelines: [[Int]] = []
        var stagesOut: [[[Int]]] = []
        for stages in pipelineStages {
            var mapped: [Int] = []
            var alternatives: [[Int]] = []
            for stage in stages {
                let first = nextKept[stage.lowerBound]
                guard first < stage.upperBound else { continue }
                mapped.append(newIndex[first])
                guard stages.count > 1 else {
                    alternatives.append([newIndex[first]])
                    continue
                }
                let second = nextKept[first + 1]
                if (second >= stage.upperBound && definitionsByName.isEmpty) || listingBudget <= 0 {
                    if listingBudget <= 0, second < stage.upperBound || !definitionsByName.isEmpty {
                        fail("too many commands in piped compound commands and functions: some not listed")
                    }
                    alternatives.append([newIndex[first]]) // a simple command, as most stages are
                    continue
                }
                // Every command inside the stage, then the bodies of functions and aliases called.
                var commandsOfStage: [Int] = []
                func include(_ range: Range<Int>) {
                    var index = nextKept[min(range.lowerBound, commands.count)]
                    while index < range.upperBound, commandsOfStage.count < limit {
                        listingBudget -= commandsOfStage.count + 1
                        if !commandsOfStage.contains(index) { commandsOfStage.append(index) }
                        index = nextKept[index + 1]
                    }
                }
                include(stage)
                if !definitionsByName.isEmpty {
                    var expanded: [Range<Int>] = []
                    var next = 0
                    while next < commandsOfStage.count, commandsOfStage.count < limit {
                        let command = commandsOfStage[next]
                        next += 1
                        guard let name = commands[command].words.first, let bodies = definitionsByName[name] else { continue }
                        for body in bodies where !expanded.contains(body) {
                            expanded.append(body)
                            include(body)
                        }
                    }
                }
                alternatives.append(commandsOfStage.map { newIndex[$0] })
            }
            if !mapped.isEmpty {
                pipelines.append(mapped)
                stagesOut.append(alternatives)
            }
        }
        return ShellScript(commands: kept, pipelines: pipelines, pipelineStages: stagesOut, error: error)
    }

    // MARK: Blanks, comments, reserved words

    private mutating func skipBlanks() {
        while pos < end {
            let c = buf[pos]
            if c.isBlank {
                pos += 1
            } else if c == .backslash, byte(pos + 1) == .newline {
                pos += 2 // line continuation
            } else {
                return
            }
        }
    }

    private mutating func skipComment() {
        while pos < end, buf[pos] != .newline { pos += 1 }
    }

    /// Skips blanks, comments and newlines, reading pending here-document bodies at each newline.
    private mutating func skipBlanksAndNewlines() {
        while true {
            skipBlanks()
            guard pos < end else { return }
            switch buf[pos] {
            case .hash:
                skipComment()
            case .newline:
                pos += 1
                readPendingHereDocuments()
            default:
                return
            }
        }
    }

    /// The reserved word at `pos`, if the next token is one (unquoted, followed by a delimiter).
    private mutating func reservedWord() -> ReservedWord? {
        guard pos < end else { return nil }
        let c = buf[pos]
        switch c {
        case .leftBrace, .bang:
            let next = byte(pos + 1)
            guard pos + 1 >= end || next.isBlank || next == .newline else { return nil }
            return c == .leftBrace ? .openBrace : .bang
        case .rightBrace:
            guard pos + 1 >= end || buf[pos + 1].isMetacharacter else { return nil }
            return .closeBrace
        case .leftBracket:
            guard byte(pos + 1) == .leftBracket else { return nil }
            let next = byte(pos + 2)
            guard pos + 2 >= end || next.isBlank || next == .newline else { return nil }
            return .openConditional
        default:
            break
        }
        var index = pos
        while index < end, index - pos < 9, buf[index] >= 0x61, buf[index] <= 0x7A { index += 1 }
        let length = index - pos
        guard length >= 2, length <= 8, index >= end || buf[index].isMetacharacter else { return nil }
        var key: UInt64 = 0
        for offset in pos..<index { key = key << 8 | UInt64(buf[offset]) }
        return ReservedWord.byPackedSpelling[key]
    }

    private mutating func isCaseTerminator() -> Bool {
        pos < end && buf[pos] == .semicolon && (byte(pos + 1) == .semicolon || byte(pos + 1) == .ampersand)
    }

    /// Whether the next token ends a list: end of input, `)`, `;;`-style or a closing reserved word.
    private mutating func atListEnd() -> Bool {
        guard pos < end else { return true }
        if buf[pos] == .rightParen || isCaseTerminator() { return true }
        return reservedWord()?.closesCompound ?? false
    }

    /// Consumes a token that closes a construct which is not open and returns its spelling.
    private mutating func consumeStrayToken() -> String {
        if let word = reservedWord() {
            pos += word.length
            return word.rawValue
        }
        if isCaseTerminator() {
            let length = byte(pos + 1) == .semicolon && byte(pos + 2) == .ampersand ? 3 : 2
            let text = String(decoding: UnsafeBufferPointer(rebasing: buf[pos..<(pos + length)]), as: UTF8.self)
            pos += length
            return text
        }
        let text = String(UnicodeScalar(buf[pos]))
        pos += 1
        return text
    }

    // MARK: Lists and pipelines

    /// The whole input: lists, with stray closing tokens reported and skipped.
    mutating func parseScript() {
        while !aborted {
            parseList()
            guard pos < end, !aborted else { return }
            fail("unexpected '\(consumeStrayToken())'")
        }
    }

    /// Parses and/or lists separated by `;`, `&` or newlines. Stops, without consuming, at the end
    /// of input, `)`, a case terminator or a reserved word that closes a compound command: the
    /// caller decides whether that is the token it expects.
    private mutating func parseList() {
        var needsCommand = false
        while tick() {
            skipBlanksAndNewlines()
            if atListEnd() {
                if needsCommand { fail("missing command after && or ||") }
                return
            }
            let start = pos
            let c = buf[pos]
            if c == .semicolon || (c == .ampersand && byte(pos + 1) != .greater) {
                fail("unexpected '\(UnicodeScalar(c))'")
                pos += 1
                continue
            }
            parsePipeline()
            needsCommand = false
            skipBlanks()
            if pos < end {
                switch buf[pos] {
                case .semicolon where !isCaseTerminator():
                    pos += 1
                case .ampersand:
                    if byte(pos + 1) == .ampersand {
                        pos += 2
                        needsCommand = true
                    } else {
                        pos += 1
                    }
                case .pipe where byte(pos + 1) == .pipe:
                    pos += 2
                    needsCommand = true
                case .newline:
                    pos += 1
                    readPendingHereDocuments()
                case .hash:
                    break
                default:
                    if !atListEnd() { fail("missing ; or newline before '\(UnicodeScalar(buf[pos]))'") }
                }
            }
            if pos == start {
                fail("unexpected '\(consumeStrayToken())'")
            }
        }
    }

    /// Parses a list up to one of `closers`, reporting and skipping any other closing word.
    /// Returns the closer (not consumed), or nil at `)`, a case terminator or the end of input.
    private mutating func parseList(until closers: [ReservedWord]) -> ReservedWord? {
        while true {
            parseList()
            guard pos < end, !aborted, let word = reservedWord(), word.closesCompound else { return nil }
            if closers.contains(word) { return word }
            fail("unexpected '\(word.rawValue)'")
            pos += word.length
        }
    }

    private mutating func parsePipeline() {
        // Reserve the pipeline's slot now so pipelines stay in source order even though those
        // nested in its words finish first.
        let slot = pipelineStages.count
        pipelineStages.append([])
        var stages: [Range<Int>] = []
        var onlyStageIsCompound = false
        while tick() {
            let firstCommand = commands.count
            let isSimple = parseCommand()
            if commands.count > firstCommand {
                stages.append(firstCommand..<commands.count)
                onlyStageIsCompound = !isSimple
            }
            skipBlanks()
            guard byte(pos) == .pipe, byte(pos + 1) != .pipe else { break }
            pos += 1
            steps += 1 // each stage is also work for whoever lists the pipeline's parts
            if byte(pos) == .ampersand { pos += 1 } // `|&` also pipes standard error
            skipBlanksAndNewlines()
            if atListEnd() {
                fail("missing command after |")
                break
            }
        }
        // A lone compound command is no pipeline of its own: the pipelines inside it are recorded.
        if stages.count > 1 || (stages.count == 1 && !onlyStageIsCompound) { pipelineStages[slot] = stages }
    }

    // MARK: Commands

    /// Parses one pipeline stage; returns whether it was a simple command.
    @discardableResult
    private mutating func parseCommand() -> Bool {
        while true {
            skipBlanks()
            guard pos < end else { return false }
            if buf[pos] == .leftParen {
                if byte(pos + 1) == .leftParen {
                    parseArithmeticOrNestedSubshell("subshell")
                } else {
                    parseParenthesizedList("subshell")
                }
                parseTrailingRedirections()
                return false
            }
            guard let word = reservedWord() else { return parseSimpleCommand() }
            switch word {
            case .bang:
                pos += 1
                continue
            case .time:
                if consumeTimePrefix() { continue }
                return parseSimpleCommand()
            case .coproc:
                pos += word.length
                skipCoprocessName()
                continue
            case .in:
                return parseSimpleCommand()
            case .function:
                parseFunctionKeyword()
                return false
            case .then, .elif, .else, .fi, .do, .done, .esac, .closeBrace:
                return false // closes an enclosing construct; the list above decides
            case .openBrace:
                parseGroup()
            case .if:
                parseIf()
            case .while, .until:
                parseWhile(word)
            case .for, .select:
                parseFor(word)
            case .case:
                parseCase()
            case .openConditional:
                parseConditional()
            }
            parseTrailingRedirections()
            return false
        }
    }

    /// `time [-p]` before a compound command is bash's keyword and is dropped; before a simple
    /// command it stays a word (it may be /usr/bin/time). Returns whether it was consumed.
    private mutating func consumeTimePrefix() -> Bool {
        let saved = pos
        pos += ReservedWord.time.length
        skipBlanks()
        if byte(pos) == .minus, byte(pos + 1) == 0x70, pos + 2 >= end || buf[pos + 2].isMetacharacter {
            pos += 2
            skipBlanks()
        }
        if pos < end, buf[pos] == .leftParen { return true }
        switch reservedWord() {
        case .openBrace, .if, .while, .until, .for, .select, .case, .openConditional, .bang, .time:
            return true
        default:
            pos = saved
            return false
        }
    }

    /// `coproc NAME { … }`: the name is not a command.
    private mutating func skipCoprocessName() {
        skipBlanks()
        guard pos < end, buf[pos].isNameStart else { return }
        var index = pos + 1
        while index < end, buf[index].isNameCharacter { index += 1 }
        var next = index
        while next < end, buf[next].isBlank { next += 1 }
        let saved = pos
        pos = next
        if byte(next) == .leftParen || reservedWord() == .openBrace { return }
        pos = saved
    }

    /// `( list )`, `$( list )`, `<( list )`, `>( list )`: `pos` is at the `(`.
    private mutating func parseParenthesizedList(_ construct: String) {
        guard enter() else {
            deferNested(.list)
            return
        }
        defer { leave() }
        pos += 1
        while true {
            parseList()
            if pos < end, buf[pos] == .rightParen {
                pos += 1
                return
            }
            if pos >= end || aborted {
                fail("unterminated \(construct): missing )")
                return
            }
            fail("unexpected '\(consumeStrayToken())' in \(construct)")
        }
    }

    /// `((…))` or `$((…))` with `pos` at the first `(`: arithmetic when the inner parenthesis closes
    /// right before the outer one, otherwise (`((a) | b)`) a subshell or substitution that starts
    /// with a nested subshell, as bash decides.
    private mutating func parseArithmeticOrNestedSubshell(_ construct: String) {
        if let afterInner = matchingClose(from: pos + 1), byte(afterInner) == .rightParen, afterInner < end {
            parseArithmetic(contentEnd: afterInner - 1, closeEnd: afterInner + 1)
        } else {
            parseParenthesizedList(construct)
        }
    }

    /// Arithmetic is not a command, but substitutions inside it run.
    private mutating func parseArithmetic(contentEnd: Int, closeEnd: Int) {
        guard enter() else {
            queue(.arithmetic, min(pos + 2, contentEnd)..<contentEnd)
            pos = closeEnd
            return
        }
        defer { leave() }
        pos += 2
        scanExpansions(until: contentEnd)
        if pos <= contentEnd { pos = closeEnd }
    }

    /// Parses substitutions in `pos..<limit` (arithmetic, extended globs), recording their commands.
    private mutating func scanExpansions(until limit: Int) {
        var scratch: [UInt8] = []
        while pos < limit, tick() {
            switch buf[pos] {
            case .backslash:
                pos = min(pos + 2, end)
            case .singleQuote:
                skipSingleQuoted(into: &scratch)
            case .doubleQuote:
                parseDoubleQuoted(into: &scratch)
            case .dollar:
                parseDollar(into: &scratch, inDoubleQuotes: false)
            case .backquote:
                parseBackquoted(into: &scratch, inDoubleQuotes: false)
            default:
                pos += 1
            }
            scratch.removeAll(keepingCapacity: true)
        }
    }

    private mutating func parseGroup() {
        pos += 1
        guard enter() else { return } // too deep: the body is parsed flat by the enclosing list
        defer { leave() }
        if parseList(until: [.closeBrace]) != nil {
            pos += 1
        } else {
            fail("unterminated { group: missing }")
        }
    }

    private mutating func parseIf() {
        pos += ReservedWord.if.length
        guard enter() else { return }
        defer { leave() }
        var expected: [ReservedWord] = [.then]
        while let word = parseList(until: expected) {
            pos += word.length
            switch word {
            case .then: expected = [.elif, .else, .fi]
            case .elif: expected = [.then]
            case .else: expected = [.fi]
            default: return
            }
        }
        fail("unterminated if: missing \(expected.map(\.rawValue).joined(separator: "/"))")
    }

    private mutating func parseWhile(_ keyword: ReservedWord) {
        pos += keyword.length
        guard enter() else { return }
        defer { leave() }
        guard parseList(until: [.do]) != nil else {
            fail("unterminated \(keyword.rawValue): missing do")
            return
        }
        pos += ReservedWord.do.length
        parseDoBody(keyword)
    }

    /// After `do`: the loop body up to `done`.
    private mutating func parseDoBody(_ keyword: ReservedWord) {
        if parseList(until: [.done]) != nil {
            pos += ReservedWord.done.length
        } else {
            fail("unterminated \(keyword.rawValue): missing done")
        }
    }

    private mutating func parseFor(_ keyword: ReservedWord) {
        pos += keyword.length
        guard enter() else { return }
        defer { leave() }
        skipBlanks()
        if byte(pos) == .leftParen, byte(pos + 1) == .leftParen {
            // for (( init; test; step ))
            if let afterInner = matchingClose(from: pos + 1), byte(afterInner) == .rightParen {
                parseArithmetic(contentEnd: afterInner - 1, closeEnd: afterInner + 1)
            } else {
                fail("malformed for (( ))")
                skipNested()
            }
        } else {
            guard pos < end, !buf[pos].isMetacharacter else {
                fail("\(keyword.rawValue) without a variable name")
                return
            }
            _ = readWord()
            skipBlanksAndNewlines()
            if reservedWord() == .in {
                pos += ReservedWord.in.length
                // The word list: substitutions in it run.
                while tick() {
                    skipBlanks()
                    guard pos < end else { break }
                    let c = buf[pos]
                    if c == .semicolon || c == .newline { break }
                    if c == .hash {
                        skipComment()
                        continue
                    }
                    if c.isMetacharacter, !isProcessSubstitutionStart() {
                        fail("unexpected '\(UnicodeScalar(c))' in \(keyword.rawValue) word list")
                        break
                    }
                    _ = readWord()
                }
            }
        }
        skipBlanks()
        if byte(pos) == .semicolon, !isCaseTerminator() { pos += 1 }
        skipBlanksAndNewlines()
        switch reservedWord() {
        case .do:
            pos += ReservedWord.do.length
            parseDoBody(keyword)
        case .openBrace:
            parseGroup()
        default:
            fail("unterminated \(keyword.rawValue): missing do")
        }
    }

    private mutating func parseCase() {
        pos += ReservedWord.case.length
        guard enter() else { return }
        defer { leave() }
        skipBlanks()
        guard pos < end, !buf[pos].isMetacharacter else {
            fail("case without a word")
            return
        }
        _ = readWord()
        skipBlanksAndNewlines()
        guard reservedWord() == .in else {
            fail("case without in")
            return
        }
        pos += ReservedWord.in.length
        while tick() {
            skipBlanksAndNewlines()
            guard pos < end else {
                fail("unterminated case: missing esac")
                return
            }
            if reservedWord() == .esac {
                pos += ReservedWord.esac.length
                return
            }
            // Pattern list: [(] pattern [| pattern]… )
            if buf[pos] == .leftParen { pos += 1 }
            var closed = false
            while tick() {
                skipBlanks()
                guard pos < end else { break }
                let c = buf[pos]
                if c == .rightParen {
                    pos += 1
                    closed = true
                    break
                }
                if c == .pipe {
                    pos += 1
                    continue
                }
                if c.isMetacharacter { break }
                _ = readWord()
            }
            guard closed else {
                fail("malformed case pattern")
                return
            }
            let closer = parseList(until: [.esac])
            if isCaseTerminator() {
                pos += byte(pos + 1) == .semicolon && byte(pos + 2) == .ampersand ? 3 : 2
                continue
            }
            if closer == .esac {
                pos += ReservedWord.esac.length
                return
            }
            fail("unterminated case: missing esac")
            return
        }
    }

    /// `[[ expression ]]`: not a command, but substitutions inside it run.
    private mutating func parseConditional() {
        pos += 2
        guard enter() else { return }
        defer { leave() }
        var scratch: [UInt8] = []
        while tick() {
            skipBlanks()
            guard pos < end else {
                fail("unterminated [[: missing ]]")
                return
            }
            let c = buf[pos]
            if c == .rightBracket, byte(pos + 1) == .rightBracket, pos + 2 >= end || buf[pos + 2].isMetacharacter {
                pos += 2
                return
            }
            switch c {
            case .leftParen, .rightParen, .less, .greater:
                pos += 1
            case .ampersand where byte(pos + 1) == .ampersand, .pipe where byte(pos + 1) == .pipe:
                pos += 2
            case .newline, .semicolon, .ampersand, .pipe:
                fail("unterminated [[: missing ]]")
                return
            default:
                if c == .equals, byte(pos + 1) == 0x7E, pos + 2 >= end || buf[pos + 2].isBlank {
                    pos += 2
                    skipBlanks()
                    skipRegularExpression(into: &scratch)
                } else {
                    _ = readWord()
                }
                scratch.removeAll(keepingCapacity: true)
            }
        }
    }

    /// The right side of `=~`: up to a blank outside parentheses (bash reads `|` and `( )` as regex).
    private mutating func skipRegularExpression(into scratch: inout [UInt8]) {
        var parens = 0
        while pos < end, tick() {
            switch buf[pos] {
            case .space, .tab, .newline:
                if parens == 0 { return }
                pos += 1
            case .leftParen:
                parens += 1
                pos += 1
            case .rightParen:
                if parens == 0 { return }
                parens -= 1
                pos += 1
            case .backslash:
                pos = min(pos + 2, end)
            case .singleQuote:
                skipSingleQuoted(into: &scratch)
            case .doubleQuote:
                parseDoubleQuoted(into: &scratch)
            case .dollar:
                parseDollar(into: &scratch, inDoubleQuotes: false)
            case .backquote:
                parseBackquoted(into: &scratch, inDoubleQuotes: false)
            default:
                pos += 1
            }
        }
    }

    /// `function name [()] body`.
    private mutating func parseFunctionKeyword() {
        pos += ReservedWord.function.length
        skipBlanks()
        guard pos < end, !buf[pos].isMetacharacter else {
            fail("function without a name")
            return
        }
        let name = readWord()
        skipBlanks()
        if byte(pos) == .leftParen {
            pos += 1
            skipBlanks()
            if byte(pos) == .rightParen {
                pos += 1
            } else {
                fail("expected ) in function definition")
            }
        }
        let bodyStart = commands.count
        parseFunctionBody()
        definitions.append((name, bodyStart..<commands.count))
    }

    /// A function body: its commands run whenever the function is called, so they are recorded.
    private mutating func parseFunctionBody() {
        guard enter() else { return } // too deep: the body is parsed flat by the enclosing list
        defer { leave() }
        skipBlanksAndNewlines()
        parseCommand()
    }

    /// Returns false when the words turned out to define a function (`name () body`).
    private mutating func parseSimpleCommand() -> Bool {
        var definesFunction = false
        let index = commands.count
        commands.append(ShellSimpleCommand())
        var assignments: [String] = []
        var words: [String] = []
        scan: while tick() {
            skipBlanks()
            guard pos < end else { break }
            let c = buf[pos]
            switch c {
            case .newline, .semicolon, .pipe, .rightParen:
                break scan
            case .ampersand:
                guard byte(pos + 1) == .greater else { break scan }
                parseRedirection(for: index)
            case .hash:
                skipComment()
            case .leftParen:
                if words.count == 1, assignments.isEmpty, startsEmptyParentheses() {
                    // `name () body` defines a function: the name is not a command.
                    let name = words.removeLast()
                    definesFunction = true
                    pos += 1
                    skipBlanks()
                    pos += 1
                    let bodyStart = commands.count
                    parseFunctionBody()
                    definitions.append((name, bodyStart..<commands.count))
                    break scan
                }
                fail("unexpected '('")
                parseParenthesizedList("subshell") // a stray ( must not hide what follows it
            case .less, .greater:
                if byte(pos + 1) == .leftParen {
                    words.append(readWord())
                } else {
                    parseRedirection(for: index)
                }
            default:
                if isRedirectionStart() {
                    parseRedirection(for: index)
                } else if words.isEmpty, isAssignmentStart() {
                    assignments.append(readAssignment())
                } else {
                    words.append(readWord())
                }
            }
        }
        commands[index].assignments = assignments
        commands[index].words = words
        if words.count > 1, words[0] == "alias" { parseAliasValues(words.dropFirst()) }
        return !definesFunction
    }

    /// `alias NAME=VALUE…`: each value is a script that runs where NAME is used as a command, so
    /// its commands are recorded (a malformed value is no error until the alias is used).
    private mutating func parseAliasValues(_ arguments: ArraySlice<String>) {
        for argument in arguments {
            guard let equals = argument.utf8.firstIndex(of: .equals), equals != argument.utf8.startIndex else { continue }
            let name = String(argument[..<equals])
            let value = Array(argument.utf8[argument.utf8.index(after: equals)...])
            guard !value.isEmpty, !aborted else { continue }
            if enter() {
                let savedError = error
                let start = commands.count
                withSubBuffer(value) { $0.parseScript() }
                leave()
                definitions.append((name, start..<commands.count))
                if !aborted { error = savedError }
            } else {
                queue(.list, bytes: value)
            }
        }
    }

    /// Whether `pos` (at `(`) starts `( )` with only blanks inside.
    private mutating func startsEmptyParentheses() -> Bool {
        var index = pos + 1
        while index < end, buf[index].isBlank { index += 1 }
        return byte(index) == .rightParen && index < end
    }

    /// `NAME=`, `NAME+=` or `NAME[subscript]=` at `pos`.
    private mutating func isAssignmentStart() -> Bool {
        guard pos < end, buf[pos].isNameStart else { return false }
        var index = pos + 1
        while index < end, buf[index].isNameCharacter { index += 1 }
        if byte(index) == .leftBracket {
            index += 1
            while index < end, buf[index] != .rightBracket {
                if buf[index].isMetacharacter { return false }
                index += 1
            }
            guard index < end else { return false }
            index += 1
        }
        if byte(index) == .plus { index += 1 }
        return index < end && buf[index] == .equals
    }

    /// An assignment word; `NAME=( … )` array literals are read as their elements.
    private mutating func readAssignment() -> String {
        var text = readWord()
        guard byte(pos) == .leftParen, pos > 0, buf[pos - 1] == .equals else { return text }
        pos += 1
        var elements: [String] = []
        while tick() {
            skipBlanksAndNewlines()
            guard pos < end else {
                fail("unterminated array assignment: missing )")
                break
            }
            if buf[pos] == .rightParen {
                pos += 1
                break
            }
            if buf[pos].isMetacharacter, !isProcessSubstitutionStart() {
                // bash rejects this; ending the array here keeps what follows visible as commands.
                fail("unexpected '\(UnicodeScalar(buf[pos]))' in array assignment")
                break
            }
            elements.append(readWord())
        }
        text += "(" + elements.joined(separator: " ") + ")"
        return text
    }

    // MARK: Redirections and here-documents

    private mutating func isProcessSubstitutionStart() -> Bool {
        pos < end && (buf[pos] == .less || buf[pos] == .greater) && byte(pos + 1) == .leftParen
    }

    /// `[n]<`, `[n]>`, `&>`, `{var}>` … at `pos` (not process substitution).
    private mutating func isRedirectionStart() -> Bool {
        guard pos < end else { return false }
        let c = buf[pos]
        var index = pos
        if c.isDigit {
            while index < end, buf[index].isDigit { index += 1 }
        } else if c == .leftBrace {
            index += 1
            guard index < end, buf[index].isNameStart else { return false }
            while index < end, buf[index].isNameCharacter { index += 1 }
            guard byte(index) == .rightBrace else { return false }
            index += 1
        } else if c == .ampersand {
            return byte(pos + 1) == .greater
        }
        let op = byte(index)
        return (op == .less || op == .greater) && index < end && byte(index + 1) != .leftParen
    }

    /// Consumes one redirection. Its target is not a command word, but substitutions in it run.
    private mutating func parseRedirection(for commandIndex: Int?) {
        if buf[pos].isDigit {
            while pos < end, buf[pos].isDigit { pos += 1 }
        } else if buf[pos] == .leftBrace {
            while pos < end, buf[pos] != .rightBrace { pos += 1 }
            pos += 1
        }
        switch byte(pos) {
        case .ampersand: // &> and &>>
            pos += 2
            if byte(pos) == .greater { pos += 1 }
        case .greater:
            pos += 1
            let next = byte(pos)
            if next == .greater || next == .pipe || next == .ampersand { pos += 1 }
        default: // <
            pos += 1
            if byte(pos) == .less {
                pos += 1
                if byte(pos) == .less {
                    pos += 1
                    parseHereString(for: commandIndex)
                } else {
                    let stripsTabs = byte(pos) == .minus
                    if stripsTabs { pos += 1 }
                    parseHereDocumentOperator(for: commandIndex, stripsTabs: stripsTabs)
                }
                return
            }
            if byte(pos) == .greater || byte(pos) == .ampersand { pos += 1 }
        }
        skipBlanks()
        guard pos < end, !buf[pos].isMetacharacter || isProcessSubstitutionStart() else {
            fail("missing redirection target")
            return
        }
        _ = readWord()
    }

    private mutating func parseHereString(for commandIndex: Int?) {
        skipBlanks()
        guard pos < end, !buf[pos].isMetacharacter || isProcessSubstitutionStart() else {
            fail("missing here-string word")
            return
        }
        let text = readWord()
        if let commandIndex { commands[commandIndex].inputDocuments.append(text) }
    }

    private mutating func parseHereDocumentOperator(for commandIndex: Int?, stripsTabs: Bool) {
        skipBlanks()
        guard pos < end, !buf[pos].isMetacharacter else {
            fail("missing here-document delimiter")
            return
        }
        let start = pos
        let delimiter = readWord()
        let quoted = buf[start..<pos].contains { $0 == .singleQuote || $0 == .doubleQuote || $0 == .backslash }
        pendingHereDocuments.append(PendingHereDocument(
            delimiter: Array(delimiter.utf8), stripsTabs: stripsTabs, expands: !quoted, commandIndex: commandIndex))
    }

    /// After a newline token: the bodies of here-documents opened on the line just ended.
    private mutating func readPendingHereDocuments() {
        guard !pendingHereDocuments.isEmpty else { return }
        let documents = pendingHereDocuments
        pendingHereDocuments.removeAll()
        for document in documents {
            var body: [UInt8] = []
            // bash accepts a body ended by end of input (with a warning), so that is no error.
            while pos < end {
                var lineEnd = pos
                while lineEnd < end, buf[lineEnd] != .newline { lineEnd += 1 }
                var contentStart = pos
                if document.stripsTabs {
                    while contentStart < lineEnd, buf[contentStart] == .tab { contentStart += 1 }
                }
                let next = min(lineEnd + 1, end)
                if lineEnd - contentStart == document.delimiter.count,
                   buf[contentStart..<lineEnd].elementsEqual(document.delimiter) {
                    pos = next
                    break
                }
                body.append(contentsOf: UnsafeBufferPointer(rebasing: buf[contentStart..<next]))
                pos = next
            }
            if document.expands, body.contains(where: { $0 == .dollar || $0 == .backquote }) {
                if enter() {
                    withSubBuffer(body) { $0.scanHereDocumentExpansions() }
                    leave()
                } else {
                    queue(.hereDocument, bytes: body)
                }
            }
            if let index = document.commandIndex {
                commands[index].inputDocuments.append(String(decoding: body, as: UTF8.self))
            }
        }
    }

    /// The substitutions in an unquoted here-document body (the whole current text) run.
    private mutating func scanHereDocumentExpansions() {
        var scratch: [UInt8] = []
        while pos < end, tick() {
            switch buf[pos] {
            case .backslash:
                pos = min(pos + 2, end)
            case .dollar:
                parseDollar(into: &scratch, inDoubleQuotes: true)
            case .backquote:
                parseBackquoted(into: &scratch, inDoubleQuotes: true)
            default:
                pos += 1
            }
            scratch.removeAll(keepingCapacity: true)
        }
    }

    /// After a compound command: `} > out 2>&1`, `done < file`.
    private mutating func parseTrailingRedirections() {
        while tick() {
            skipBlanks()
            guard isRedirectionStart() else { return }
            parseRedirection(for: nil)
        }
    }

    /// Runs `body` with the parser reading `bytes` (backquoted text, a here-document body) instead
    /// of the current input; commands and errors accumulate as usual.
    private mutating func withSubBuffer(_ bytes: [UInt8], _ body: (inout ShellParser) -> Void) {
        let savedBuffer = buf
        let savedPosition = pos
        let savedEnd = end
        let savedHereDocuments = pendingHereDocuments
        let savedCloseCache = closeCache
        let savedCurrentBuffer = currentBuffer
        let savedCurrentBytes = currentBytes
        pendingHereDocuments = []
        closeCache = [:]
        currentBuffer = -2
        currentBytes = bytes
        bytes.withUnsafeBufferPointer { sub in
            buf = sub
            end = sub.count
            pos = 0
            body(&self)
        }
        // Pieces queued from this text parse it again later: keep what its scans learnt.
        if currentBuffer >= 0 { deferredCaches[currentBuffer] = closeCache }
        buf = savedBuffer
        end = savedEnd
        pos = aborted ? savedEnd : savedPosition
        pendingHereDocuments = savedHereDocuments
        closeCache = savedCloseCache
        currentBuffer = savedCurrentBuffer
        currentBytes = savedCurrentBytes
    }

    // MARK: Words

    /// Appends `buf[start..<pos]` (a substitution as written) to a word. Nested substitutions are
    /// copied once per level; past a budget linear in the input, long texts are abbreviated to
    /// their start, "…" and their last byte, so hostile nesting cannot take quadratic time.
    private mutating func appendVerbatim(from start: Int, to out: inout [UInt8]) {
        let length = pos - start
        guard length > 0 else { return }
        if length <= 64 || length <= copyBudget {
            copyBudget -= length
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<pos]))
            return
        }
        fail("substitutions nested too deeply to keep their text")
        var cut = start + 32
        while cut > start, buf[cut] & 0xC0 == 0x80 { cut -= 1 } // not inside a UTF-8 sequence
        out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<cut]))
        out.append(contentsOf: [0xE2, 0x80, 0xA6]) // …
        if buf[pos - 1] < 0x80 { out.append(buf[pos - 1]) }
    }

    /// Reads one word at `pos`, removing quotes. Substitutions are kept as written and parsed,
    /// recording the commands they run.
    private mutating func readWord() -> String {
        var out: [UInt8] = []
        scan: while pos < end {
            let c = buf[pos]
            switch c {
            case .space, .tab, .newline, .semicolon, .ampersand, .pipe, .rightParen:
                break scan
            case .less, .greater:
                guard byte(pos + 1) == .leftParen else { break scan }
                let start = pos
                pos += 1
                parseParenthesizedList("process substitution")
                appendVerbatim(from: start, to: &out)
            case .leftParen:
                // bash extended globs: @(a|b) *(x) +(x) ?(x) !(x). Without `shopt -s extglob`, bash
                // runs `!(cmd)` as `! (cmd)`, so the group is parsed as commands either way.
                guard pos > 0, buf[pos - 1].isExtendedGlobMarker, out.last == buf[pos - 1] else { break scan }
                let start = pos
                parseParenthesizedList("pattern group")
                appendVerbatim(from: start, to: &out)
            case .backslash:
                if pos + 1 >= end {
                    out.append(.backslash)
                    pos += 1
                } else if buf[pos + 1] == .newline {
                    pos += 2
                } else {
                    out.append(buf[pos + 1])
                    pos += 2
                }
            case .singleQuote:
                skipSingleQuoted(into: &out)
            case .doubleQuote:
                parseDoubleQuoted(into: &out)
            case .dollar:
                parseDollar(into: &out, inDoubleQuotes: false)
            case .backquote:
                parseBackquoted(into: &out, inDoubleQuotes: false)
            default:
                let start = pos
                pos += 1
                while pos < end, buf[pos].isPlainWordByte { pos += 1 }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<pos]))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `'…'` at `pos`: the text between the quotes, verbatim.
    private mutating func skipSingleQuoted(into out: inout [UInt8]) {
        pos += 1
        let start = pos
        while pos < end, buf[pos] != .singleQuote { pos += 1 }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<pos]))
        if pos < end {
            pos += 1
        } else {
            fail("unterminated single quote")
        }
    }

    /// `"…"` at `pos`: `\` escapes only `$ \` " \` and newline; substitutions stay active.
    private mutating func parseDoubleQuoted(into out: inout [UInt8]) {
        pos += 1
        while pos < end {
            let c = buf[pos]
            switch c {
            case .doubleQuote:
                pos += 1
                return
            case .backslash:
                let next = byte(pos + 1)
                if pos + 1 < end, next == .newline {
                    pos += 2
                } else if pos + 1 < end, next == .dollar || next == .backquote || next == .doubleQuote || next == .backslash {
                    out.append(next)
                    pos += 2
                } else {
                    out.append(.backslash)
                    pos += 1
                }
            case .dollar:
                parseDollar(into: &out, inDoubleQuotes: true)
            case .backquote:
                parseBackquoted(into: &out, inDoubleQuotes: true)
            default:
                let start = pos
                pos += 1
                while pos < end, buf[pos].isPlainQuotedByte { pos += 1 }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<pos]))
            }
        }
        fail("unterminated double quote")
    }

    /// `$…` at `pos`: `$'…'`, `$"…"`, `$(…)`, `$((…))`, `${…}` or a plain `$`.
    private mutating func parseDollar(into out: inout [UInt8], inDoubleQuotes: Bool) {
        guard pos + 1 < end else {
            out.append(.dollar)
            pos += 1
            return
        }
        switch buf[pos + 1] {
        case .singleQuote where !inDoubleQuotes:
            sensitivity.ansiC = true
            if dialect.ansiCQuoting {
                parseANSICString(into: &out)
            } else {
                out.append(.dollar) // dash: `$` then an ordinary '…' string
                pos += 1
            }
        case .doubleQuote where !inDoubleQuotes:
            pos += 1 // $"…" is a translatable double-quoted string
            parseDoubleQuoted(into: &out)
        case .leftParen:
            let start = pos
            pos += 1
            if byte(pos + 1) == .leftParen {
                parseArithmeticOrNestedSubshell("command substitution")
            } else {
                parseParenthesizedList("command substitution")
            }
            appendVerbatim(from: start, to: &out)
        case .leftBrace:
            let start = pos
            pos += 1
            parseParameterExpansion(inDoubleQuotes: inDoubleQuotes)
            appendVerbatim(from: start, to: &out)
        default:
            out.append(.dollar)
            pos += 1
        }
    }

    /// `${…}` with `pos` at the `{`; substitutions in its operands run.
    private mutating func parseParameterExpansion(inDoubleQuotes: Bool) {
        guard enter() else {
            deferNested(.parameterExpansion(inDoubleQuotes: inDoubleQuotes))
            return
        }
        defer { leave() }
        pos += 1
        parseParameterExpansionOperands(inDoubleQuotes: inDoubleQuotes, closedByBrace: true)
    }

    /// The inside of `${…}` up to its `}` (consumed), or up to the end of the text when
    /// `closedByBrace` is false (a piece queued past the nesting cap).
    private mutating func parseParameterExpansionOperands(inDoubleQuotes: Bool, closedByBrace: Bool) {
        var braces = 0
        var scratch: [UInt8] = []
        while pos < end, tick() {
            switch buf[pos] {
            case .rightBrace:
                pos += 1
                if braces == 0, closedByBrace { return }
                braces = max(0, braces - 1)
            case .leftBrace:
                braces += 1
                pos += 1
            case .backslash:
                pos = min(pos + 2, end)
            case .singleQuote:
                if inDoubleQuotes {
                    // bash quotes with it here; dash takes it literally.
                    sensitivity.quotesInExpansions = true
                    guard dialect.singleQuotesInDoubleQuotedExpansions else {
                        pos += 1
                        continue
                    }
                }
                skipSingleQuoted(into: &scratch)
            case .doubleQuote:
                parseDoubleQuoted(into: &scratch)
            case .dollar:
                parseDollar(into: &scratch, inDoubleQuotes: inDoubleQuotes)
            case .backquote:
                parseBackquoted(into: &scratch, inDoubleQuotes: inDoubleQuotes)
            default:
                pos += 1
            }
            scratch.removeAll(keepingCapacity: true)
        }
        if closedByBrace { fail("unterminated ${") }
    }

    /// `` `…` `` at `pos`: the text is unescaped (`\`` `\\` `\$`, and `\"` inside double quotes)
    /// and parsed as a script of its own. The word keeps the text as written.
    private mutating func parseBackquoted(into out: inout [UInt8], inDoubleQuotes: Bool) {
        let start = pos
        pos += 1
        var content: [UInt8] = []
        var closed = false
        while pos < end {
            let c = buf[pos]
            if c == .backquote {
                pos += 1
                closed = true
                break
            }
            if c == .backslash, pos + 1 < end {
                let next = buf[pos + 1]
                if next == .backquote || next == .backslash || next == .dollar || (inDoubleQuotes && next == .doubleQuote) {
                    content.append(next)
                    pos += 2
                    continue
                }
            }
            content.append(c)
            pos += 1
        }
        appendVerbatim(from: start, to: &out)
        if !closed { fail("unterminated backquote") }
        guard enter() else {
            queue(.list, bytes: content)
            return
        }
        defer { leave() }
        withSubBuffer(content) { $0.parseScript() }
    }

    /// `$'…'` at `pos`: bash ANSI-C quoting with its backslash escapes decoded.
    private mutating func parseANSICString(into out: inout [UInt8]) {
        pos += 2
        while pos < end {
            let c = buf[pos]
            if c == .singleQuote {
                pos += 1
                return
            }
            pos += 1
            guard c == .backslash else {
                out.append(c)
                continue
            }
            guard pos < end else {
                out.append(.backslash)
                break
            }
            let escape = buf[pos]
            pos += 1
            switch escape {
            case 0x61: out.append(0x07) // \a
            case 0x62: out.append(0x08) // \b
            case 0x65, 0x45: out.append(0x1B) // \e \E
            case 0x66: out.append(0x0C) // \f
            case 0x6E: out.append(0x0A) // \n
            case 0x72: out.append(0x0D) // \r
            case 0x74: out.append(0x09) // \t
            case 0x76: out.append(0x0B) // \v
            case .backslash, .singleQuote, .doubleQuote, .question:
                out.append(escape)
            case 0x30...0x37: // \nnn octal
                var value = UInt32(escape - 0x30)
                var digits = 1
                while digits < 3, pos < end, buf[pos] >= 0x30, buf[pos] <= 0x37 {
                    value = value * 8 + UInt32(buf[pos] - 0x30)
                    pos += 1
                    digits += 1
                }
                out.append(UInt8(truncatingIfNeeded: value))
            case 0x78, 0x75, 0x55: // \xHH \uHHHH \UHHHHHHHH
                let maximumDigits = escape == 0x78 ? 2 : (escape == 0x75 ? 4 : 8)
                var value: UInt32 = 0
                var digits = 0
                while digits < maximumDigits, pos < end, let digit = Self.hexValue(buf[pos]) {
                    value = value &* 16 &+ digit
                    pos += 1
                    digits += 1
                }
                if digits == 0 {
                    out.append(.backslash)
                    out.append(escape)
                } else if escape == 0x78 {
                    out.append(UInt8(truncatingIfNeeded: value))
                } else {
                    let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
                    out.append(contentsOf: String(Character(scalar)).utf8)
                }
            case 0x63 where pos < end: // \cX control character
                out.append(buf[pos] & 0x1F)
                pos += 1
            default:
                out.append(.backslash)
                out.append(escape)
            }
        }
        fail("unterminated $' string")
    }

    private static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x41...0x46: UInt32(c - 0x41 + 10)
        case 0x61...0x66: UInt32(c - 0x61 + 10)
        default: nil
        }
    }

    // MARK: Skipping without parsing

    /// Index just past the bracket closing the `(` or `{` at `start`, skipping quoted text and
    /// nested substitutions; nil when the input ends first. Iterative, so any depth is safe; every
    /// bracket passed on the way is cached, so nested look-aheads cost linear time in total.
    private mutating func matchingClose(from start: Int) -> Int? {
        guard start < end else { return nil }
        if let cached = closeCache[start] { return cached < 0 ? nil : cached }
        // What closes each open construct, and where the bracket opening it is (-1 for quotes).
        // `quotedBrace` stands for the `}` closing a `${` opened inside double quotes.
        let quotedBrace: UInt8 = 0x01
        var expected: [UInt8] = [buf[start] == .leftBrace ? .rightBrace : .rightParen]
        var openedAt: [Int] = [start]
        var index = start + 1
        while index < end {
            let c = buf[index]
            let top = expected[expected.count - 1]
            var opened: (closer: UInt8, at: Int)?
            var closed = false
            switch top {
            case .doubleQuote:
                switch c {
                case .backslash:
                    index += 1
                case .doubleQuote:
                    closed = true
                case .backquote:
                    opened = (.backquote, -1)
                case .dollar where byte(index + 1) == .leftParen:
                    index += 1
                    opened = (.rightParen, index)
                case .dollar where byte(index + 1) == .leftBrace:
                    index += 1
                    opened = (quotedBrace, index)
                default:
                    break
                }
            case .backquote:
                if c == .backslash {
                    index += 1
                } else if c == .backquote {
                    closed = true
                }
            default: // inside ( … ), { … } or ${ … }
                switch c {
                case .backslash:
                    index += 1
                case .singleQuote:
                    if top == quotedBrace {
                        sensitivity.quotesInExpansions = true
                        guard dialect.singleQuotesInDoubleQuotedExpansions else { break }
                    }
                    index += 1
                    while index < end, buf[index] != .singleQuote { index += 1 }
                case .dollar where byte(index + 1) == .singleQuote && top != quotedBrace:
                    sensitivity.ansiC = true
                    guard dialect.ansiCQuoting else { break }
                    // $'…' with backslash escapes: `\'` does not end it.
                    index += 2
                    while index < end, buf[index] != .singleQuote {
                        index += buf[index] == .backslash ? 2 : 1
                    }
                case .doubleQuote:
                    opened = (.doubleQuote, -1)
                case .backquote:
                    opened = (.backquote, -1)
                case .leftParen:
                    opened = (.rightParen, index)
                case .leftBrace where top == .rightBrace || top == quotedBrace:
                    opened = (top, index)
                case .dollar where byte(index + 1) == .leftBrace:
                    index += 1
                    opened = (top == quotedBrace ? quotedBrace : .rightBrace, index)
                case .rightParen, .rightBrace:
                    closed = c == top || (c == .rightBrace && top == quotedBrace)
                default:
                    break
                }
            }
            index += 1
            if let opened {
                if opened.at >= 0, let cached = closeCache[opened.at] {
                    // Already scanned from there: jump past it (or fail as it did).
                    guard cached >= 0 else { break }
                    index = cached
                } else {
                    expected.append(opened.closer)
                    openedAt.append(opened.at)
                }
            } else if closed {
                expected.removeLast()
                let at = openedAt.removeLast()
                if at >= 0 { closeCache[at] = min(index, end) }
                if expected.isEmpty { return min(index, end) }
            }
        }
        for at in openedAt where at >= 0 { closeCache[at] = -1 }
        return nil
    }

    /// Skips the bracketed text at `pos` without parsing it (a malformed `for (( ))` header).
    private mutating func skipNested() {
        if let close = matchingClose(from: pos) {
            pos = close
        } else {
            fail("unterminated \(buf[pos] == .leftBrace ? "${" : "parenthesis")")
            pos = end
        }
    }
}
