import Testing
@testable import AgentGatePolicy

private func glob(_ pattern: String) throws -> Glob { try Glob(pattern) }

@Suite("Glob")
struct GlobTests {
    @Test("literal patterns match exactly")
    func literal() throws {
        let g = try glob("/etc/passwd")
        #expect(g.isLiteral)
        #expect(g.matches("/etc/passwd"))
        #expect(!g.matches("/etc/passwd2"))
        #expect(!g.matches("/etc/passw"))
        #expect(!g.matches("/etc/passwd/"))
        #expect(!g.matches(""))
    }

    @Test("* matches within one segment only")
    func starWithinSegment() throws {
        let g = try glob("/src/*.c")
        #expect(g.matches("/src/a.c"))
        #expect(g.matches("/src/.c"))
        #expect(!g.matches("/src/sub/a.c"))
        #expect(!g.matches("/src/a.h"))
        let middle = try glob("/a/*/c")
        #expect(middle.matches("/a/b/c"))
        #expect(middle.matches("/a//c"))
        #expect(!middle.matches("/a/b/x/c"))
        let bare = try glob("*")
        #expect(bare.matches("anything"))
        #expect(bare.matches(""))
        #expect(!bare.matches("a/b"))
        let infix = try glob("*install*")
        #expect(infix.matches("npm-install-helper"))
        #expect(infix.matches("install"))
        #expect(!infix.matches("/usr/bin/install"))
    }

    @Test("? matches one character, never a slash, and a whole UTF-8 character")
    func questionMark() throws {
        let g = try glob("/a/?.txt")
        #expect(g.matches("/a/x.txt"))
        #expect(!g.matches("/a/xy.txt"))
        #expect(!g.matches("/a/.txt"))
        #expect(!g.matches("/a//.txt"))
        #expect(g.matches("/a/é.txt"))
        #expect(g.matches("/a/😀.txt"))
        #expect(!(try glob("a?b")).matches("a/b"))
    }

    @Test("character classes: sets, ranges, negation with ^ and !, literal dash")
    func classes() throws {
        let g = try glob("/v[0-9][a-cx].log")
        #expect(g.matches("/v1a.log"))
        #expect(g.matches("/v9x.log"))
        #expect(!g.matches("/v1d.log"))
        #expect(!g.matches("/vAa.log"))
        for pattern in ["f[^0-9]", "f[!0-9]"] {
            let negated = try glob(pattern)
            #expect(negated.matches("fa"))
            #expect(negated.matches("fé"))
            #expect(!negated.matches("f5"))
            #expect(!negated.matches("f/"))
            #expect(!negated.matches("f"))
        }
        let dashes = try glob("[-a][b-]")
        #expect(dashes.matches("-b"))
        #expect(dashes.matches("a-"))
        #expect(!dashes.matches("ab0"))
        let escaped = try glob("[\\]\\-]")
        #expect(escaped.matches("]"))
        #expect(escaped.matches("-"))
        #expect(!escaped.matches("\\"))
    }

    @Test("backslash escapes metacharacters")
    func escapes() throws {
        let g = try glob("/a\\*b\\?\\[c\\]")
        #expect(g.isLiteral)
        #expect(g.matches("/a*b?[c]"))
        #expect(!g.matches("/axb?[c]"))
        #expect(try glob("\\\\").matches("\\"))
    }

    @Test("** at the end matches the directory itself and everything below")
    func doubleStarAtEnd() throws {
        let g = try glob("/home/u/proj/**")
        #expect(g.matches("/home/u/proj"))
        #expect(g.matches("/home/u/proj/a.c"))
        #expect(g.matches("/home/u/proj/src/deep/er/x.swift"))
        #expect(!g.matches("/home/u/project"))
        #expect(!g.matches("/home/u/proj2/a"))
        #expect(!g.matches("/home/u"))
        #expect(try glob("/**").matches("/anything/at/all"))
        #expect(try glob("**").matches("a/b/c"))
        #expect(try glob("**").matches(""))
    }

    @Test("** at the start matches at any depth")
    func doubleStarAtStart() throws {
        let g = try glob("**/foo")
        #expect(g.matches("foo"))
        #expect(g.matches("/foo"))
        #expect(g.matches("/a/b/foo"))
        #expect(g.matches("a/foo"))
        #expect(!g.matches("/a/xfoo"))
        #expect(!g.matches("/a/foo/bar"))
        let ext = try glob("**/*.pem")
        #expect(ext.matches("/etc/ssl/private/key.pem"))
        #expect(!ext.matches("/etc/ssl/private/key.pem.bak"))
    }

