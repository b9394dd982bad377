/// Byte classes and reserved words of the shell grammar, shared by the parser's files.
extension UInt8 {
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
enum ReservedWord: String {
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
