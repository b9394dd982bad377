/// A malformed glob (or host pattern).
public struct GlobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The pattern as given.
    public let pattern: String
    /// 0-based UTF-8 byte offset of the offending character within `pattern`.
    public let utf8Offset: Int
    /// What is wrong and what was expected.
    public let message: String

    public var description: String { "\(message) (at byte \(utf8Offset) of \"\(pattern)\")" }
}

/// How a glob treats `/`.
public enum GlobSyntax: Sendable {
    /// Paths: `*` and `?` stop at `/`; `**` spans segments.
    case path
    /// Plain text: `/` is an ordinary character and `*` (any number of stars) matches any run.
    case text
}

/// A path glob, compiled once and matched without allocating.
///
/// Syntax (Go `filepath.Match` plus `**`):
/// - `*` matches any run of characters other than `/`; `?` matches one character other than `/`.
/// - `[abc]`, `[a-z]`, `[^a-z]` / `[!a-z]` match one character of (or not of) the class. Class members
///   must be ASCII; a negated class never matches `/`. `-` is literal first or last, `\` escapes.
/// - `\c` matches `c` literally.
/// - `**` as a whole path segment matches zero or more whole segments: `/a/**` matches `/a` itself
///   and everything below it (so `$PWD/**` covers PWD and every file under it at any depth),
///   `**/foo` matches `foo` at any depth, `/a/**/b` matches `/a/b` and `/a/x/y/b`.
///   `**` that is not a whole segment (as in `/a/**.env`) matches any run of characters, `/` included.
///
/// Matching is a bit-parallel NFA simulation: linear in the target length, so patterns such as
/// `*a*a*a*a*b` cannot blow up. A literal prefix and suffix are compared first.
public struct Glob: Sendable {
    /// The pattern as given.
    public let pattern: String
    /// Whether ASCII letters match regardless of case (host names).
    public let caseInsensitive: Bool
    let code: GlobCode
    let arena: MatchArena

    /// Compiles a case-sensitive path glob.
    public init(_ pattern: String) throws(GlobError) {
        try self.init(pattern, caseInsensitive: false)
    }

    /// Compiles a glob; `caseInsensitive` folds ASCII letters on both sides. With `.text`
    /// syntax `/` is an ordinary character: `*` matches any run of characters, `?` any one
    /// (command lines, argv elements, cgroup and agent names).
    public init(_ pattern: String, caseInsensitive: Bool, syntax: GlobSyntax = .path) throws(GlobError) {
        self.pattern = pattern
        self.caseInsensitive = caseInsensitive
        let tokens = try GlobCompiler.tokens(of: pattern, caseInsensitive: caseInsensitive, syntax: syntax)
        var arena = MatchArena()
        self.code = GlobCode(tokens: tokens, caseInsensitive: caseInsensitive, arena: &arena)
        self.arena = arena
    }

    /// Whether the whole of `s` matches the pattern.
    public func matches(_ s: String) -> Bool {
        if let result = s.utf8.withContiguousStorageIfAvailable({ matches(utf8: $0) }) {
            return result
        }
        var contiguous = s
        return contiguous.withUTF8 { matches(utf8: $0) }
    }

    /// Whether the whole of the UTF-8 bytes matches the pattern.
    public func matches(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        arena.withPointers { code.matches(bytes, $0) }
    }

    /// Whether the pattern has no wildcards at all, i.e. matches exactly one string.
    public var isLiteral: Bool { code.shape == .exact }
}

// MARK: - Byte sets

/// A set of byte values (256 bits).
struct ByteSet: Sendable, Equatable {
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    static var all: ByteSet { ByteSet().inverted }

