import AgentGateStore
import Testing

@testable import AgentGateReports

@Suite("Session listing and verification text")
struct ListingTests {
    @Test("a finished session's row, and a running one's")
    func rows() {
        let started = AuditTime.dateTime(Fixture.start)
        #expect(SessionListing.row(Fixture.session(), events: 8, denied: 1)
            == ["4f2a9c1e-session", "claude-code", started, "36.0 s", "exit 0", "8", "1", "claude --print fix it"])
        var running = Fixture.session(end: nil, exit: nil)
        running.mode = "audit"
        running.command = ["sh", "-c", String(repeating: "x", count: 80) + "\n"]
        let row = SessionListing.row(running, events: 0, denied: 0)
        #expect(row[1] == "claude-code (audit)")
        #expect(row[3] == "-")
        #expect(row[4] == "running")
        #expect(row[7] == "sh -c " + String(repeating: "x", count: 53) + "…")
        #expect(SessionListing.header.count == row.count)
    }

    @Test("a verified trail, and the notes on what the chains can't vouch for")
    func verification() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.path + "/audit.db")
        defer { store.close() }
        try store.createSession(Fixture.session(end: nil, exit: nil))
        try store.insert(events: [Fixture.event(), Fixture.sshDenial], sessionID: "4f2a9c1e-session")
        var report = try store.verify(sessionID: "4f2a9c1e-session")
        report.headHash = "abc"
        #expect(report.keyID == store.chainKey?.id && report.keyedSessions == 1 && report.keyedLinks == 1)
        #expect(report.anchorPath == directory.path + "/audit.db.anchors" && report.anchorsChecked == 0)
        report.keyID = "0123456789abcdef"
        report.anchorPath = "/db.anchors"
        report.journalAvailable = true
        #expect(report.summaryLines(sessionID: "4f2a9c1e-session", pendingFallback: nil) == [
            "✓ audit trail verified: session 4f2a9c1e-session, 2 events, 0 process records; session chain: 1 links, head abc",
            "key: 0123456789abcdef (1 keyed sessions, 1 keyed session chain links)",
            "anchors: none in /db.anchors yet",
            "note: 1 sessions have no end record (still running, or the supervisor was killed); their last events are covered by the chain but not by an end record",
        ])
        report.anchorSeq = 7
        report.unchainedSessions = ["a", "b", "c", "d", "e", "f"]
        report.unchainedEvents = 12
        report.keyID = nil
        report.keyProblem = "why"
        report.unkeyedSessions = 2
        report.anchorsChecked = 3
        report.journalAvailable = false
        let notes = report.summaryLines(sessionID: "other", pendingFallback: "/db.fallback.jsonl").dropFirst()
        #expect(Array(notes) == [
            "key: none (why); 2 sessions are unkeyed (SHA-256 only): anyone who can write the database can recompute them",
            "anchors: 3 session heads in /db.anchors compared with the database",
            "note: no systemd journal here (/run/systemd/journal/socket): the anchor file is the only copy of the heads",
            "note: the session chain starts at retention anchor seq 7 (older sessions were removed by agentgate clean)",
            "note: 6 sessions (12 events) were recorded before schema v2 and are unchained (pre-v2): a, b, c, d, e, …",
            "note: /db.fallback.jsonl holds records not yet imported; the next agentgate-supervise start imports them",
        ])
    }
}
