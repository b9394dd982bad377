import CSQLite
import Dispatch
import Foundation
import Testing

@testable import AgentGateStore

/// A finished session `id` of `count` events (pid 7), written through the writer.
private func writeSession(_ store: AuditStore, id: String, count: Int = 10) {
    try? store.createSession(sampleSession(id: id))
    let writer = AuditWriter(store: store, sessionID: id, batchSize: 3, flushInterval: .milliseconds(1))
    for index in 0..<count { writer.record(sampleEvent(index, pid: 7)) }
    writer.finishSession(endTimeMicros: 1_700_000_001_000_000, exitStatus: 0)
}

/// Rewrites the database as someone who can write it but hasn't the key would: session `id`'s
/// events replaced by `events` (chained again with plain SHA-256), its end record updated to
/// the new chain, and every link of the global chain recomputed with plain SHA-256. With
/// `downgrade`, the session and the links are also marked unkeyed (chain version 2).
private func rewriteWithoutKey(_ path: String, id: String, events: [DecisionEvent], downgrade: Bool) throws {
    let store = try AuditStore(path: path, busyTimeoutMilliseconds: 5000, readOnly: false, creatingBelow: "/", keyed: false)
    defer { store.close() }
    try store.withConnection { connection throws(StoreError) in
        try connection.inTransaction { () throws(StoreError) in
            try connection.execute("DELETE FROM events WHERE session_id = '\(id)'")
            var builder = ChainBuilder(sessionID: id)
            try AuditStore.insertRows(events.map { builder.event($0) }, connection: connection)
            let end = builder.end(endTimeMicros: 1_700_000_001_000_000, exitStatus: 0)
            try connection.execute("UPDATE sessions SET link_count = \(end.linkCount), last_hash = '\(end.lastHash)' WHERE id = '\(id)'")
            if downgrade {
                try connection.execute("UPDATE sessions SET chain_version = 2, key_id = NULL")
                try connection.execute("UPDATE session_chain SET key_id = NULL")
            }
            // The global chain, every link again: the end digest of the rewritten session changed.
            let links = try connection.statement("SELECT seq, kind, session_id, digest FROM session_chain ORDER BY seq")
            var rows: [(Int64, String, String, String)] = []
            while try links.step() { rows.append((links.int64(0), links.text(1), links.text(2), links.text(3))) }
            links.reset()
            var previous = AuditChain.globalGenesis
            for (seq, kind, session, digest) in rows {
                let newDigest = kind == "end" && session == id ? AuditChain.hex(AuditChain.digest(end)) : digest
                previous = AuditChain.globalLinkHash(seq: seq, kind: kind, sessionID: session, digest: newDigest, previous: previous)
                try connection.execute(
                    "UPDATE session_chain SET digest = '\(newDigest)', hash = '\(AuditChain.hex(previous))' WHERE seq = \(seq)")
            }
        }
    }
}

