import Foundation
import Testing
import AgentGatePolicy

/// A rule item as `RuleProposal.yaml` holds it.
private let item = ["- id: always-x", "  match: {action: exec, argv: [x, \"**\"]}", "  decision: allow"]

@Suite("Inserting a saved rule into a policy file's text")
struct PolicyTextEditTests {
    @Test("before the ask rule, indented like it; every other byte stays")
    func beforeAskRule() throws {
        let text = """
            # my policy
            version: 2
            rules:
              # keep this comment
              - id: first
                match: {action: exec, argv: [ls]}   # trailing comment
                decision: allow

              - id: ask-installs    # asks
                match: {action: exec, target_glob: "*install*"}
                decision: ask
            limits: []   # end

            """
        let loaded = try policy(text)
        let ask = try #require(loaded.rules.first { $0.id == "ask-installs" })
        let result = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: ask.line)
        #expect(!result.atEnd)
        #expect(result.text == text.replacingOccurrences(
            of: "  - id: ask-installs", with: item.map { "  " + $0 }.joined(separator: "\n") + "\n  - id: ask-installs"))
        #expect(result.line == 9)
        let edited = try policy(result.text)
        #expect(edited.rules.map(\.id) == ["first", "always-x", "ask-installs"])
    }

    @Test("above the comment lines directly over the ask rule; a comment after a blank line stays put")
    func aboveTheRulesComment() throws {
        let text = """
            rules:
              - id: first
                decision: allow
              # about the rules below

              # asks for installs
              # (two lines)
              - id: ask-installs
                match: {action: exec, target_glob: "*install*"}
                decision: ask

            """
        let ask = try #require(try policy(text).rules.first { $0.id == "ask-installs" })
        let result = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: ask.line)
        #expect(result.text == text.replacingOccurrences(
            of: "  # asks for installs", with: item.map { "  " + $0 }.joined(separator: "\n") + "\n  # asks for installs"))
        #expect(result.line == 6)
    }

    @Test("items at column 0, and a dash on a line of its own")
    func unindentedAndBareDash() throws {
        let text = "rules:\n- id: a\n  decision: allow\n-\n  id: b\n  decision: ask\n"
        let loaded = try policy(text)
        let result = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: loaded.rules[1].line)
        #expect(result.text == "rules:\n- id: a\n  decision: allow\n" + item.joined(separator: "\n") + "\n-\n  id: b\n  decision: ask\n")
        #expect(try policy(result.text).rules.map(\.id) == ["a", "always-x", "b"])
    }

    @Test("at the end of the list, before other top-level keys and trailing comments")
    func atEnd() throws {
        let text = "rules:\n  - id: a\n    decision: ask\n\n# trailing\nmode: enforce\n# the end"
        let result = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: nil)
        #expect(result.atEnd)
        #expect(result.text == "rules:\n  - id: a\n    decision: ask\n" + item.map { "  " + $0 }.joined(separator: "\n")
                    + "\n\n# trailing\nmode: enforce\n# the end")
        #expect(try policy(result.text).rules.map(\.id) == ["a", "always-x"])
    }

    @Test("a rule line that is not a rule of the list falls back to the end")
    func unknownLine() throws {
        let text = "version: 2\nrules:\n  - id: a\n    decision: ask\n"
        let result = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: 1)
        #expect(result.atEnd)
        #expect(try policy(result.text).rules.map(\.id) == ["a", "always-x"])
    }

    @Test("no rules key, an empty one, [] and null")
    func missingOrEmptyRules() throws {
        let cases: [(String, String)] = [
            ("default: ask\n", "default: ask\nrules:\n"),
            ("default: ask", "default: ask\nrules:\n"),
            ("", "rules:\n"),
            ("rules:\ndefault: ask\n", "rules:\n"),
            ("rules: []   # none yet\ndefault: ask\n", "rules: # none yet\n"),
            ("rules: null\n", "rules:\n"),
            ("rules: ~\n", "rules:\n"),
        ]
        for (text, expectedStart) in cases {
            let result = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: nil)
            #expect(result.text.contains(expectedStart + item.map { "  " + $0 }.joined(separator: "\n") + "\n"), "\(text)")
            #expect(try policy(result.text).rules.map(\.id) == ["always-x"], "\(text)")
        }
    }

    @Test("CRLF files stay CRLF; a missing final newline is handled")
    func lineEndings() throws {
        let text = "# c\r\nrules:\r\n  - id: a\r\n    decision: ask"
        let result = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: nil)
        #expect(result.text == "# c\r\nrules:\r\n  - id: a\r\n    decision: ask\r\n"
                    + item.map { "  " + $0 + "\r\n" }.joined())
        #expect(!result.text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(try policy(result.text).rules.map(\.id) == ["a", "always-x"])
        let before = try PolicyTextEdit.insert(item, into: text, beforeRuleAt: 3)
        #expect(before.text == "# c\r\nrules:\r\n" + item.map { "  " + $0 + "\r\n" }.joined() + "  - id: a\r\n    decision: ask")
    }

    @Test("a flow-style rules list is refused with a clear message")
    func flowStyle() {
        #expect(throws: PolicyTextEdit.Failure.self) {
            try PolicyTextEdit.insert(item, into: "rules: [{decision: ask}]\n", beforeRuleAt: nil)
        }
        do {
            _ = try PolicyTextEdit.insert(item, into: "rules: [{decision: ask}]\n", beforeRuleAt: nil)
        } catch {
            #expect(error.message.contains("flow style"))
        }
    }
}

@Suite("Including the built-in policy")
struct BuiltInIncludeTests {
    @Test("agentgate:default includes the embedded policy, after the file's own rules, as no file")
    func includesBuiltIn() throws {
        let directory = try TemporaryDirectory()
        let file = directory.write("policy.yaml", "version: 2\ninclude: [\"agentgate:default\"]\nrules:\n"
                                   + "  - {id: mine, match: {action: exec, argv: [npm, \"**\"]}, decision: deny}\n")
        let loaded = try Policy.load(path: file, variables: testVariables)
        let builtIn = try Policy.builtInDefault(variables: testVariables)
        #expect(loaded.rules.count == builtIn.rules.count + 1)
        #expect(loaded.rules[0].id == "mine")
        #expect(loaded.rules[1].file == Policy.builtInDefaultSource)
        #expect(loaded.files == [file])
        #expect(loaded.evaluate(.fsRead, target: "/home/u/.ssh/id_rsa").decision == .deny)
        #expect(exec(loaded, ["npm", "test"]).decision == .deny)
        #expect(exec(loaded, ["ls"]).decision == .allow)
    }
}
