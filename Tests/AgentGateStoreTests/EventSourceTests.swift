import Foundation
import Testing

@testable import AgentGateStore

/// `events.source` (schema v6): hook decisions beside the supervisor's, covered by the chain.
@Suite("Event source")
struct EventSourceTests {
    @Test("a hook's events make their session on first use, read back as hook, and verify")
    func hookEventsMakeTheirSession() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        var hook = sampleEvent(1)
        hook.source = .hook
        hook.policySHA256 = "abc"
        let session = SessionRecord(id: "claude-code-s1", agent: "claude-code", command: ["claude-code"], cwd: "/p",
                                    policyPath: "builtin:default.yaml", policySHA256: "abc", startTimeMicros: 1)
        try store.insert(events: [hook], creatingIfAbsent: session)
        try store.insert(events: [hook, sampleEvent(2)], creatingIfAbsent: session)
        let events = try store.events(sessionID: "claude-code-s1")
        #expect(events.map(\.event.source) == [.hook, .hook, .kernel])
        #expect(events.map(\.seq) == [1, 2, 3])
        #expect(try store.sessions().count == 1)
        #expect(try store.verify().isValid)
        #expect(try store.schemaVersion() >= AuditSchema.eventSourceVersion)
        // Never into another agent's session, nor an ended one.
        var other = session
        other.agent = "codex"
        #expect(throws: StoreError.self) { try store.insert(events: [hook], creatingIfAbsent: other) }
        try store.finishSession(id: session.id, endTimeMicros: 5, exitStatus: 0)
        #expect(throws: StoreError.self) { try store.insert(events: [hook], creatingIfAbsent: session) }
    }

    @Test("the source is hashed: changing it breaks the chain, and rows without one hash as before")
    func sourceIsHashed() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        try store.createSession(sampleSession())
        var hook = sampleEvent(1)
        hook.source = .hook
        try store.insert(events: [sampleEvent(0), hook], sessionID: "session-1")
        #expect(try store.verify().isValid)
        // A kernel row's hash doesn't involve the new column at all.
        var kernelColumns = EventColumns()
        kernelColumns.sessionID = "s"
        var withSource = kernelColumns
        withSource.source = "hook"
        #expect(kernelColumns.rowHashDomain == EventColumns.hashDomain && withSource.rowHashDomain == EventColumns.sourceHashDomain)
        store.close()
        for sql in ["UPDATE events SET source = NULL WHERE seq = 2", "UPDATE events SET source = 'hook' WHERE seq = 1"] {
            let copy = directory.file("copy-\(sql.count).db")
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            let edited = try AuditStore(path: copy)
            defer { edited.close() }
            try edited.withConnection { connection throws(StoreError) in try connection.execute(sql) }
            #expect(try !edited.verify().isValid, "\(sql)")
        }
    }
}
