import Testing
@testable import AgentGatePolicy

/// The built-in policies' inline `examples:` are checked here, not at every load (a load skips
/// them: they can't change, and they cost each hook call 0.3 ms).
@Suite("Built-in policy examples")
struct PolicyExampleTests {
    static let homes = [
        PolicyVariables(workingDirectory: "/home/u/proj", home: "/home/u", temporaryDirectory: "/tmp", agent: "claude-code", environment: [:]),
        PolicyVariables(workingDirectory: "/root/x", home: "/root", temporaryDirectory: "/var/tmp/r", agent: "codex", environment: [:]),
        // Glob characters in a variable's value are its own text, not a pattern.
        PolicyVariables(workingDirectory: "/home/a*b/[p]{q,r}", home: "/home/a*b", temporaryDirectory: "/tmp/?x",
                        agent: "claude-code", environment: [:]),
    ]

    @Test("every built-in policy's examples hold, for more than one HOME and working directory",
          arguments: Policy.builtInIncludes.map(\.name) + ["builtin:default.yaml"])
    func builtInExamplesHold(name: String) throws {
        let include = Policy.builtInIncludes.first { $0.name == name }
        let yaml = include?.yaml ?? Policy.builtInDefaultYAML
        let source = include?.source ?? name
        for variables in Self.homes {
            var diagnostics: [PolicyDiagnostic] = []
            _ = try Policy.parse(yaml: yaml, source: source, variables: variables, lenient: false, diagnostics: &diagnostics,
                                 builtIn: true, checksBuiltInExamples: true)
            #expect(diagnostics.isEmpty, "\(diagnostics)")
        }
    }

    @Test("a policy file's own examples are still checked at load, whatever the file is called",
          arguments: ["/home/u/.config/agentgate/policy.yaml", "builtin:default.yaml", "<built-in default.yaml>"])
    func fileExamplesAreChecked(source: String) {
        #expect(throws: PolicyLoadError.self) {
            try Policy.parse(yaml: """
                rules:
                  - match: {action: exec, command: "git push *"}
                    decision: deny
                    examples: {match: ["git pull"]}
                """, source: source, variables: Self.homes[0])
        }
    }
}
