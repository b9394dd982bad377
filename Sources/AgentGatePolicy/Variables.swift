/// Values substituted for `$PWD` and `$HOME` when a policy loads.
public struct PolicyVariables: Sendable, Equatable {
    /// The agent's working directory (absolute).
    public var workingDirectory: String
    /// The user's home directory (absolute).
    public var home: String

    public init(workingDirectory: String, home: String) {
        self.workingDirectory = workingDirectory
        self.home = home
    }
}

/// A variable reference that cannot be expanded.
struct ExpansionError: Error {
    /// 0-based offset, in Unicode scalars, of the `$` within the source text.
    var scalarOffset: Int
    var message: String
}

/// The result of expanding `$PWD`/`$HOME` in a policy string.
struct Expansion {
    var text: String
    /// For each UTF-8 byte of `text` (plus one past the end): the 0-based Unicode-scalar offset in
    /// the source it came from, so errors found later point at the source column.
    var sourceScalarOffsets: [Int]
}

extension PolicyVariables {
    /// Expands `$PWD`, `$HOME`, `${PWD}`, `${HOME}` and `$$`. Values are cleaned lexically (so a
    /// trailing `/` in `$HOME` cannot break `$HOME/.ssh/**`); with `escapeGlob` their glob
    /// metacharacters are escaped so a directory named `a*b` is matched literally.
    func expand(_ source: String, escapeGlob: Bool) throws(ExpansionError) -> Expansion {
        var text = ""
        var offsets: [Int] = []
        let scalars = Array(source.unicodeScalars)
        var index = 0

        func append(_ string: String, from sourceOffset: Int) {
            text += string
            offsets += [Int](repeating: sourceOffset, count: string.utf8.count)
        }

        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "$" else {
                append(String(scalar), from: index)
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
            switch name {
            case "PWD": value = workingDirectory
            case "HOME": value = home
            default:
                throw ExpansionError(
                    scalarOffset: dollar,
                    message: "unknown variable $\(name); expected $PWD or $HOME (write $$ for a literal '$')")
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

    private static func isNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "_" || ("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    static func globEscaped(_ text: String) -> String {
        var result = ""
        for character in text.unicodeScalars {
            if "*?[]\\".unicodeScalars.contains(character) { result.unicodeScalars.append("\\") }
            result.unicodeScalars.append(character)
        }
        return result
    }
}
