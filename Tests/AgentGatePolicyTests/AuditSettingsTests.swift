import Testing
import AgentGatePolicy

@Suite("audit: {reads:} in the policy")
struct AuditSettingsTests {
    @Test("reads defaults to aggregate and takes all, aggregate or none")
    func values() throws {
        let plain = try Policy.parse(yaml: "default: allow\n", source: "policy.yaml", variables: testVariables)
        #expect(plain.readRecording == .aggregate)
        for mode in ReadRecording.allCases {
            let policy = try Policy.parse(yaml: "default: allow\naudit: {reads: \(mode.name)}\n", source: "policy.yaml",
                                          variables: testVariables)
            #expect(policy.readRecording == mode)
        }
        let empty = try Policy.parse(yaml: "default: allow\naudit:\n", source: "policy.yaml", variables: testVariables)
        #expect(empty.readRecording == .aggregate)
    }

    @Test("bad audit: values are positioned errors")
    func errors() throws {
        expectLoadError("default: allow\naudit: {reads: some}\n", line: 2, column: 16,
                        "expected \"audit.reads\" to be all, aggregate or none; found \"some\"")
        expectLoadError("default: allow\naudit: {writes: all}\n", line: 2, column: 9,
                        "unknown key \"writes\" in audit; expected one of reads, journal")
        expectLoadError("default: allow\naudit: all\n", line: 2, column: 8, "expected \"audit\" to be a mapping")
        let directory = try TemporaryDirectory()
        directory.write("inner.yaml", "audit: {reads: none}\n")
        let outer = directory.write("outer.yaml", "default: allow\ninclude: [inner.yaml]\n")
        do {
            _ = try Policy.load(path: outer, variables: testVariables)
            Issue.record("an included file may not set audit")
        } catch {
            #expect(error.file.hasSuffix("inner.yaml"))
            #expect(error.message.contains("\"audit\" may only be set in the top-level policy"))
        }
    }
}