@Suite("Keyed chains and anchors")
struct KeyedChainTests {
    @Test("a new database gets a 0600 key; its sessions are keyed, anchored, and verify")
    func keyedAndAnchored() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        writeSession(store, id: "s1")
        writeSession(store, id: "s2", count: 0)
        var info = stat()
        #expect(stat(path + ".key", &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try rawQuery(path, "SELECT chain_version FROM sessions ORDER BY id") == ["3", "3"])
        #expect(try rawQuery(path, "SELECT count(*) FROM session_chain WHERE key_id IS NULL") == ["0"])
        let anchors = try #require(try AuditAnchors.read(path: path + ".anchors"))
        #expect(anchors.anchors.map(\.sessionID) == ["s1", "s2"])
        #expect(anchors.anchors.first?.lastSeq == 10)
        #expect(anchors.malformedLines.isEmpty)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.keyID == store.chainKey?.id && report.keyID != nil)
        #expect(report.keyedSessions == 2 && report.unkeyedSessions == 0)
        #expect(report.anchorsChecked == 2)
        // The same key next time.
        let again = try AuditStore(path: path, readOnly: true)
        defer { again.close() }
        #expect(again.chainKey == store.chainKey)
    }

    @Test("a key others may read, or not the user's, is refused rather than used")
    func unsoundKeyRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        try AuditStore(path: path).close()
        chmod(path + ".key", 0o644)
        let error = #expect(throws: StoreError.self) { try AuditStore(path: path) }
        #expect(error?.code == .invalidData)
        #expect(error?.message.contains("0600") == true)
        #expect(error?.message.contains("run this as that user") == false)
        // Another user's sound key (root opening an ordinary user's database): say whose.
        guard geteuid() == 0 else { return }
        chmod(path + ".key", 0o600)
        chown(path + ".key", 65534, 65534)
        let foreign = #expect(throws: StoreError.self) { try AuditStore(path: path) }
        #expect(foreign?.message.contains("it belongs to uid 65534: run this as that user") == true)
    }

    @Test("an event rewritten and every later link recomputed with plain SHA-256: verify fails and says why")
    func rewriteWithRecomputedHashes() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        writeSession(store, id: "s1")
        writeSession(store, id: "s2")
        store.close()
        var events = (0..<10).map { sampleEvent($0, pid: 7) }
        events[3].target = "/innocent"
        try rewriteWithoutKey(path, id: "s1", events: events, downgrade: false)
        #expect(try rawQuery(path, "SELECT target FROM events WHERE seq = 4 AND session_id = 's1'") == ["/innocent"])

        let report = try verify(path)
        #expect(!report.isValid)
        let text = report.problems.map(\.description)
        #expect(text.contains { $0.contains("events row") && $0.contains("doesn't match its content under the key") }, "\(text)")
        #expect(text.contains { $0.contains("session_chain") && $0.contains("doesn't match under the key") }, "\(text)")
        // The anchor saw the original head.
        #expect(text.contains { $0.contains("doesn't match its anchor") && $0.contains("its chain was rewritten") }, "\(text)")
    }

    @Test("the same rewrite marked unkeyed (a downgrade): the anchors catch it")
    func downgradeCaughtByAnchors() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        writeSession(store, id: "s1")
        store.close()
        var events = (0..<10).map { sampleEvent($0, pid: 7) }
        events[3].target = "/innocent"
        try rewriteWithoutKey(path, id: "s1", events: events, downgrade: true)
        let report = try verify(path)
        #expect(!report.isValid)
        let text = report.problems.map(\.description)
        #expect(text.contains { $0.contains("was anchored keyed with \(report.keyID ?? "?"), but is stored unkeyed") }, "\(text)")
        #expect(text.contains { $0.contains("doesn't match its anchor") }, "\(text)")
    }

    @Test("the last events of a session removed and its end record fixed up: the anchor catches it")
    func truncationCaughtByAnchor() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        writeSession(store, id: "s1")
        store.close()
        let events = (0..<7).map { sampleEvent($0, pid: 7) }
        try rewriteWithoutKey(path, id: "s1", events: events, downgrade: true)
        let report = try verify(path)
        #expect(!report.isValid)
        let text = report.problems.map(\.description)
        #expect(text.contains { $0.contains("(7 links ending in") && $0.contains("its last 3 links were removed") }, "\(text)")
    }

    @Test("an anchored session deleted from the database is reported missing")
    func deletedSessionCaughtByAnchor() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        writeSession(store, id: "s1")
        store.close()
        try rawSQL(path, "DELETE FROM events; DELETE FROM session_chain; DELETE FROM sessions;")
        let report = try verify(path)
        #expect(report.problems.map(\.description).contains { $0.contains("anchored in") && $0.contains("missing from the database") })
    }

    @Test("a database from before keyed chains: old sessions verify as unkeyed, new ones are keyed")
    func upgradeFromUnkeyed() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let old = try AuditStore(path: path, busyTimeoutMilliseconds: 5000, readOnly: false, creatingBelow: "/", keyed: false)
        writeSession(old, id: "old")
        old.close()
        // As the v6 build left it.
        try rawSQL(path, "DROP TABLE read_entries; DROP TABLE read_sets; DROP TABLE read_strings; ALTER TABLE sessions DROP COLUMN key_id; ALTER TABLE session_chain DROP COLUMN key_id; PRAGMA user_version = 6;")
        #expect(!FileManager.default.fileExists(atPath: path + ".key"))

        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(try store.schemaVersion() == AuditSchema.currentVersion)
        writeSession(store, id: "new")
        #expect(try rawQuery(path, "SELECT id || ':' || chain_version || ':' || ifnull(key_id, '-') FROM sessions ORDER BY id")
                == ["new:3:\(store.chainKey!.id)", "old:2:-"])
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.keyedSessions == 1 && report.unkeyedSessions == 1)
        // Rewriting the new session's links unkeyed after the old unkeyed ones is caught.
        try rawSQL(path, "UPDATE session_chain SET key_id = NULL WHERE seq = (SELECT max(seq) FROM session_chain)")
        let broken = try store.verify()
        #expect(broken.problems.map(\.description).contains { $0.contains("unkeyed (plain SHA-256) after keyed links") })
    }

    @Test("the anchor line and the journal datagram carry the head")
    func anchorFormats() {
        let anchor = AuditAnchor(sessionID: "a\"b\nc", lastSeq: 12, headHash: "ab12", timeMicros: 99, keyID: nil)
        let line = AuditAnchors.line(anchor)
        #expect(line == #"{"session":"a\"b\nc","last_seq":12,"head":"ab12","time":99,"key_id":null}"#)
        #expect(AuditAnchors.parse(Substring(line)) == anchor)
        let datagram = AuditJournal.datagram(anchor)
        let text = String(decoding: datagram, as: UTF8.self)
        #expect(text.contains("AGENTGATE_HEAD\n") && text.contains("ab12\n") && text.contains("SYSLOG_IDENTIFIER\n"))
    }
}