    static func == (a: ByteSet, b: ByteSet) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    mutating func insert(_ byte: UInt8) {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    mutating func insert(_ range: ClosedRange<UInt8>) {
        for byte in range { insert(byte) }
    }

    var inverted: ByteSet {
        ByteSet(words: (~words.0, ~words.1, ~words.2, ~words.3))
    }

    func subtracting(_ other: ByteSet) -> ByteSet {
        ByteSet(words: (words.0 & ~other.words.0, words.1 & ~other.words.1,
                        words.2 & ~other.words.2, words.3 & ~other.words.3))
    }

    /// Adds the other case of every ASCII letter in the set.
    var caseClosed: ByteSet {
        var result = self
        for byte in UInt8(ascii: "a")...UInt8(ascii: "z") {
            let upper = byte - 32
            if contains(byte) || contains(upper) {
                result.insert(byte)
                result.insert(upper)
            }
        }
        return result
    }

    /// UTF-8 continuation bytes: a `?` or negated class consumes them after a lead byte so it
    /// matches one whole character.
    static let utf8Continuation: ByteSet = {
        var set = ByteSet()
        set.insert(0x80...0xBF)
        return set
    }()

    static let slash: ByteSet = {
        var set = ByteSet()
        set.insert(UInt8(ascii: "/"))
        return set
    }()

    static var allButSlash: ByteSet { all.subtracting(slash) }
}

@inline(__always)
func asciiLowercased(_ byte: UInt8) -> UInt8 {
    byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
}

// MARK: - Compilation

/// One NFA instruction. State `i` sits before token `i`; the state after the last token accepts.
enum GlobToken: Equatable {
    /// Consume one byte from the set. `literal` is set when the token came from one literal
    /// character (case-folded when matching ignores case).
    case step(ByteSet, literal: UInt8?)
    /// Consume zero or more bytes from the set.
    case repeatZeroOrMore(ByteSet)
    /// Consume nothing; continue at the next token or at token `to`.
    case skip(to: Int)
}

enum GlobCompiler {
    private enum Item {
        case literal(UInt8)
        case anyCharacter
        case characterClass(ByteSet, negated: Bool)
        case stars(Int)
    }

    static func tokens(of pattern: String, caseInsensitive: Bool, syntax: GlobSyntax = .path) throws(GlobError) -> [GlobToken] {
        let items = try parse(Array(pattern.utf8), pattern: pattern)
        switch syntax {
        case .path: return emit(normalized(items), caseInsensitive: caseInsensitive)
        case .text: return emitText(items, caseInsensitive: caseInsensitive)
        }
    }

    /// Text syntax: no byte is special, so stars of any count match anything.
    private static func emitText(_ items: [Item], caseInsensitive: Bool) -> [GlobToken] {
        var tokens: [GlobToken] = []
        tokens.reserveCapacity(2 * items.count)
        for item in items {
            switch item {
            case .stars:
                tokens.append(.repeatZeroOrMore(.all))
            case .literal, .anyCharacter, .characterClass:
                emitCharacter(item, universe: .all, caseInsensitive: caseInsensitive, into: &tokens)
            }
        }
        return tokens
    }

    /// The tokens of one item that stands for one character (a literal byte, `?` or a class),
    /// drawn from `universe`: every byte in text syntax, every byte but `/` in path syntax.
    /// Runs of stars differ between the syntaxes and are emitted by each.
    private static func emitCharacter(_ item: Item, universe: ByteSet, caseInsensitive: Bool, into tokens: inout [GlobToken]) {
        switch item {
        case .literal(let byte):
            var set = ByteSet()
            set.insert(byte)
            tokens.append(caseInsensitive
                ? .step(set.caseClosed, literal: asciiLowercased(byte))
                : .step(set, literal: byte))
        case .anyCharacter:
            tokens.append(.step(universe.subtracting(.utf8Continuation), literal: nil))
            tokens.append(.repeatZeroOrMore(.utf8Continuation))
        case .characterClass(let members, let negated):
            let folded = caseInsensitive ? members.caseClosed : members
            if negated {
                tokens.append(.step(universe.subtracting(.utf8Continuation).subtracting(folded), literal: nil))
                tokens.append(.repeatZeroOrMore(.utf8Continuation))
            } else {
                tokens.append(.step(folded, literal: nil))
            }
        case .stars:
            break
        }
    }

    private static func parse(_ bytes: [UInt8], pattern: String) throws(GlobError) -> [Item] {
        var items: [Item] = []
        items.reserveCapacity(bytes.count)
        var index = 0
        func fail(_ offset: Int, _ message: String) -> GlobError {
            GlobError(pattern: pattern, utf8Offset: offset, message: message)
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\\"):
                guard index + 1 < bytes.count else {
                    throw fail(index, "pattern ends with an unfinished escape '\\'")
                }
                items.append(.literal(bytes[index + 1]))
                index += 2
            case UInt8(ascii: "*"):
                var count = 0
                while index < bytes.count, bytes[index] == UInt8(ascii: "*") {
                    count += 1
                    index += 1
                }
                items.append(.stars(count))
            case UInt8(ascii: "?"):
                items.append(.anyCharacter)
                index += 1
            case UInt8(ascii: "["):
                let (item, next) = try parseClass(bytes, openAt: index, pattern: pattern)
                items.append(item)
                index = next
            default:
                items.append(.literal(byte))
                index += 1
            }
        }
        return items
    }

