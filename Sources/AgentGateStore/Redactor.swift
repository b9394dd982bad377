/// Removes secrets from what the audit trail stores: argv, session commands, environments,
/// event targets, executables and intents. Pure and allocation-free when there is nothing to
/// redact. One value is redacted alike wherever it appears (`redact(commandText:)` takes from
/// an intent line what `redact(argv:)` takes from the argv it quotes).
///
/// The writer and the store apply it before anything reaches SQLite or the fallback file.
/// Redacted values become `[REDACTED]`; a recognised token keeps its prefix, so a reader can
/// still tell what it was (`ghp_[REDACTED]`).
///
/// What is redacted (see docs/audit-schema.md, "Redaction"):
/// - tokens by their shape: `sk-…` (OpenAI, `sk-ant-…` Anthropic, `sk-proj-…`), `sk_live_…`,
///   GitHub `ghp_ gho_ ghs_ ghu_ ghr_ github_pat_`, AWS `AKIA…`/`ASIA…`, Slack `xox[bpaers]-…`,
///   GitLab `glpat-…`, Google `AIza…`, npm `npm_…`, Hugging Face `hf_…`, PyPI `pypi-…`, JWTs
///   (`eyJ….eyJ….…`), each only from a word boundary and with a minimum length, so
///   `sk-learn` or `task-skim` survive;
/// - `Bearer X` anywhere; header lines `Authorization: …`, `Cookie: …`, `X-Api-Key: …` and any
///   `NAME: value` whose NAME is sensitive; JSON members `"password": "…"`;
/// - `NAME=value` whose NAME is sensitive (`--token=x`, `?access_token=x`, `DB_PASSWORD=x`);
/// - passwords in URLs (`https://user:[REDACTED]@host`);
/// - PEM private key bodies;
/// - in argv: the value after a sensitive flag (`--password x`, `--token x`), after `-H`/
///   `--header` with a sensitive header, and curl's `-u user:password`; in shell strings and
///   intent lines, the value after a sensitive flag and curl's `-u`.
///
/// Sensitive names (`isSensitiveName`) are split into words at `_ - .` and compared
/// case-insensitively: a word containing TOKEN, SECRET, PASSWORD, PASSWD, PASSPHRASE or
/// CREDENTIAL; the word KEY/KEYS or a word ending in KEY/KEYS (APIKEY); PASS; AUTH, a word
/// starting with AUTH but not AUTHOR (AUTHTOKEN), starting with AUTHORIZ/AUTHORIS, or ending
/// in AUTH (OAUTH); COOKIE. So `KEYBOARD`, `GIT_AUTHOR_NAME`, `XAUTHORITY`, `PATH`, `HOME` and
/// `PWD` survive. A name whose last word is FILE, PATH, DIR, SOCK or SOCKET names a location,
/// not a secret, and is kept (`SSH_AUTH_SOCK`, `--token-file`).
public enum Redactor {
    /// What a secret is replaced with.
    public static let marker = "[REDACTED]"
    private static let markerBytes = Array(marker.utf8)

    // MARK: - Names

    /// Whether a variable, flag, header or key name denotes a secret (see the type's doc).
    public static func isSensitiveName(_ name: some StringProtocol) -> Bool {
        nameClass(Array(name.utf8)) == .sensitive
    }

    private enum NameClass { case plain, sensitive }

    /// Classifies an ASCII name. Leading dashes (flags) are ignored.
    private static func nameClass(_ bytes: [UInt8]) -> NameClass {
        var words: [[UInt8]] = []
        var current: [UInt8] = []
        for byte in bytes {
            if isAlphanumeric(byte) {
                current.append(byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte)
            } else if !current.isEmpty {
                words.append(current)
                current.removeAll(keepingCapacity: true)
            }
        }
        if !current.isEmpty { words.append(current) }
        guard let last = words.last else { return .plain }
        if locationWords.contains(last) { return .plain }
        for word in words where isSensitiveWord(word) { return .sensitive }
        return .plain
    }

