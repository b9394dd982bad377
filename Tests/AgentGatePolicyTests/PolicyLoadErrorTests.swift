import Foundation
import Testing
import AgentGatePolicy

/// Parses `yaml`, expecting failure; returns the error (and records an issue if it loaded).
private func loadError(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> PolicyLoadError? {
    let result = Result { () throws(PolicyLoadError) -> Policy in
        try Policy.parse(yaml: yaml, source: "policy.yaml", variables: testVariables)
    }
    switch result {
    case .success:
        Issue.record("policy loaded but should have failed", sourceLocation: sourceLocation)
        return nil
    case .failure(let error):
        return error
    }
}

private func expectError(_ yaml: String, line: Int, column: Int, _ fragment: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error = loadError(yaml, sourceLocation: sourceLocation) else { return }
    #expect(error.file == "policy.yaml", sourceLocation: sourceLocation)
    #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
    #expect(error.column == column, "\(error)", sourceLocation: sourceLocation)
    #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
}

@Suite("Policy load errors")
struct PolicyLoadErrorTests {
    @Test("unknown action, with the documented message format")
    func unknownAction() {
        let yaml = """
            default: deny
            rules:
              - match:
                  action: exe
                decision: allow
            """
        guard let error = loadError(yaml) else { return }
        #expect(error.description
            == "policy.yaml:4:15: unknown action \"exe\"; expected one of exec, fs_read, fs_write, net_egress, mcp")
    }

    @Test("unknown decision, in a rule and as the default")
    func unknownDecision() {
        expectError("default: maybe\n", line: 1, column: 10, "unknown decision \"maybe\"; expected one of allow, deny, ask")
        expectError("""
            default: deny
            rules:
              - match: {action: exec}
                decision: alow
            """, line: 4, column: 15, "unknown decision \"alow\"")
    }

    @Test("unknown keys at every level")
    func unknownKeys() {
        expectError("default: deny\nrulez: []\n", line: 2, column: 1,
                    "unknown key \"rulez\"; expected one of version, mode, include, default, rules")
        expectError("""
            rules:
              - match: {action: exec}
                decison: allow
            """, line: 3, column: 5, "unknown key \"decison\" in rule; expected one of id, match, when, decision")
        expectError("""
            rules:
              - match: {action: exec, target: x}
                decision: allow
            """, line: 2, column: 27, "unknown key \"target\" in match; expected one of action, target_glob")
    }

    @Test("duplicate keys are reported with a position")
    func duplicateKeys() {
        expectError("""
            default: deny
            rules:
              - match: {action: exec}
                decision: allow
                decision: deny
            """, line: 4, column: 5, "duplicate key \"decision\"")
        expectError("default: deny\ndefault: allow\n", line: 1, column: 1, "duplicate key \"default\"")
    }

    @Test("wrong types")
    func wrongTypes() {
        expectError("rules: {a: b}\n", line: 1, column: 8, "expected \"rules\" to be a list of rules; found a mapping")
        expectError("rules: deny\n", line: 1, column: 8, "expected \"rules\" to be a list of rules; found the scalar \"deny\"")
        expectError("""
            rules:
              - match: {target_glob: [a]}
                decision: deny
            """, line: 2, column: 26, "expected \"target_glob\" to be a glob string; found a list")
        expectError("""
            rules:
              - match: [exec]
                decision: deny
            """, line: 2, column: 12, "expected \"match\" to be a mapping")
        expectError("""
            rules:
              - match:
                decision: deny
            """, line: 2, column: 11, "found null")
        expectError("rules:\n  - deny\n", line: 2, column: 5, "expected a rule (a mapping with keys id, match, when, decision, reason, errno, scope, examples)")
        expectError("- default: deny\n", line: 1, column: 1, "expected a mapping with keys version, mode, include, default, rules, allow_unsupervised, explain_denials, description, limits, runaway, ask_timeout, dns, audit, webhooks; found a list")
        expectError("default: [deny]\n", line: 1, column: 10, "expected \"default\" to be a decision")
        expectError("default:\n", line: 1, column: 9, "found null")
        expectError("""
            rules:
              - match: {action: {name: exec}}
                decision: deny
            """, line: 2, column: 21, "expected \"action\" to be an action")
    }

    @Test("missing decision")
    func missingDecision() {
        expectError("""
            default: deny
            rules:
              - match: {action: exec}
                scope: /x
            """, line: 3, column: 5, "rule is missing required key \"decision\"")
    }

    @Test("invalid YAML carries libyaml's position")
    func invalidYAML() {
        expectError("default: deny\nrules:\n  - match: {action: exec\n    decision: allow\n", line: 4, column: 13,
                    "invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping started at 3:12)")
        expectError("default: deny\n\trules: []\n", line: 2, column: 1, "invalid YAML")
        expectError("default: deny\nrules: [\n", line: 3, column: 1, "invalid YAML")
        expectError("default: deny: allow\n", line: 1, column: 14, "invalid YAML: mapping values are not allowed")
        expectError("default: deny\n---\ndefault: allow\n", line: 2, column: 1, "invalid YAML")
        expectError("rules: *nothing\n", line: 1, column: 8, "invalid YAML")
    }

    @Test("empty policies are errors")
    func empty() {
        expectError("", line: 1, column: 1, "the policy is empty")
        expectError("# only a comment\n", line: 1, column: 1, "the policy is empty")
    }

    @Test("variables: unknown names, lone $, unterminated braces")
    func badVariables() {
        expectError("""
            rules:
              - match: {target_glob: "$HOME/$FOO/x"}
                decision: deny
            """, line: 2, column: 33, "unknown variable $FOO; expected $PWD, $HOME, $TMPDIR, $AGENT or ${env:NAME}")
        expectError("""
            rules:
              - match: {target_glob: /a/$USER}
                decision: deny
            """, line: 2, column: 29, "unknown variable $USER")
        expectError("""
            rules:
              - match: {target_glob: "/a$"}
                decision: deny
            """, line: 2, column: 29, "write $$ for a literal '$'")
        expectError("""
            rules:
              - match: {action: fs_write}
                decision: allow
                scope: ${PWD
            """, line: 4, column: 12, "unterminated \"${\"")
        let relativeHome = PolicyVariables(workingDirectory: "/p", home: "relative")
        let result = Result { () throws(PolicyLoadError) -> Policy in
            try Policy.parse(yaml: "rules:\n  - match: {target_glob: $HOME/x}\n    decision: deny\n",
                             source: "p.yaml", variables: relativeHome)
        }
        guard case .failure(let error) = result else {
            Issue.record("expected failure")
            return
        }
        #expect(error.line == 2 && error.column == 26)
        #expect(error.message.contains("not an absolute path"))
    }

    @Test("malformed globs point into the pattern, past expanded variables")
    func badGlob() {
        expectError("""
            rules:
              - match:
                  target_glob: "$PWD/[x"
                decision: deny
            """, line: 3, column: 26, "invalid target_glob: unterminated character class")
        expectError("""
            rules:
              - match: {action: net_egress, target_glob: "example.com:http"}
                decision: deny
            """, line: 2, column: 59, "invalid port")
        expectError("""
            rules:
              - match: {target_glob: ""}
                decision: deny
            """, line: 2, column: 26, "\"target_glob\" is empty")
    }

    @Test("scope errors")
    func badScope() {
        expectError("""
            rules:
              - match: {action: fs_write}
                decision: deny
                scope: $PWD
            """, line: 4, column: 12, "\"scope\" only applies to allow and log rules; this rule's decision is deny")
        expectError("""
            rules:
              - match: {action: fs_write}
                decision: allow
                scope: proj
            """, line: 4, column: 12, "scope must be an absolute path")
    }

    @Test("a bad policy yields an error and no policy, even after valid rules")
    func noHalfLoad() {
        let yaml = """
            default: allow
            rules:
              - match: {action: fs_read}
                decision: allow
              - match: {action: fs_write}
                decision: bogus
            """
        var loaded: Policy?
        do {
            loaded = try Policy.parse(yaml: yaml, source: "policy.yaml", variables: testVariables)
        } catch {
            #expect(error.line == 6)
        }
        #expect(loaded == nil)
        #expect(throws: PolicyLoadError.self) {
            try Policy.parse(yaml: yaml, source: "policy.yaml", variables: testVariables)
        }
    }

    @Test("load reads files and reports unreadable or invalid ones")
    func loadFromFile() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("agentgate-policy-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let good = directory.appendingPathComponent("good.yaml").path
        try "default: deny\nrules:\n  - match: {action: exec}\n    decision: allow\n"
            .write(toFile: good, atomically: true, encoding: .utf8)
        let policy = try Policy.load(path: good, variables: testVariables)
        #expect(policy.source == good)
        #expect(policy.evaluate(.exec, target: "/bin/sh").letsCallProceed)

        let bad = directory.appendingPathComponent("bad.yaml").path
        try "default: deny\nrules:\n  - match: {action: exe}\n    decision: allow\n"
            .write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(throws: PolicyLoadError(file: bad, line: 3, column: 21,
                                        message: "unknown action \"exe\"; expected one of exec, fs_read, fs_write, net_egress, mcp")) {
            try Policy.load(path: bad, variables: testVariables)
        }

        let missing = directory.appendingPathComponent("missing.yaml").path
        #expect(throws: PolicyLoadError(file: missing, line: 0, column: 0, message: "the policy file does not exist")) {
            try Policy.load(path: missing, variables: testVariables)
        }

        let binary = directory.appendingPathComponent("binary.yaml").path
        try Data([0x64, 0x3A, 0x0A, 0x61, 0xFF, 0x62]).write(to: URL(fileURLWithPath: binary))
        #expect(throws: PolicyLoadError(file: binary, line: 2, column: 2, message: "the policy file is not valid UTF-8")) {
            try Policy.load(path: binary, variables: testVariables)
        }
        #expect(PolicyLoadError(file: "f", line: 0, column: 0, message: "m").description == "f: m")
    }
}