    /// Parses `[...]` starting at the `[`; returns the class and the index after `]`.
    private static func parseClass(
        _ bytes: [UInt8], openAt open: Int, pattern: String
    ) throws(GlobError) -> (Item, Int) {
        func fail(_ offset: Int, _ message: String) -> GlobError {
            GlobError(pattern: pattern, utf8Offset: offset, message: message)
        }
        var index = open + 1
        var negated = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "^") || bytes[index] == UInt8(ascii: "!") {
            negated = true
            index += 1
        }
        let firstMember = index
        var set = ByteSet()

        /// Reads one class character (handling `\`); returns it and the index after it.
        func member(at position: Int) throws(GlobError) -> (UInt8, Int) {
            guard position < bytes.count else {
                throw fail(open, "unterminated character class; expected ']'")
            }
            var byte = bytes[position]
            var next = position + 1
            if byte == UInt8(ascii: "\\") {
                guard next < bytes.count else {
                    throw fail(position, "pattern ends with an unfinished escape '\\'")
                }
                byte = bytes[next]
                next += 1
            }
            guard byte < 0x80 else {
                throw fail(position, "non-ASCII characters in a character class are not supported")
            }
            return (byte, next)
        }

        while true {
            guard index < bytes.count else {
                throw fail(open, "unterminated character class; expected ']'")
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "]") {
                if index == firstMember {
                    throw fail(index, "empty character class; write '\\]' for a literal ']'")
                }
                return (.characterClass(set, negated: negated), index + 1)
            }
            let isUnescapedDash = byte == UInt8(ascii: "-")
            let isLast = index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "]")
            if isUnescapedDash, index != firstMember, !isLast {
                throw fail(index, "'-' in a character class must start a range, come first or last, or be escaped")
            }
            let (low, afterLow) = try member(at: index)
            index = afterLow
            // A range `lo-hi`, unless the dash is the class's last character.
            if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "-"), bytes[index + 1] != UInt8(ascii: "]") {
                let (high, afterHigh) = try member(at: index + 1)
                guard low <= high else {
                    throw fail(index - 1, "character class range is out of order")
                }
                set.insert(low...high)
                index = afterHigh
            } else {
                set.insert(low)
            }
        }
    }

    /// `**/**` (with or without the slash) means the same as one `**`.
    private static func normalized(_ items: [Item]) -> [Item] {
        var result: [Item] = []
        result.reserveCapacity(items.count)
        for item in items {
            if case .stars(let count) = item, count >= 2, result.count >= 2,
               case .literal(UInt8(ascii: "/")) = result[result.count - 1],
               case .stars(let previous) = result[result.count - 2], previous >= 2 {
                result.removeLast()
                continue
            }
            result.append(item)
        }
        return result
    }

    private static func emit(_ items: [Item], caseInsensitive: Bool) -> [GlobToken] {
        var tokens: [GlobToken] = []
        tokens.reserveCapacity(2 * items.count + 2)
        // Whether the last token is a plain `/` from the pattern (so a following segment `**` may absorb it).
        var lastIsPlainSlash = false
        var index = 0
        func isSlash(_ position: Int) -> Bool {
            guard position < items.count, case .literal(UInt8(ascii: "/")) = items[position] else { return false }
            return true
        }
        let anything = ByteSet.all
        let slash = UInt8(ascii: "/")
        let slashToken = GlobToken.step(ByteSet.slash, literal: slash)
        while index < items.count {
            let item = items[index]
            index += 1
            var plainSlash = false
            switch item {
            case .literal(let byte):
                emitCharacter(item, universe: .allButSlash, caseInsensitive: caseInsensitive, into: &tokens)
                plainSlash = byte == slash
            case .anyCharacter, .characterClass:
                emitCharacter(item, universe: .allButSlash, caseInsensitive: caseInsensitive, into: &tokens)
            case .stars(1):
                tokens.append(.repeatZeroOrMore(.allButSlash))
            case .stars:
                let atStart = index - 1 == 0
                let afterSlash = lastIsPlainSlash
                let atEnd = index == items.count
                let beforeSlash = isSlash(index)
                if atStart && atEnd {
                    tokens.append(.repeatZeroOrMore(anything))
                } else if atStart && beforeSlash {
                    // `**/rest`: "" or "anything/" before rest.
                    let base = tokens.count
                    tokens.append(.skip(to: base + 3))
                    tokens.append(.repeatZeroOrMore(anything))
                    tokens.append(slashToken)
                    index += 1
                } else if afterSlash && (atEnd || beforeSlash) {
                    // `prefix/**`: the prefix itself, or "/anything" after it. `a/**/b`: "/" or
                    // "/anything/" between a and b. (At the end there is no slash after.)
                    tokens.removeLast()
                    let base = tokens.count
                    tokens.append(.skip(to: base + 3))
                    tokens.append(slashToken)
                    tokens.append(.repeatZeroOrMore(anything))
                    if beforeSlash {
                        tokens.append(slashToken)
                        index += 1
                    }
                } else {
                    tokens.append(.repeatZeroOrMore(anything))
                }
            }
            lastIsPlainSlash = plainSlash
        }
        return tokens
    }
}

