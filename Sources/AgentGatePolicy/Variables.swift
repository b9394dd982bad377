/// Values substituted for variables when a policy loads: `$PWD`, `$HOME`, `$TMPDIR`, `$AGENT`
/// and `${env:NAME}`. A variable without a value is an error, never an empty string.
public struct PolicyVariables: Sendable, Equatable {
    /// Resolves a clean absolute directory the way the kernel will name what lies in it
    /// (realpath, for the part that exists). This module makes no file-system calls, so the
    /// caller supplies it; `Resolver.lexical` leaves paths as written.
    public struct Resolver: Sendable {
        public let resolve: @Sendable (String) -> String

        public init(_ resolve: @escaping @Sendable (String) -> String) {
            self.resolve = resolve
        }

        /// Paths stay as written (case files, tests, policies judged away from their machine).
        public static let lexical = Resolver { $0 }
    }

    /// The agent's working directory (absolute).
    public var workingDirectory: String
    /// The user's home directory (absolute).
    public var home: String
    /// The temporary directory (absolute): `$TMPDIR` of the environment, else `/tmp`.
    public var temporaryDirectory: String
    /// The agent's name (as recorded with the session); nil when unknown.
    public var agent: String?
    /// The environment `${env:NAME}` reads.
    public var environment: [String: String]
    /// Resolves `scope:` directories when the policy loads, as `$PWD` and `$HOME` are resolved
    /// before they are given here: targets are decided as the kernel resolved them, so a scope
    /// that is (or lies under) a symlink must be compared in resolved form too.
    public var scopeResolver: Resolver

    public init(workingDirectory: String, home: String, temporaryDirectory: String = "/tmp",
                agent: String? = nil, environment: [String: String] = [:], scopeResolver: Resolver = .lexical) {
        self.workingDirectory = workingDirectory
        self.home = home
        self.temporaryDirectory = temporaryDirectory
        self.agent = agent
        self.environment = environment
        self.scopeResolver = scopeResolver
    }

    /// The values compared; the resolver is not.
    public static func == (a: PolicyVariables, b: PolicyVariables) -> Bool {
        a.workingDirectory == b.workingDirectory && a.home == b.home && a.temporaryDirectory == b.temporaryDirectory
            && a.agent == b.agent && a.environment == b.environment
    }

    /// The names `$NAME` accepts.
    public static let names = ["PWD", "HOME", "TMPDIR", "AGENT"]
}

/// A variable reference that cannot be expanded.
struct ExpansionError: Error {
    /// 0-based offset, in Unicode scalars, of the `$` within the source text.
    var scalarOffset: Int
    var message: String
    /// The reference names a variable that has no value (as opposed to malformed syntax).
    var unknownVariable = false
}

/// The result of expanding `$PWD`/`$HOME` in a policy string.
struct Expansion {
    var text: String
    /// The offsets, or nil when `text` is the source unchanged (most patterns name no variable:
    /// their offsets are made only when an error needs them).
    private var offsets: [Int]?

    init(text: String, sourceScalarOffsets: [Int]) {
        self.text = text
        offsets = sourceScalarOffsets
    }

    /// The source as it is.
    init(unchanged source: String) {
        text = source
        offsets = nil
    }

    /// For each UTF-8 byte of `text` (plus one past the end): the 0-based Unicode-scalar offset in
    /// the source it came from, so errors found later point at the source column.
    var sourceScalarOffsets: [Int] {
        if let offsets { return offsets }
        var identity: [Int] = []
        identity.reserveCapacity(text.utf8.count + 1)
        var scalarIndex = 0
        for scalar in text.unicodeScalars {
            for _ in 0..<UTF8.width(scalar) { identity.append(scalarIndex) }
            scalarIndex += 1
        }
        identity.append(scalarIndex)
        return identity
    }
}

