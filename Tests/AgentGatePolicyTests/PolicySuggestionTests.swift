import Foundation
import Testing
@testable import AgentGatePolicy

/// `agentgate policy suggest`'s generalisation and collapsing, on hand-made sessions.
@Suite struct PolicySuggestionTests {
    let variables = PolicyVariables(workingDirectory: "/home/dev/project", home: "/home/dev", temporaryDirectory: "/tmp/t")

    var builtIn: Policy { get throws { try Policy.builtInDefault(variables: variables) } }

    /// A base that allows nothing but what it names.
    func base(_ rules: String = "") throws -> Policy {
        try Policy.parse(yaml: "version: 2\ndefault: deny\nrules:\n" + (rules.isEmpty ? "  []\n" : rules),
                         source: "base.yaml", variables: variables)
    }

    func suggest(_ actions: [LearnedAction], base: Policy, threshold: Int = 3) throws -> PolicySuggestion {
        PolicySuggestion.suggest(actions: actions, base: base, builtIn: try builtIn, variables: variables,
                                 label: "s1", threshold: threshold)
    }

    func writes(_ paths: [String]) -> [LearnedAction] {
        paths.enumerated().map { LearnedAction(kind: .fsWrite, target: $0.element, pid: Int32(100 + $0.offset), executable: "/usr/bin/make") }
    }

    @Test func writesUnderTheProjectCollapseToPWD() throws {
        let paths = (1...14).map { "/home/dev/project/build/f\($0).o" }
        let suggestion = try suggest(writes(paths), base: base())
        #expect(suggestion.rules.count == 1)
        let rule = try #require(suggestion.rules.first)
        #expect(rule.glob == "$PWD/**")
        #expect(rule.count == 14)
        #expect(rule.yaml[0] == "# learned: 14 writes under $PWD, first /home/dev/project/build/f1.o (pid 100, make)")
    }

    @Test func fewFilesStayExactWithTheirVariable() throws {
        let suggestion = try suggest(writes(["/home/dev/project/out.txt", "/home/dev/notes/a.txt"]), base: base())
        #expect(suggestion.rules.map(\.glob).sorted() == ["$HOME/notes/a.txt", "$PWD/out.txt"])
    }

    @Test func neverWidensToHomeOrRoot() throws {
        // Many files directly in $HOME, and in distinct top-level directories.
        let suggestion = try suggest(writes(["/home/dev/a", "/home/dev/b", "/home/dev/c", "/srv/x", "/opt/y", "/var/z"]), base: base())
        let globs = suggestion.rules.map(\.glob)
        #expect(!globs.contains("$HOME/**") && !globs.contains("/**") && !globs.contains("/home/**"))
        #expect(Set(globs) == ["$HOME/a", "$HOME/b", "$HOME/c", "/srv/x", "/opt/y", "/var/z"])
    }

    @Test func readsOfALibraryCollapseWithTheCredentialNamesHeldBack() throws {
        let reads = (1...5).map { LearnedAction(kind: .fsRead, target: "/usr/lib/python3.11/m\($0).py", pid: 7, executable: "/usr/bin/python3") }
        let suggestion = try suggest(reads, base: base())
        #expect(suggestion.rules.map(\.glob) == ["/usr/lib/**"])
        #expect(suggestion.credentialNameRule != nil)
    }