// MARK: - Compiled form

/// A compiled glob: a literal prefix and suffix plus a matcher for the middle, as offsets into a
/// `MatchArena`. Plain data, so rules holding it are copied without reference counting.
struct GlobCode: Sendable {
    enum Shape: UInt8, Sendable {
        /// The prefix is the whole pattern.
        case exact
        /// `prefix/**`: nothing more, or `/` and anything.
        case subtree
        /// The middle is anything at all.
        case anything
        /// The middle is any run of bytes from a set (e.g. `*`): `table` is a 256-byte membership table.
        case run
        /// The middle is `*L1*L2…*Lk*`: literal runs between stars that span anything (text
        /// globs, `**` inside a segment). Each run is found leftmost after the one before, which
        /// decides such patterns exactly, and compiling it costs no automaton (the hundreds of
        /// text globs a brace-expanded `command:` rule makes are mostly of this shape). `table`
        /// is the runs' bytes, `advance` their lengths (one word each), `stateWords` their count.
        case segments
        /// The middle needs the NFA.
        case automaton
    }

    var prefixStart: Int32 = 0
    var prefixCount: Int32 = 0
    var suffixStart: Int32 = 0
    var suffixCount: Int32 = 0
    var caseInsensitive = false
    var shape = Shape.exact
    /// `run`: membership table; `automaton`: byte -> class table (256 bytes each).
    var table: Int32 = 0
    // NFA: state sets are `stateWords` 64-bit words; tables live in the word arena.
    var stateWords: Int32 = 0
    /// Per class: states whose token consumes the byte and moves on.
    var advance: Int32 = 0
    /// Per class: states whose token consumes the byte and stays.
    var loop: Int32 = 0
    /// States with epsilon moves.
    var epsilon: Int32 = 0
    /// Per state: every state reachable by epsilon moves, itself included.
    var closure: Int32 = 0
    var acceptWord: Int32 = 0
    var acceptBit: UInt64 = 0

    /// A code that matches only the empty string (a placeholder for matchers that need none).
    init() {}

    /// Shifts every offset after the arena it points into was appended elsewhere.
    func relocated(by shift: (bytes: Int32, words: Int32)) -> GlobCode {
        var code = self
        code.prefixStart += shift.bytes
        code.suffixStart += shift.bytes
        code.table += shift.bytes
        code.advance += shift.words
        code.loop += shift.words
        code.epsilon += shift.words
        code.closure += shift.words
        return code
    }

