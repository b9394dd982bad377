import Foundation
import Testing
@testable import AgentGatePolicy

/// The `when:` keys and the process facts they test come from one table; every place that
/// names them follows it.
@Suite("when: key table")
struct WhenKeyTableTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    @Test func spellingsStayAsDocumented() {
        #expect(WhenKey.spellings == "caps, uid, gid, cgroup, exe, ancestor, agent")
        #expect(ProcessFact.spellings == "uid, gid, caps, permitted_caps, cgroup, exe, commands, ancestors, agent")
    }

    @Test func everyFactIsTestedBySomeKey() {
        let tested = Set(WhenKey.allCases.flatMap(\.facts))
        #expect(tested == Set(ProcessFact.allCases))
    }

    @Test func readmeDocumentsEveryKey() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        for key in WhenKey.allCases {
            #expect(text.contains("`\(key.rawValue):"), "README does not document when: \(key.rawValue)")
        }
    }

    @Test func unknownKeyListsTheTable() {
        let yaml = "rules:\n  - {match: {action: exec}, when: {color: red}, decision: deny}\n"
        #expect(throws: PolicyLoadError.self) {
            _ = try Policy.parse(yaml: yaml, source: "t.yaml", variables: PolicyVariables(workingDirectory: "/w", home: "/h"))
        }
        do {
            _ = try Policy.parse(yaml: yaml, source: "t.yaml", variables: PolicyVariables(workingDirectory: "/w", home: "/h"))
        } catch {
            #expect(error.message == "unknown key \"color\" in when; expected one of \(WhenKey.spellings)")
        }
    }

    @Test func emptyGlobListTestsNothing() throws {
        let yaml = "rules:\n  - {match: {action: exec}, when: {cgroup: []}, decision: deny}\ndefault: allow\n"
        let policy = try Policy.parse(yaml: yaml, source: "t.yaml", variables: PolicyVariables(workingDirectory: "/w", home: "/h"))
        let verdict = policy.decide(.exec, target: "/bin/true", exec: nil, context: ProcessContext(cgroup: "/x"))
        #expect(verdict.decision == .deny)
    }

    @Test func factsReadTheirValues() throws {
        var context = ProcessContext()
        try ProcessFact.uid.set(["1000"], in: &context)
        try ProcessFact.caps.set(["CAP_NET_RAW", "sys_admin"], in: &context)
        try ProcessFact.ancestors.set(["npm install"], in: &context)
        #expect(context.uid == 1000)
        #expect(CapabilityName.names(context.effectiveCapabilities) == ["CAP_NET_RAW", "CAP_SYS_ADMIN"])
        #expect(context.ancestors.first?.commands == [["npm", "install"]])
        #expect(throws: ProcessFactError(index: 1, value: "CAP_NOPE", message: "unknown capability \"CAP_NOPE\"")) {
            try ProcessFact.permittedCaps.set(["CAP_CHOWN", "CAP_NOPE"], in: &context)
        }
    }
}
