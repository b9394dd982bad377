/// Recursive-descent parser over the script's UTF-8 bytes. Every loop consumes input, nesting is
/// capped at `ShellScript.maximumNesting` (deeper constructs are queued and parsed afterwards, each
/// as a script of its own, so text past the cap is flattened rather than skipped), and look-ahead
/// scans are iterative and cached, so hostile input can neither exhaust the stack nor take
/// super-linear time; a step budget is the last-resort bound.
struct ShellParser {
    var buf: UnsafeBufferPointer<UInt8>
    var pos = 0
    /// `buf.count` (or the end of the queued piece being parsed), kept in a stored property because
    /// debug builds copy the parser on every non-mutating call (which is also why all helpers are
    /// `mutating`).
    var end: Int
    let dialect: ShellDialect
    var sensitivity = ShellScript.DialectSensitivity()
    var commands: [ShellSimpleCommand] = []
    /// Pipeline stages as ranges of command indexes (a compound stage spans several commands).
    var pipelineStages: [[Range<Int>]] = []
    var error: String?
    var depth = 0
    var steps = 0
    let stepLimit: Int
    var aborted = false
    var pendingHereDocuments: [PendingHereDocument] = []
    /// `matchingClose` results by opening index (-1: unterminated), filled for every bracket a scan
    /// passes, so nested look-aheads never rescan the same text.
    var closeCache: [Int: Int] = [:]
    /// Substitution text copied verbatim into words, in bytes, before long texts are abbreviated:
    /// nesting copies each byte once per level, which must stay linear in the input.
    var copyBudget: Int
    /// Functions (`f() { … }`, `function f { … }`) and aliases (`alias f='…'`) defined in the
    /// script: their names and the commands of their bodies or values.
    var definitions: [(name: String, commands: Range<Int>)] = []

    // Constructs nested past the cap, parsed after the input as scripts of their own.
    enum DeferredKind {
        case list, parameterExpansion(inDoubleQuotes: Bool), arithmetic, hereDocument
    }

    struct Deferred {
        /// -1: the main input; otherwise an index into `deferredBuffers`.
        var buffer: Int
        var range: Range<Int>
        var kind: DeferredKind
    }

    var deferred: [Deferred] = []
    /// Texts that are not part of the main input (backquoted text, here-document bodies), kept
    /// for deferred pieces inside them, with their look-ahead caches.
    var deferredBuffers: [[UInt8]] = []
    var deferredCaches: [[Int: Int]] = []
    /// Which text `buf` is: -1 the main input, ≥ 0 an index into `deferredBuffers`, -2 a
    /// sub-buffer (`currentBytes`) not stored yet.
    var currentBuffer = -1
    var currentBytes: [UInt8] = []
    let mainBuffer: UnsafeBufferPointer<UInt8>

    /// A `<<WORD` whose body starts after the next newline token.
    struct PendingHereDocument {
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
    mutating func byte(_ index: Int) -> UInt8 { index < end ? buf[index] : 0 }

    mutating func fail(_ message: String) {
        if error == nil { error = message }
    }

    /// Counts one unit of work; false (and everything stops) once the budget is spent.
    mutating func tick() -> Bool {
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
    mutating func enter() -> Bool {
        steps += 4
        guard depth < ShellScript.maximumNesting else {
            fail("nesting deeper than \(ShellScript.maximumNesting) levels")
            return false
        }
        depth += 1
        return true
    }

    mutating func leave() { depth -= 1 }

    // MARK: Flattening past the nesting cap

    /// Queues `range` of the current text, parsed later as `kind` at top level.
    mutating func queue(_ kind: DeferredKind, _ range: Range<Int>) {
        guard !range.isEmpty, !aborted else { return }
        if currentBuffer == -2 {
            deferredBuffers.append(currentBytes)
            deferredCaches.append([:])
            currentBuffer = deferredBuffers.count - 1
        }
        deferred.append(Deferred(buffer: currentBuffer, range: range, kind: kind))
    }

    /// Queues a text of its own (here-document body, backquoted text), parsed later as `kind`.
    mutating func queue(_ kind: DeferredKind, bytes: [UInt8]) {
        guard !bytes.isEmpty, !aborted else { return }
        deferredBuffers.append(bytes)
        deferredCaches.append([:])
        deferred.append(Deferred(buffer: deferredBuffers.count - 1, range: 0..<bytes.count, kind: kind))
    }

    /// Past the nesting cap: the bracketed text at `pos` (`(` or `{`) is skipped here and queued.
    mutating func deferNested(_ kind: DeferredKind) {
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

    mutating func parseDeferredPiece(_ kind: DeferredKind) {
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

    mutating func skipBlanks() {
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

    mutating func skipComment() {
        while pos < end, buf[pos] != .newline { pos += 1 }
    }

    /// Skips blanks (and newlines, when `acrossNewlines`) to the next token; at the end of the
    /// input, reports the construct as `unterminated` and returns false.
    mutating func nextToken(acrossNewlines: Bool, unterminated: String) -> Bool {
        if acrossNewlines { skipBlanksAndNewlines() } else { skipBlanks() }
        guard pos < end else {
            fail(unterminated)
            return false
        }
        return true
    }

    /// Skips blanks, comments and newlines, reading pending here-document bodies at each newline.
    mutating func skipBlanksAndNewlines() {
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
    mutating func reservedWord() -> ReservedWord? {
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

    mutating func isCaseTerminator() -> Bool {
        pos < end && buf[pos] == .semicolon && (byte(pos + 1) == .semicolon || byte(pos + 1) == .ampersand)
    }

    /// Whether the next token ends a list: end of input, `)`, `;;`-style or a closing reserved word.
    mutating func atListEnd() -> Bool {
        guard pos < end else { return true }
        if buf[pos] == .rightParen || isCaseTerminator() { return true }
        return reservedWord()?.closesCompound ?? false
    }

    /// Consumes a token that closes a construct which is not open and returns its spelling.
    mutating func consumeStrayToken() -> String {
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
    mutating func parseList() {
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
    mutating func parseList(until closers: [ReservedWord]) -> ReservedWord? {
        while true {
            parseList()
            guard pos < end, !aborted, let word = reservedWord(), word.closesCompound else { return nil }
            if closers.contains(word) { return word }
            fail("unexpected '\(word.rawValue)'")
            pos += word.length
        }
    }

    mutating func parsePipeline() {
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
}
