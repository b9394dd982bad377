import CSQLite
import Dispatch
import Foundation
import Testing

@testable import AgentGateStore

/// Runs SQL on the file directly, as someone tampering with it would.
func rawSQL(_ path: String, _ sql: String) throws {
    var handle: OpaquePointer?
    guard sqlite3_open(path, &handle) == SQLITE_OK else { throw TestSetupError(message: "open \(path)") }
    defer { sqlite3_close(handle) }
    var error: UnsafeMutablePointer<CChar>?
    guard sqlite3_exec(handle, sql, nil, nil, &error) == SQLITE_OK else {
        let message = error.map { String(cString: $0) } ?? "?"
        sqlite3_free(error)
        throw TestSetupError(message: "\(sql): \(message)")
    }
}

/// The first column of every row of `sql`, as text.
func rawQuery(_ path: String, _ sql: String) throws -> [String] {
    var handle: OpaquePointer?
    guard sqlite3_open(path, &handle) == SQLITE_OK else { throw TestSetupError(message: "open \(path)") }
    defer { sqlite3_close(handle) }
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { throw TestSetupError(message: sql) }
    defer { sqlite3_finalize(statement) }
    var rows: [String] = []
    while sqlite3_step(statement) == SQLITE_ROW {
        rows.append(sqlite3_column_text(statement, 0).map { String(cString: $0) } ?? "NULL")
    }
    return rows
}

/// A finished session "s1" with 10 events and two process images (pid 7 execs once, then exits),
/// written through the writer; and a second finished session "s2".
func populatedStore(_ directory: TemporaryDirectory) throws -> String {
    let path = directory.file("audit.db")
    let store = try AuditStore(path: path)
    defer { store.close() }
    for id in ["s1", "s2"] {
        try store.createSession(sampleSession(id: id))
        let writer = AuditWriter(store: store, sessionID: id, batchSize: 3, flushInterval: .milliseconds(1))
        writer.recordProcessStart(sampleProcess(pid: 7, argv: ["sh", "-c", "x"]))
        for index in 0..<5 { writer.record(sampleEvent(index, pid: 7)) }
        writer.recordProcessStart(sampleProcess(pid: 7, argv: ["python3", "x.py"]))
        for index in 5..<10 { writer.record(sampleEvent(index, pid: 7)) }
        writer.recordProcessExit(pid: 7, timeMicros: 1_700_000_000_500_000, exitStatus: 3)
        writer.finishSession(endTimeMicros: 1_700_000_001_000_000, exitStatus: 3)
        #expect(writer.lostEventCount == 0 && writer.writeErrors == 0)
    }
    return path
}

func sampleProcess(pid: Int32, argv: [String]) -> ProcessRecord {
    ProcessRecord(
        pid: pid, ppid: 1, executable: "/usr/bin/" + argv[0], argv: argv, uid: 1000, gid: 1000,
        capabilities: ["CAP_NET_BIND_SERVICE"], cgroup: "/user.slice", startTimeMicros: 1_700_000_000_000_100)
}

func verify(_ path: String, session: String? = nil) throws -> VerificationReport {
    let store = try AuditStore(path: path)
    defer { store.close() }
    return try store.verify(sessionID: session)
}

@Suite("Hash chains and verify")
struct ChainTests {
    @Test("an untouched database verifies, process records included")
    func intact() throws {
        let directory = try TemporaryDirectory()
        let path = try populatedStore(directory)
        let report = try verify(path)
        #expect(report.isValid, "\(report.problems)")
        #expect(report.sessionsVerified == 2)
        #expect(report.eventsVerified == 20)
        #expect(report.processLinksVerified == 6)  // 2 starts + 1 exit per session
        #expect(report.globalLinks == 4)
        #expect(report.openSessions.isEmpty)

        let store = try AuditStore(path: path)
        defer { store.close() }
        let processes = try store.processes(sessionID: "s1")
        #expect(processes.map(\.process.argv) == [["sh", "-c", "x"], ["python3", "x.py"]])
        // The exit fills the latest image of the pid only.
        #expect(processes[0].process.exitStatus == nil)
        #expect(processes[1].process.exitStatus == 3)
        #expect(processes[1].process.exitTimeMicros == 1_700_000_000_500_000)
        let events = try store.events(sessionID: "s1")
        #expect(events.map(\.seq) == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12])
        #expect(try store.session(id: "s1")?.exitStatus == 3)
    }

    struct Tamper: CustomTestStringConvertible, Sendable {
        let name: String
        let sql: String
        /// What the first broken link must name.
        let table: String
        let row: String
        let says: String
        var testDescription: String { name }
    }