    @Test("** in the middle matches zero or more whole segments")
    func doubleStarInMiddle() throws {
        let g = try glob("/a/**/b")
        #expect(g.matches("/a/b"))
        #expect(g.matches("/a/x/b"))
        #expect(g.matches("/a/x/y/z/b"))
        #expect(!g.matches("/a/xb"))
        #expect(!g.matches("/ab"))
        #expect(!g.matches("/a/x/b/c"))
        let nested = try glob("/a/**/node_modules/**/*.js")
        #expect(nested.matches("/a/node_modules/x.js"))
        #expect(nested.matches("/a/p/node_modules/q/r/x.js"))
        #expect(!nested.matches("/a/p/node_modules/q/r/x.ts"))
        // Repeated ** segments mean the same as one.
        #expect(try glob("/a/**/**/b").matches("/a/b"))
        #expect(try glob("/a/**/**").matches("/a"))
    }

    @Test("** that is not a whole segment spans slashes")
    func doubleStarInsideSegment() throws {
        let g = try glob("/proj/**.env")
        #expect(g.matches("/proj/.env"))
        #expect(g.matches("/proj/a/b/prod.env"))
        #expect(!g.matches("/proj/.env.backup/passwd"))
        #expect(try glob("a**b").matches("a/x/b"))
    }

    @Test("case-insensitive globs fold ASCII letters")
    func caseInsensitive() throws {
        let g = try Glob("*.Example.COM", caseInsensitive: true)
        #expect(g.matches("api.example.com"))
        #expect(g.matches("API.EXAMPLE.COM"))
        #expect(!(try Glob("*.Example.COM")).matches("api.example.com"))
        #expect(try Glob("[a-c]x", caseInsensitive: true).matches("Bx"))
    }

    // The limit only ends a hang (exponential backtracking would never finish); the check is
    // the 5 s measured below. Its clock starts before the test gets a thread: with both of the
    // pool's threads blocked by supervisor tests waiting on children, it once waited 191 s.
    @Test("pathological backtracking patterns finish quickly", .timeLimit(.minutes(10)))
    func noExponentialBlowUp() throws {
        let target = String(repeating: "a", count: 4000)
        let deepTarget = "/" + Array(repeating: "a", count: 1500).joined(separator: "/")
        // More than 64 NFA states takes the multi-word path.
        let long = String(repeating: "*a", count: 40)
        let failing = try ["*a*a*a*a*a*a*a*a*a*a*a*a*b", "**a**a**a**a**a**a**a**a**b", long + "*b"].map(glob)
        let deepFailing = try glob("/**/a/**/a/**/a/**/a/**/b")
        let succeeding = try ["*a*a*a*a*a*a*a*a*a*a*a*a*a", long].map(glob)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for g in failing { #expect(!g.matches(target), "\(g.pattern)") }
            #expect(!deepFailing.matches(deepTarget))
            for g in succeeding { #expect(g.matches(target), "\(g.pattern)") }
        }
        #expect(elapsed < .seconds(5))
    }

    @Test("patterns with more than 64 states match correctly")
    func multiWord() throws {
        let pattern = "/x/" + String(repeating: "?", count: 70) + "*/end"
        let g = try glob(pattern)
        #expect(g.matches("/x/" + String(repeating: "k", count: 70) + "/end"))
        #expect(g.matches("/x/" + String(repeating: "k", count: 75) + "/end"))
        #expect(!g.matches("/x/" + String(repeating: "k", count: 69) + "/end"))
        #expect(!g.matches("/x/" + String(repeating: "k", count: 70) + "/a/end"))
    }

    @Test("malformed patterns are errors with the byte offset", arguments: [
        ("/a/[b", 3, "unterminated character class"),
        ("/a/[]", 4, "empty character class"),
        ("/a/b\\", 4, "unfinished escape"),
        ("[a-b-c]", 4, "'-'"),
        ("[z-a]", 1, "out of order"),
        ("[é]", 1, "non-ASCII"),
        ("[a\\", 2, "unfinished escape"),
    ])
    func malformed(pattern: String, offset: Int, fragment: String) {
        do {
            _ = try Glob(pattern)
            Issue.record("expected \(pattern) to be rejected")
        } catch {
            #expect(error.utf8Offset == offset)
            #expect(error.message.contains(fragment), "\(error.message)")
            #expect(error.pattern == pattern)
        }
    }
}

/// Text globs made only of literals and stars (`curl * | *sh`) are matched by finding each
/// literal run leftmost in turn, not by an automaton: checked against a plain dynamic program.
@Suite("Glob literal runs")
struct GlobLiteralRunTests {
    /// Whether `text` matches `pattern`, where `*` is any run and every other byte is itself.
    static func reference(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var row = [Bool](repeating: false, count: text.count + 1)
        row[0] = true
        for p in pattern {
            var next = [Bool](repeating: false, count: text.count + 1)
            if p == UInt8(ascii: "*") {
                var any = false
                for i in 0...text.count { any = any || row[i]; next[i] = any }
            } else {
                for i in 0..<text.count where row[i] && text[i] == p { next[i + 1] = true }
            }
            row = next
        }
        return row[text.count]
    }

