/// Redirections, here-documents, words with their quotes and substitutions, and the
/// look-ahead that skips bracketed text.
extension ShellParser {
    // MARK: Redirections and here-documents

    mutating func isProcessSubstitutionStart() -> Bool {
        pos < end && (buf[pos] == .less || buf[pos] == .greater) && byte(pos + 1) == .leftParen
    }

    /// `[n]<`, `[n]>`, `&>`, `{var}>` … at `pos` (not process substitution).
    mutating func isRedirectionStart() -> Bool {
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
    mutating func parseRedirection(for commandIndex: Int?) {
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

    mutating func parseHereString(for commandIndex: Int?) {
        skipBlanks()
        guard pos < end, !buf[pos].isMetacharacter || isProcessSubstitutionStart() else {
            fail("missing here-string word")
            return
        }
        let text = readWord()
        if let commandIndex { commands[commandIndex].inputDocuments.append(text) }
    }

    mutating func parseHereDocumentOperator(for commandIndex: Int?, stripsTabs: Bool) {
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
    mutating func readPendingHereDocuments() {
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
    mutating func scanHereDocumentExpansions() {
        var scratch: [UInt8] = []
        while pos < end, tick() {
            if !consumeEscapeOrSubstitution(into: &scratch, inDoubleQuotes: true) { pos += 1 }
            scratch.removeAll(keepingCapacity: true)
        }
    }

    /// After a compound command: `} > out 2>&1`, `done < file`.
    mutating func parseTrailingRedirections() {
        while tick() {
            skipBlanks()
            guard isRedirectionStart() else { return }
            parseRedirection(for: nil)
        }
    }

    /// Runs `body` with the parser reading `bytes` (backquoted text, a here-document body) instead
    /// of the current input; commands and errors accumulate as usual.
    mutating func withSubBuffer(_ bytes: [UInt8], _ body: (inout ShellParser) -> Void) {
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
    mutating func appendVerbatim(from start: Int, to out: inout [UInt8]) {
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
    mutating func readWord() -> String {
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
            default:
                if consumeQuoteOrSubstitution(into: &out, inDoubleQuotes: false) { continue }
                copyPlainRun(into: &out, inDoubleQuotes: false)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Copies the byte at `pos` and the run after it of bytes with no special meaning there
    /// (in a word, or inside double quotes).
    mutating func copyPlainRun(into out: inout [UInt8], inDoubleQuotes: Bool) {
        let start = pos
        pos += 1
        if inDoubleQuotes {
            while pos < end, buf[pos].isPlainQuotedByte { pos += 1 }
        } else {
            while pos < end, buf[pos].isPlainWordByte { pos += 1 }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<pos]))
    }

    /// At `\`, `'`, `"`, `$` or `` ` ``: consumes the escape, quoted text or substitution there
    /// (recording the commands a substitution runs) and appends its text to `out`; a backslash
    /// and the byte it escapes are skipped. Returns false, consuming nothing, at any other byte.
    mutating func consumeQuoteOrSubstitution(into out: inout [UInt8], inDoubleQuotes: Bool) -> Bool {
        switch buf[pos] {
        case .singleQuote:
            skipSingleQuoted(into: &out)
        case .doubleQuote:
            parseDoubleQuoted(into: &out)
        default:
            return consumeEscapeOrSubstitution(into: &out, inDoubleQuotes: inDoubleQuotes)
        }
        return true
    }

    /// `consumeQuoteOrSubstitution` where quotes are literal (inside double quotes, in a
    /// here-document body): only `\`, `$` and `` ` `` are consumed.
    mutating func consumeEscapeOrSubstitution(into out: inout [UInt8], inDoubleQuotes: Bool) -> Bool {
        switch buf[pos] {
        case .backslash:
            pos = min(pos + 2, end)
        case .dollar:
            parseDollar(into: &out, inDoubleQuotes: inDoubleQuotes)
        case .backquote:
            parseBackquoted(into: &out, inDoubleQuotes: inDoubleQuotes)
        default:
            return false
        }
        return true
    }

    /// `'…'` at `pos`: the text between the quotes, verbatim.
    mutating func skipSingleQuoted(into out: inout [UInt8]) {
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
    mutating func parseDoubleQuoted(into out: inout [UInt8]) {
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
            default:
                if consumeEscapeOrSubstitution(into: &out, inDoubleQuotes: true) { continue }
                copyPlainRun(into: &out, inDoubleQuotes: true)
            }
        }
        fail("unterminated double quote")
    }

    /// `$…` at `pos`: `$'…'`, `$"…"`, `$(…)`, `$((…))`, `${…}` or a plain `$`.
    mutating func parseDollar(into out: inout [UInt8], inDoubleQuotes: Bool) {
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
    mutating func parseParameterExpansion(inDoubleQuotes: Bool) {
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
    mutating func parseParameterExpansionOperands(inDoubleQuotes: Bool, closedByBrace: Bool) {
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
            case .singleQuote where inDoubleQuotes:
                // bash quotes with it here; dash takes it literally.
                sensitivity.quotesInExpansions = true
                guard dialect.singleQuotesInDoubleQuotedExpansions else {
                    pos += 1
                    continue
                }
                skipSingleQuoted(into: &scratch)
            default:
                if !consumeQuoteOrSubstitution(into: &scratch, inDoubleQuotes: inDoubleQuotes) { pos += 1 }
            }
            scratch.removeAll(keepingCapacity: true)
        }
        if closedByBrace { fail("unterminated ${") }
    }

    /// `` `…` `` at `pos`: the text is unescaped (`\`` `\\` `\$`, and `\"` inside double quotes)
    /// and parsed as a script of its own. The word keeps the text as written.
    mutating func parseBackquoted(into out: inout [UInt8], inDoubleQuotes: Bool) {
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
    mutating func parseANSICString(into out: inout [UInt8]) {
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

    static func hexValue(_ c: UInt8) -> UInt32? {
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
    mutating func matchingClose(from start: Int) -> Int? {
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
    mutating func skipNested() {
        if let close = matchingClose(from: pos) {
            pos = close
        } else {
            fail("unterminated \(buf[pos] == .leftBrace ? "${" : "parenthesis")")
            pos = end
        }
    }
}
