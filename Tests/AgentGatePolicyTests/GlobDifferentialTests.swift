import Foundation
import Testing
import AgentGatePolicy

/// Deterministic PRNG so failures reproduce.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// An independent statement of the glob semantics as an anchored regular expression.
private func referenceRegex(for glob: String) -> String {
    let chars = Array(glob)
    var regex = ""
    var i = 0
    while i < chars.count {
        let c = chars[i]
        switch c {
        case "*":
            var end = i
            while end < chars.count, chars[end] == "*" { end += 1 }
            if end - i == 1 {
                regex += "[^/]*"
            } else {
                let atStart = i == 0
                let atEnd = end == chars.count
                let afterSlash = i > 0 && chars[i - 1] == "/"
                let beforeSlash = end < chars.count && chars[end] == "/"
                if atStart && atEnd {
                    regex += ".*"
                } else if atStart && beforeSlash {
                    regex += "(?:.*/)?"
                    end += 1
                } else if afterSlash && atEnd {
                    regex.removeLast()
                    regex += "(?:/.*)?"
                } else if afterSlash && beforeSlash {
                    regex.removeLast()
                    regex += "/(?:.*/)?"
                    end += 1
                } else {
                    regex += ".*"
                }
            }
            i = end
            continue
        case "?":
            regex += "[^/]"
        case "[":
            let close = chars[(i + 1)...].firstIndex(of: "]") ?? chars.count
            var body = String(chars[(i + 1)..<close])
            if body.hasPrefix("!") { body = "^/" + body.dropFirst() }
            regex += "[" + body + "]"
            i = close + 1
            continue
        case "/":
            regex += "/"
        default:
            regex += NSRegularExpression.escapedPattern(for: String(c))
        }
        i += 1
    }
    return "^" + regex + "$"
}

@Suite("Glob differential")
struct GlobDifferentialTests {
    @Test("random globs agree with a regular-expression reference")
    func agreesWithReference() throws {
        var rng = SplitMix64(state: 0xA6E7_6A7E)
        let atoms = ["a", "b", "/", "*", "**", "?", "[ab]", "[!a]"]
        var checked = 0
        var matched = 0
        for round in 0..<1500 {
            // Long patterns (beyond 64 NFA states) in some rounds exercise the multi-word matcher.
            let length = round % 10 == 0 ? Int.random(in: 30...60, using: &rng) : Int.random(in: 1...8, using: &rng)
            var pieces: [String] = []
            for _ in 0..<length { pieces.append(atoms.randomElement(using: &rng) ?? "a") }
            let pattern = pieces.joined()
            // Adjacent stars would merge into a different token; "**/**" is normalised; skip both.
            if pattern.contains("***") || pattern.contains("**/**") { continue }
            let glob = try Glob(pattern)
            let regex = try NSRegularExpression(pattern: referenceRegex(for: pattern), options: [.dotMatchesLineSeparators])
            for _ in 0..<12 {
                var target = ""
                // Mostly instantiate the pattern (to get matches), sometimes random strings.
                if Bool.random(using: &rng) {
                    for piece in pieces {
                        switch piece {
                        case "*": target += String((0..<Int.random(in: 0...3, using: &rng)).map { _ in "ab".randomElement(using: &rng) ?? "a" })
                        case "**": target += String((0..<Int.random(in: 0...4, using: &rng)).map { _ in "ab/".randomElement(using: &rng) ?? "a" })
                        case "?", "[ab]": target += "ab".randomElement(using: &rng).map(String.init) ?? "a"
                        case "[!a]": target += "b"
                        default: target += piece
                        }
                    }
                } else {
                    target = String((0..<Int.random(in: 0...10, using: &rng)).map { _ in "ab/".randomElement(using: &rng) ?? "a" })
                }
                let range = NSRange(target.startIndex..., in: target)
                let expected = regex.firstMatch(in: target, range: range) != nil
                #expect(glob.matches(target) == expected, "pattern \(pattern) target \(target)")
                checked += 1
                if expected { matched += 1 }
            }
        }
        #expect(checked > 10_000)
        #expect(matched > checked / 10)
    }
}
