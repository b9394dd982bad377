import AgentGateStore
@testable import AgentGateSupervisor
import CSupport
import Foundation
import Glibc
import Testing

// README stays true: every command it shows is run and its output compared with what README
// says it prints.
//
// How README is read:
// - ```console blocks: a line `$ COMMAND` is a command; the lines after it, up to the next `$ `
//   line or the block's end, are what it prints (standard output and standard error together,
//   as on a terminal). In those lines `...` alone stands for any number of lines, and `…`
//   inside a line for any text (times, pids, hashes, counts).
// - A session's short id is written as 8 hex digits (`1f2e3d4c`). The first time an expected
//   line has one, it stands for the id printed at that place; later commands and lines of the
//   same section mean that same id (so `agentgate show 1f2e3d4c` shows the session just run).
// - Each `## ` section runs in a fresh home directory of its own, /home/dev as README shows
//   it, with the working directory ~/project (each console block starts there; each command
//   starts where the previous one of its block ended, and `$?` is that command's status), a
//   copy of this repository's policies/ at ~/agentgate/policies, and this build's binaries
//   first on PATH. Blocks of a section share its home: the audit database, files written.
// - ```yaml blocks: one whose first line is `# file: NAME` is written to ~/project/NAME for
//   the commands after it (and some command must use it); one whose first line starts with
//   `# fragment` is only an excerpt; any other must load, as a policy (`agentgate check`) or,
//   with `cases:`, as a case file whose cases all pass (`agentgate policy test`).
// - ```sh blocks are not run: each command in them must be one of `notRun`. ```text blocks
//   hold messages and synopses, never commands. Other blocks are an error.
@Suite(.serialized) struct ReadmeTests {
    static let repository = TestRepository.root
    static let binDirectory = URL(fileURLWithPath: Harness.supervisor).deletingLastPathComponent().path