    static let tampering: [Tamper] = [
        Tamper(name: "edit an event's target", sql: "UPDATE events SET target = '/etc/hosts' WHERE id = 3",
               table: "events", row: "3", says: "doesn't match its content"),
        Tamper(name: "edit an event's decision", sql: "UPDATE events SET decision = 'allow' WHERE id = 1",
               table: "events", row: "1", says: "edited"),
        Tamper(name: "edit an event's time", sql: "UPDATE events SET time = time + 1 WHERE id = 7",
               table: "events", row: "7", says: "edited"),
        Tamper(name: "delete an event in the middle", sql: "DELETE FROM events WHERE id = 4",
               table: "events", row: "5", says: "seq 5 is missing"),
        Tamper(name: "delete the last links (an event and the exit after it)",
               sql: "DELETE FROM events WHERE id = 10; UPDATE processes SET exit_seq = NULL, exit_hash = NULL, exit_time = NULL, exit_status = NULL WHERE id = 2",
               table: "sessions", row: "s1", says: "the last 2 were deleted"),
        Tamper(name: "reorder two events (swap their positions and hashes)",
               sql: """
                   UPDATE events SET seq = CASE id WHEN 2 THEN 4 ELSE 3 END,
                       hash = CASE id WHEN 2 THEN (SELECT hash FROM events WHERE id = 3) ELSE (SELECT hash FROM events WHERE id = 2) END
                   WHERE id IN (2, 3)
                   """,
               table: "events", row: "3", says: "doesn't match its content"),
        Tamper(name: "insert a forged event", sql: """
                   INSERT INTO events (session_id, time, pid, ppid, executable, syscall, action, target, decision, reason, latency_us)
                   VALUES ('s1', 1, 1, 1, '/x', 'openat', 'fs_read', '/y', 'allow', 'r', 0)
                   """,
               table: "events", row: "21", says: "no chain position"),
        Tamper(name: "move an event to another session", sql: "UPDATE events SET session_id = 's2' WHERE id = 3",
               table: "events", row: "4", says: "seq 4 is missing"),
        Tamper(name: "delete the event before a process start", sql: "DELETE FROM events WHERE id = 5",
               table: "processes", row: "2", says: "seq 6 is missing before this start record"),
        Tamper(name: "edit a process record's argv", sql: "UPDATE processes SET argv = '[\"ls\"]' WHERE id = 1",
               table: "processes", row: "1", says: "doesn't match"),
        Tamper(name: "edit a process exit status", sql: "UPDATE processes SET exit_status = 0 WHERE id = 2",
               table: "processes", row: "2", says: "exit hash"),
        Tamper(name: "delete a process record", sql: "DELETE FROM processes WHERE id = 1",
               table: "events", row: "1", says: "seq 1 is missing"),
        Tamper(name: "edit a session's command", sql: "UPDATE sessions SET command = '[\"true\"]' WHERE id = 's1'",
               table: "sessions", row: "s1", says: "start fields"),
        Tamper(name: "edit a session's exit status", sql: "UPDATE sessions SET exit_status = 0 WHERE id = 's2'",
               table: "sessions", row: "s2", says: "end fields"),
        Tamper(name: "delete a session row", sql: "DELETE FROM events WHERE session_id = 's2'; DELETE FROM processes WHERE session_id = 's2'; DELETE FROM sessions WHERE id = 's2'",
               table: "sessions", row: "s2", says: "deleted"),
        Tamper(name: "delete a session chain link", sql: "DELETE FROM session_chain WHERE seq = 2",
               table: "session_chain", row: "3", says: "seq 2 is missing"),
        Tamper(name: "clear chain_version to pass as pre-v2", sql: "UPDATE sessions SET chain_version = NULL WHERE id = 's1'",
               table: "sessions", row: "s1", says: "chain_version was cleared"),
        Tamper(name: "mark a link pruned to hide a deleted session",
               sql: "UPDATE session_chain SET pruned = 1 WHERE session_id = 's2'; DELETE FROM events WHERE session_id = 's2'; DELETE FROM processes WHERE session_id = 's2'; DELETE FROM sessions WHERE id = 's2'",
               table: "session_chain", row: "3", says: "no retention record"),
    ]

    @Test("a tampered row makes verify fail and name it", arguments: tampering)
    func tampered(_ tamper: Tamper) throws {
        let directory = try TemporaryDirectory()
        let path = try populatedStore(directory)
        #expect(try verify(path).isValid)
        try rawSQL(path, "PRAGMA foreign_keys = OFF; " + tamper.sql)
        let report = try verify(path)
        let first = try #require(report.firstBrokenLink, "verify passed after: \(tamper.name)")
        #expect(first.table == tamper.table, "\(first)")
        #expect(first.row == tamper.row, "\(first)")
        #expect(first.description.contains(tamper.says), "\(first)")
    }