extension PolicyVariables {
    /// Expands `$PWD`, `$HOME`, `${PWD}`, `${HOME}` and `$$`. Values are cleaned lexically (so a
    /// trailing `/` in `$HOME` cannot break `$HOME/.ssh/**`); with `escapeGlob` their glob
    /// metacharacters are escaped so a directory named `a*b` is matched literally.
    func expand(_ source: String, escapeGlob: Bool) throws(ExpansionError) -> Expansion {
        // Most patterns name no variable: the text as it is, each byte mapped to its scalar.
        if !source.utf8.contains(UInt8(ascii: "$")) { return Expansion(unchanged: source) }
        var text = ""
        var offsets: [Int] = []
        let scalars = Array(source.unicodeScalars)
        text.reserveCapacity(source.utf8.count + 64)
        offsets.reserveCapacity(source.utf8.count + 65)
        var index = 0

        func append(_ string: String, from sourceOffset: Int) {
            text += string
            for _ in 0..<string.utf8.count { offsets.append(sourceOffset) }
        }

        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "$" else {
                // Scalar by scalar, without a String for each.
                text.unicodeScalars.append(scalar)
                for _ in 0..<UTF8.width(scalar) { offsets.append(index) }
                index += 1
                continue
            }
            let dollar = index
            var name = ""
            var next = index + 1
            if next < scalars.count, scalars[next] == "$" {
                append("$", from: dollar)
                index = next + 1
                continue
            }
            if next < scalars.count, scalars[next] == "{" {
                next += 1
                while next < scalars.count, scalars[next] != "}" {
                    name.unicodeScalars.append(scalars[next])
                    next += 1
                }
                guard next < scalars.count else {
                    throw ExpansionError(scalarOffset: dollar, message: "unterminated \"${\"; expected \"}\"")
                }
                next += 1
            } else {
                while next < scalars.count, Self.isNameScalar(scalars[next]) {
                    name.unicodeScalars.append(scalars[next])
                    next += 1
                }
                if name.isEmpty {
                    throw ExpansionError(
                        scalarOffset: dollar,
                        message: "'$' must start a variable ($PWD, $HOME); write $$ for a literal '$'")
                }
            }
            let value: String
            var isPath = true
            switch name {
            case "PWD": value = workingDirectory
            case "HOME": value = home
            case "TMPDIR": value = temporaryDirectory
            case "AGENT":
                guard let agent else {
                    throw ExpansionError(scalarOffset: dollar, message: "$AGENT has no value here (no agent name is known)",
                                         unknownVariable: true)
                }
                value = agent
                isPath = false
            case _ where name.hasPrefix("env:"):
                let variable = String(name.dropFirst(4))
                guard !variable.isEmpty else {
                    throw ExpansionError(scalarOffset: dollar, message: "${env:} needs a variable name, as in ${env:CARGO_HOME}")
                }
                guard let environmentValue = environment[variable] else {
                    throw ExpansionError(scalarOffset: dollar, message: "environment variable \(variable) is not set",
                                         unknownVariable: true)
                }
                value = environmentValue
                isPath = value.hasPrefix("/")
            default:
                throw ExpansionError(
                    scalarOffset: dollar,
                    message: "unknown variable $\(name); expected $PWD, $HOME, $TMPDIR, $AGENT or ${env:NAME} "
                        + "(write $$ for a literal '$')",
                    unknownVariable: true)
            }
            guard isPath else {
                append(escapeGlob ? Self.globEscaped(value) : value, from: dollar)
                index = next
                continue
            }
            guard value.hasPrefix("/") else {
                throw ExpansionError(
                    scalarOffset: dollar,
                    message: "$\(name) is \"\(value)\", which is not an absolute path")
            }
            var cleaned = PathLexical.clean(value)
            // "/" followed by "/..." would give "//...", which no clean target matches.
            if cleaned == "/", next < scalars.count, scalars[next] == "/" { cleaned = "" }
            append(escapeGlob ? Self.globEscaped(cleaned) : cleaned, from: dollar)
            index = next
        }
        offsets.append(scalars.count)
        return Expansion(text: text, sourceScalarOffsets: offsets)
    }

    static func isNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "_" || ("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    package static func globEscaped(_ text: String) -> String {
        var result = ""
        for character in text.unicodeScalars {
            if "*?[]{}\\".unicodeScalars.contains(character) { result.unicodeScalars.append("\\") }
            result.unicodeScalars.append(character)
        }
        return result
    }
}
