/// Recorded text made safe to show. An agent chooses the paths and arguments it uses, and could
/// put escape sequences or reordering controls in them, so every recorded string a report shows
/// on a terminal or in HTML goes through `escaped`.
enum DisplayText {
    /// `text` scalar by scalar: a line break (`\r\n` is one) becomes `lineBreak`, a tab ⇥, other
    /// control characters and bidirectional overrides `\u{…}`, and a scalar `replacement` has
    /// text for, that text.
    static func escaped(
        _ text: String, lineBreak: String, replacement: (Unicode.Scalar) -> String? = { _ in nil }
    ) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            defer { previous = scalar }
            if scalar == "\n" && previous == "\r" { continue }
            if scalar == "\n" || scalar == "\r" {
                output += lineBreak
            } else if scalar == "\t" {
                output += "⇥"
            } else if needsEscape(scalar) {
                output += "\\u{\(String(scalar.value, radix: 16))}"
            } else if let replaced = replacement(scalar) {
                output += replaced
            } else {
                output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    /// C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional controls
    /// that reorder what a terminal shows.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7f..<0xa0).contains(value) || (0x2028...0x2029).contains(value)
            || (0x202a...0x202e).contains(value) || (0x2066...0x2069).contains(value)
            || value == 0x200e || value == 0x200f || value == 0x061c
    }
}
