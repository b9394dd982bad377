import Foundation
import Testing
import AgentGatePolicy

@Suite("Policy variables")
struct VariableTests {
    let variables = PolicyVariables(workingDirectory: "/home/u/proj", home: "/home/u", temporaryDirectory: "/var/tmp/u",
                                    agent: "claude", environment: ["CARGO_HOME": "/opt/cargo", "REGISTRY": "npm.example"])

    @Test("$TMPDIR, $AGENT and ${env:NAME}")
    func expansion() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: fs_write, target_glob: "$TMPDIR/**"}
                decision: allow
              - match: {action: fs_write, target_glob: "${env:CARGO_HOME}/**"}
                decision: allow
              - match: {action: fs_write, target_glob: "$HOME/.local/state/$AGENT/**"}
                decision: allow
              - match: {action: net_egress, target_glob: "${env:REGISTRY}"}
                decision: allow
            """, variables: variables)
        #expect(p.evaluate(.fsWrite, target: "/var/tmp/u/a").decision == .allow)
        #expect(p.evaluate(.fsWrite, target: "/opt/cargo/registry/x").decision == .allow)
        #expect(p.evaluate(.fsWrite, target: "/home/u/.local/state/claude/log").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "npm.example:443").decision == .allow)
    }

    @Test("unknown or unset variables are errors, never empty strings")
    func unknown() {
        expectLoadError("""
            rules:
              - match: {target_glob: "${env:NOPE}/x"}
                decision: deny
            """, line: 2, column: 27, "environment variable NOPE is not set", variables: variables)
        expectLoadError("""
            rules:
              - match: {target_glob: "$AGENT"}
                decision: deny
            """, line: 2, column: 27, "$AGENT has no value here")
        expectLoadError("""
            rules:
              - match: {target_glob: "$TMP/x"}
                decision: deny
            """, line: 2, column: 27, "unknown variable $TMP")
    }

    @Test("a lenient load reports unknown variables and loads the rest")
    func lenient() throws {
        var diagnostics: [PolicyDiagnostic] = []
        let directory = try TemporaryDirectory()
        let path = directory.write("p.yaml", """
            default: allow
            rules:
              - match: {target_glob: "$NOPE/x"}
                decision: deny
              - match: {target_glob: "${env:UNSET_FOR_TEST}/y"}
                decision: deny
            """)
        let p = try Policy.load(path: path, variables: testVariables, lenient: true, diagnostics: &diagnostics)
        #expect(p.rules.count == 2)
        #expect(diagnostics.count == 2)
        #expect(diagnostics.first?.description.hasSuffix("p.yaml:3:27: unknown variable $NOPE; expected $PWD, $HOME, $TMPDIR, $AGENT or ${env:NAME} (write $$ for a literal '$')") == true)
        #expect(p.evaluate(.fsRead, target: "/x").decision == .allow)
    }
}

@Suite("Policy includes")
struct IncludeTests {
    @Test("own rules first, then includes in order, depth-first; root defaults win")
    func mergeOrder() throws {
        let directory = try TemporaryDirectory()
        directory.write("profiles/base.yaml", """
            default: {exec: allow, fs_read: allow, fs_write: deny, net_egress: deny}
            include: [extra.yaml]
            rules:
              - id: base-deny-secret
                match: {action: fs_read, target_glob: "/secret/**"}
                decision: deny
            """)
        directory.write("profiles/extra.yaml", """
            rules:
              - id: extra-allow-all-reads
                match: {action: fs_read}
                decision: allow
            """)
        directory.write("profiles/node.yaml", """
            rules:
              - id: node-registry
                match: {action: net_egress, target_glob: "registry.npmjs.org"}
                decision: allow
            """)
        let root = directory.write("policy.yaml", """
            include: [profiles/base.yaml, profiles/node.yaml]
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: deny}
            rules:
              - id: mine
                match: {action: fs_read, target_glob: "/secret/mine"}
                decision: allow
            """)
        let p = try Policy.load(path: root, variables: testVariables)
        #expect(p.rules.map(\.displayID) == ["mine", "base-deny-secret", "extra-allow-all-reads", "node-registry"])
        #expect(p.files.count == 4)
        #expect(p.rules[1].file.hasSuffix("profiles/base.yaml"))
        #expect(p.evaluate(.fsRead, target: "/secret/mine").decision == .allow)
        #expect(p.evaluate(.fsRead, target: "/secret/other").decision == .deny)
        #expect(p.evaluate(.fsWrite, target: "/x").decision == .allow) // root's default wins
        #expect(p.evaluate(.netEgress, target: "registry.npmjs.org:443").decision == .allow)
    }

    @Test("include errors point at the include, cycles and conflicts are named")
    func errors() throws {
        let directory = try TemporaryDirectory()
        let missing = directory.write("missing.yaml", "include: [nope.yaml]\n")
        #expect(throws: PolicyLoadError.self) { try Policy.load(path: missing, variables: testVariables) }
        do {
            _ = try Policy.load(path: missing, variables: testVariables)
        } catch {
            #expect(error.line == 1 && error.column == 11)
            #expect(error.message.contains("cannot include") && error.message.contains("nope.yaml: the policy file does not exist"))
        }
        directory.write("a.yaml", "include: b.yaml\n")
        directory.write("b.yaml", "include: [a.yaml]\n")
        do {
            _ = try Policy.load(path: directory.path + "/a.yaml", variables: testVariables)
            Issue.record("cycle not detected")
        } catch {
            #expect(error.message.contains("include cycle"), "\(error)")
            #expect(error.file.hasSuffix("b.yaml"))
        }
        directory.write("x.yaml", "default: allow\n")
        directory.write("y.yaml", "default: deny\n")
        let conflict = directory.write("c.yaml", "include: [x.yaml, y.yaml]\n")
        do {
            _ = try Policy.load(path: conflict, variables: testVariables)
            Issue.record("conflict not detected")
        } catch {
            #expect(error.file.hasSuffix("y.yaml") && error.message.contains("included files disagree on the default"), "\(error)")
        }
        // The root resolves it.
        let resolved = directory.write("d.yaml", "include: [x.yaml, y.yaml]\ndefault: ask\n")
        #expect(try Policy.load(path: resolved, variables: testVariables).defaultDecision(for: .exec) == .ask)
        directory.write("moded.yaml", "mode: audit\n")
        let moded = directory.write("e.yaml", "include: moded.yaml\n")
        do {
            _ = try Policy.load(path: moded, variables: testVariables)
            Issue.record("mode in an include accepted")
        } catch {
            #expect(error.file.hasSuffix("moded.yaml") && error.message.contains("top-level policy"), "\(error)")
        }
        // A broken included file reports its own position.
        directory.write("broken.yaml", "rules:\n  - decision: maybe\n")
        let broken = directory.write("f.yaml", "include: broken.yaml\n")
        do {
            _ = try Policy.load(path: broken, variables: testVariables)
            Issue.record("broken include accepted")
        } catch {
            #expect(error.file.hasSuffix("broken.yaml") && error.line == 2 && error.column == 15, "\(error)")
        }
        // Rule ids are unique across the root and everything it includes.
        directory.write("ids.yaml", "rules:\n  - id: ssh-keys\n    decision: deny\n")
        let clash = directory.write("g.yaml", "include: ids.yaml\nrules:\n  - id: ssh-keys\n    decision: allow\n")
        do {
            _ = try Policy.load(path: clash, variables: testVariables)
            Issue.record("duplicate id across files accepted")
        } catch {
            #expect(error.file.hasSuffix("ids.yaml") && error.line == 2 && error.message.contains("duplicate rule id \"ssh-keys\"")
                    && error.message.contains("g.yaml:3:5"), "\(error)")
        }
    }
}

@Suite("Inline examples")
struct ExampleTests {
    @Test("examples are checked when the policy loads")
    func examples() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: [git, push, "**"]}
                decision: ask
                examples:
                  match: ["git push origin main", "/usr/bin/git push"]
                  no_match: ["git pull"]
              - match: {action: fs_read, target_glob: "$HOME/.aws/**"}
                decision: deny
                examples: {match: [/home/u/.aws/credentials], no_match: [/home/u/aws]}
            """)
        #expect(p.rules.count == 2)
        expectLoadError("""
            rules:
              - match: {action: exec, argv: [git, push, "**"]}
                decision: ask
                examples:
                  match: ["git pull"]
            """, line: 5, column: 15, "example \"git pull\" should match rule 1 but does not")
        expectLoadError("""
            rules:
              - id: aws
                match: {action: fs_read, target_glob: "$HOME/.aws/**"}
                decision: deny
                examples: {no_match: [/home/u/.aws/x]}
            """, line: 5, column: 27, "example \"/home/u/.aws/x\" should not match rule aws but does")
    }
}
