enum IntentText {
    /// Quoted commands and paths are cut to this many characters.
    static let detailLimit = 200
    /// The whole text is cut to this many characters.
    static let textLimit = 320

    /// `text` on one line for display: control characters and whitespace runs become one space,
    /// bidirectional overrides become U+FFFD, and past `limit` characters it ends with "…".
    /// Reads at most `8 × limit` characters of `text` (then it ends with "…" too), so a huge
    /// script, even one of blanks, costs nothing extra.
    static func display(_ text: String, limit: Int = detailLimit) -> String {
        if isDisplayReady(text, limit: limit) { return text }
        var out = String.UnicodeScalarView()
        var count = 0
        var pendingSpace = false
        var examined = 0
        for scalar in text.unicodeScalars {
            examined += 1
            if examined > 8 * limit {
                out.append("…")
                return String(out)
            }
            let value = scalar.value
            if value < 0x20 || (0x7F...0x9F).contains(value) || scalar.properties.isWhitespace {
                pendingSpace = count > 0
                continue
            }
            let isBidiControl = (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
                || value == 0x200E || value == 0x200F || value == 0x061C
            if count + (pendingSpace ? 1 : 0) >= limit {
                out.append("…")
                return String(out)
            }
            if pendingSpace {
                out.append(" ")
                count += 1
                pendingSpace = false
            }
            out.append(isBidiControl ? "\u{FFFD}" : scalar)
            count += 1
        }
        return String(out)
    }

    /// Whether `display` would return `text` unchanged: printable ASCII with single spaces
    /// between words, within `limit` (the usual exec line and path; no scalar properties to
    /// look up).
    static func isDisplayReady(_ text: String, limit: Int) -> Bool {
        let utf8 = text.utf8
        guard utf8.count <= limit else { return false }
        return utf8.withContiguousStorageIfAvailable { bytes in
            var previousWasSpace = true // no leading space
            for byte in bytes {
                if byte == 0x20 {
                    if previousWasSpace { return false }
                    previousWasSpace = true
                } else if byte > 0x20 && byte < 0x7F {
                    previousWasSpace = false
                } else {
                    return false
                }
            }
            return !previousWasSpace || bytes.isEmpty
        } ?? false
    }

    /// A command line for display.
    static func command(_ words: [String]) -> String {
        display(line(words))
    }

    /// `CommandAnalysis.line(words)`, or enough of its start for `display` (which reads at most
    /// 8 × its limit characters): a huge argv is not joined in full.
    static func line(_ words: [String]) -> String {
        let enough = 8 * textLimit + 8
        var line = ""
        for word in words {
            if !line.isEmpty { line += " " }
            if line.utf8.count + word.utf8.count > enough {
                // The separating space may already have reached the budget: never a negative prefix.
                line += String(decoding: word.utf8.prefix(max(0, enough - line.utf8.count)), as: UTF8.self)
                return line
            }
            line += word
        }
        return line
    }

    /// `CommandAnalysis.line(pipeline:)`, bounded like `line(_:)`.
    static func line(pipeline: [[String]]) -> String {
        var words: [String] = []
        var length = 0
        for (index, stage) in pipeline.enumerated() {
            if index > 0 { words.append("|") }
            words += stage.prefix(8 * textLimit)
            length += stage.reduce(0) { $0 + $1.utf8.count + 1 }
            if length > 8 * textLimit { break }
        }
        return line(words)
    }

    /// "a, b, c" for up to `limit` items, then "… (+N more)".
    static func list(_ items: [String], limit: Int = 10) -> String {
        let shown = items.prefix(limit).map { display($0, limit: 80) }.joined(separator: ", ")
        return items.count > limit ? shown + ", … (+\(items.count - limit) more)" : shown
    }
}
