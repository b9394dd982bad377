import CSQLite
import Foundation
import Testing

@testable import AgentGateStore

@Suite("AuditStore")
struct AuditStoreTests {
    @Test("a writer that opens, inserts and closes without the closing checkpoint keeps the WAL small, and loses nothing")
    func shortLivedWritersKeepTheJournalSmall() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let limit = 64 << 10
        var largest = 0
        for index in 0..<300 {
            // As `agentgate hook` outside a session: a connection of its own each call.
            let store = try AuditStore(path: path)
            if index == 0 { try store.createSession(sampleSession()) }
            try store.insert(events: [sampleEvent(index + 1)], sessionID: "session-1")
            store.closeLeavingJournal(truncatingOver: limit)
            var status = stat()
            if stat(path + "-wal", &status) == 0 { largest = max(largest, Int(status.st_size)) }
        }
        // Each first connection rebuilt the WAL's index from the file; without the truncating
        // checkpoint the WAL only grew (about 4 KiB a call here).
        #expect(largest <= limit + (64 << 10), "the WAL reached \(largest) bytes")
        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(try store.verify().problems.isEmpty)
        #expect(try store.events(sessionID: "session-1").count == 300)
    }

    @Test("a session's chain head is found by index seeks, not by reading the session's events")
    func chainHeadIsAnIndexSeek() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        try store.createSession(sampleSession())
        try store.insert(events: (1...50).map { sampleEvent($0) }, sessionID: "session-1")
        try store.insert(events: [sampleEvent(51)], creatingIfAbsent: sampleSession())
        #expect(try store.chainHead(sessionID: "session-1").count == 51)
        store.close()
        var handle: OpaquePointer?
        #expect(sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY, nil) == SQLITE_OK)
        defer { sqlite3_close_v2(handle) }
        var statement: OpaquePointer?
        #expect(sqlite3_prepare_v2(handle, "EXPLAIN QUERY PLAN " + AuditStore.chainHeadSQL, -1, &statement, nil) == SQLITE_OK)
        defer { sqlite3_finalize(statement) }
        var plan: [String] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            plan.append(sqlite3_column_text(statement, 3).map { String(cString: $0) } ?? "")
        }
        // A scan of the session's events (events_by_session) grew with every tool call a hook recorded.
        #expect(plan.contains { $0.contains("SEARCH events USING INDEX events_by_session_seq") }, "\(plan)")
        #expect(!plan.contains { $0.contains("events_by_session ") || $0.hasSuffix("events_by_session (session_id=?)") }, "\(plan)")
    }

    @Test("a new database gets the schema, WAL and the current version")
    func schemaCreation() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("nested/deeper/audit.db")
        let store = try AuditStore(path: path)
        #expect(try store.schemaVersion() == AuditSchema.currentVersion)
        try store.createSession(sampleSession())

        // Missing parents were created private, and so were the database and its WAL.
        var info = stat()
        #expect(stat(directory.file("nested/deeper"), &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        for file in [path, path + "-wal"] {
            #expect(stat(file, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600, "mode of \(file)")
        }
        store.close()

        // Inspect the file with plain SQLite.
        var handle: OpaquePointer?
        #expect(sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY, nil) == SQLITE_OK)
        defer { sqlite3_close_v2(handle) }
        func strings(_ sql: String) -> [String] {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { return [] }
            defer { sqlite3_finalize(statement) }
            var rows: [String] = []
            while sqlite3_step(statement) == SQLITE_ROW {
                rows.append(sqlite3_column_text(statement, 0).map { String(cString: $0) } ?? "NULL")
            }
            return rows
        }
        #expect(strings("PRAGMA journal_mode") == ["wal"])
        #expect(
            strings("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                == ["events", "processes", "read_entries", "read_sets", "read_strings", "retention_log", "session_chain", "sessions"])
        #expect(
            strings("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                == ["events_by_session", "events_by_session_seq", "processes_by_pid", "processes_by_session_seq", "read_sets_by_session",
                    "session_chain_by_session"])
        #expect(
            strings("SELECT name FROM pragma_table_info('events') ORDER BY cid") == [
                "id", "session_id", "time", "pid", "ppid", "executable", "syscall", "action", "target",
                "argv", "decision", "rule_index", "reason", "errno", "latency_us",
                "seq", "rule_id", "intent", "notable", "enforced", "hash", "policy_sha256",
                "answered_via", "answered_by", "source",
            ])
        #expect(
            strings("SELECT name FROM pragma_table_info('sessions') ORDER BY cid") == [
                "id", "agent", "command", "cwd", "policy_path", "policy_sha256", "start_time", "end_time",
                "exit_status", "mode", "context", "chain_version", "link_count", "last_hash",
                "unit", "unit_cgroup", "invocation_id", "key_id",
            ])
        #expect(
            strings("SELECT name FROM pragma_table_info('processes') ORDER BY cid") == [
                "id", "session_id", "pid", "ppid", "executable", "argv", "uid", "gid", "capabilities", "cgroup",
                "start_time", "start_seq", "start_hash", "exit_time", "exit_status", "exit_seq", "exit_hash",
            ])
        #expect(strings("SELECT \"table\" FROM pragma_foreign_key_list('processes')") == ["sessions"])
        #expect(strings("SELECT \"table\" FROM pragma_foreign_key_list('events')") == ["sessions"])
    }

    @Test("sessions round-trip through create and finish")
    func sessionRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }

        let first = sampleSession(id: "a", startTimeMicros: 100)
        var second = sampleSession(id: "b", startTimeMicros: 200)
        second.command = []
        second.agent = "codex ✓"
        try store.createSession(second)
        try store.createSession(first)
        #expect(try store.sessions() == [first, second])

        try store.finishSession(id: "a", endTimeMicros: 150, exitStatus: -9)
        var finished = first
        finished.endTimeMicros = 150
        finished.exitStatus = -9
        #expect(try store.sessions() == [finished, second])
    }

    @Test("duplicate sessions and unknown session ids are clear errors")
    func sessionErrors() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())

        let duplicate = #expect(throws: StoreError.self) { try store.createSession(sampleSession()) }
        #expect(duplicate?.code == .constraintViolation)

        let missing = #expect(throws: StoreError.self) {
            try store.finishSession(id: "nope", endTimeMicros: 1, exitStatus: 0)
        }
        #expect(missing?.code == .notFound)
        #expect(missing?.description.contains("nope") == true)

        let orphan = #expect(throws: StoreError.self) {
            try store.insert(events: [sampleEvent(0)], sessionID: "nope")
        }
        #expect(orphan?.code == .constraintViolation)
        // The failed batch left nothing behind.
        #expect(try store.events(sessionID: nil).isEmpty)
    }

    @Test("events round-trip: nil vs empty vs full argv, unicode, nil rule and errno")
    func eventsRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession(id: "s1"))
        try store.createSession(sampleSession(id: "s2"))

        let exec = DecisionEvent(
            timeMicros: 1, pid: 10, ppid: 9, executable: "/usr/bin/env", syscall: "execve", action: .exec,
            target: "/usr/bin/grép", argv: ["grép", "-e", "\"quoted\" \\ back\nslash\ttab\u{01}", "日本語 🚀", ""],
            decision: .allow, ruleIndex: 0, reason: "rule 0: allow exec", errno: nil, latencyMicros: 12)
        let emptyArgv = DecisionEvent(
            timeMicros: 2, pid: 11, ppid: 10, executable: "/bin/sh", syscall: "execveat", action: .exec,
            target: "", argv: [], decision: .deny, ruleIndex: nil, reason: "", errno: 1, latencyMicros: 0)
        let noArgv = DecisionEvent(
            timeMicros: 3, pid: Int32.max, ppid: Int32.min, executable: "/bin/ünïcode", syscall: "connect",
            action: .netEgress, target: "example.com:443", argv: nil, decision: .deny, ruleIndex: nil,
            reason: "default deny — no rule matched", errno: 111, latencyMicros: Int64.max)
        try store.insert(events: [exec, emptyArgv], sessionID: "s1")
        try store.insert(events: [noArgv], sessionID: "s2")
        try store.insert(events: [], sessionID: "s2")

        let all = try store.events(sessionID: nil)
        #expect(all.map(\.event) == [exec, emptyArgv, noArgv])
        #expect(all.map(\.sessionID) == ["s1", "s1", "s2"])
        #expect(all.map(\.id) == all.map(\.id).sorted())
        #expect(Set(all.map(\.id)).count == 3)

        #expect(try store.events(sessionID: "s1").map(\.event) == [exec, emptyArgv])
        #expect(try store.events(sessionID: "s2").map(\.event) == [noArgv])
        #expect(try store.events(sessionID: "unknown").isEmpty)
    }

    @Test("re-opening an existing database keeps its data and doesn't re-migrate")
    func reopen() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        do {
            let store = try AuditStore(path: path)
            try store.createSession(sampleSession())
            try store.insert(events: (0..<10).map { sampleEvent($0) }, sessionID: "session-1")
            store.close()
        }
        for _ in 0..<3 {
            let store = try AuditStore(path: path)
            #expect(try store.schemaVersion() == AuditSchema.currentVersion)
            #expect(try store.sessions() == [sampleSession()])
            #expect(try store.events(sessionID: "session-1").map(\.event) == (0..<10).map { sampleEvent($0) })
            store.close()
        }
    }

    @Test("two stores open on one file at once (WAL, busy timeout)")
    func twoConnections() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let first = try AuditStore(path: path)
        let second = try AuditStore(path: path)
        defer {
            first.close()
            second.close()
        }
        try first.createSession(sampleSession())
        try second.insert(events: [sampleEvent(1)], sessionID: "session-1")
        #expect(try first.events(sessionID: nil).count == 1)
    }

    @Test("a database from a newer build is refused")
    func schemaTooNew() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        var handle: OpaquePointer?
        #expect(sqlite3_open(path, &handle) == SQLITE_OK)
        #expect(sqlite3_exec(handle, "PRAGMA user_version = 999", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(handle)

        let error = #expect(throws: StoreError.self) { try AuditStore(path: path) }
        #expect(error?.code == .schemaTooNew)
        #expect(error?.description.contains("999") == true)
    }

    @Test("a path under a regular file is a clear error, not a crash")
    func parentIsRegularFile() throws {
        let directory = try TemporaryDirectory()
        let blocker = directory.file("not-a-directory")
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
        let path = blocker + "/sub/audit.db"

        let error = #expect(throws: StoreError.self) { try AuditStore(path: path) }
        #expect(error?.code == .cannotCreateDirectory)
        #expect(error?.systemErrno == ENOTDIR)
        #expect(error?.path == path)
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("Not a directory") == true)
    }

    @Test("a file directly under a regular file is a clear error")
    func fileUnderRegularFile() throws {
        let directory = try TemporaryDirectory()
        let blocker = directory.file("plain")
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data()))
        let path = blocker + "/audit.db"
        let error = #expect(throws: StoreError.self) { try AuditStore(path: path) }
        #expect(error?.code == .cannotCreateDirectory)
        #expect(error?.description.contains(path) == true)
    }

    @Test("unwritable places under /proc are clear errors", arguments: [
        "/proc/agentgate-test/audit.db", "/proc/self/audit.db",
    ])
    func procPaths(path: String) throws {
        let error = #expect(throws: StoreError.self) { try AuditStore(path: path) }
        #expect(error?.path == path)
        #expect(error?.description.contains(path) == true)
        #expect(error.map { [.cannotCreateDirectory, .cannotOpen, .readOnly].contains($0.code) } == true)
    }

    @Test("an empty path is refused rather than opening a temporary database")
    func emptyPath() {
        let error = #expect(throws: StoreError.self) { try AuditStore(path: "") }
        #expect(error?.code == .cannotOpen)
    }

    @Test("a directory where the database should be is a clear error")
    func pathIsDirectory() throws {
        let directory = try TemporaryDirectory()
        let error = #expect(throws: StoreError.self) { try AuditStore(path: directory.path) }
        #expect(error?.code == .cannotOpen)
        #expect(error?.sqliteResultCode != nil)
    }

    @Test("calls after close throw .closed; close is idempotent")
    func closed() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        store.close()
        store.close()
        let error = #expect(throws: StoreError.self) { try store.sessions() }
        #expect(error?.code == .closed)
    }

    @Test("SHA256Hex matches the FIPS 180-2 vectors")
    func sha256() {
        #expect(SHA256Hex.digest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Hex.digest([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Hex.digest("abc".utf8) == SHA256Hex.digest(Array("abc".utf8)))
    }

    @Test("JSON encoding escapes what RFC 8259 requires and decodes back")
    func jsonArray() {
        let strings = ["plain", "\"q\"", "back\\slash", "line\nbreak", "\u{00}\u{1f}", "é🚀", ""]
        let encoded = AuditJSON.encode(strings)
        #expect(encoded.contains("\\u0000\\u001f"))
        #expect(AuditJSON.decodeStringArray(encoded) == strings)
        #expect(AuditJSON.encode([]) == "[]")
    }
}