    private static let locationWords: Set<[UInt8]> = Set(["FILE", "PATH", "DIR", "SOCK", "SOCKET"].map { Array($0.utf8) })
    private static let containedStems: [[UInt8]] = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL"].map { Array($0.utf8) }

    private static func isSensitiveWord(_ word: [UInt8]) -> Bool {
        for stem in containedStems where contains(word, stem) { return true }
        if hasSuffix(word, "KEY") || hasSuffix(word, "KEYS") { return true }
        if equals(word, "PASS") || equals(word, "COOKIE") { return true }
        if hasPrefix(word, "AUTHORIZ") || hasPrefix(word, "AUTHORIS") { return true }
        if hasPrefix(word, "AUTH") && !hasPrefix(word, "AUTHOR") { return true }
        if hasSuffix(word, "AUTH") { return true }
        return false
    }

    // MARK: - Environment

    /// The environment with sensitive variables dropped (by name) and token-looking values
    /// redacted.
    public static func redact(environment: [String: String]) -> [String: String] {
        var result: [String: String] = [:]
        result.reserveCapacity(environment.count)
        for (name, value) in environment where !isSensitiveName(name) {
            result[name] = redact(text: value)
        }
        return result
    }

    /// The same for `NAME=value` strings (as in `environ`); entries without `=` are kept whole
    /// after text redaction.
    public static func redact(environmentEntries: [String]) -> [String] {
        environmentEntries.compactMap { entry in
            guard let equals = entry.firstIndex(of: "=") else { return redact(text: entry) }
            let name = entry[..<equals]
            if isSensitiveName(name) { return nil }
            return String(name) + "=" + redact(text: String(entry[entry.index(after: equals)...]))
        }
    }

    // MARK: - argv

    /// argv with secrets removed: text redaction of every argument, plus the values that
    /// follow sensitive flags (see the type's doc).
    public static func redact(argv: [String]) -> [String] {
        guard !argv.isEmpty else { return argv }
        // Copied only when something changes.
        var result = argv
        func set(_ index: Int, _ value: String) {
            if value != argv[index] { result[index] = value }
        }
        let isCurl = argv[0] == "curl" || argv[0].hasSuffix("/curl")
        var index = 0
        while index < argv.count {
            let argument = argv[index]
            if index + 1 < argv.count, argument.utf8.first == UInt8(ascii: "-"), !argument.utf8.contains(UInt8(ascii: "=")) {
                let next = argv[index + 1]
                if isCurl && curlUserFlags.contains(argument) {
                    set(index + 1, redactUserPassword(next))
                    index += 2
                    continue
                }
                if headerFlags.contains(argument) {
                    set(index + 1, redactHeaderArgument(next))
                    index += 2
                    continue
                }
                if flagTakesSecret(argument), !next.hasPrefix("--") {
                    if !next.isEmpty { set(index + 1, marker) }
                    index += 2
                    continue
                }
            }
            // A shell string (`sh -c "mysql --password x"`) quotes a command: its flags count too.
            set(index, argument.utf8.contains(UInt8(ascii: " ")) ? redact(commandText: argument) : redact(text: argument))
            index += 1
        }
        return result
    }

