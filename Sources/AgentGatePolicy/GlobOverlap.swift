/// Whether two patterns could match the same text: the test a rule saved from an ask uses to
/// make sure it never lets through something an explicit deny rule covers.
///
/// It is conservative: when it cannot tell (a pattern that does not compile, too many brace
/// alternatives), it answers "they overlap", because the caller then saves a narrower rule.
enum GlobOverlap {
    /// Whether some string matches both globs. Both are brace-expanded first (a literal reading
    /// of the braces, as version 1 files have it, is tried too); `$NAME` variables stand for any
    /// text.
    static func overlap(_ a: String, _ b: String, syntax: GlobSyntax) -> Bool {
        for left in alternatives(a) {
            for right in alternatives(b) where tokensOverlap(left, right, syntax: syntax) { return true }
        }
        return false
    }

    /// Whether any pattern of `a` overlaps any pattern of `b`.
    static func overlap(anyOf a: [String], anyOf b: [String], syntax: GlobSyntax) -> Bool {
        a.contains { left in b.contains { overlap(left, $0, syntax: syntax) } }
    }

    /// The readings of a pattern as written: variables replaced by `*`, then its brace
    /// alternatives and the pattern itself with literal braces.
    static func alternatives(_ pattern: String) -> [String] {
        let plain = replacingVariables(pattern)
        var result = [plain]
        if let expanded = try? BraceExpansion.expand(plain), expanded != [plain] {
            result += expanded
        }
        return result
    }

    /// `$NAME` and `${NAME}` become `*` (any text, so any value of the variable); `$$` is `$`.
    static func replacingVariables(_ pattern: String) -> String {
        guard pattern.contains("$") else { return pattern }
        let scalars = Array(pattern.unicodeScalars)
        var result = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "$", index + 1 < scalars.count else {
                result.append(scalar)
                index += 1
                continue
            }
            let next = scalars[index + 1]
            if next == "$" {
                result.append(contentsOf: "\\$".unicodeScalars)
                index += 2
            } else if next == "{", let close = scalars[(index + 2)...].firstIndex(of: "}") {
                result.append(contentsOf: "**".unicodeScalars)
                index = close + 1
            } else {
                var end = index + 1
                while end < scalars.count, PolicyVariables.isNameScalar(scalars[end]) { end += 1 }
                result.append(contentsOf: (end > index + 1 ? "**" : "$").unicodeScalars)
                index = max(end, index + 1)
            }
        }
        return String(result)
    }

    /// Whether some command line matches both the text glob `pattern` and `line`: a text glob
    /// after a program directory (any run of bytes other than a space, then `/`) when
    /// `pathPrefixed`, as when the program is run by a path the rule doesn't name.
    static func overlap(_ pattern: String, line: String, pathPrefixed: Bool) -> Bool {
        guard pathPrefixed else { return overlap(pattern, line, syntax: .text) }
        var notSpace = ByteSet.all
        notSpace = notSpace.subtracting({ var set = ByteSet(); set.insert(UInt8(ascii: " ")); return set }())
        let prefix: [GlobToken] = [.repeatZeroOrMore(notSpace), .step(.slash, literal: UInt8(ascii: "/"))]
        for left in alternatives(pattern) {
            guard let tokens = try? GlobCompiler.tokens(of: left, caseInsensitive: false, syntax: .text),
                  let lineTokens = try? GlobCompiler.tokens(of: line, caseInsensitive: false, syntax: .text) else {
                return true
            }
            let shifted = lineTokens.map { token -> GlobToken in
                if case .skip(let to) = token { return .skip(to: to + prefix.count) }
                return token
            }
            if tokensOverlap(tokens, prefix + shifted) { return true }
        }
        return false
    }

    private static func tokensOverlap(_ a: String, _ b: String, syntax: GlobSyntax) -> Bool {
        guard let left = try? GlobCompiler.tokens(of: a, caseInsensitive: false, syntax: syntax),
              let right = try? GlobCompiler.tokens(of: b, caseInsensitive: false, syntax: syntax) else {
            return true
        }
        return tokensOverlap(left, right)
    }

    /// The product of the two patterns' NFAs, searched for a pair of accepting states. Each
    /// side moves on its own for empty steps; both move together on a byte both can take.
    private static func tokensOverlap(_ left: [GlobToken], _ right: [GlobToken]) -> Bool {
        let width = right.count + 1
        var seen = [Bool](repeating: false, count: (left.count + 1) * width)
        var pending = [(0, 0)]
        seen[0] = true
        func visit(_ i: Int, _ j: Int) {
            guard !seen[i * width + j] else { return }
            seen[i * width + j] = true
            pending.append((i, j))
        }
        while let (i, j) = pending.popLast() {
            if i == left.count, j == right.count { return true }
            for next in emptyMoves(left, i) { visit(next, j) }
            for next in emptyMoves(right, j) { visit(i, next) }
            guard let (leftSet, leftNext) = byteMove(left, i), let (rightSet, rightNext) = byteMove(right, j) else {
                continue
            }
            if !leftSet.intersecting(rightSet).isEmpty { visit(leftNext, rightNext) }
        }
        return false
    }

    /// The states reachable from state `i` without reading a byte.
    private static func emptyMoves(_ tokens: [GlobToken], _ i: Int) -> [Int] {
        guard i < tokens.count else { return [] }
        switch tokens[i] {
        case .step: return []
        case .repeatZeroOrMore: return [i + 1]
        case .skip(let to): return [i + 1, to]
        }
    }

    /// The bytes state `i` can read and the state it then reaches.
    private static func byteMove(_ tokens: [GlobToken], _ i: Int) -> (ByteSet, Int)? {
        guard i < tokens.count else { return nil }
        switch tokens[i] {
        case .step(let set, _): return (set, i + 1)
        case .repeatZeroOrMore(let set): return (set, i)
        case .skip: return nil
        }
    }
}