    @Test("verify of one session checks only its events, and the session chain")
    func oneSession() throws {
        let directory = try TemporaryDirectory()
        let path = try populatedStore(directory)
        try rawSQL(path, "UPDATE events SET target = 'x' WHERE session_id = 's2'")
        #expect(try verify(path, session: "s1").isValid)
        #expect(try verify(path, session: "s1").eventsVerified == 10)
        #expect(try verify(path, session: "s2").firstBrokenLink?.sessionID == "s2")
    }

    @Test("a session without an end record is reported open, and its chain still verifies")
    func openSession() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        try store.createSession(sampleSession(id: "live"))
        let writer = AuditWriter(store: store, sessionID: "live")
        for index in 0..<20 { writer.record(sampleEvent(index)) }
        writer.flush()
        let report = try store.verify()
        #expect(report.isValid)
        #expect(report.openSessions == ["live"])
        writer.close()
    }

    @Test("the store's own insert continues a session's chain after the writer")
    func insertContinuesChain() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        try store.createSession(sampleSession(id: "a"))
        try store.insert(events: (0..<3).map { sampleEvent($0) }, sessionID: "a")
        let writer = AuditWriter(store: store, sessionID: "a")
        writer.record(sampleEvent(3))
        writer.close()
        try store.insert(events: [sampleEvent(4)], sessionID: "a")
        try store.finishSession(id: "a", endTimeMicros: 2, exitStatus: 0)
        #expect(try store.events(sessionID: "a").map(\.seq) == [1, 2, 3, 4, 5])
        #expect(try store.verify().isValid)
        let again = #expect(throws: StoreError.self) { try store.finishSession(id: "a", endTimeMicros: 3, exitStatus: 1) }
        #expect(again?.code == .constraintViolation)
    }

    @Test("hashes cover the canonical encoding: a changed field or position changes the hash")
    func encoding() {
        var encoder = AuditChain.Encoder(domain: "", previous: [])
        let base = EventColumns(
            sessionID: "s", seq: 1, time: 2, pid: 3, ppid: 4, executable: "e", syscall: "openat", action: "fs_read",
            target: "ab", argv: nil, decision: "allow", ruleIndex: nil, ruleID: nil, reason: "r", intent: nil,
            notable: 0, enforced: 1, errno: nil, latency: 5)
        let genesis = AuditChain.sessionGenesis("s")
        let hash = AuditChain.hash(base, previous: genesis, encoder: &encoder)
        #expect(hash.count == 32)
        #expect(AuditChain.hash(base, previous: genesis, encoder: &encoder) == hash)
        var shifted = base
        shifted.target = "a"
        shifted.executable = "eb"  // same concatenated bytes: only the length prefixes differ
        #expect(AuditChain.hash(shifted, previous: genesis, encoder: &encoder) != hash)
        var nullVersusEmpty = base
        nullVersusEmpty.argv = ""
        #expect(AuditChain.hash(nullVersusEmpty, previous: genesis, encoder: &encoder) != hash)
        var moved = base
        moved.seq = 2
        #expect(AuditChain.hash(moved, previous: genesis, encoder: &encoder) != hash)
        #expect(AuditChain.hash(base, previous: AuditChain.sessionGenesis("t"), encoder: &encoder) != hash)
        #expect(AuditChain.hex([0x00, 0xab, 0xff]) == "00abff")
        #expect(AuditChain.bytes(hex: "00abFF") == [0x00, 0xab, 0xff])
        #expect(AuditChain.bytes(hex: "0g") == nil)
    }
}