    /// Text that quotes command lines (an intent line, a `sh -c` string, a process tree line):
    /// text redaction, and what `redact(argv:)` takes from the same words standing as
    /// arguments: the value after a sensitive flag (`--password x`) and after curl's `-u`. So
    /// a field that repeats a command never shows a secret its argv hides. Words are split at
    /// spaces; a quoted value runs to its closing quote.
    public static func redact(commandText: String) -> String {
        let text = redact(text: commandText)
        // Cheap exit: no flag, no space, nothing for the word pass to find.
        guard text.utf8.contains(UInt8(ascii: "-")), text.utf8.contains(UInt8(ascii: " ")) else { return text }
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        var output: [Substring] = []
        output.reserveCapacity(words.count)
        var isCurl = false
        var changed = false
        var index = 0
        while index < words.count {
            let word = words[index]
            let bare = word.trimmingQuotes()
            if bare == "curl" || bare.hasSuffix("/curl") { isCurl = true }
            output.append(word)
            index += 1
            guard index < words.count, bare.utf8.first == UInt8(ascii: "-"), !bare.utf8.contains(UInt8(ascii: "=")) else { continue }
            let isUserFlag = isCurl && curlUserFlags.contains(String(bare))
            guard isUserFlag || (flagTakesSecret(String(bare)) && !words[index].hasPrefix("--")) else { continue }
            let value = quotedValue(words, from: index)
            guard !value.secret.isEmpty else { continue }
            let shown = isUserFlag ? redactUserPassword(String(value.secret)) : marker
            output.append(Substring(value.opening + shown + value.closing))
            index = value.end
            changed = true
        }
        return changed ? output.joined(separator: " ") : text
    }

    /// The value starting at `words[start]`: inside quotes when it opens with one (to the word
    /// that closes them), else up to a shell operator. `closing` keeps the closing quote and
    /// whatever follows it in that word; `end` is the index of the first word after it.
    private static func quotedValue(_ words: [Substring], from start: Int)
        -> (opening: String, secret: String, closing: String, end: Int) {
        let first = words[start]
        if let quote = first.first, quote == "'" || quote == "\"" {
            var parts: [Substring] = []
            var index = start
            var word = first.dropFirst()
            while true {
                if let close = word.firstIndex(of: quote) {
                    parts.append(word[..<close])
                    return (String(quote), parts.joined(separator: " "), String(word[close...]), index + 1)
                }
                parts.append(word)
                index += 1
                // No closing quote: the secret runs to the end.
                guard index < words.count else { return (String(quote), parts.joined(separator: " "), "", index) }
                word = words[index]
            }
        }
        let operators: Set<Character> = [";", "|", "&", ")", "<", ">", "`"]
        let end = first.firstIndex(where: { operators.contains($0) }) ?? first.endIndex
        return ("", String(first[..<end]), String(first[end...]), start + 1)
    }

    private static let curlUserFlags: Set<String> = ["-u", "--user", "-U", "--proxy-user"]
    private static let headerFlags: Set<String> = ["-H", "--header", "--proxy-header"]

    /// Whether a flag without `=value` is followed by a secret (`--password x`).
    private static func flagTakesSecret(_ flag: String) -> Bool {
        let bytes = Array(flag.utf8)
        // Only flags: "-x" short flags are too ambiguous (-p is a port as often as a password).
        guard bytes.count > 2, bytes[0] == UInt8(ascii: "-") else { return false }
        let upper = flag.uppercased()
        let words = upper.split(whereSeparator: { !$0.isLetter && !$0.isNumber })
        if words.first == "NO" { return false }
        if let last = words.last, ["STDIN", "FD", "ENV", "CMD", "COMMAND", "HELPER", "PROMPT"].contains(String(last)) {
            return false
        }
        return nameClass(bytes) == .sensitive
    }

    /// "user:password" → "user:[REDACTED]"; text without a colon is text-redacted.
    private static func redactUserPassword(_ value: String) -> String {
        guard let colon = value.firstIndex(of: ":") else { return redact(text: value) }
        return String(value[...colon]) + marker
    }

    /// A header argument: `Name: value` with a sensitive or known header name keeps the name.
    private static func redactHeaderArgument(_ value: String) -> String {
        guard let colon = value.firstIndex(of: ":") else { return redact(text: value) }
        let name = value[..<colon].trimmingSpaces()
        guard isSensitiveHeaderName(Array(name.utf8)) else { return redact(text: value) }
        let rest = value[value.index(after: colon)...]
        if rest.allSatisfy({ $0 == " " }) { return value }
        return String(value[...colon]) + " " + marker
    }

