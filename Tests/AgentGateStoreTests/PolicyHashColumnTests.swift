import Foundation
import Testing

@testable import AgentGateStore

/// `events.policy_sha256` (schema v3): the policy in force when each event was decided.
@Suite("The policy hash of each event")
struct PolicyHashColumnTests {
    static let firstPolicy = SHA256Hex.digest(Array("default: allow\n".utf8))
    static let reloadedPolicy = SHA256Hex.digest(Array("default: deny\n".utf8))

    static func event(_ index: Int, policy: String?) -> DecisionEvent {
        var event = sampleEvent(index)
        event.policySHA256 = policy
        return event
    }

    @Test("events keep the hash they were decided under; the chain covers it and verifies")
    func storedAndVerified() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1")
        writer.record(Self.event(1, policy: Self.firstPolicy))
        writer.record(Self.event(2, policy: Self.reloadedPolicy))
        writer.record(Self.event(3, policy: nil))
        writer.finishSession(endTimeMicros: 1_700_000_000_100_000, exitStatus: 0)

        let events = try store.events(sessionID: "session-1")
        #expect(events.map(\.event.policySHA256) == [Self.firstPolicy, Self.reloadedPolicy, nil])
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.eventsVerified == 3)

        // The hash is covered: changing it, or clearing it, breaks the row's link.
        try rawSQL(path, "UPDATE events SET policy_sha256 = '\(Self.firstPolicy)' WHERE seq = 2")
        #expect(try store.verify().isValid == false)
        try rawSQL(path, "UPDATE events SET policy_sha256 = NULL WHERE seq = 2")
        #expect(try store.verify().isValid == false)
        try rawSQL(path, "UPDATE events SET policy_sha256 = '\(Self.reloadedPolicy)' WHERE seq = 2")
        #expect(try store.verify().isValid)
        // Nor can a hash be given to a row that had none.
        try rawSQL(path, "UPDATE events SET policy_sha256 = '\(Self.firstPolicy)' WHERE seq = 3")
        #expect(try store.verify().isValid == false)
    }

    @Test("rows decided under the session's own policy store a mark for it, read back whole, and verify")
    func sessionPolicyMark() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        var session = sampleSession()
        session.policySHA256 = Self.firstPolicy
        try store.createSession(session)
        let writer = AuditWriter(store: store, sessionID: "session-1", flushInterval: .seconds(60))
        writer.record(Self.event(1, policy: Self.firstPolicy))
        writer.record(Self.event(2, policy: Self.reloadedPolicy))
        writer.record(Self.event(3, policy: nil))
        var read = Self.event(4, policy: Self.firstPolicy)
        read.decision = .allow
        read.isAggregatedRead = true
        writer.record(read)
        var reloadedRead = read
        reloadedRead.target = "/etc/other"
        reloadedRead.policySHA256 = Self.reloadedPolicy
        writer.record(reloadedRead)
        writer.finishSession(endTimeMicros: 1_700_000_000_100_000, exitStatus: 0)

        // 1 byte instead of 64; NULL stays "not recorded".
        #expect(try rawQuery(path, "SELECT policy_sha256 FROM events ORDER BY seq") == ["=", Self.reloadedPolicy, "NULL"])
        #expect(try rawQuery(path, "SELECT policy_sha256 FROM read_sets ORDER BY seq").sorted() == ["=", Self.reloadedPolicy].sorted())
        let events = try store.events(sessionID: "session-1")
        #expect(events.filter { $0.event.readCount == nil }.map(\.event.policySHA256) == [Self.firstPolicy, Self.reloadedPolicy, nil])
        #expect(events.first { $0.event.target == read.target && $0.event.readCount != nil }?.event.policySHA256 == Self.firstPolicy)
        #expect(events.first { $0.event.target == "/etc/other" }?.event.policySHA256 == Self.reloadedPolicy)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.eventsVerified == 3 && report.readSetsVerified == 2)

        // The rows' links cover the hash the mark stands for: writing it out in full changes
        // nothing; marking a row of another policy breaks it.
        try rawSQL(path, "UPDATE events SET policy_sha256 = '\(Self.firstPolicy)' WHERE seq = (SELECT min(seq) FROM events)")
        #expect(try store.verify().isValid)
        try rawSQL(path, "UPDATE events SET policy_sha256 = '=' WHERE seq = (SELECT min(seq) FROM events)")
        let reloadedSet = try rawQuery(path, "SELECT id FROM read_sets WHERE policy_sha256 <> '='").first ?? "?"
        try rawSQL(path, "UPDATE read_sets SET policy_sha256 = '=' WHERE id = \(reloadedSet)")
        #expect(try store.verify().isValid == false)
        try rawSQL(path, "UPDATE read_sets SET policy_sha256 = '\(Self.reloadedPolicy)' WHERE id = \(reloadedSet)")
        #expect(try store.verify().isValid)
        // An edit of the session's hash breaks every marked row's own link, not only the
        // session's start digest (which a writer holding the key could recompute).
        try rawSQL(path, "UPDATE sessions SET policy_sha256 = '\(Self.reloadedPolicy)'")
        let edited = try store.verify()
        #expect(edited.problems.contains { $0.table == "events" }, "\(edited.problems)")
        #expect(edited.problems.contains { $0.table == "read_sets" }, "\(edited.problems)")
    }

    @Test("a session's rows appended later continue its chain after its read sets")
    func appendAfterReadSets() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        do {
            let writer = AuditWriter(store: store, sessionID: "session-1", flushInterval: .seconds(60))
            var read = Self.event(1, policy: nil)
            read.decision = .allow
            read.isAggregatedRead = true
            writer.record(read)
            writer.close()  // the read set is the session's last link
        }
        try store.insert(events: [Self.event(2, policy: nil)], sessionID: "session-1")
        try store.finishSession(id: "session-1", endTimeMicros: 1_700_000_000_100_000, exitStatus: 0)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.eventsVerified == 1 && report.readSetsVerified == 1)
    }

    @Test("a row without a policy hash hashes exactly as a v2 row; one with it under the v3 domain")
    func hashDomains() {
        var withoutPolicy = EventColumns()
        withoutPolicy.sessionID = "s"
        var withPolicy = withoutPolicy
        withPolicy.policySHA256 = Self.firstPolicy
        #expect(withoutPolicy.rowHashDomain == "agentgate.event.v2")
        #expect(withPolicy.rowHashDomain == "agentgate.event.v3")
        var answered = withPolicy
        answered.answeredVia = "socket"
        #expect(answered.rowHashDomain == "agentgate.event.v4")
        var encoder = AuditChain.Encoder(domain: "", previous: [])
        let previous = AuditChain.sessionGenesis("s")
        let old = AuditChain.hash(withoutPolicy, previous: previous, encoder: &encoder)
        let new = AuditChain.hash(withPolicy, previous: previous, encoder: &encoder)
        #expect(old != new)
        // The v2 encoding: every field but the new one, under the v2 tag.
        var v2 = AuditChain.Encoder(domain: "agentgate.event.v2", previous: previous)
        var fields = withoutPolicy
        var omitting = OmittingEncoder(encoder: v2)
        fields.visitFields(&omitting)
        v2 = omitting.encoder
        #expect(v2.digest() == old)
    }

    @Test("a v2 database migrates to v3 without losing a row; its chains still verify")
    func fromVersion2() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("v2.db")
        do {
            // As a build before keyed chains wrote it.
            let store = try AuditStore(path: path, busyTimeoutMilliseconds: 5000, readOnly: false, creatingBelow: "/", keyed: false)
            try store.createSession(sampleSession())
            let writer = AuditWriter(store: store, sessionID: "session-1")
            for index in 1...5 { writer.record(sampleEvent(index)) }
            writer.finishSession(endTimeMicros: 1_700_000_000_100_000, exitStatus: 0)
            store.close()
        }
        // The file as a v2 build left it: no policy_sha256 column (nor the later answer and source columns).
        try rawSQL(path, """
            ALTER TABLE events DROP COLUMN policy_sha256; ALTER TABLE events DROP COLUMN answered_via;
            ALTER TABLE events DROP COLUMN answered_by; ALTER TABLE events DROP COLUMN source; ALTER TABLE sessions DROP COLUMN unit;
            ALTER TABLE sessions DROP COLUMN unit_cgroup; ALTER TABLE sessions DROP COLUMN invocation_id;
            DROP TABLE read_entries; DROP TABLE read_sets; DROP TABLE read_strings; ALTER TABLE sessions DROP COLUMN key_id; ALTER TABLE session_chain DROP COLUMN key_id; PRAGMA user_version = 2;
            """)
        #expect(try rawQuery(path, "PRAGMA user_version") == ["2"])

        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(try store.schemaVersion() == AuditSchema.currentVersion)
        let events = try store.events(sessionID: "session-1")
        #expect(events.count == 5)
        #expect(events.allSatisfy { $0.event.policySHA256 == nil && $0.hash != nil })
        #expect(try store.verify().isValid)

        // New sessions beside them record the hash.
        try store.createSession(sampleSession(id: "session-2"))
        let writer = AuditWriter(store: store, sessionID: "session-2")
        writer.record(Self.event(1, policy: Self.firstPolicy))
        writer.finishSession(endTimeMicros: 1_700_000_000_200_000, exitStatus: 0)
        #expect(try store.events(sessionID: "session-2").first?.event.policySHA256 == Self.firstPolicy)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.eventsVerified == 6)
    }
}

/// Hashes every field except those added later (as a v2 build hashed a row).
private struct OmittingEncoder: FieldVisitor {
    var encoder: AuditChain.Encoder
    mutating func visit(_ field: FieldInfo, _ value: inout Int64) { encoder.visit(field, &value) }
    mutating func visit(_ field: FieldInfo, _ value: inout Int64?) { encoder.visit(field, &value) }
    mutating func visit(_ field: FieldInfo, _ value: inout String) { encoder.visit(field, &value) }
    mutating func visit(_ field: FieldInfo, _ value: inout String?) {
        if !field.isOmittedWhenNull { encoder.visit(field, &value) }
    }
}
