/// Commands: simple, compound (groups, if, loops, case, `[[ ]]`), functions and assignments.
extension ShellParser {
    // MARK: Commands

    /// Parses one pipeline stage; returns whether it was a simple command.
    @discardableResult
    mutating func parseCommand() -> Bool {
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
    mutating func consumeTimePrefix() -> Bool {
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
    mutating func skipCoprocessName() {
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
    mutating func parseParenthesizedList(_ construct: String) {
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
    mutating func parseArithmeticOrNestedSubshell(_ construct: String) {
        if let afterInner = matchingClose(from: pos + 1), byte(afterInner) == .rightParen, afterInner < end {
            parseArithmetic(contentEnd: afterInner - 1, closeEnd: afterInner + 1)
        } else {
            parseParenthesizedList(construct)
        }
    }

    /// Arithmetic is not a command, but substitutions inside it run.
    mutating func parseArithmetic(contentEnd: Int, closeEnd: Int) {
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
    mutating func scanExpansions(until limit: Int) {
        var scratch: [UInt8] = []
        while pos < limit, tick() {
            if !consumeQuoteOrSubstitution(into: &scratch, inDoubleQuotes: false) { pos += 1 }
            scratch.removeAll(keepingCapacity: true)
        }
    }

    mutating func parseGroup() {
        pos += 1
        guard enter() else { return } // too deep: the body is parsed flat by the enclosing list
        defer { leave() }
        if parseList(until: [.closeBrace]) != nil {
            pos += 1
        } else {
            fail("unterminated { group: missing }")
        }
    }

    mutating func parseIf() {
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

    mutating func parseWhile(_ keyword: ReservedWord) {
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
    mutating func parseDoBody(_ keyword: ReservedWord) {
        if parseList(until: [.done]) != nil {
            pos += ReservedWord.done.length
        } else {
            fail("unterminated \(keyword.rawValue): missing done")
        }
    }

    mutating func parseFor(_ keyword: ReservedWord) {
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

    mutating func parseCase() {
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
            guard nextToken(acrossNewlines: true, unterminated: "unterminated case: missing esac") else { return }
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
    mutating func parseConditional() {
        pos += 2
        guard enter() else { return }
        defer { leave() }
        var scratch: [UInt8] = []
        while tick() {
            guard nextToken(acrossNewlines: false, unterminated: "unterminated [[: missing ]]") else { return }
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
    mutating func skipRegularExpression(into scratch: inout [UInt8]) {
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
            default:
                if !consumeQuoteOrSubstitution(into: &scratch, inDoubleQuotes: false) { pos += 1 }
            }
        }
    }

    /// `function name [()] body`.
    mutating func parseFunctionKeyword() {
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
    mutating func parseFunctionBody() {
        guard enter() else { return } // too deep: the body is parsed flat by the enclosing list
        defer { leave() }
        skipBlanksAndNewlines()
        parseCommand()
    }

    /// Returns false when the words turned out to define a function (`name () body`).
    mutating func parseSimpleCommand() -> Bool {
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
    mutating func parseAliasValues(_ arguments: ArraySlice<String>) {
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
    mutating func startsEmptyParentheses() -> Bool {
        var index = pos + 1
        while index < end, buf[index].isBlank { index += 1 }
        return byte(index) == .rightParen && index < end
    }

    /// `NAME=`, `NAME+=` or `NAME[subscript]=` at `pos`.
    mutating func isAssignmentStart() -> Bool {
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
    mutating func readAssignment() -> String {
        var text = readWord()
        guard byte(pos) == .leftParen, pos > 0, buf[pos - 1] == .equals else { return text }
        pos += 1
        var elements: [String] = []
        while tick() {
            guard nextToken(acrossNewlines: true, unterminated: "unterminated array assignment: missing )") else { break }
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
}