    /// README's commands that are not run as written, and why; `instead` is run in their place
    /// (in a console block) and must print what README shows.
    static let notRun: [String: (reason: String, instead: String?)] = [
        "make demo": ("it installs packages with apt-get and builds first; the demo it then runs is "
                      + "scripts/demo.sh on this build, which is run instead",
                      #""$AGENTGATE_README_REPOSITORY/scripts/demo.sh" "$AGENTGATE_README_BIN""#),
        "make test": ("it runs this test suite (CI runs it through .ci/run)", nil),
        "agentgate-supervise -- bash": ("an interactive shell; interactiveShellIsSupervised runs it with commands on its "
                                        + "standard input instead", nil),
        #"export PATH="$PWD/.build/release:$PATH""#: ("the test puts this build's binaries first on PATH itself", nil),
        "sudo sysctl kernel.yama.ptrace_scope=1": ("changes a setting of the whole host", nil),
        "agentgate serve": ("a server that runs until stopped; AgentGateServerTests run it and talk to it", nil),
        "curl -s http://127.0.0.1:9100/api/v1/sessions": ("needs a running agentgate serve; AgentGateServerTests do this", nil),
        #"curl -s -X POST -H "Authorization: Bearer $(agentgate token)" http://127.0.0.1:9100/api/v1/approvals/7tsv6/approve"#:
            ("needs a running agentgate serve and a pending ask; AgentGateServerTests do this", nil),
    ]

    // MARK: - The commands

    @Test func everyCommandPrintsWhatReadmeShows() throws {
        let readme = try Readme.load()
        for section in readme.sections where section.blocks.contains(where: { $0.language == "console" }) {
            let sandbox = try ReadmeSandbox()
            defer { sandbox.remove() }
            var bindings: [String: String] = [:]
            for block in section.blocks {
                if block.language == "yaml", let name = block.fileName {
                    try (block.lines.joined(separator: "\n") + "\n").write(toFile: sandbox.project + "/" + name,
                                                                          atomically: false, encoding: .utf8)
                }
                guard block.language == "console" else { continue }
                let commands: [Readme.Command]
                do { commands = try block.commands() } catch {
                    Issue.record("README.md:\(block.line): \(error)")
                    continue
                }
                var cwd = sandbox.project
                var status: Int32 = 0
                for command in commands {
                    var text = command.text
                    if let exception = Self.notRun[text] {
                        guard let instead = exception.instead else { continue }
                        text = instead
                    }
                    text = ReadmeOutputPattern.substitute(bindings, in: text)
                    let result = sandbox.run(text, in: cwd, previousStatus: status)
                    cwd = result.cwd
                    status = result.status
                    let actual = sandbox.normalize(result.output)
                    if let bound = ReadmeOutputPattern.match(command.expected, actual, bindings: bindings) {
                        bindings = bound
                    } else {
                        Issue.record("""
                            README.md:\(command.line): `\(command.text)` (exit \(result.status)) printed:
                            \(actual.joined(separator: "\n"))
                            README shows:
                            \(command.expected.joined(separator: "\n"))
                            """)
                    }
                }
            }
        }
    }

    /// README's `agentgate-supervise -- bash`, with the commands typed on its standard input.
    @Test func interactiveShellIsSupervised() throws {
        let sandbox = try ReadmeSandbox()
        defer { sandbox.remove() }
        let result = sandbox.run(#"printf '%s\n' 'echo "in bash: $((6 * 7))"' 'cat ~/.ssh/id_rsa' 'exit 3' | agentgate-supervise -- bash"#,
                                 in: sandbox.project, previousStatus: 0)
        let lines = sandbox.normalize(result.output)
        #expect(result.status == 3, "\(lines)")
        #expect(lines.contains("in bash: 42"), "\(lines)")
        #expect(lines.contains("cat: /home/dev/.ssh/id_rsa: Permission denied"), "\(lines)")
        #expect(ReadmeOutputPattern.match(["...", "agentgate-supervise: session 1f2e3d4c ended (exit 3): … allowed, 1 denied, 0 asked — agentgate show 1f2e3d4c"],
                                    lines, bindings: [:]) != nil, "\(lines)")
    }

    // MARK: - The blocks

    @Test func everyBlockIsRunOrAccountedFor() throws {
        let readme = try Readme.load()
        for block in readme.blocks {
            switch block.language {
            case "console":
                do {
                    let commands = try block.commands()
                    #expect(!commands.isEmpty, "README.md:\(block.line): a console block without a `$ ` command")
                } catch {
                    Issue.record("README.md:\(block.line): \(error)")
                }
            case "sh":
                for (offset, line) in block.lines.enumerated() {
                    let command = Readme.withoutComment(line)
                    guard !command.isEmpty else { continue }
                    #expect(Self.notRun[command] != nil, """
                        README.md:\(block.line + 1 + offset): `\(command)` is in a sh block, which is not run: show it in a \
                        console block with its output, or add it to ReadmeTests.notRun with the reason
                        """)
                }
            case "text":
                for (offset, line) in block.lines.enumerated() where line.hasPrefix("$ ") {
                    Issue.record("README.md:\(block.line + 1 + offset): a command in a text block; use a console block")
                }
            case "yaml":
                break
            default:
                Issue.record("README.md:\(block.line): a ```\(block.language) block; README uses console, sh, yaml and text blocks")
            }
        }
    }

    @Test func yamlBlocksLoad() throws {
        let readme = try Readme.load()
        let sandbox = try ReadmeSandbox()
        defer { sandbox.remove() }
        for section in readme.sections {
            for (index, block) in section.blocks.enumerated() where block.language == "yaml" {
                if let name = block.fileName {
                    let used = section.blocks[(index + 1)...].contains { later in
                        later.language == "console" && ((try? later.commands()) ?? []).contains { $0.text.contains(name) }
                    }
                    #expect(used, "README.md:\(block.line): \(name) is written for the commands after it, but none uses it")
                    continue
                }
                if block.lines.first(where: { !$0.isEmpty })?.hasPrefix("# fragment") == true { continue }
                let isCaseFile = block.lines.contains { $0.hasPrefix("cases:") }
                let file = sandbox.policies + (isCaseFile ? "/tests" : "") + "/readme-\(block.line).yaml"
                try (block.lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
                let command = isCaseFile ? "agentgate policy test \(file)" : "agentgate check --policy \(file) -- true"
                let result = sandbox.run(command, in: sandbox.project, previousStatus: 0)
                let loaded = isCaseFile ? result.status == 0 : result.status != 2
                #expect(loaded, "README.md:\(block.line): `\(command)` (exit \(result.status)):\n\(result.output)")
            }
        }
    }

    // MARK: - Completeness

    /// Every option the binaries know is described where README describes the command.
    @Test func everyOptionIsDocumented() throws {
        let readme = try Readme.load()
        let commands: [(help: [String], heading: String)] = [
            (["agentgate-supervise"], "agentgate-supervise"),
            (["agentgate", "check"], "agentgate check"),
            (["agentgate", "policy", "test"], "agentgate policy test"),
            (["agentgate", "policy", "lint"], "agentgate policy lint"),
            (["agentgate", "init"], "agentgate init"),
            (["agentgate", "sessions"], "agentgate sessions"),
            (["agentgate", "audit", "list"], "agentgate sessions"),
            (["agentgate", "audit", "verify"], "agentgate sessions"),
            (["agentgate", "show"], "agentgate sessions"),
            (["agentgate", "export"], "agentgate sessions"),
            (["agentgate", "clean"], "agentgate sessions"),
            (["agentgate", "syscalls"], "agentgate syscalls"),
        ]
        let sandbox = try ReadmeSandbox()
        defer { sandbox.remove() }
        for (help, heading) in commands {
            let result = sandbox.run((help + ["--help"]).joined(separator: " "), in: sandbox.project, previousStatus: 0)
            #expect(result.status == 0, "\(help) --help: \(result.output)")
            let options = Set(result.output.split(separator: "\n").compactMap { line -> String? in
                guard let match = line.firstMatch(of: #/^  (?:-\w, )?(--[a-z][a-z-]*)/#) else { return nil }
                return String(match.1)
            }).subtracting(["--help", "--version"])
            #expect(!options.isEmpty, "\(help) --help lists no options:\n\(result.output)")
            guard let text = readme.subsection(containing: heading) else {
                Issue.record("README has no ### heading with \(heading) under Commands")
                continue
            }
            for option in options.sorted() {
                #expect(text.contains(option), "README's `\(heading)` section doesn't describe \(help.joined(separator: " ")) \(option)")
            }
        }
    }

    /// Each step at which starting CMD can fail has an entry in Troubleshooting, with the
    /// message as the supervisor prints it.
    @Test func everyStartFailureIsInTroubleshooting() throws {
        let readme = try Readme.load()
        let troubleshooting = try #require(readme.sections.first { $0.title == "Troubleshooting" }).text
        let stages = [AGENTGATE_SPAWN_PIPE, AGENTGATE_SPAWN_FORK, AGENTGATE_SPAWN_NO_NEW_PRIVS, AGENTGATE_SPAWN_SECCOMP,
                      AGENTGATE_SPAWN_PIDFD, AGENTGATE_SPAWN_GETFD, AGENTGATE_SPAWN_HANDSHAKE, AGENTGATE_SPAWN_CGROUP,
                      AGENTGATE_SPAWN_LIMITS]
        for stage in stages {
            let message = "agentgate-supervise: " + SupervisorError.spawnFailure(stage: Int32(stage.rawValue), result: -EPERM).message
            #expect(troubleshooting.contains(message), "Troubleshooting has no entry for: \(message)")
        }
    }

    /// Relative links in README and docs/ name files that exist (and headings that exist).
    @Test func linksResolve() throws {
        let docs = try FileManager.default.contentsOfDirectory(atPath: Self.repository + "/docs")
            .filter { $0.hasSuffix(".md") }.map { "docs/" + $0 }
        for document in ["README.md"] + docs {
            let text = try String(contentsOfFile: Self.repository + "/" + document, encoding: .utf8)
            let directory = URL(fileURLWithPath: Self.repository + "/" + document).deletingLastPathComponent()
            for match in text.matches(of: #/\]\(([^)\s]+)\)/#) {
                let link = String(match.1)
                if link.hasPrefix("http://") || link.hasPrefix("https://") || link.hasPrefix("mailto:") { continue }
                let parts = link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let target = parts[0].isEmpty ? URL(fileURLWithPath: Self.repository + "/" + document)
                    : directory.appendingPathComponent(parts[0]).standardized
                #expect(FileManager.default.fileExists(atPath: target.path), "\(document): \(link) names no file")
                if parts.count == 2, target.pathExtension == "md", let linked = try? String(contentsOf: target, encoding: .utf8) {
                    let anchors = Set(linked.split(separator: "\n").filter { $0.hasPrefix("#") }.map { Readme.anchor(String($0)) })
                    #expect(anchors.contains(parts[1]), "\(document): \(link) names no heading of \(parts[0].isEmpty ? document : parts[0])")
                }
            }
        }
    }
}

// MARK: - Reading README

struct Readme {
    struct Block {
        let section: String
        let language: String
        let lines: [String]
        /// The line of the opening fence (1-based).
        let line: Int

        /// `# file: NAME` on the first line.
        var fileName: String? {
            guard let first = lines.first, first.hasPrefix("# file: ") else { return nil }
            return String(first.dropFirst("# file: ".count)).trimmingCharacters(in: .whitespaces)
        }

        /// A console block's commands, each with the lines it prints.
        func commands() throws -> [Command] {
            var commands: [Command] = []
            for (offset, line) in lines.enumerated() {
                if line.hasPrefix("$ ") {
                    commands.append(Command(text: String(line.dropFirst(2)), expected: [], line: self.line + 1 + offset))
                } else if commands.isEmpty {
                    throw ReadmeError("a console block must start with a `$ ` command, not \"\(line)\"")
                } else {
                    commands[commands.count - 1].expected.append(line)
                }
            }
            return commands
        }
    }

    struct Command {
        let text: String
        var expected: [String]
        let line: Int
    }

    struct Section {
        let title: String
        var blocks: [Block] = []
        var text = ""
    }

    let text: String
    let sections: [Section]
    var blocks: [Block] { sections.flatMap(\.blocks) }

    static func load() throws -> Readme {
        try Readme(text: String(contentsOfFile: ReadmeTests.repository + "/README.md", encoding: .utf8))
    }

    init(text: String) throws {
        self.text = text
        var sections = [Section(title: "")]
        var fence: (indent: Int, language: String, line: Int, lines: [String])?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).enumerated() {
            let trimmed = line.drop { $0 == " " }
            let indent = line.count - trimmed.count
            if var open = fence {
                if trimmed.hasPrefix("```") && trimmed.allSatisfy({ $0 == "`" }) {
                    sections[sections.count - 1].blocks.append(
                        Block(section: sections[sections.count - 1].title, language: open.language, lines: open.lines, line: open.line))
                    fence = nil
                } else {
                    open.lines.append(String(line.dropFirst(min(open.indent, indent))))
                    fence = open
                }
            } else if trimmed.hasPrefix("```") {
                fence = (indent, String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces), index + 1, [])
            } else if line.hasPrefix("## ") {
                sections.append(Section(title: String(line.dropFirst(3))))
            }
            sections[sections.count - 1].text += line + "\n"
        }
        if let fence { throw ReadmeError("README.md:\(fence.line): the block is never closed") }
        self.sections = sections
    }

    /// The text under the `###` heading that contains `title`, up to the next heading of its
    /// level or above.
    func subsection(containing title: String) -> String? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("### ") && $0.contains(title) }) else { return nil }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") || $0.hasPrefix("### ") } ?? lines.endIndex
        return lines[start..<end].joined(separator: "\n")
    }

    /// A sh block's line without its `# comment`.
    static func withoutComment(_ line: String) -> String {
        var text = line
        if let match = text.firstMatch(of: #/(^|\s)#\s.*$/#) { text.removeSubrange(match.range) }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to `-`.
    static func anchor(_ heading: String) -> String {
        let title = heading.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces).lowercased()
        return String(title.unicodeScalars.compactMap { scalar -> Character? in
            if scalar == " " { return "-" }
            if scalar == "-" || scalar == "_" || CharacterSet.alphanumerics.contains(scalar) { return Character(scalar) }
            return nil
        })
    }
}

struct ReadmeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Expected output

enum ReadmeOutputPattern {
    /// A session's short id as README writes it: 8 hex digits, at least one a letter and one a digit.
    static let idExpression = try! NSRegularExpression(pattern: "(?<![0-9A-Za-z])[0-9a-f]{8}(?![0-9A-Za-z])")

    static func ids(in text: String) -> [(range: Range<String.Index>, id: String)] {
        idExpression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            guard let range = Range(match.range, in: text) else { return nil }
            let id = String(text[range])
            guard id.contains(where: \.isNumber), id.contains(where: \.isLetter) else { return nil }
            return (range, id)
        }
    }

    /// `text` with every bound id replaced by the id it stands for.
    static func substitute(_ bindings: [String: String], in text: String) -> String {
        var result = text
        for (range, id) in ids(in: text).reversed() {
            if let actual = bindings[id] { result.replaceSubrange(range, with: actual) }
        }
        return result
    }

    /// The bindings extended by what `actual` matched, or nil when it doesn't match `expected`.
    static func match(_ expected: [String], _ actual: [String], bindings: [String: String]) -> [String: String]? {
        func match(_ e: Int, _ a: Int, _ bindings: [String: String]) -> [String: String]? {
            if e == expected.count { return a == actual.count ? bindings : nil }
            if expected[e].trimmingCharacters(in: .whitespaces) == "..." {
                for next in a...actual.count {
                    if let result = match(e + 1, next, bindings) { return result }
                }
                return nil
            }
            guard a < actual.count, let bound = matchLine(expected[e], actual[a], bindings) else { return nil }
            return match(e + 1, a + 1, bound)
        }
        return match(0, 0, bindings)
    }

    static func matchLine(_ expected: String, _ actual: String, _ bindings: [String: String]) -> [String: String]? {
        let expected = trimmedRight(expected)
        var pattern = "^"
        var captured: [String] = []
        for (index, piece) in expected.components(separatedBy: "…").enumerated() {
            if index > 0 { pattern += ".*?" }
            var rest = piece[...]
            for (range, id) in ids(in: piece) {
                pattern += NSRegularExpression.escapedPattern(for: String(piece[rest.startIndex..<range.lowerBound]))
                if let value = bindings[id] {
                    pattern += NSRegularExpression.escapedPattern(for: value)
                } else if captured.contains(id) {
                    pattern += "\\k<id\(id)>"
                } else {
                    pattern += "(?<id\(id)>[0-9a-f]{8})"
                    captured.append(id)
                }
                rest = piece[range.upperBound...]
            }
            pattern += NSRegularExpression.escapedPattern(for: String(rest))
        }
        pattern += "$"
        guard let expression = try? NSRegularExpression(pattern: pattern),
              let match = expression.firstMatch(in: actual, range: NSRange(actual.startIndex..., in: actual)) else { return nil }
        var result = bindings
        for id in captured {
            if let range = Range(match.range(withName: "id\(id)"), in: actual) { result[id] = String(actual[range]) }
        }
        return result
    }

    static func trimmedRight(_ line: String) -> String {
        String(line.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

// MARK: - Where README's commands run

/// A home directory of README's own: /home/dev as README shows it.
final class ReadmeSandbox {
    let base: String
    let home: String
    let project: String
    let temporary: String
    var policies: String { home + "/agentgate/policies" }

    init() throws {
        base = "/tmp/agentgate-readme-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        home = base + "/home/dev"
        project = home + "/project"
        // Not above the home directory, so that $TMPDIR/** doesn't also match ~/… as it would
        // for a home in /tmp.
        temporary = base + "/tmp"
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: project, withIntermediateDirectories: true)
            try files.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            // A developer's key, as README's examples assume (without one, cat says ENOENT).
            try files.createDirectory(atPath: home + "/.ssh", withIntermediateDirectories: true)
            try Data("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n".utf8)
                .write(to: URL(fileURLWithPath: home + "/.ssh/id_rsa"))
            chmod(home + "/.ssh/id_rsa", 0o600)
            try Self.copy(ReadmeTests.repository + "/policies", to: home + "/agentgate/policies")
        } catch {
            try? files.removeItem(atPath: base)
            throw error
        }
    }

    /// Copies a directory's files as this user (FileManager's copy would keep their owner,
    /// which an ordinary user can't).
    static func copy(_ source: String, to destination: String) throws {
        let files = FileManager.default
        try files.createDirectory(atPath: destination, withIntermediateDirectories: true)
        for name in try files.contentsOfDirectory(atPath: source) {
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: source + "/" + name, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                try copy(source + "/" + name, to: destination + "/" + name)
            } else {
                try Data(contentsOf: URL(fileURLWithPath: source + "/" + name))
                    .write(to: URL(fileURLWithPath: destination + "/" + name))
            }
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: base)
    }

    var environment: [String: String] {
        [
            "PATH": ReadmeTests.binDirectory + ":/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": temporary,
            "LANG": "C.UTF-8",
            "AGENTGATE_README_REPOSITORY": ReadmeTests.repository,
            "AGENTGATE_README_BIN": ReadmeTests.binDirectory,
        ]
    }

    /// Runs `command` with `sh -c` in `cwd`, `$?` starting as `previousStatus`; returns what it
    /// printed on standard output and standard error together, its status, and the directory it
    /// ended in.
    func run(_ command: String, in cwd: String, previousStatus: Int32, timeout: Double = 120) -> (output: String, status: Int32, cwd: String) {
        let state = base + "/.cwd"
        let script = """
            cd \(ReadmeShellWord.quote(cwd)) || exit 99
            (exit \(previousStatus))
            \(command)
            agentgate_readme_status=$?
            pwd > \(ReadmeShellWord.quote(state))
            exit $agentgate_readme_status
            """
        try? FileManager.default.removeItem(atPath: state)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return ("\(error)", -1, cwd) }
        nonisolated(unsafe) var data = Data()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            data = pipe.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            done.wait()
        }
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        // scripts/demo.sh leaves its workspace in /tmp for the user to look at.
        for match in output.matches(of: #/(/tmp/agentgate-demo\.[A-Za-z0-9]+)/#) {
            try? FileManager.default.removeItem(atPath: String(match.1))
        }
        let ended = (try? String(contentsOfFile: state, encoding: .utf8))?.trimmingCharacters(in: .newlines)
        return (output, process.terminationStatus, ended.flatMap { $0.isEmpty ? nil : $0 } ?? cwd)
    }

    /// The lines as README shows them: this home as /home/dev, its temporary directory as /tmp.
    func normalize(_ output: String) -> [String] {
        var text = output
        for (path, shown) in [(home, "/home/dev"), (temporary, "/tmp")] {
            text = text.replacingOccurrences(of: FilePaths.resolved(path), with: shown)
            text = text.replacingOccurrences(of: path, with: shown)
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { ReadmeOutputPattern.trimmedRight(String($0)) }
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}

enum ReadmeShellWord {
    static func quote(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