@Suite("Concurrent sessions on one database")
struct ConcurrencyTests {
    @Test("opening while another process holds the new file's lock waits (the WAL switch is retried, not refused)")
    func openWhileAnotherProcessConverts() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("new.db")
        let ready = directory.file("locked")
        // Another process (another supervisor, mid-creation) holds the file's exclusive lock.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN EXCLUSIVE')
            c.execute('CREATE TABLE t (x)')
            open(sys.argv[2], 'w').close()
            time.sleep(0.5)  # holding the lock a while is the point: the open must wait it out
            c.execute('COMMIT')
            """, path, ready]
        try holder.run()
        defer { holder.waitUntilExit() }
        try #require(waitUntil(timeout: 5) { FileManager.default.fileExists(atPath: ready) })
        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(try store.schemaVersion() == AuditSchema.currentVersion)
    }

    @Test("stores opening a new database at the same moment all get it")
    func concurrentCreation() throws {
        let directory = try TemporaryDirectory()
        let failures = WarningLog()
        for round in 0..<10 {
            let path = directory.file("new-\(round).db")
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                do {
                    let store = try AuditStore(path: path)
                    try store.createSession(sampleSession(id: "w\(worker)"))
                    store.close()
                } catch {
                    failures.handler("round \(round) worker \(worker): \(error)")
                }
            }
        }
        #expect(failures.messages.isEmpty, "\(failures.messages)")
    }

    @Test("four sessions written at once through separate connections all verify")
    func concurrentSessions() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        _ = try AuditStore(path: path)  // create and migrate once
        let failures = WarningLog()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            do {
                // Each worker is its own supervisor: its own connection, session and writer.
                let store = try AuditStore(path: path)
                defer { store.close() }
                for round in 0..<3 {
                    let id = "w\(worker)-r\(round)"
                    try store.createSession(sampleSession(id: id, startTimeMicros: Int64(worker * 10 + round)))
                    let writer = AuditWriter(store: store, sessionID: id, batchSize: 16, flushInterval: .milliseconds(1))
                    for index in 0..<500 {
                        writer.record(sampleEvent(index, pid: Int32(worker)))
                        if index % 100 == 0 { writer.recordProcessStart(sampleProcess(pid: Int32(index), argv: ["p"])) }
                    }
                    writer.finishSession(endTimeMicros: 10, exitStatus: 0)
                    if writer.writeErrors > 0 || writer.lostEventCount > 0 {
                        failures.handler("\(id): \(writer.lastErrorMessage ?? "")")
                    }
                }
            } catch {
                failures.handler("worker \(worker): \(error)")
            }
        }
        #expect(failures.messages.isEmpty)
        let report = try verify(path)
        #expect(report.isValid, "\(report.problems)")
        #expect(report.sessionsVerified == 12)
        #expect(report.eventsVerified == 12 * 500)
        #expect(report.globalLinks == 24)
        #expect(try rawQuery(path, "SELECT count(DISTINCT seq) FROM session_chain") == ["24"])
    }
}

@Suite("Schema migration")
struct MigrationTests {
    @Test("a v1 database upgrades to v2 without losing a row; its sessions verify as unchained (pre-v2)")
    func fromVersion1() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("v1.db")
        // A v1 file exactly as the v1 build wrote it.
        try rawSQL(path, "PRAGMA journal_mode=WAL; " + AuditSchema.migrations[0].sql + "; PRAGMA user_version = 1;")
        try rawSQL(path, """
            INSERT INTO sessions VALUES ('old', 'claude', '["claude","-p"]', '/w', '/p.yaml', 'abc', 100, 200, 0);
            INSERT INTO events (session_id, time, pid, ppid, executable, syscall, action, target, argv, decision,
                                rule_index, reason, errno, latency_us)
            VALUES ('old', 150, 10, 1, '/bin/sh', 'execve', 'exec', '/bin/ls', '["ls","-l"]', 'allow', 2, 'matched rule', NULL, 7),
                   ('old', 160, 10, 1, '/bin/ls', 'openat', 'fs_read', '/etc/shadow', NULL, 'deny', 0, 'matched rule', 13, 9);
            """)
        #expect(try rawQuery(path, "PRAGMA user_version") == ["1"])

        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(try store.schemaVersion() == AuditSchema.currentVersion)
        let sessions = try store.sessions()
        #expect(sessions.map(\.id) == ["old"])
        #expect(sessions.first?.command == ["claude", "-p"])
        #expect(sessions.first?.mode == "enforce")
        #expect(sessions.first?.exitStatus == 0)
        let events = try store.events(sessionID: "old")
        #expect(events.count == 2)
        #expect(events.first?.event.argv == ["ls", "-l"])
        #expect(events.last?.event.errno == 13)
        #expect(events.allSatisfy { $0.seq == nil && $0.hash == nil && $0.event.enforced && !$0.event.notable })

        // Old rows are reported unchained, not broken; new sessions chain normally beside them.
        try store.createSession(sampleSession(id: "new"))
        let writer = AuditWriter(store: store, sessionID: "new")
        writer.record(sampleEvent(1))
        writer.finishSession(endTimeMicros: 5, exitStatus: 0)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.unchainedSessions == ["old"])
        #expect(report.unchainedEvents == 2)
        #expect(report.sessionsVerified == 1)
        // A v1 fallback line (no type) still imports, unchained, into its v1 session.
        try AuditFallbackFile.append(
            #"{"session_id":"old","time":170,"pid":10,"ppid":1,"executable":"/bin/ls","syscall":"openat","action":"fs_read","target":"/x","argv":null,"decision":"allow","rule_index":null,"reason":"r","errno":null,"latency_us":1}"# + "\n",
            to: store.fallbackPath)
        #expect(try store.importFallback()?.imported == 1)
        #expect(try store.events(sessionID: "old").count == 3)
        #expect(try store.verify().isValid)
    }

    @Test("a migration that fails half-way leaves the file as it was")
    func failedMigrationRollsBack() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("v1.db")
        try rawSQL(path, AuditSchema.migrations[0].sql + "; PRAGMA user_version = 1;")
        // Make the v2 migration fail half-way: a table it creates already exists.
        try rawSQL(path, "CREATE TABLE processes (x);")
        let error = #expect(throws: StoreError.self) { try AuditStore(path: path) }
        #expect(error?.description.contains("processes") == true)
        #expect(try rawQuery(path, "PRAGMA user_version") == ["1"])
        #expect(try rawQuery(path, "SELECT count(*) FROM pragma_table_info('events') WHERE name = 'seq'") == ["0"])
    }
}

@Suite("Fallback file")
struct FallbackTests {
    /// A session whose writer degrades after `before` events; returns the path.
    func degradedSession(_ directory: TemporaryDirectory, before: Int = 3, after: Int = 6) throws -> String {
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 2, flushInterval: .milliseconds(1),
                                 warningHandler: { _ in })
        writer.recordProcessStart(sampleProcess(pid: 4242, argv: ["a"]))
        for index in 0..<before { writer.record(sampleEvent(index)) }
        writer.flush()
        store.close()  // every later write fails
        for index in before..<(before + after) { writer.record(sampleEvent(index)) }
        writer.recordProcessExit(pid: 4242, timeMicros: 9, exitStatus: 0)
        writer.finishSession(endTimeMicros: 10, exitStatus: 0)
        #expect(writer.lostEventCount == 0)
        #expect(writer.fallbackEventCount == after + 2)  // events, the exit and the session end
        return path
    }

    @Test("import is idempotent: a second import, or one of already-imported lines, stores nothing twice")
    func importTwice() throws {
        let directory = try TemporaryDirectory()
        let path = try degradedSession(directory)
        let fallback = path + ".fallback.jsonl"
        let saved = try String(contentsOfFile: fallback, encoding: .utf8)
        #expect(saved.split(separator: "\n").count == 8)

        let store = try AuditStore(path: path)
        defer { store.close() }
        // Before the import the session has no end record: its end is in the file too.
        #expect(try store.verify().openSessions == ["session-1"])
        let first = try #require(try store.importFallback())
        #expect(first.imported == 8 && first.duplicates == 0 && first.rejected == 0)
        #expect(!FileManager.default.fileExists(atPath: fallback))
        #expect(try store.importFallback() == nil)  // no file: nothing to do
        #expect(try store.events(sessionID: "session-1").count == 9)
        let verified = try store.verify()
        #expect(verified.isValid, "\(verified.problems)")

        // The same lines again (a crash between commit and removal): all duplicates.
        try saved.write(toFile: fallback, atomically: false, encoding: .utf8)
        let second = try #require(try store.importFallback())
        #expect(second.imported == 0 && second.duplicates == 8 && second.rejected == 0)
        #expect(try store.events(sessionID: "session-1").count == 9)
        #expect(try store.verify().isValid)
        #expect(try store.processes(sessionID: "session-1").first?.process.exitStatus == 0)
    }

    @Test("a partial last line, garbage and unknown sessions are kept aside with a reason, the rest imported")
    func partialAndRejected() throws {
        let directory = try TemporaryDirectory()
        let path = try degradedSession(directory)
        let fallback = path + ".fallback.jsonl"
        var text = try String(contentsOfFile: fallback, encoding: .utf8)
        let lines = text.split(separator: "\n")
        let foreign = lines[0].replacingOccurrences(of: "\"session-1\"", with: "\"nobody\"")
        text = "not json\n" + text + foreign + "\n" + String(lines[1].prefix(40))  // crash mid-write
        try text.write(toFile: fallback, atomically: false, encoding: .utf8)

        // A writer appending now must not glue its line onto the partial one.
        try AuditFallbackFile.append("{\"type\":\"bogus\"}\n", to: fallback)
        let store = try AuditStore(path: path)
        defer { store.close() }
        let report = try #require(try store.importFallback())
        #expect(report.imported == 8)
        #expect(report.partialTrailingLine == false)  // the appender ended it with a newline
        #expect(report.rejected == 4)  // garbage, foreign session, the partial line, the bogus type
        let rejected = try String(contentsOfFile: store.fallbackRejectedPath, encoding: .utf8)
        #expect(rejected.contains("unknown session nobody"))
        #expect(rejected.contains("not a fallback record"))
        #expect(try store.verify().isValid)
    }

    @Test("a fallback file in any line order imports whole: exits before their processes' starts, the end first")
    func importsInAnyOrder() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .milliseconds(1),
                                 warningHandler: { _ in })
        store.close()  // everything goes to the fallback file
        for process in 0..<200 {
            let pid = Int32(5000 + process)
            writer.recordProcessStart(sampleProcess(pid: pid, argv: ["p\(process)", String(repeating: "x", count: process * 37)]))
            for index in 0..<5 { writer.record(sampleEvent(process * 5 + index, pid: pid)) }
            writer.recordProcessExit(pid: pid, timeMicros: 1_700_000_000_100_000 + Int64(process), exitStatus: Int32(process % 3))
        }
        writer.finishSession(endTimeMicros: 1_700_000_000_200_000, exitStatus: 0)
        #expect(writer.lostEventCount == 0)
        let fallback = path + ".fallback.jsonl"
        let lines = try String(contentsOfFile: fallback, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200 * 7 + 1)
        try (lines.reversed().joined(separator: "\n") + "\n").write(toFile: fallback, atomically: false, encoding: .utf8)

        let reopened = try AuditStore(path: path)
        defer { reopened.close() }
        let report = try #require(try reopened.importFallback())
        #expect(report.imported == lines.count && report.rejected == 0, "\(report)")
        #expect(try reopened.events(sessionID: "session-1").count == 1000)
        let processes = try reopened.processes(sessionID: "session-1")
        #expect(processes.count == 200 && processes.allSatisfy { $0.process.exitStatus != nil })
        let verified = try reopened.verify()
        #expect(verified.isValid, "\(verified.problems)")
        #expect(verified.openSessions.isEmpty)
    }

    @Test("an event line's session and position, read without a whole parse, are what the parse says")
    func eventPositionMatchesParse() throws {
        let directory = try TemporaryDirectory()
        let path = try degradedSession(directory)
        let lines = try String(contentsOfFile: path + ".fallback.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        var events = 0
        for line in lines + [#"{"type":"event","session_id":"a\"b","seq":1}"#, #"{"type":"ev\u0065nt"}"#, #"{"seq":3}"#] {
            let bytes = Array(line.utf8)[...]
            let quick = FallbackRecord.eventPosition(bytes)
            if case .row(.event(let event, _), let sessionID)? = FallbackRecord.parse(line) {
                events += 1
                let position = try #require(quick ?? nil, "\(line)")
                #expect(position.sessionID == sessionID && position.seq == event.seq)
            } else if let quick {
                #expect(quick == nil, "\(line)")  // another type: not an event
            }
        }
        #expect(events == 6)
        // A repeated key: the parse keeps the last, so only a whole parse may say.
        for repeated in [#"{"type":"event","session_id":"S","seq":1,"seq":10}"#,
                         #"{"type":"event","session_id":"S","session_id":"T","seq":1}"#,
                         #"{"type":"event","session_id":"S","seq":1,"type":"process_start"}"#] {
            let quick = FallbackRecord.eventPosition(Array(repeated.utf8)[...])
            #expect(quick == nil, "\(repeated)")
        }
        #expect(FallbackRecord.mayBeSessionStart(Array(#"{"type":"event","type":"session_start"}"#.utf8)[...]))
        #expect(!FallbackRecord.mayBeSessionStart(Array(#"{"type":"event","seq":1}"#.utf8)[...]))
    }

    @Test("the import's reader: lines across chunks, a line longer than a chunk, empty lines, a partial last line")
    func readerAcrossChunks() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("lines.jsonl")
        let lines = ["a", "", "bcdefghijklmnopqrstuvwxyz0123456789", "xy", "", "", "q", String(repeating: "z", count: 50)]
        let text = lines.joined(separator: "\n") + "\npartial"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        for chunkSize in [1, 2, 3, 7, 64, 1 << 20] {
            var seen: [(String, Bool)] = []
            _ = try AuditFallbackFile.withLockedReader(path) { (reader) throws(StoreError) -> (result: Int, remove: Bool) in
                var small = reader
                small.chunkSize = chunkSize
                try small.forEachLine { (bytes, complete) throws(StoreError) in seen.append((String(decoding: bytes, as: UTF8.self), complete)) }
                return (0, false)
            }
            #expect(seen.map(\.0) == lines + ["partial"], "chunk size \(chunkSize)")
            #expect(seen.map(\.1) == Array(repeating: true, count: lines.count) + [false], "chunk size \(chunkSize)")
        }
    }

    @Test("a partial last line with no writer after it is reported as such")
    func partialTrailingLine() throws {
        let directory = try TemporaryDirectory()
        let path = try degradedSession(directory)
        let fallback = path + ".fallback.jsonl"
        let text = try String(contentsOfFile: fallback, encoding: .utf8)
        try (text + "{\"type\":\"event\",\"sess").write(toFile: fallback, atomically: false, encoding: .utf8)
        let store = try AuditStore(path: path)
        defer { store.close() }
        let report = try #require(try store.importFallback())
        #expect(report.partialTrailingLine)
        #expect(report.rejected == 1 && report.imported == 8)
        #expect(report.description.contains("partial"))
    }

    @Test("a session start that couldn't reach the database is imported and linked into the chain")
    func sessionStartInFallback() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        try store.createSession(sampleSession(id: "before"))
        var lost = sampleSession(id: "lost")
        lost.command = ["curl", "-H", "Authorization: Bearer secret-token-value"]
        try store.recordSessionStartInFallback(lost)
        let writer = AuditWriter(store: store, sessionID: "lost", warningHandler: { _ in })
        for index in 0..<4 { writer.record(sampleEvent(index)) }
        writer.finishSession(endTimeMicros: 99, exitStatus: 1)
        // The writer found the session missing, used the fallback file, and imported it at close.
        #expect(writer.isUsingFallback)
        #expect(writer.closeImport?.imported == 6)
        #expect(try store.session(id: "lost")?.command == ["curl", "-H", "Authorization: [REDACTED]"])
        #expect(try store.session(id: "lost")?.exitStatus == 1)
        #expect(try store.events(sessionID: "lost").count == 4)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.globalLinks == 3)
    }

    @Test("records both the database and the fallback file refuse at the end go to the spill file, imported next time")
    func spillWhenEverythingRefuses() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path, busyTimeoutMilliseconds: 50)
        defer { store.close() }
        try store.createSession(sampleSession())
        let spill = try #require(store.files.spill, "no spill directory here")
        // The database is locked, and the fallback file can't be written (a directory is in its place).
        var locker: OpaquePointer?
        #expect(sqlite3_open(path, &locker) == SQLITE_OK)
        #expect(sqlite3_exec(locker, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
        #expect(mkdir(store.fallbackPath, 0o700) == 0)
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 4, flushInterval: .milliseconds(1),
                                 warningHandler: { _ in })
        // More than are held in memory: the rest go to the spill file during the session.
        let count = AuditWriter.heldLimit + 10
        for index in 0..<count { writer.record(sampleEvent(index)) }
        writer.flush()
        #expect(writer.heldEventCount < AuditWriter.heldLimit)
        #expect(FileManager.default.fileExists(atPath: spill))
        writer.finishSession(endTimeMicros: 5, exitStatus: 0)
        #expect(writer.lostEventCount == 0)
        #expect(writer.lastErrorMessage?.contains(spill) == true, "\(writer.lastErrorMessage ?? "nil")")
        #expect(FileManager.default.fileExists(atPath: spill))
        // The next start: the database and the fallback file work again.
        sqlite3_exec(locker, "ROLLBACK", nil, nil, nil)
        sqlite3_close(locker)
        #expect(rmdir(store.fallbackPath) == 0)
        let report = try #require(try store.importFallback())
        #expect(report.imported == count + 1, "\(report)")
        #expect(!FileManager.default.fileExists(atPath: spill))
        #expect(try store.events(sessionID: "session-1").count == count)
        #expect(try store.verify().isValid)
    }

    @Test("a chain head the anchor file refuses goes beside the spill file, and the next import anchors it")
    func anchorSpilledWhenTheFileRefuses() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        let spill = try #require(store.files.anchorSpill, "no spill directory here")
        unlink(spill)
        defer { unlink(spill) }
        #expect(mkdir(store.files.anchors, 0o700) == 0)  // the anchor file can't be opened for writing
        let message = try #require(store.anchor(sessionID: "s-1", lastSeq: 7, headHash: "ab", keyID: nil))
        #expect(message.contains(spill) && message.contains("next start"), "\(message)")
        #expect(try AuditAnchors.read(path: spill)?.anchors.map(\.sessionID) == ["s-1"])
        // Still refused: the import leaves it where it is.
        _ = try store.importFallback()
        #expect(FileManager.default.fileExists(atPath: spill))
        #expect(rmdir(store.files.anchors) == 0)
        _ = try store.importFallback()
        #expect(!FileManager.default.fileExists(atPath: spill))
        let anchored = try #require(try AuditAnchors.read(path: store.files.anchors))
        #expect(anchored.anchors.map(\.sessionID) == ["s-1"] && anchored.anchors.first?.lastSeq == 7)
    }

    @Test("a torn anchor line (a full disk mid-write) doesn't take the next anchor with it")
    func tornAnchorLineIsEndedBeforeTheNext() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.anchors")
        let first = AuditAnchor(sessionID: "s-1", lastSeq: 3, headHash: "aa", timeMicros: 1, keyID: nil)
        let whole = AuditAnchors.line(first)
        try String(whole.prefix(20)).write(toFile: path, atomically: false, encoding: .utf8)
        try AuditAnchors.append(AuditAnchor(sessionID: "s-2", lastSeq: 5, headHash: "bb", timeMicros: 2, keyID: "k"), to: path)
        try AuditAnchors.append(AuditAnchor(sessionID: "s-3", lastSeq: 0, headHash: "cc", timeMicros: 3, keyID: nil), to: path)
        let read = try #require(try AuditAnchors.read(path: path))
        #expect(read.anchors.map(\.sessionID) == ["s-2", "s-3"] && read.malformedLines == [1], "\(read)")
        // A whole file is appended to as it was: no empty line between.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 4, "\(text)")
    }

    @Test("a locked database: the writer falls back at once, and the close imports once the lock is gone")
    func lockedDatabase() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path, busyTimeoutMilliseconds: 50)
        defer { store.close() }
        try store.createSession(sampleSession())
        // Another process holds the write lock.
        var locker: OpaquePointer?
        #expect(sqlite3_open(path, &locker) == SQLITE_OK)
        #expect(sqlite3_exec(locker, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
        // Premise: the database really can't be written now.
        let premise = #expect(throws: StoreError.self) { try store.insert(events: [sampleEvent(0)], sessionID: "session-1") }
        #expect(premise?.sqliteResultCode.map { $0 & 0xff } == SQLITE_BUSY)

        let warnings = WarningLog()
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 4, flushInterval: .milliseconds(1),
                                 warningHandler: warnings.handler)
        for index in 0..<10 { writer.record(sampleEvent(index)) }
        writer.flush()
        #expect(writer.isUsingFallback)
        #expect(writer.fallbackEventCount == 10)
        #expect(warnings.messages.count == 1)
        sqlite3_exec(locker, "ROLLBACK", nil, nil, nil)
        sqlite3_close(locker)
        writer.finishSession(endTimeMicros: 5, exitStatus: 0)
        #expect(writer.closeImport?.imported == 11)
        #expect(try store.events(sessionID: "session-1").count == 10)
        #expect(try store.verify().isValid)
    }
}

@Suite("Retention")
struct RetentionTests {
    @Test("clean removes old sessions with their rows; the chain still verifies from its anchor")
    func clean() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        // a, b end early; c is still running since long ago but active; d ended late.
        for (id, end) in [("a", Int64(100)), ("b", 200), ("c", nil), ("d", 5_000)] as [(String, Int64?)] {
            try store.createSession(sampleSession(id: id, startTimeMicros: 10))
            let writer = AuditWriter(store: store, sessionID: id)
            for index in 0..<5 { writer.record(sampleEvent(index)) }  // event times are far in the future
            writer.recordProcessStart(sampleProcess(pid: 1, argv: ["x"]))
            if let end { writer.finishSession(endTimeMicros: end, exitStatus: 0) } else { writer.close() }
        }
        let dry = try store.removeSessions(endedBefore: 1_000, dryRun: true)
        #expect(dry.sessionIDs == ["a", "b"] && dry.eventsRemoved == 10 && dry.retentionID == nil)
        #expect(try store.sessions().count == 4)

        let report = try store.removeSessions(endedBefore: 1_000)
        #expect(report.sessionIDs == ["a", "b"])
        #expect(report.eventsRemoved == 10 && report.processesRemoved == 2)
        #expect(try store.sessions().map(\.id) == ["c", "d"])
        #expect(try rawQuery(path, "SELECT count(*) FROM events WHERE session_id IN ('a', 'b')") == ["0"])
        let verified = try store.verify()
        #expect(verified.isValid, "\(verified.problems)")
        #expect(verified.sessionsVerified == 2)

        // Again, with everything ended: the chain is compacted to an anchor and still verifies.
        let writer = AuditWriter(store: store, sessionID: "c")
        writer.finishSession(endTimeMicros: 6_000, exitStatus: 0)
        let second = try store.removeSessions(endedBefore: 10_000)
        #expect(second.sessionIDs == ["c", "d"])
        let after = try store.verify()
        #expect(after.isValid, "\(after.problems)")
        #expect(after.anchorSeq != nil)
        // The anchor, and one pruned link between the two retention records.
        #expect(try rawQuery(path, "SELECT count(*) FROM session_chain WHERE pruned = 1") == ["2"])

        // New sessions chain on after the anchor; tampering is still caught.
        try store.createSession(sampleSession(id: "e"))
        #expect(try store.verify().isValid)
        try rawSQL(path, "UPDATE retention_log SET sessions = '[\"a\"]' WHERE id = 1")
        #expect(try store.verify().firstBrokenLink?.table == "retention_log")
    }
}