    /// Compiles tokens, writing tables into `arena`.
    init(tokens: [GlobToken], caseInsensitive: Bool, arena: inout MatchArena) {
        self.caseInsensitive = caseInsensitive
        func literal(_ token: GlobToken) -> UInt8? {
            if case .step(_, let literal) = token { return literal }
            return nil
        }
        var prefixCount = 0
        while prefixCount < tokens.count, literal(tokens[prefixCount]) != nil { prefixCount += 1 }
        // The suffix may not reach back past a skip target: that state must stay inside the NFA.
        var suffixStart = tokens.count
        if prefixCount < tokens.count {
            var lowestAllowed = prefixCount
            for token in tokens[prefixCount...] {
                if case .skip(let target) = token { lowestAllowed = max(lowestAllowed, target) }
            }
            while suffixStart > lowestAllowed, literal(tokens[suffixStart - 1]) != nil { suffixStart -= 1 }
        }
        self.prefixStart = arena.appendBytes(tokens[..<prefixCount].compactMap(literal))
        self.prefixCount = Int32(prefixCount)
        self.suffixStart = arena.appendBytes(tokens[suffixStart...].compactMap(literal))
        self.suffixCount = Int32(tokens.count - suffixStart)

        let middle: [GlobToken] = tokens[prefixCount..<suffixStart].map { token in
            if case .skip(let target) = token { return .skip(to: target - prefixCount) }
            return token
        }
        if middle.isEmpty {
            shape = .exact
        } else if middle == [.skip(to: 3), .step(.slash, literal: UInt8(ascii: "/")), .repeatZeroOrMore(.all)] {
            shape = .subtree
        } else if middle.count == 1, case .repeatZeroOrMore(let set) = middle[0] {
            if set == .all {
                shape = .anything
            } else {
                shape = .run
                table = arena.appendBytes((0...255).map { set.contains(UInt8($0)) ? UInt8(1) : 0 })
            }
        } else if let runs = Self.literalRuns(middle) {
            shape = .segments
            table = arena.appendBytes(Array(runs.joined()))
            advance = Int32(arena.words.count)
            arena.words += runs.map { UInt64($0.count) }
            stateWords = Int32(runs.count)
        } else {
            shape = .automaton
            buildAutomaton(middle, arena: &arena)
        }
    }

    /// The literal runs of a middle that is only literal bytes and stars over every byte, or nil.
    private static func literalRuns(_ middle: [GlobToken]) -> [[UInt8]]? {
        var runs: [[UInt8]] = []
        var current: [UInt8] = []
        for token in middle {
            switch token {
            case .step(_, let literal?):
                current.append(literal)
            case .repeatZeroOrMore(let set) where set == .all:
                if !current.isEmpty { runs.append(current) }
                current = []
            default:
                return nil
            }
        }
        // The middle ends with a star (its trailing literals are the suffix); a run left over
        // would be a pattern this shape doesn't describe.
        guard current.isEmpty, !runs.isEmpty else { return nil }
        return runs
    }

