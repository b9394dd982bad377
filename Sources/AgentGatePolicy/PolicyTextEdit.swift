import Foundation

/// Inserts a rule into a policy file's text, touching nothing else: comments, order, quoting and
/// line endings stay byte for byte as they were, so a person's file is still theirs after a rule
/// saved from an ask lands in it.
public enum PolicyTextEdit {
    /// Why a file's text can't be edited in place.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// The edited text, and where the rule went.
    public struct Insertion: Sendable, Equatable {
        public let text: String
        /// 1-based line of the inserted rule's first line in `text`.
        public let line: Int
        /// Whether the rule went at the end of the rules list (no rule to put it before was
        /// given, or it was not found where said).
        public let atEnd: Bool
    }

    /// Inserts `item` (a block sequence item as `RuleProposal.yaml` holds it) directly before
    /// the rule whose mapping starts at 1-based `ruleLine` (`PolicyRule.line`) and the comment
    /// lines directly above it, indented like that rule, or at the end of the top-level `rules:` list when `ruleLine` is nil. A missing
    /// `rules:` is appended; `rules: []` or an empty `rules:` becomes a block list. A flow-style
    /// list (`rules: [{…}]`) is refused: it can't be edited without reformatting it.
    public static func insert(_ item: [String], into text: String, beforeRuleAt ruleLine: Int?) throws(Failure) -> Insertion {
        let newline = text.contains("\r\n") ? "\r\n" : "\n"
        // Split on the byte: "\r\n" is one Character, which a String split would not cut.
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        // The split leaves "" after a final newline; remember it so the end stays as it was.
        let endsWithNewline = lines.last == ""
        if endsWithNewline { lines.removeLast() }
        let content = lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        let carriage = newline == "\r\n" ? "\r" : ""

        func rendered(_ indent: String) -> [String] {
            item.map { indent + $0 + carriage }
        }
        func joined(_ lines: [String], trailingNewline: Bool) -> String {
            lines.joined(separator: "\n") + (trailingNewline ? "\n" : "")
        }

        guard let rulesLine = content.firstIndex(where: { isTopLevelKey($0, "rules") }) else {
            // No rules list: append one.
            var result = lines
            if !endsWithNewline, let last = result.indices.last { result[last] += carriage }
            result.append("rules:" + carriage)
            let start = result.count
            result += rendered("  ")
            return Insertion(text: joined(result, trailingNewline: true), line: start + 1, atEnd: true)
        }
        var value = String(content[rulesLine].drop { $0 != ":" }.dropFirst())
        value = stripComment(value).trimmingCharacters(in: .whitespaces)
        switch value {
        case "", "[]", "null", "~", "Null", "NULL":
            break
        default:
            throw Failure(message: value.hasPrefix("[")
                ? "the rules list is written in flow style (rules: [...]); it can't be edited without reformatting it, "
                    + "so write it as a block list (one \"- \" item per rule) to save rules from an ask"
                : "the rules key's value (\(value)) is not a block list; it can't be edited in place")
        }
        if !value.isEmpty {
            // `rules: []`: the key stays, with its comment, and the list follows as a block.
            let original = content[rulesLine]
            let comment = commentPart(String(original.drop { $0 != ":" }.dropFirst()))
            lines[rulesLine] = "rules:" + (comment.map { " " + $0 } ?? "") + carriage
        }
        // The list runs until the next line at column 0 that is neither an item, a comment nor blank.
        var end = rulesLine + 1
        var lastContent = rulesLine
        var itemIndent: String?
        while end < content.count {
            let line = content[end]
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { end += 1; continue }
            if !line.hasPrefix(" "), !line.hasPrefix("\t"), !line.hasPrefix("-") { break }
            if line.hasPrefix("---") || line.hasPrefix("...") { break }
            if itemIndent == nil, trimmed.hasPrefix("-") { itemIndent = String(line.prefix { $0 == " " }) }
            lastContent = end
            end += 1
        }
        if let ruleLine, ruleLine - 1 > rulesLine, ruleLine - 1 <= lastContent,
           var itemLine = itemStart(content, mappingLine: ruleLine - 1, after: rulesLine) {
            let indent = String(content[itemLine].prefix { $0 == " " })
            // Comment lines right above the rule (no blank line between) belong to it: the new
            // rule goes above them.
            while itemLine - 1 > rulesLine, content[itemLine - 1].hasPrefix(indent),
                  content[itemLine - 1].drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("#") {
                itemLine -= 1
            }
            var result = lines
            result.insert(contentsOf: rendered(indent), at: itemLine)
            return Insertion(text: joined(result, trailingNewline: endsWithNewline), line: itemLine + 1, atEnd: false)
        }
        var result = lines
        let at = lastContent + 1
        let renderedItem = rendered(itemIndent ?? "  ")
        if at == result.count, !endsWithNewline {
            // The last line had no newline: it gets one, and so does the rule.
            result[at - 1] += carriage
            result += renderedItem
            return Insertion(text: joined(result, trailingNewline: true), line: at + 1, atEnd: true)
        }
        result.insert(contentsOf: renderedItem, at: at)
        return Insertion(text: joined(result, trailingNewline: endsWithNewline), line: at + 1, atEnd: true)
    }

    /// The line holding the `-` of the item whose mapping starts on `mappingLine` (the same line
    /// for `- id: x`, an earlier one when the dash stands alone), or nil.
    static func itemStart(_ content: [String], mappingLine: Int, after rulesLine: Int) -> Int? {
        guard mappingLine < content.count else { return nil }
        let line = content[mappingLine].drop { $0 == " " }
        if line.hasPrefix("- ") || line == "-" { return mappingLine }
        var index = mappingLine - 1
        while index > rulesLine {
            let trimmed = content[index].trimmingCharacters(in: .whitespaces)
            if trimmed == "-" { return index }
            if !trimmed.isEmpty, !trimmed.hasPrefix("#") { return nil }
            index -= 1
        }
        return nil
    }

    /// Whether `line` is the top-level mapping key `key` (at column 0, plain or quoted).
    static func isTopLevelKey(_ line: String, _ key: String) -> Bool {
        for spelling in [key, "\"\(key)\"", "'\(key)'"] where line.hasPrefix(spelling) {
            let rest = line.dropFirst(spelling.count).drop { $0 == " " }
            if rest.hasPrefix(":") { return true }
        }
        return false
    }

    /// A value without its trailing ` # comment`.
    static func stripComment(_ value: String) -> String {
        guard let comment = commentStart(value) else { return value }
        return String(value[..<comment])
    }

    static func commentPart(_ value: String) -> String? {
        commentStart(value).map { String(value[$0...]) }
    }

    /// Where a `#` that starts a comment is (first character, or after a space), outside quotes.
    private static func commentStart(_ value: String) -> String.Index? {
        var quote: Character?
        var previous: Character = " "
        for index in value.indices {
            let character = value[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#", previous == " " || previous == "\t" {
                return index
            }
            previous = character
        }
        return nil
    }
}
