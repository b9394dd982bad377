/// `{a,b}` alternation for version 2 policies, expanded once at load time into plain globs
/// (so matching stays a single linear NFA pass per alternative, with nothing new in the hot
/// path). Nesting works (`{a,b{c,d}}`), `\{` is a literal brace, braces inside `[...]` are
/// literal, and a brace group without a comma (`{x}`) is literal text.
enum BraceExpansion {
    static let maximumAlternatives = 256

    struct Failure: Error {
        var utf8Offset: Int
        var message: String
    }

    static func expand(_ pattern: String) throws(Failure) -> [String] {
        let bytes = Array(pattern.utf8)
        guard bytes.contains(UInt8(ascii: "{")) || bytes.contains(UInt8(ascii: "}")) else { return [pattern] }
        var index = 0
        let results = try sequence(bytes, &index, depth: 0)
        guard index == bytes.count else { throw Failure(utf8Offset: index, message: "unbalanced '}'") }
        return results.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Parses until `,` or `}` at this depth (or the end), returning every expansion.
    private static func sequence(_ bytes: [UInt8], _ index: inout Int, depth: Int) throws(Failure) -> [[UInt8]] {
        var results: [[UInt8]] = [[]]
        func appendLiteral(_ literal: ArraySlice<UInt8>) {
            for i in results.indices { results[i] += literal }
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\\"):
                let end = min(index + 2, bytes.count)
                appendLiteral(bytes[index..<end])
                index = end
            case UInt8(ascii: "["):
                // Copy a character class verbatim: braces and commas inside it are members.
                var end = index + 1
                if end < bytes.count, bytes[end] == UInt8(ascii: "^") || bytes[end] == UInt8(ascii: "!") { end += 1 }
                if end < bytes.count, bytes[end] == UInt8(ascii: "]") { end += 1 }
                while end < bytes.count, bytes[end] != UInt8(ascii: "]") {
                    end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
                }
                end = min(end + 1, bytes.count)
                appendLiteral(bytes[index..<end])
                index = end
            case UInt8(ascii: "{"):
                let open = index
                guard let close = matchingClose(bytes, from: open) else {
                    // A typo here would silently turn an alternation into literal text.
                    throw Failure(utf8Offset: open, message: "unterminated '{'; write \\{ for a literal brace")
                }
                guard hasTopLevelComma(bytes, open, close) else {
                    // `{x}`: literal text, up to and including its own `}`.
                    appendLiteral(bytes[open...close])
                    index = close + 1
                    continue
                }
                guard depth < 16 else { throw Failure(utf8Offset: open, message: "braces nest too deeply") }
                index += 1
                var alternatives: [[UInt8]] = []
                while true {
                    alternatives += try sequence(bytes, &index, depth: depth + 1)
                    guard index < bytes.count else { throw Failure(utf8Offset: open, message: "unterminated '{'") }
                    let separator = bytes[index]
                    index += 1
                    if separator == UInt8(ascii: "}") { break }
                }
                // Check the size before building anything.
                guard alternatives.count <= maximumAlternatives,
                      results.count.multipliedReportingOverflow(by: alternatives.count).partialValue <= maximumAlternatives,
                      !results.count.multipliedReportingOverflow(by: alternatives.count).overflow else {
                    throw Failure(utf8Offset: open, message: "braces expand to more than \(maximumAlternatives) patterns")
                }
                var combined: [[UInt8]] = []
                for prefix in results {
                    for alternative in alternatives { combined.append(prefix + alternative) }
                }
                results = combined
            case UInt8(ascii: ","), UInt8(ascii: "}"):
                if depth > 0 { return results }
                if bytes[index] == UInt8(ascii: "}") {
                    throw Failure(utf8Offset: index, message: "unmatched '}'; write \\} for a literal brace")
                }
                appendLiteral(bytes[index...index])
                index += 1
            default:
                appendLiteral(bytes[index...index])
                index += 1
            }
        }
        return results
    }

    /// The `}` closing the `{` at `open`, skipping escapes, classes and nested groups.
    private static func matchingClose(_ bytes: [UInt8], from open: Int) -> Int? {
        var depth = 0
        var index = open
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 1
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return index }
            default: break
            }
            index += 1
        }
        return nil
    }

    private static func hasTopLevelComma(_ bytes: [UInt8], _ open: Int, _ close: Int) -> Bool {
        var depth = 0
        var index = open + 1
        while index < close {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 1
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"): depth -= 1
            case UInt8(ascii: ","): if depth == 0 { return true }
            default: break
            }
            index += 1
        }
        return false
    }
}