    @Test func credentialsAreHeldBackAndNeverCovered() throws {
        let reads = ["/home/dev/.ssh/id_rsa", "/home/dev/.aws/credentials", "/home/dev/project/.env", "/home/dev/project/key.pem",
                     "/home/dev/.config/gh/hosts.yml", "/home/dev/.config/a", "/home/dev/.config/b", "/home/dev/.config/c"]
            .map { LearnedAction(kind: .fsRead, target: $0) }
        let suggestion = try suggest(reads, base: base())
        #expect(Set(suggestion.heldBack.map(\.target)) == ["/home/dev/.ssh/id_rsa", "/home/dev/.aws/credentials",
                                                            "/home/dev/project/.env", "/home/dev/project/key.pem",
                                                            "/home/dev/.config/gh/hosts.yml"])
        // $HOME/.config/** would cover the GitHub CLI's tokens: the files stay exact.
        #expect(Set(suggestion.rules.map(\.glob)) == ["$HOME/.config/a", "$HOME/.config/b", "$HOME/.config/c"])
    }

    /// A deny the user wrote stays: what it names is held back, never suggested as allowed.
    @Test func theBasePolicysOwnDeniesAreHeldBack() throws {
        let base = try base("""
              - id: company-vault
                match: {action: fs_read, target_glob: "$HOME/.vault/**"}
                decision: deny
                reason: company vault token
            """)
        let reads = ["/home/dev/.vault/token", "/home/dev/project/a.c"].map { LearnedAction(kind: .fsRead, target: $0) }
        let suggestion = try suggest(reads, base: base)
        #expect(suggestion.heldBack.map(\.target) == ["/home/dev/.vault/token"])
        #expect(suggestion.heldBack.first?.reason.contains("base policy's rule company-vault") == true, "\(suggestion.heldBack)")
        #expect(suggestion.rules.map(\.glob) == ["$PWD/a.c"])
    }

    @Test func temporaryFilesCollapseAtOnce() throws {
        let suggestion = try suggest(writes(["/tmp/t/ccX1.s"]), base: base())
        #expect(suggestion.rules.map(\.glob) == ["$TMPDIR/**"])
    }

    @Test func processIdsAndHandlesAreGeneralised() throws {
        let actions = [LearnedAction(kind: .fsRead, target: "/proc/4242/status"), LearnedAction(kind: .fsWrite, target: "pipe:[123456]")]
        let suggestion = try suggest(actions, base: base())
        #expect(Set(suggestion.rules.map(\.glob)) == ["/proc/*/status", "pipe:*"])
    }

    @Test func hostsAreNamedNotAddresses() throws {
        let actions = [LearnedAction(kind: .netEgress, target: "pypi.org:443 (151.101.0.223)"),
                       LearnedAction(kind: .netEgress, target: "pypi.org:443 (151.101.64.223)"),
                       LearnedAction(kind: .netEgress, target: "169.254.169.254:80")]
        let suggestion = try suggest(actions, base: base())
        #expect(suggestion.rules.count == 1)
        #expect(suggestion.rules[0].yaml[2] == "  match: {action: net_egress, target_glob: pypi.org, ports: [443]}")
        #expect(suggestion.heldBack.map(\.target) == ["169.254.169.254:80"])
    }

    @Test func whatTheBaseAllowsIsNotRepeated() throws {
        let base = try base("""
              - match: {action: fs_write, target_glob: "$PWD/**"}
                decision: allow
            """ + "\n")
        let suggestion = try suggest(writes(["/home/dev/project/a", "/home/dev/other/b"]), base: base)
        #expect(suggestion.rules.map(\.glob) == ["$HOME/other/b"])
    }

    @Test func theRenderedPolicyLoadsAllowsTheSessionAndKeepsItsDenials() throws {
        let text = """
            version: 2
            default: deny
            rules:
              # the project's secrets
              - id: secrets
                match: {action: fs_write, target_glob: "$PWD/secrets/**"}
                decision: deny
              - id: other-writes
                match: {action: fs_write}
                decision: deny

            """
        let base = try Policy.parse(yaml: text, source: "base.yaml", variables: variables)
        var actions = writes((1...5).map { "/home/dev/project/src/f\($0)" })
        actions.append(LearnedAction(kind: .exec, target: "/usr/bin/make", argv: ["make", "all"], pid: 9, executable: "/usr/bin/sh"))
        actions.append(LearnedAction(kind: .fsRead, target: "/home/dev/.ssh/id_rsa"))
        let suggestion = try suggest(actions, base: base)
        // $PWD/** would shadow the secrets rule: the directory below it is the widest safe one.
        #expect(Set(suggestion.rules.map(\.glob)) == ["$PWD/src/**", "/usr/bin/make"])
        let rendered = try suggestion.render(into: text, base: base, header: ["# suggested"])
        let suggested = try Policy.parse(yaml: rendered, source: "base.yaml", variables: variables)
        #expect(PolicySuggestion.stillRefused(actions, by: suggested, heldBack: suggestion.heldBack).isEmpty)
        #expect(suggested.evaluate(.fsRead, target: "/home/dev/.ssh/id_rsa").decision == .deny)
        #expect(suggested.evaluate(.fsWrite, target: "/home/dev/project/secrets/k").decision == .deny)
        #expect(suggested.evaluate(.fsWrite, target: "/home/dev/elsewhere").decision == .deny)
        #expect(rendered.hasPrefix("# suggested\n# held back (never suggested as allowed):\n#   fs_read /home/dev/.ssh/id_rsa: "))
        // The learned write rule goes right before the rule that refused the writes; the
        // person's comment stays with theirs.
        #expect(rendered.contains("    reason: \"learned from session s1\"\n  - id: other-writes"))
        #expect(rendered.contains("  # the project's secrets\n  - id: secrets"))
    }

    @Test func unifiedDiffOfAnInsertion() {
        let diff = UnifiedDiff.diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nd\nX\nY\ne\nf\ng\n", oldLabel: "old", newLabel: "new")
        #expect(diff == "--- old\n+++ new\n@@ -2,6 +2,8 @@\n b\n c\n d\n+X\n+Y\n e\n f\n g\n")
        #expect(UnifiedDiff.diff("x\n", "x\n", oldLabel: "a", newLabel: "b") == "")
    }
}