    private static let knownHeaders: Set<[UInt8]> = Set(
        ["AUTHORIZATION", "PROXY-AUTHORIZATION", "COOKIE", "SET-COOKIE", "X-API-KEY", "API-KEY", "APIKEY",
         "X-AUTH-TOKEN", "PRIVATE-TOKEN", "X-GOOG-API-KEY", "X-AMZ-SECURITY-TOKEN", "X-ACCESS-TOKEN",
         "X-VAULT-TOKEN", "X-CSRF-TOKEN"].map { Array($0.utf8) })

    private static func isSensitiveHeaderName(_ name: [UInt8]) -> Bool {
        knownHeaders.contains(name.map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 }) || nameClass(name) == .sensitive
    }

    // MARK: - Text

    /// `text` with every secret it contains replaced (see the type's doc). Returns `text`
    /// itself, without copying, when nothing matched.
    public static func redact(text: String) -> String {
        var text = text
        let replacements: [Replacement] = text.withUTF8 { findSecrets(in: $0) }
        guard !replacements.isEmpty else { return text }
        return text.withUTF8 { bytes in
            var output: [UInt8] = []
            output.reserveCapacity(bytes.count)
            var position = 0
            for replacement in replacements {
                output.append(contentsOf: bytes[position..<replacement.start])
                output.append(contentsOf: replacement.keep)
                output.append(contentsOf: markerBytes)
                position = replacement.end
            }
            output.append(contentsOf: bytes[position..<bytes.count])
            return String(decoding: output, as: UTF8.self)
        }
    }

    /// Whether `text` contains anything `redact(text:)` would replace.
    public static func containsSecret(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { !findSecrets(in: $0).isEmpty }
    }

    /// Bytes `start..<end` become `keep` + marker.
    private struct Replacement {
        var start: Int
        var end: Int
        var keep: [UInt8] = []
    }

    private struct TokenShape: Sendable {
        let prefix: [UInt8]
        let minimumBody: Int
        /// nil: any length at or above the minimum.
        let exactBody: Int?
        let allowed: @Sendable (UInt8) -> Bool
    }

    private static let tokenShapes: [TokenShape] = {
        let alnum: @Sendable (UInt8) -> Bool = { isAlphanumeric($0) }
        let word: @Sendable (UInt8) -> Bool = { isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        let upperAlnum: @Sendable (UInt8) -> Bool = { ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) }
        let alnumDash: @Sendable (UInt8) -> Bool = { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        func shape(_ prefix: String, _ minimum: Int, exact: Int? = nil, _ allowed: @escaping @Sendable (UInt8) -> Bool) -> TokenShape {
            TokenShape(prefix: Array(prefix.utf8), minimumBody: minimum, exactBody: exact, allowed: allowed)
        }
        return [
            shape("sk-ant-", 16, word), shape("sk-proj-", 16, word), shape("sk-", 20, word),
            shape("sk_live_", 16, alnum), shape("sk_test_", 16, alnum), shape("rk_live_", 16, alnum),
            shape("github_pat_", 20, word),
            shape("ghp_", 20, alnum), shape("gho_", 20, alnum), shape("ghs_", 20, alnum),
            shape("ghu_", 20, alnum), shape("ghr_", 20, alnum),
            shape("glpat-", 20, word),
            shape("xoxb-", 10, alnumDash), shape("xoxp-", 10, alnumDash), shape("xoxa-", 10, alnumDash),
            shape("xoxe-", 10, alnumDash), shape("xoxr-", 10, alnumDash), shape("xoxs-", 10, alnumDash),
            shape("AKIA", 16, exact: 16, upperAlnum), shape("ASIA", 16, exact: 16, upperAlnum),
            shape("AIza", 35, exact: 35, word),
            shape("npm_", 36, alnum), shape("hf_", 30, alnum), shape("pypi-", 50, word),
        ]
    }()

    /// Bytes that can start a token prefix: a quick filter before trying the shapes.
    private static let tokenStarts: Set<UInt8> = Set(tokenShapes.map { $0.prefix[0] } + [UInt8(ascii: "e")])

    private static func findSecrets(in bytes: UnsafeBufferPointer<UInt8>) -> [Replacement] {
        var replacements: [Replacement] = []
        let count = bytes.count
        var index = 0
        while index < count {
            let byte = bytes[index]
            let atBoundary = index == 0 || !isAlphanumeric(bytes[index - 1])
            var found: Replacement?
            switch byte {
            case UInt8(ascii: ":"):
                if index + 2 < count, bytes[index + 1] == UInt8(ascii: "/"), bytes[index + 2] == UInt8(ascii: "/") {
                    found = urlPassword(bytes, schemeColon: index)
                    if found == nil { index += 3; continue }
                } else {
                    found = colonValue(bytes, colon: index)
                }
            case UInt8(ascii: "="):
                found = assignmentValue(bytes, equals: index)
            case UInt8(ascii: "-"):
                if atBoundary || bytes[index - 1] == UInt8(ascii: "-") { found = privateKeyBody(bytes, at: index) }
            case UInt8(ascii: "b"), UInt8(ascii: "B"):
                if atBoundary { found = bearerToken(bytes, at: index) }
            default:
                break
            }
            if found == nil, atBoundary, tokenStarts.contains(byte) {
                found = token(bytes, at: index)
            }
            if let replacement = found {
                // Replacements only reach forward; drop one that overlaps the previous.
                if let last = replacements.last, replacement.start < last.end {
                    index += 1
                    continue
                }
                replacements.append(replacement)
                index = max(replacement.end, index + 1)
                continue
            }
            index += 1
        }
        return replacements
    }

    /// A token by prefix and shape, starting at `index` (a word boundary).
    private static func token(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Replacement? {
        if bytes[index] == UInt8(ascii: "e") { return jwt(bytes, at: index) }
        for shape in tokenShapes where matches(bytes, at: index, shape.prefix) {
            let bodyStart = index + shape.prefix.count
            var end = bodyStart
            while end < bytes.count, shape.allowed(bytes[end]) { end += 1 }
            let length = end - bodyStart
            if let exact = shape.exactBody {
                guard length == exact, end == bytes.count || !isAlphanumeric(bytes[end]) else { continue }
            } else if length < shape.minimumBody {
                continue
            }
            return Replacement(start: index, end: end, keep: shape.prefix)
        }
        return nil
    }

    /// `eyJ<header>.<payload>.<signature>`: base64url parts of at least 10, 10 and 0 bytes.
    private static func jwt(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Replacement? {
        guard matches(bytes, at: index, Array("eyJ".utf8)) else { return nil }
        var end = index
        var parts = [0]
        while end < bytes.count {
            let byte = bytes[end]
            if isBase64URL(byte) {
                parts[parts.count - 1] += 1
            } else if byte == UInt8(ascii: "."), parts.count < 3 {
                parts.append(0)
            } else {
                break
            }
            end += 1
        }
        guard parts.count == 3, parts[0] >= 10, parts[1] >= 10 else { return nil }
        return Replacement(start: index, end: end, keep: Array("eyJ".utf8))
    }

    /// `scheme://user:password@host` → the password.
    private static func urlPassword(_ bytes: UnsafeBufferPointer<UInt8>, schemeColon: Int) -> Replacement? {
        guard schemeColon > 0, isLetter(bytes[schemeColon - 1]) else { return nil }
        let authorityStart = schemeColon + 3
        var end = authorityStart
        var lastAt: Int?
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") || isSpace(byte)
                || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") || byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") {
                break
            }
            if byte == UInt8(ascii: "@") { lastAt = end }
            end += 1
        }
        guard let at = lastAt else { return nil }
        var colon = authorityStart
        while colon < at, bytes[colon] != UInt8(ascii: ":") { colon += 1 }
        guard colon < at, colon + 1 < at else { return nil }
        return Replacement(start: colon + 1, end: at)
    }

    /// `Name: value` (a sensitive header or key) and JSON `"name": "value"`.
    private static func colonValue(_ bytes: UnsafeBufferPointer<UInt8>, colon: Int) -> Replacement? {
        // JSON member: the key is quoted.
        var back = colon
        while back > 0, bytes[back - 1] == UInt8(ascii: " ") { back -= 1 }
        if back > 0, bytes[back - 1] == UInt8(ascii: "\"") {
            let keyEnd = back - 1
            var keyStart = keyEnd
            while keyStart > 0, bytes[keyStart - 1] != UInt8(ascii: "\"") { keyStart -= 1 }
            guard keyStart > 0, keyEnd - keyStart <= 64 else { return nil }
            guard nameClass(Array(bytes[keyStart..<keyEnd])) == .sensitive else { return nil }
            var valueStart = colon + 1
            while valueStart < bytes.count, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
            guard valueStart < bytes.count else { return nil }
            if bytes[valueStart] == UInt8(ascii: "\"") {
                var end = valueStart + 1
                while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                    end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
                }
                end = min(end, bytes.count)
                guard end > valueStart + 1 else { return nil }
                return Replacement(start: valueStart + 1, end: end)
            }
            var end = valueStart
            while end < bytes.count, !isSpace(bytes[end]), bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: "}") { end += 1 }
            return end > valueStart ? Replacement(start: valueStart, end: end) : nil
        }
        // Header-like: an unquoted name right before the colon.
        var nameStart = colon
        while nameStart > 0, isHeaderNameByte(bytes[nameStart - 1]) { nameStart -= 1 }
        guard nameStart < colon, colon - nameStart <= 64 else { return nil }
        let name = Array(bytes[nameStart..<colon])
        let followedBySpace = colon + 1 < bytes.count && bytes[colon + 1] == UInt8(ascii: " ")
        let known = knownHeaders.contains(name.map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 })
        guard known || (followedBySpace && nameClass(name) == .sensitive) else { return nil }
        var valueStart = colon + 1
        while valueStart < bytes.count, bytes[valueStart] == UInt8(ascii: " ") || bytes[valueStart] == UInt8(ascii: "\t") { valueStart += 1 }
        var end = valueStart
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") { break }
            end += 1
        }
        guard end > valueStart else { return nil }
        return Replacement(start: valueStart, end: end)
    }

    /// `NAME=value` with a sensitive NAME → the value (quoted values to the closing quote).
    private static func assignmentValue(_ bytes: UnsafeBufferPointer<UInt8>, equals: Int) -> Replacement? {
        var nameStart = equals
        while nameStart > 0, isAssignmentNameByte(bytes[nameStart - 1]) { nameStart -= 1 }
        guard nameStart < equals, equals - nameStart <= 128 else { return nil }
        guard nameClass(Array(bytes[nameStart..<equals])) == .sensitive else { return nil }
        let valueStart = equals + 1
        guard valueStart < bytes.count else { return nil }
        let first = bytes[valueStart]
        if first == UInt8(ascii: "\"") || first == UInt8(ascii: "'") {
            var end = valueStart + 1
            while end < bytes.count, bytes[end] != first { end += 1 }
            guard end > valueStart + 1 else { return nil }
            return Replacement(start: valueStart + 1, end: end)
        }
        var end = valueStart
        while end < bytes.count {
            let byte = bytes[end]
            if isSpace(byte) || byte == UInt8(ascii: "&") || byte == UInt8(ascii: ";") || byte == UInt8(ascii: ",")
                || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") || byte == UInt8(ascii: ")") {
                break
            }
            end += 1
        }
        guard end > valueStart else { return nil }
        // "Authorization=Bearer x": the scheme word alone is not the secret; take the token too.
        let value = Array(bytes[valueStart..<end]).map { $0 | 0x20 }
        if value == Array("bearer".utf8) || value == Array("basic".utf8) || value == Array("token".utf8) {
            var tokenEnd = end
            while tokenEnd < bytes.count, bytes[tokenEnd] == UInt8(ascii: " ") { tokenEnd += 1 }
            let tokenStart = tokenEnd
            while tokenEnd < bytes.count, !isSpace(bytes[tokenEnd]), bytes[tokenEnd] != UInt8(ascii: "\""), bytes[tokenEnd] != UInt8(ascii: "'") { tokenEnd += 1 }
            if tokenEnd > tokenStart { end = tokenEnd }
        }
        return Replacement(start: valueStart, end: end)
    }

    /// `Bearer <token>` (any case) → the token.
    private static func bearerToken(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Replacement? {
        let word = Array("bearer".utf8)
        guard index + word.count < bytes.count else { return nil }
        for offset in 0..<word.count where bytes[index + offset] | 0x20 != word[offset] { return nil }
        var start = index + word.count
        guard bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") else { return nil }
        while start < bytes.count, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
        var end = start
        while end < bytes.count, isBearerByte(bytes[end]) { end += 1 }
        guard end - start >= 8 else { return nil }
        return Replacement(start: start, end: end)
    }

    /// `-----BEGIN … PRIVATE KEY-----` … `-----END` → the body.
    private static func privateKeyBody(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Replacement? {
        let begin = Array("-----BEGIN ".utf8)
        guard matches(bytes, at: index, begin) else { return nil }
        var headerEnd = index + begin.count
        while headerEnd < bytes.count, !matches(bytes, at: headerEnd, Array("-----".utf8)), bytes[headerEnd] != UInt8(ascii: "\n") {
            headerEnd += 1
        }
        guard headerEnd < bytes.count, matches(bytes, at: headerEnd, Array("-----".utf8)) else { return nil }
        let label = Array(bytes[(index + begin.count)..<headerEnd])
        guard contains(label, "PRIVATE KEY") else { return nil }
        let bodyStart = headerEnd + 5
        var end = bodyStart
        while end < bytes.count, !matches(bytes, at: end, Array("-----END".utf8)) { end += 1 }
        guard end > bodyStart else { return nil }
        return Replacement(start: bodyStart, end: end)
    }

    // MARK: - Byte helpers

    @inline(__always) private static func isLetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7a
    }

    @inline(__always) private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLetter(byte) || (byte >= 0x30 && byte <= 0x39)
    }

    @inline(__always) private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d
    }

    @inline(__always) private static func isBase64URL(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    @inline(__always) private static func isBearerByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "~") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
    }

    @inline(__always) private static func isHeaderNameByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    @inline(__always) private static func isAssignmentNameByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    private static func matches(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, _ prefix: [UInt8]) -> Bool {
        guard index + prefix.count <= bytes.count else { return false }
        for offset in 0..<prefix.count where bytes[index + offset] != prefix[offset] { return false }
        return true
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) {
            var equal = true
            for offset in 0..<needle.count where haystack[start + offset] != needle[offset] {
                equal = false
                break
            }
            if equal { return true }
        }
        return false
    }

    private static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        contains(haystack, Array(needle.utf8))
    }

    private static func hasPrefix(_ word: [UInt8], _ prefix: String) -> Bool {
        let bytes = Array(prefix.utf8)
        return word.count >= bytes.count && Array(word[0..<bytes.count]) == bytes
    }

    private static func hasSuffix(_ word: [UInt8], _ suffix: String) -> Bool {
        let bytes = Array(suffix.utf8)
        return word.count >= bytes.count && Array(word[(word.count - bytes.count)...]) == bytes
    }

    private static func equals(_ word: [UInt8], _ text: String) -> Bool {
        word == Array(text.utf8)
    }
}

extension Substring {
    fileprivate func trimmingQuotes() -> Substring {
        var result = self
        while let first = result.first, first == "'" || first == "\"" { result.removeFirst() }
        while let last = result.last, last == "'" || last == "\"" { result.removeLast() }
        return result
    }

    fileprivate func trimmingSpaces() -> Substring {
        var result = self
        while result.first == " " { result.removeFirst() }
        while result.last == " " { result.removeLast() }
        return result
    }
}
