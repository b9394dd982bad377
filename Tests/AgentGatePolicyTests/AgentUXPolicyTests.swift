import Foundation
import Testing
import AgentGatePolicy

@Suite("explain_denials and the shared egress decision")
struct AgentUXPolicyTests {
    private func parse(_ yaml: String) throws(PolicyLoadError) -> Policy {
        try Policy.parse(yaml: yaml, source: "policy.yaml", variables: testVariables)
    }

    @Test("explain_denials: on by default, turned off by false, top-level only, true or false only")
    func explainDenialsKey() throws {
        #expect(try parse("default: allow\n").explainsDenials)
        #expect(try parse("default: allow\nexplain_denials: true\n").explainsDenials)
        #expect(try !parse("default: allow\nexplain_denials: false\n").explainsDenials)
        #expect(try !parse("default: allow\nexplain_denials: False\n").explainsDenials)
        #expect(try Policy.builtInDefault(variables: testVariables).explainsDenials)
        do {
            _ = try parse("default: allow\nexplain_denials: no\n")
            Issue.record("explain_denials: no accepted")
        } catch {
            #expect(error.line == 2 && error.column == 18 && error.message.contains("true or false"), "\(error)")
        }
        do {
            _ = try parse("default: allow\nexplain_denials: [false]\n")
            Issue.record("a list accepted")
        } catch {
            #expect(error.line == 2 && error.message.contains("\"explain_denials\""), "\(error)")
        }
        do {
            _ = try parse("default: allow\nexplain_denial: false\n")
            Issue.record("a misspelt key accepted")
        } catch {
            #expect(error.message.contains("unknown key \"explain_denial\"") && error.message.contains("explain_denials"), "\(error)")
        }
        let directory = try TemporaryDirectory()
        directory.write("quiet.yaml", "explain_denials: false\n")
        let root = directory.write("root.yaml", "default: allow\ninclude: quiet.yaml\n")
        do {
            _ = try Policy.load(path: root, variables: testVariables)
            Issue.record("explain_denials in an include accepted")
        } catch {
            #expect(error.file.hasSuffix("quiet.yaml") && error.message.contains("top-level policy"), "\(error)")
        }
        // The shipped starter policy names it, and loads.
        #expect(Policy.starterYAML.contains("explain_denials: true"))
        #expect(try Policy.parse(yaml: Policy.starterYAML, source: "starter", variables: testVariables).explainsDenials)
    }

    @Test("a unix socket connect is decided as net_egress and as fs_write on its path, in one function")
    func egressOfUnixSockets() throws {
        let policy = try parse("""
            default: allow
            rules:
              - id: no-docker
                match: {action: fs_write, target_glob: "/run/docker.sock"}
                decision: deny
              - id: no-metadata
                match: {action: net_egress, target_glob: "169.254.169.254"}
                decision: deny
            """)
        #expect(policy.evaluate(.netEgress, target: "unix:/run/docker.sock").decision == .allow)
        let docker = policy.evaluateEgress(target: "unix:/run/docker.sock")
        #expect(docker.decision == .deny && docker.ruleIndex == 0)
        #expect(policy.evaluateEgress(target: "unix:/tmp/x.sock").decision == .allow)
        #expect(policy.evaluateEgress(target: "unix:@abstract").decision == .allow)
        let metadata = policy.evaluateEgress(target: "169.254.169.254:80")
        #expect(metadata.decision == .deny && metadata.ruleIndex == 1)
        // The built-in policy: the nscd socket under both names, and docker's refused.
        let builtIn = try Policy.builtInDefault(variables: testVariables)
        #expect(builtIn.evaluateEgress(target: "unix:/var/run/nscd/socket").decision == .allow)
        #expect(builtIn.evaluateEgress(target: "unix:/run/nscd/socket").decision == .allow)
        #expect(builtIn.evaluateEgress(target: "unix:/run/docker.sock").decision == .deny)
    }
}
