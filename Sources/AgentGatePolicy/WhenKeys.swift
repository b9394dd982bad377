import Yams

/// The keys a rule's `when:` may test, in one table: the spelling here, how a policy's value is
/// read (`PolicyParser.whenTest`), how it is tested (`WhenTest.holds`), and which process facts
/// it needs (`facts`, which case files and `agentgate check` supply). A new key is one case here
/// plus its reading and its test.
enum WhenKey: String, CaseIterable {
    case caps, uid, gid, cgroup, exe, ancestor, agent

    /// The spellings, for messages: "caps, uid, gid, cgroup, exe, ancestor, agent".
    static let spellings = allCases.map(\.rawValue).joined(separator: ", ")

    /// The process facts the key tests, by their case-file spelling.
    var facts: [ProcessFact] {
        switch self {
        case .caps: [.caps, .permittedCaps]
        case .uid: [.uid]
        case .gid: [.gid]
        case .cgroup: [.cgroup]
        case .exe: [.exe]
        case .ancestor: [.exe, .commands, .ancestors]
        case .agent: [.agent]
        }
    }
}

/// A rule's compiled `when:` condition. Every key given must hold.
struct RuleCondition: Sendable {
    var tests: [WhenTest] = []

    func matches(_ context: ProcessContext) -> Bool {
        tests.allSatisfy { $0.holds(for: context) }
    }
}

/// One `when:` key as compiled.
enum WhenTest: Sendable {
    enum CapabilityTest: Sendable {
        case any, all, none
    }

    /// An `ancestor:` pattern: as a path glob over executables and as a text glob over command lines.
    struct AncestorPattern: Sendable {
        var program: Glob
        var line: Glob
    }

    case capabilities(CapabilityTest, mask: UInt64, permittedSet: Bool)
    case uid([UInt32])
    case gid([UInt32])
    case cgroup([Glob])
    case executable([Glob])
    case ancestor([AncestorPattern])
    case agent([Glob])

    func holds(for context: ProcessContext) -> Bool {
        switch self {
        case .capabilities(let test, let mask, let permittedSet):
            let held = (permittedSet ? context.permittedCapabilities : context.effectiveCapabilities) & mask
            switch test {
            case .any: return held != 0
            case .all: return held == mask
            case .none: return held == 0
            }
        case .uid(let ids):
            return ids.contains(context.uid)
        case .gid(let ids):
            return ids.contains(context.gid)
        case .cgroup(let globs):
            return globs.contains { $0.matches(context.cgroup) }
        case .executable(let globs):
            return globs.contains { Self.matchesProgram($0, context.executable) }
        case .ancestor(let patterns):
            // The process itself (its earlier images) and every process it descends from.
            let images = [ProcessImage(executable: context.executable, commands: context.commands)] + context.ancestors
            return images.contains { image in
                patterns.contains { pattern in
                    Self.matchesProgram(pattern.program, image.executable)
                        || image.commands.contains { command in Self.matchesLine(pattern.line, command) }
                }
            }
        case .agent(let globs):
            return globs.contains { $0.matches(context.agent) }
        }
    }

    /// A path glob against an executable; a glob without `/` also against its basename.
    static func matchesProgram(_ glob: Glob, _ path: String) -> Bool {
        if glob.matches(path) { return true }
        return !glob.pattern.contains("/") && glob.matches(ExecDetails.basename(path))
    }

    /// A text glob against a command line, as written and with the program's basename.
    static func matchesLine(_ glob: Glob, _ words: [String]) -> Bool {
        guard let first = words.first else { return false }
        if glob.matches(CommandAnalysis.line(words)) { return true }
        let base = ExecDetails.basename(first)
        return base != first && glob.matches(CommandAnalysis.line([base] + words.dropFirst()))
    }
}

extension PolicyParser {
    /// `when:`: each key read into its test, with a line for `PolicyRule.conditions`.
    mutating func condition(_ node: Node) throws(PolicyLoadError) -> (RuleCondition, [String]) {
        guard case .mapping(let mapping) = node else {
            throw error(at: node, "expected \"when\" to be a mapping with keys \(WhenKey.spellings); found \(describe(node))")
        }
        var condition = RuleCondition()
        var summary: [String] = []
        for (keyNode, value) in mapping {
            let name = try key(keyNode)
            guard let whenKey = WhenKey(rawValue: name) else {
                throw error(at: keyNode, "unknown key \"\(name)\" in when; expected one of \(WhenKey.spellings)")
            }
            let (test, lines) = try whenTest(whenKey, value)
            if let test { condition.tests.append(test) }
            summary += lines
        }
        return (condition, summary)
    }