    @Test func starsAndLiteralsAgreeWithTheReference() throws {
        var seed: UInt64 = 0x5eed
        func next(_ bound: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(bound))
        }
        let alphabet = Array("ab|*".utf8)
        for _ in 0..<4000 {
            let pattern = (0..<next(9)).map { _ in alphabet[next(alphabet.count)] }
            let glob = try Glob(String(decoding: pattern, as: UTF8.self), caseInsensitive: false, syntax: .text)
            for _ in 0..<12 {
                let text = (0..<next(12)).map { _ in Array("ab|".utf8)[next(3)] }
                let expected = Self.reference(pattern, text)
                #expect(glob.matches(String(decoding: text, as: UTF8.self)) == expected,
                        "\(String(decoding: pattern, as: UTF8.self)) vs \(String(decoding: text, as: UTF8.self))")
            }
        }
        let folded = try Glob("*CURL*|*SH*", caseInsensitive: true, syntax: .text)
        #expect(folded.matches("x curl -s u | bash") && !folded.matches("curl u > sh"))
        let pipe = try Glob("curl * | *sh", caseInsensitive: false, syntax: .text)
        #expect(pipe.matches("curl -fsSL https://x | sh") && pipe.matches("curl a | b | zsh") && !pipe.matches("curl a|sh"))
    }
}

@Suite("Lexical paths")
struct PathLexicalTests {
    @Test("clean follows Go filepath.Clean", arguments: [
        ("/a//b/./c/", "/a/b/c"), ("/a/b/../c", "/a/c"), ("/../a", "/a"), ("/", "/"),
        ("//", "/"), ("/a/..", "/"), ("a/../..", ".."), ("", "."), ("/a/b/../../..", "/"),
    ])
    func clean(input: String, expected: String) {
        #expect(PathLexical.clean(input) == expected)
    }

    @Test("isWithin compares on clean paths")
    func within() {
        func check(_ scope: String, _ path: String) -> Bool {
            var path = path
            let scope = Array(scope.utf8)
            return scope.withUnsafeBufferPointer { scope in
                path.withUTF8 { PathLexical.isWithin(scope: scope, path: $0) }
            }
        }
        #expect(check("/p", "/p"))
        #expect(check("/p", "/p/a"))
        #expect(!check("/p", "/pa"))
        #expect(!check("/p", "/p/../q"))
        #expect(check("/p", "/p/./a//b/"))
        #expect(check("/p", "/q/../p/x"))
        #expect(!check("/p", "relative/p"))
        #expect(check("/", "/anything"))
    }
}

/// The fast paths that return their input unchanged give exactly what the full work gives.
@Suite("Lexical and display fast paths")
struct FastPathEquivalenceTests {
    /// The general algorithm, as `PathLexical.clean` runs it when the fast path doesn't apply.
    static func referenceClean(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                if let last = parts.last, last != ".." { parts.removeLast() } else if !absolute { parts.append(part) }
                continue
            }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    @Test("clean: random paths over / . and a letter")
    func cleanMatchesReference() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        let alphabet: [Character] = ["/", "/", ".", "a", "b"]
        for _ in 0..<5_000 {
            let path = String((0..<next(12)).map { _ in alphabet[next(alphabet.count)] })
            if path.isEmpty { continue }
            #expect(PathLexical.clean(path) == Self.referenceClean(path), "\(path)")
        }
    }

    @Test("display: unchanged text is exactly the printable, single-spaced ASCII within the limit")
    func displayFastPath() {
        let cases = ["", "true", "ls -la /tmp", " leading", "trailing ", "two  spaces", "tab\there", "é", "a\u{7F}b",
                     "\u{202E}x", String(repeating: "x", count: 200), String(repeating: "x", count: 201), "a b c d"]
        for text in cases {
            let ready = IntentText.isDisplayReady(text, limit: IntentText.detailLimit)
            if ready { #expect(IntentText.display(text) == text, "\(text)") }
            // Where the fast path doesn't apply, the slow one runs: whatever it returns for a text
            // that would be unchanged, the fast path must have said so.
            if IntentText.display(text) == text && text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
                #expect(ready, "\(text)")
            }
        }
        #expect(IntentText.display("trailing ") == "trailing")
        #expect(IntentText.display(String(repeating: "x", count: 201)).hasSuffix("…"))
    }
}