    private mutating func buildAutomaton(_ middle: [GlobToken], arena: inout MatchArena) {
        let stateCount = middle.count + 1
        let words = (stateCount + 63) / 64
        stateWords = Int32(words)
        acceptWord = Int32(middle.count / 64)
        acceptBit = UInt64(1) << UInt64(middle.count % 64)
        func bit(_ state: Int) -> (Int, UInt64) { (state / 64, UInt64(1) << UInt64(state % 64)) }

        // Bytes that every token treats alike share a class, so the tables stay small. The
        // partition is refined by each token's byte set in turn, visiting only the set's bytes
        // (or its complement's, whichever is smaller: both split alike), then numbered in order
        // of each class's lowest byte. Cheap enough for the hundreds of globs a brace-expanded
        // `command:` rule makes.
        var partition = [UInt16](repeating: 0, count: 256)
        var classSize = [UInt16](repeating: 0, count: 257)
        classSize[0] = 256
        var partCount = 1
        var hits = [UInt16](repeating: 0, count: 257)
        var splitInto = [UInt16](repeating: 0, count: 257)
        var members: [UInt8] = []
        members.reserveCapacity(128)
        for token in middle {
            var set: ByteSet
            switch token {
            case .step(let bytes, _), .repeatZeroOrMore(let bytes): set = bytes
            case .skip: continue
            }
            let count = set.words.0.nonzeroBitCount + set.words.1.nonzeroBitCount
                + set.words.2.nonzeroBitCount + set.words.3.nonzeroBitCount
            if count == 0 || count == 256 { continue }
            if count > 128 { set = set.inverted }
            members.removeAll(keepingCapacity: true)
            for (index, word) in [set.words.0, set.words.1, set.words.2, set.words.3].enumerated() {
                var rest = word
                while rest != 0 {
                    members.append(UInt8(index * 64 + rest.trailingZeroBitCount))
                    rest &= rest &- 1
                }
            }
            for byte in members { hits[Int(partition[Int(byte)])] += 1 }
            for byte in members {
                let part = Int(partition[Int(byte)])
                if hits[part] == classSize[part] { continue }  // wholly inside: not split
                if splitInto[part] == 0 {
                    splitInto[part] = UInt16(partCount)
                    partCount += 1
                }
                let moved = Int(splitInto[part])
                partition[Int(byte)] = UInt16(moved)
                classSize[moved] += 1
            }
            for byte in members {
                let part = Int(partition[Int(byte)])
                hits[part] = 0
            }
            for part in 0..<partCount where splitInto[part] != 0 {
                classSize[part] -= classSize[Int(splitInto[part])]
                hits[part] = 0
                splitInto[part] = 0
            }
        }
        var classOf = [UInt8](repeating: 0, count: 256)
        var representative = [UInt8](repeating: 0, count: 256)  // each class's lowest byte
        var number = [Int16](repeating: -1, count: 257)
        var classCount = 0
        for byte in 0..<256 {
            let part = Int(partition[byte])
            if number[part] < 0 {
                number[part] = Int16(classCount)
                representative[classCount] = UInt8(byte)
                classCount += 1
            }
            classOf[byte] = UInt8(number[part])
        }

        var advanceTable = [UInt64](repeating: 0, count: classCount * words)
        var loopTable = advanceTable
        var epsilonStates = [UInt64](repeating: 0, count: words)
        for (state, token) in middle.enumerated() {
            let (word, mask) = bit(state)
            switch token {
            case .step(let set, _):
                for cls in 0..<classCount where set.contains(representative[cls]) { advanceTable[cls * words + word] |= mask }
            case .repeatZeroOrMore(let set):
                for cls in 0..<classCount where set.contains(representative[cls]) { loopTable[cls * words + word] |= mask }
                epsilonStates[word] |= mask
            case .skip:
                epsilonStates[word] |= mask
            }
        }

        var closureTable = [UInt64](repeating: 0, count: stateCount * words)
        for state in stride(from: middle.count, through: 0, by: -1) {
            let (word, mask) = bit(state)
            closureTable[state * words + word] |= mask
            guard state < middle.count else { continue }
            var targets: (Int, Int?)
            switch middle[state] {
            case .repeatZeroOrMore: targets = (state + 1, nil)
            case .skip(let target): targets = (state + 1, target)
            case .step: continue
            }
            for w in 0..<words { closureTable[state * words + w] |= closureTable[targets.0 * words + w] }
            if let target = targets.1 {
                for w in 0..<words { closureTable[state * words + w] |= closureTable[target * words + w] }
            }
        }

        table = arena.appendBytes(classOf)
        advance = Int32(arena.words.count)
        arena.words += advanceTable
        loop = Int32(arena.words.count)
        arena.words += loopTable
        epsilon = Int32(arena.words.count)
        arena.words += epsilonStates
        closure = Int32(arena.words.count)
        arena.words += closureTable
    }

    // MARK: Matching

    /// Whether the whole of `target` matches.
    @inline(__always)
    func matches(_ target: UnsafeBufferPointer<UInt8>, _ arena: ArenaPointers) -> Bool {
        let count = target.count
        let prefixCount = Int(self.prefixCount)
        let suffixCount = Int(self.suffixCount)
        guard count >= prefixCount + suffixCount, let base = target.baseAddress else {
            return count == 0 && prefixCount == 0 && suffixCount == 0 && matchesEmptyMiddle(arena)
        }
        guard Self.equal(base, arena.bytes + Int(prefixStart), prefixCount, foldCase: caseInsensitive),
              Self.equal(base + (count - suffixCount), arena.bytes + Int(suffixStart), suffixCount,
                         foldCase: caseInsensitive)
        else { return false }
        let low = prefixCount
        let high = count - suffixCount
        switch shape {
        case .exact:
            return low == high
        case .subtree:
            return low == high || base[low] == UInt8(ascii: "/")
        case .anything:
            return true
        case .run:
            let table = arena.bytes + Int(self.table)
            var i = low
            while i < high {
                if table[Int(base[i])] == 0 { return false }
                i += 1
            }
            return true
        case .segments:
            return matchSegments(base, from: low, to: high, arena)
        case .automaton:
            return stateWords == 1
                ? runSingleWord(base, from: low, to: high, arena)
                : runMultiWord(base, from: low, to: high, arena)
        }
    }

