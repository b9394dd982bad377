import Foundation
import Testing

@testable import AgentGateStore

/// `sessions.unit`, `unit_cgroup`, `invocation_id` (schema v5): the systemd unit a session ran in.
@Suite("The systemd unit of a session")
struct SessionUnitColumnTests {
    static let unit = SessionUnit(name: "nightly.scope", cgroup: "/system.slice/nightly.scope",
                                  invocationID: "7fe09fee2aea4df9aef7ba8ebdd36efa")

    @Test("a session's unit is stored, read back, covered by its start digest, and absent for others")
    func storedAndVerified() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        var inUnit = sampleSession(id: "in-unit")
        inUnit.unit = Self.unit
        try store.createSession(inUnit)
        try store.createSession(sampleSession(id: "outside"))
        #expect(try store.session(id: "in-unit")?.unit == Self.unit)
        #expect(try store.session(id: "outside")?.unit == nil)
        #expect(try store.sessionSummaries().map(\.session.unit) == [Self.unit, nil])
        #expect(try store.verify().isValid)

        // Moving the session to another unit, or out of one, breaks its start link.
        try rawSQL(path, "UPDATE sessions SET unit_cgroup = '/system.slice/other.scope' WHERE id = 'in-unit'")
        #expect(try store.verify().isValid == false)
        try rawSQL(path, "UPDATE sessions SET unit_cgroup = '/system.slice/nightly.scope' WHERE id = 'in-unit'")
        #expect(try store.verify().isValid)
        try rawSQL(path, "UPDATE sessions SET unit = NULL, unit_cgroup = NULL, invocation_id = NULL WHERE id = 'in-unit'")
        #expect(try store.verify().isValid == false)
    }

    @Test("a session outside a unit hashes as before v5; one in a unit under the v5 domain")
    func hashDomains() {
        var outside = SessionStartColumns()
        outside.id = "s"
        var inside = outside
        inside.unit = Self.unit.name
        inside.unitCgroup = Self.unit.cgroup
        inside.invocationID = Self.unit.invocationID
        #expect(outside.rowHashDomain == "agentgate.session-start.v2")
        #expect(inside.rowHashDomain == "agentgate.session-start.v5")
        #expect(AuditChain.digest(outside) != AuditChain.digest(inside))
        // The v2 digest: the fields a v2 build hashed, under the v2 tag.
        var v2 = AuditChain.Encoder(domain: "agentgate.session-start.v2", previous: AuditChain.globalGenesis)
        v2.text(outside.id)
        v2.text(outside.agent)
        v2.text(outside.command)
        v2.text(outside.cwd)
        v2.text(outside.policyPath)
        v2.text(outside.policySHA256)
        v2.integer(outside.startTime)
        v2.text(outside.mode)
        v2.text(outside.context)
        #expect(v2.digest() == AuditChain.digest(outside))
    }

    @Test("a v4 database migrates to v5 without losing a row; its chains still verify")
    func fromVersion4() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("v4.db")
        do {
            // As a build before keyed chains wrote it.
            let store = try AuditStore(path: path, busyTimeoutMilliseconds: 5000, readOnly: false, creatingBelow: "/", keyed: false)
            try store.createSession(sampleSession())
            let writer = AuditWriter(store: store, sessionID: "session-1")
            for index in 1...3 { writer.record(sampleEvent(index)) }
            writer.finishSession(endTimeMicros: 1_700_000_000_100_000, exitStatus: 0)
            store.close()
        }
        try rawSQL(path, """
            ALTER TABLE sessions DROP COLUMN unit; ALTER TABLE sessions DROP COLUMN unit_cgroup;
            ALTER TABLE sessions DROP COLUMN invocation_id; ALTER TABLE events DROP COLUMN source;
            DROP TABLE read_entries; DROP TABLE read_sets; DROP TABLE read_strings; ALTER TABLE sessions DROP COLUMN key_id; ALTER TABLE session_chain DROP COLUMN key_id; PRAGMA user_version = 4;
            """)
        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(try store.schemaVersion() == AuditSchema.currentVersion)
        #expect(try store.session(id: "session-1")?.unit == nil)
        var inUnit = sampleSession(id: "session-2")
        inUnit.unit = Self.unit
        try store.createSession(inUnit)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.eventsVerified == 3)
    }
}