    /// One key's value compiled to its test; nil for a glob key given an empty list, which
    /// tests nothing.
    private mutating func whenTest(_ key: WhenKey, _ value: Node) throws(PolicyLoadError) -> (WhenTest?, [String]) {
        switch key {
        case .caps:
            return try capabilityTest(value)
        case .uid, .gid:
            var ids: [UInt32] = []
            for item in try stringList(value, key: key.rawValue, expected: "a number or a list of numbers") {
                guard let id = UInt32(item.text) else {
                    throw error(at: item.node, "expected \(key.rawValue) to be a number; found \"\(item.text)\"")
                }
                ids.append(id)
            }
            let summary = ["\(key.rawValue) in \(ids.map(String.init).joined(separator: ", "))"]
            return (key == .uid ? .uid(ids) : .gid(ids), summary)
        case .cgroup, .exe, .agent:
            let (globs, summary) = try whenGlobs(value, key: key) { parser, text, node throws(PolicyLoadError) in
                key == .agent ? try parser.textGlob(text, node: node, key: key.rawValue)
                    : try parser.pathGlob(text, node: node, key: key.rawValue)
            }
            guard !globs.isEmpty else { return (nil, summary) }
            switch key {
            case .cgroup: return (.cgroup(globs), summary)
            case .exe: return (.executable(globs), summary)
            default: return (.agent(globs), summary)
            }
        case .ancestor:
            let (patterns, summary) = try whenGlobs(value, key: key) { parser, text, node throws(PolicyLoadError) in
                WhenTest.AncestorPattern(program: try parser.pathGlob(text, node: node, key: key.rawValue),
                                         line: try parser.textGlob(text, node: node, key: key.rawValue))
            }
            return (patterns.isEmpty ? nil : .ancestor(patterns), summary)
        }
    }

    /// `caps:`: a list (any of them, effective set) or `{any|all|none: […], set: effective|permitted}`.
    private func capabilityTest(_ value: Node) throws(PolicyLoadError) -> (WhenTest, [String]) {
        var list: [(text: String, node: Node)] = []
        var test = WhenTest.CapabilityTest.any
        var permittedSet = false
        if case .mapping(let capsMap) = value {
            var seenTest = false
            for (capsKey, capsValue) in capsMap {
                switch try key(capsKey) {
                case "any", "all", "none":
                    guard !seenTest else { throw error(at: capsKey, "give only one of any, all, none") }
                    seenTest = true
                    test = try key(capsKey) == "any" ? .any : (try key(capsKey) == "all" ? .all : .none)
                    list = try stringList(capsValue, key: "caps", expected: "a list of capabilities")
                case "set":
                    let set = try string(capsValue, key: "caps.set", expected: "effective or permitted")
                    guard set == "effective" || set == "permitted" else {
                        throw error(at: capsValue, "unknown capability set \"\(set)\"; expected effective or permitted")
                    }
                    permittedSet = set == "permitted"
                case let other:
                    throw error(at: capsKey, "unknown key \"\(other)\" in caps; expected any, all, none, set")
                }
            }
            guard seenTest else { throw error(at: value, "caps needs one of any, all, none") }
        } else {
            list = try stringList(value, key: "caps", expected: "a list of capabilities such as CAP_SYS_ADMIN")
        }
        var mask: UInt64 = 0
        for item in list {
            guard let bit = CapabilityName.number(item.text) else {
                throw error(at: item.node, "unknown capability \"\(item.text)\"; expected a name such as CAP_SYS_ADMIN")
            }
            mask |= 1 << UInt64(bit)
        }
        guard mask != 0 else { throw error(at: value, "caps is an empty list") }
        let summary = "caps \(test) of \(CapabilityName.names(mask).joined(separator: ", "))"
            + (permittedSet ? " (permitted)" : "")
        return (.capabilities(test, mask: mask, permittedSet: permittedSet), [summary])
    }

    /// A glob key's patterns (a glob or a list), variables expanded and `{a,b}` alternated, each
    /// compiled by `compile`; one summary line per pattern as written.
    private mutating func whenGlobs<Compiled>(
        _ value: Node, key: WhenKey,
        _ compile: (PolicyParser, String, Node) throws(PolicyLoadError) -> Compiled
    ) throws(PolicyLoadError) -> ([Compiled], [String]) {
        var compiled: [Compiled] = []
        var summary: [String] = []
        for item in try stringList(value, key: key.rawValue, expected: "a glob or a list of globs") {
            let expansion = try expand(item.text, node: item.node, escapeGlob: true)
            for expanded in try alternatives(of: expansion, node: item.node, key: key.rawValue) {
                compiled.append(try compile(self, expanded, item.node))
            }
            summary.append("\(key.rawValue) \(item.text)")
        }
        return (compiled, summary)
    }
}