@Suite("Bounded audit queue")
struct BoundedQueueTests {
    @Test("a full queue never blocks the decision path: the overflow goes to the fallback file, counted, and nothing is lost")
    func overflowGoesToFallback() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path, busyTimeoutMilliseconds: 2000)
        defer { store.close() }
        try store.createSession(sampleSession())
        // Another connection holds the write lock: the writer waits out its busy timeout.
        var locker: OpaquePointer?
        #expect(sqlite3_open(path, &locker) == SQLITE_OK)
        #expect(sqlite3_exec(locker, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)

        let warnings = WarningLog()
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 16, flushInterval: .milliseconds(1),
                                 queueCapacity: 64, warningHandler: warnings.handler)
        var durations: [UInt64] = []
        let begin = DispatchTime.now().uptimeNanoseconds
        for index in 0..<2000 {
            let start = DispatchTime.now().uptimeNanoseconds
            writer.record(sampleEvent(index))
            durations.append(DispatchTime.now().uptimeNanoseconds - start)
            #expect(writer.queuedCount <= 64)
        }
        let total = DispatchTime.now().uptimeNanoseconds - begin
        // The writer is stuck for 2 × 2 s on its first batch (it hasn't given up on it yet),
        // and every record went past it meanwhile.
        #expect(writer.writeErrors == 0)
        durations.sort()
        print("bounded queue: 2000 record() calls in \(total / 1_000_000) ms while the writer waited; median \(durations[1000] / 1000) µs, 99th percentile \(durations[1980] / 1000) µs, slowest \(durations[1999] / 1000) µs; \(writer.overflowCount) records overflowed")
        #expect(total < 2_000_000_000)
        #expect(writer.overflowCount > 0)
        #expect(warnings.messages.contains { $0.contains("audit queue is full") })
        sqlite3_exec(locker, "ROLLBACK", nil, nil, nil)
        sqlite3_close(locker)
        writer.finishSession(endTimeMicros: 5, exitStatus: 0)
        #expect(writer.lostEventCount == 0)
        #expect(try store.events(sessionID: "session-1").count == 2000)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
    }
}
