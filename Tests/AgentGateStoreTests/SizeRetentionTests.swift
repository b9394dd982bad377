import Testing

@testable import AgentGateStore

@Suite("Size-based retention")
struct SizeRetentionTests {
    @Test("over the size limit, the oldest ended sessions go, the running one stays, and the chain still verifies")
    func sizeLimit() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        for session in 0..<8 {
            let id = "s\(session)"
            try store.createSession(sampleSession(id: id, startTimeMicros: 1_700_000_000_000_000 + Int64(session) * 1_000_000))
            let writer = AuditWriter(store: store, sessionID: id)
            for index in 0..<400 { writer.record(sampleEvent(index)) }
            writer.finishSession(endTimeMicros: 1_700_000_000_500_000 + Int64(session) * 1_000_000, exitStatus: 0)
        }
        try store.createSession(sampleSession(id: "running", startTimeMicros: 1_800_000_000_000_000))
        let used = try store.usedBytes()
        #expect(try store.enforceSizeLimit(maxBytes: used * 2) == nil)
        let report = try #require(try store.enforceSizeLimit(maxBytes: used / 2))
        print("size retention: \(used) bytes used; limit \(used / 2); removed \(report.sessionIDs); now \(try store.usedBytes())")
        #expect(report.sessionIDs == Array(["s0", "s1", "s2", "s3", "s4", "s5"].prefix(report.sessionIDs.count)))
        #expect(report.sessionIDs.count >= 4)
        #expect(try store.usedBytes() <= used / 2)
        #expect(try store.sessions().contains { $0.id == "running" })
        let verification = try store.verify()
        #expect(verification.isValid, "\(verification.problems)")
    }
}
