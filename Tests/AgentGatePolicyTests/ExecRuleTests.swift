import Foundation
import Testing
import AgentGatePolicy

@Suite("Exec rules: argv and command globs")
struct ExecRuleTests {
    @Test("argv globs match one argument each; ** matches any run")
    func argvGlobs() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: [rm, "-*r*", "/"]}
                decision: deny
              - match: {action: exec, argv: [git, push, "**", "--force"]}
                decision: deny
              - match: {action: exec, argv: [npm, install, "**"]}
                decision: log
            """)
        #expect(exec(p, ["rm", "-rf", "/"]).decision == .deny)
        #expect(exec(p, ["/bin/rm", "-fr", "/"]).decision == .deny)  // basename for the program word
        #expect(exec(p, ["rm", "-rf", "/tmp/x"]).decision == .allow)
        #expect(exec(p, ["rm", "-rf", "/", "extra"]).decision == .allow) // no ** → exact length
        #expect(exec(p, ["git", "push", "origin", "main", "--force"]).decision == .deny)
        #expect(exec(p, ["git", "push", "--force"]).decision == .deny)
        #expect(exec(p, ["git", "push", "origin"]).decision == .allow)
        #expect(exec(p, ["npm", "install"]).decision == .log)
        #expect(exec(p, ["npm", "install", "left-pad"]).decision == .log)
        #expect(exec(p, ["npm", "run", "build"]).decision == .allow)
    }

    @Test("argv on a program path glob only matches that path")
    func argvPathProgram() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: ["/usr/bin/curl", "**"]}
                decision: deny
            """)
        #expect(exec(p, ["/usr/bin/curl", "x"]).decision == .deny)
        #expect(exec(p, ["curl", "x"]).decision == .allow) // argv[0] as written doesn't start with /usr/bin
    }

    @Test("command globs: * spans spaces and slashes")
    func commandGlobs() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, command: "curl * --upload-file *"}
                decision: deny
              - match: {action: exec, command: ["chmod *+s *", "chmod 4[0-7][0-7][0-7] *"]}
                decision: ask
            """)
        #expect(exec(p, ["curl", "https://x/y", "--upload-file", "/etc/passwd"]).decision == .deny)
        #expect(exec(p, ["/usr/bin/curl", "-s", "https://x/y", "--upload-file", "a"]).decision == .deny)
        #expect(exec(p, ["curl", "https://x/y"]).decision == .allow)
        #expect(exec(p, ["chmod", "u+s", "/tmp/x"]).decision == .ask)
        #expect(exec(p, ["chmod", "4755", "/tmp/x"]).decision == .ask)
        #expect(exec(p, ["chmod", "644", "/tmp/x"]).decision == .allow)
    }

    @Test("without exec details argv and command rules can't match")
    func noDetails() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: [rm, "**"]}
                decision: deny
            """)
        #expect(p.usesExecDetails)
        #expect(p.evaluate(.exec, target: "/usr/bin/rm").decision == .allow)
    }

    @Test("argv and command need action: exec")
    func argvNeedsExec() {
        expectLoadError("""
            rules:
              - match: {argv: [rm]}
                decision: deny
            """, line: 2, column: 20, "\"argv\" and \"command\" only apply to exec")
        expectLoadError("""
            rules:
              - match: {action: fs_read, command: "x"}
                decision: deny
            """, line: 2, column: 39, "only apply to exec")
        expectLoadError("""
            rules:
              - match: {action: exec, argv: "rm -rf"}
                decision: deny
            """, line: 2, column: 33, "expected \"argv\" to be a list of globs")
        expectLoadError("""
            rules:
              - match: {action: exec, command: "[x"}
                decision: deny
            """, line: 2, column: 36, "invalid command glob")
    }
}