    /// `*L1*L2…*Lk*` over `target[low..<high]`: each run found leftmost after the one before.
    private func matchSegments(_ target: UnsafePointer<UInt8>, from low: Int, to high: Int,
                               _ arena: ArenaPointers) -> Bool {
        let lengths = arena.words + Int(advance)
        var run = arena.bytes + Int(table)
        var position = low
        for index in 0..<Int(stateWords) {
            let length = Int(lengths[index])
            let first = run[0]
            var found = -1
            var start = position
            while start + length <= high {
                let byte = caseInsensitive ? asciiLowercased(target[start]) : target[start]
                if byte == first, Self.equal(target + start, run, length, foldCase: caseInsensitive) {
                    found = start
                    break
                }
                start += 1
            }
            guard found >= 0 else { return false }
            position = found + length
            run += length
        }
        return true
    }

    /// The empty target (which has no base address) against a pattern with no literals.
    private func matchesEmptyMiddle(_ arena: ArenaPointers) -> Bool {
        switch shape {
        case .exact, .subtree, .anything, .run: return true
        case .segments: return false
        case .automaton:
            let closure = arena.words + Int(self.closure)
            return closure[Int(acceptWord)] & acceptBit != 0
        }
    }

    /// Compares `count` bytes, eight at a time where possible; `literal` is already case-folded.
    @inline(__always)
    static func equal(_ target: UnsafePointer<UInt8>, _ literal: UnsafePointer<UInt8>, _ count: Int,
                      foldCase: Bool) -> Bool {
        if foldCase {
            for i in 0..<count where asciiLowercased(target[i]) != literal[i] { return false }
            return true
        }
        var i = 0
        let rawTarget = UnsafeRawPointer(target)
        let rawLiteral = UnsafeRawPointer(literal)
        while i + 8 <= count {
            if rawTarget.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                != rawLiteral.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < count {
            if target[i] != literal[i] { return false }
            i += 1
        }
        return true
    }

    private func runSingleWord(_ target: UnsafePointer<UInt8>, from low: Int, to high: Int,
                               _ arena: ArenaPointers) -> Bool {
        let byteClass = arena.bytes + Int(table)
        let advance = arena.words + Int(self.advance)
        let loop = arena.words + Int(self.loop)
        let closure = arena.words + Int(self.closure)
        let epsilon = arena.words[Int(self.epsilon)]
        var states = closure[0]
        var i = low
        while i < high {
            let cls = Int(byteClass[Int(target[i])])
            var next = ((states & advance[cls]) << 1) | (states & loop[cls])
            if next == 0 { return false }
            var pending = next & epsilon
            while pending != 0 {
                next |= closure[pending.trailingZeroBitCount]
                pending &= pending &- 1
            }
            states = next
            i += 1
        }
        return states & acceptBit != 0
    }

    private func runMultiWord(_ target: UnsafePointer<UInt8>, from low: Int, to high: Int,
                              _ arena: ArenaPointers) -> Bool {
        let words = Int(stateWords)
        let byteClass = arena.bytes + Int(table)
        let advance = arena.words + Int(self.advance)
        let loop = arena.words + Int(self.loop)
        let closure = arena.words + Int(self.closure)
        let epsilon = arena.words + Int(self.epsilon)
        // Stack scratch for two state sets; no heap allocation for any realistic pattern.
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 * words) { scratch in
            guard let states = scratch.baseAddress else { return false }
            let next = states + words
            for w in 0..<words { states[w] = closure[w] }
            var i = low
            while i < high {
                let base = Int(byteClass[Int(target[i])]) * words
                var carry: UInt64 = 0
                var any: UInt64 = 0
                for w in 0..<words {
                    let moving = states[w] & advance[base + w]
                    let word = (moving << 1) | carry | (states[w] & loop[base + w])
                    carry = moving >> 63
                    next[w] = word
                    any |= word
                }
                if any == 0 { return false }
                for w in 0..<words {
                    var pending = next[w] & epsilon[w]
                    while pending != 0 {
                        let state = w * 64 + pending.trailingZeroBitCount
                        for v in 0..<words { next[v] |= closure[state * words + v] }
                        pending &= pending &- 1
                    }
                }
                for w in 0..<words { states[w] = next[w] }
                i += 1
            }
            return states[Int(acceptWord)] & acceptBit != 0
        }
    }
}