extension ByteSet {
    func intersecting(_ other: ByteSet) -> ByteSet {
        ByteSet(words: (words.0 & other.words.0, words.1 & other.words.1,
                        words.2 & other.words.2, words.3 & other.words.3))
    }

    var isEmpty: Bool { words.0 | words.1 | words.2 | words.3 == 0 }
}

/// An `argv:` pattern as the overlap test sees it: each element one argument (any of its
/// glob alternatives) or `**`, any run of arguments.
enum ArgvPatternElement: Equatable {
    case word([String])
    case rest

    init(_ written: String) {
        self = written == "**" ? .rest : .word([written])
    }
}

extension GlobOverlap {
    /// Whether some argument list matches both argv patterns. The first argument (the program
    /// word) also counts as overlapping when one side's glob has no `/` and could match the
    /// other's basename, since a glob without `/` is tried against program basenames.
    static func argvOverlap(_ a: [ArgvPatternElement], _ b: [ArgvPatternElement]) -> Bool {
        // State: positions in a and b, and whether the program word was read yet.
        var seen = Set<[Int]>()
        var pending: [[Int]] = [[0, 0, 0]]
        while let state = pending.popLast() {
            guard seen.insert(state).inserted else { continue }
            let (p, q, read) = (state[0], state[1], state[2])
            if p == a.count, q == b.count { return true }
            if p < a.count, a[p] == .rest { pending.append([p + 1, q, read]) }
            if q < b.count, b[q] == .rest { pending.append([p, q + 1, read]) }
            guard p < a.count, q < b.count else { continue }
            switch (a[p], b[q]) {
            case (.rest, .rest):
                pending.append([p, q, 1])
            case (.rest, .word):
                pending.append([p, q + 1, 1])
            case (.word, .rest):
                pending.append([p + 1, q, 1])
            case (.word(let left), .word(let right)):
                if wordsOverlap(left, right, programWord: read == 0) { pending.append([p + 1, q + 1, 1]) }
            }
        }
        return false
    }

    /// Whether two argument globs (text syntax) could match the same argument.
    static func wordsOverlap(_ left: [String], _ right: [String], programWord: Bool) -> Bool {
        if overlap(anyOf: left, anyOf: right, syntax: .text) { return true }
        guard programWord else { return false }
        // A program word is also matched by basename: compare a slash-less glob with the last
        // part of the other side's.
        func lastParts(_ patterns: [String]) -> [String] {
            patterns.flatMap(alternatives).map { pattern in
                guard let slash = pattern.lastIndex(of: "/") else { return pattern }
                // In text syntax `*` and `?` also match `/`, so after the last `/` they may hide more.
                let after = pattern[pattern.index(after: slash)...]
                return after.contains(where: { "*?[".contains($0) }) ? "*" : String(after)
            }
        }
        let leftBare = left.filter { !$0.contains("/") }
        let rightBare = right.filter { !$0.contains("/") }
        return overlap(anyOf: leftBare, anyOf: lastParts(right), syntax: .text)
            || overlap(anyOf: rightBare, anyOf: lastParts(left), syntax: .text)
    }
}
