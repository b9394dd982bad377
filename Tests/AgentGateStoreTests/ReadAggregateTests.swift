import Foundation
import Testing

@testable import AgentGateStore

/// An allowed read the writer aggregates.
private func read(_ path: String, pid: Int32, at offset: Int64, errno: Int32? = nil) -> DecisionEvent {
    var event = DecisionEvent(
        timeMicros: 1_700_000_000_000_000 + offset, pid: pid, ppid: 1, executable: "/usr/bin/cc1",
        syscall: "openat", action: .fsRead, target: path, decision: .allow, ruleIndex: 3, reason: "allowed",
        errno: errno, latencyMicros: 5)
    event.policySHA256 = String(repeating: "ab", count: 32)
    event.isAggregatedRead = true
    return event
}

private func process(_ pid: Int32, _ executable: String, at offset: Int64) -> ProcessRecord {
    ProcessRecord(pid: pid, ppid: 1, executable: executable, argv: [executable], uid: 0, gid: 0, capabilities: [],
                  cgroup: "/", startTimeMicros: 1_700_000_000_000_000 + offset)
}

@Suite("Allowed reads as aggregates (schema v8, v9)")
struct ReadAggregateTests {
    /// pid 10 reads stdio.h 3 times and a missing header once, pid 11 reads stdio.h twice; a
    /// write and a denied read in between stay rows of their own.
    private func recordSample(_ writer: AuditWriter) {
        writer.recordProcessStart(process(10, "/usr/bin/cc1", at: 0))
        writer.record(read("/usr/include/stdio.h", pid: 10, at: 10))
        writer.record(read("/usr/include/stdio.h", pid: 10, at: 20))
        writer.record(read("/nope/stdio.h", pid: 10, at: 25, errno: 2))
        writer.record(sampleEvent(7))  // a denial, index 7: its own row
        writer.record(read("/usr/include/stdio.h", pid: 11, at: 30))
        writer.record(read("/usr/include/stdio.h", pid: 10, at: 40))
        writer.record(read("/usr/include/stdio.h", pid: 11, at: 50))
    }

    @Test("reads aggregate per process and path, with the first read's time, and verify")
    func aggregates() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .seconds(60))
        recordSample(writer)
        writer.flush()
        let events = try store.events(sessionID: "session-1")
        let reads = events.filter { $0.event.readCount != nil }
        #expect(reads.count == 3)
        let stdio10 = reads.first { $0.event.pid == 10 && $0.event.target == "/usr/include/stdio.h" }
        #expect(stdio10?.event.readCount == 3)
        #expect(stdio10?.event.timeMicros == 1_700_000_000_000_010)
        #expect(stdio10?.event.lastReadMicros == 1_700_000_000_000_040)
        #expect(stdio10?.event.ruleIndex == 3)
        #expect(stdio10?.event.executable == "/usr/bin/cc1")
        #expect(stdio10?.event.policySHA256 == String(repeating: "ab", count: 32))
        let missing = reads.first { $0.event.target == "/nope/stdio.h" }
        #expect(missing?.event.readCount == 1 && missing?.event.errno == 2)
        #expect(reads.first { $0.event.pid == 11 }?.event.readCount == 2)
        // The denial is a row of its own, and the reads count in the session's account.
        #expect(events.filter { $0.event.readCount == nil }.map(\.event) == [sampleEvent(7)])
        let counts = try store.eventCounts(sessionID: "session-1")
        #expect(counts.first { $0.action == .fsRead && $0.decision == .allow }?.count == 6)
        // A filter by text finds the aggregate; one by decision deny doesn't.
        #expect(try store.events(matching: .init(sessionID: "session-1", text: "NOPE")).count == 1)
        #expect(try store.events(matching: .init(sessionID: "session-1", decision: .deny)).count == 1)
        writer.finishSession(endTimeMicros: 1_700_000_001_000_000, exitStatus: 0)
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.readSetsVerified == 1 && report.readEntriesVerified == 3)
    }

    @Test("an exec or exit flushes that process's reads first; close flushes the rest")
    func execAndExitFlush() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .seconds(60))
        writer.recordProcessStart(process(10, "/bin/sh", at: 0))
        writer.record(read("/etc/profile", pid: 10, at: 1))
        writer.record(read("/etc/passwd", pid: 12, at: 2))
        writer.recordProcessStart(process(10, "/usr/bin/make", at: 3))  // exec: sh's reads end here
        writer.record(read("/etc/profile", pid: 10, at: 4))
        writer.recordProcessExit(pid: 10, timeMicros: 1_700_000_000_000_005, exitStatus: 0)
        writer.finishSession(endTimeMicros: 1_700_000_001_000_000, exitStatus: 0)
        // Chain order: start sh, sh's reads, start make, make's reads, exit, then pid 12's at close.
        let sets = try rawQuery(path, "SELECT seq || ':' || entry_count FROM read_sets ORDER BY seq")
        #expect(sets == ["2:1", "4:1", "6:1"])
        #expect(try rawQuery(path, "SELECT exit_seq FROM processes WHERE executable = '/usr/bin/make'") == ["5"])
        #expect(try store.verify().isValid)
    }

    @Test("edited, removed or renamed entries break their set's link")
    func tamper() throws {
        for tampering in [
            "UPDATE read_entries SET count = count + 1 WHERE ordinal = 0",
            "DELETE FROM read_entries WHERE ordinal = 1",
            "UPDATE read_strings SET text = '/tmp/x' WHERE text = '/nope/stdio.h'",
            "UPDATE read_entries SET first_before = first_before + 5 WHERE ordinal = 0",
            // The continuing entry (pid 10's second path): its time step, or its process.
            "UPDATE read_entries SET first_before = first_before + 5 WHERE executable = 0",
            "UPDATE read_entries SET pid = 12 WHERE executable = 0",
            "UPDATE read_entries SET ppid = 7 WHERE executable = 0",
            "UPDATE read_entries SET pid = 0, ppid = 0, executable = 0 WHERE ordinal = 2",
            "UPDATE read_entries SET pid = 0, ppid = 0, executable = 0 WHERE ordinal = 0",
            "DELETE FROM read_sets",
        ] {
            let directory = try TemporaryDirectory()
            let path = directory.file("audit.db")
            let store = try AuditStore(path: path)
            try store.createSession(sampleSession())
            let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .seconds(60))
            recordSample(writer)
            writer.finishSession(endTimeMicros: 1_700_000_001_000_000, exitStatus: 0)
            #expect(try store.verify().isValid)
            store.close()
            try rawSQL(path, tampering)
            let reopened = try AuditStore(path: path)
            defer { reopened.close() }
            #expect(!(try reopened.verify().isValid), "\(tampering) went unnoticed")
        }
    }

    @Test("a process's entries after its first leave the process out (schema v9), and read back whole")
    func continuingEntries() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .seconds(60))
        // Interleaved in time, as two compilers' header reads are.
        for index in 0..<5 {
            writer.record(read("/usr/include/h\(index).h", pid: 10, at: Int64(100 * index)))
            writer.record(read("/usr/include/h\(index).h", pid: 11, at: Int64(100 * index + 7)))
        }
        writer.record(read("/usr/include/h0.h", pid: 10, at: 900))  // a second read: counted
        writer.finishSession(endTimeMicros: 1_700_000_001_000_000, exitStatus: 0)

        // One row per process names it; the other four continue it, with 0 for the process.
        #expect(try rawQuery(path, "SELECT count(*) FROM read_entries WHERE executable = 0 AND pid = 0 AND ppid = 0") == ["8"])
        #expect(try rawQuery(path, "SELECT pid FROM read_entries WHERE executable <> 0 ORDER BY ordinal") == ["10", "11"])
        let reads = try store.events(sessionID: "session-1").filter { $0.event.readCount != nil }
        #expect(reads.count == 10)
        for index in 0..<5 {
            for (pid, offset) in [(Int32(10), Int64(0)), (11, 7)] {
                let entry = reads.first { $0.event.pid == pid && $0.event.target == "/usr/include/h\(index).h" }?.event
                #expect(entry?.timeMicros == 1_700_000_000_000_000 + Int64(100 * index) + offset)
                #expect(entry?.ppid == 1 && entry?.executable == "/usr/bin/cc1")
                #expect(entry?.readCount == (pid == 10 && index == 0 ? 2 : 1))
                #expect(entry?.lastReadMicros == (pid == 10 && index == 0 ? 1_700_000_000_000_900 : entry?.timeMicros))
            }
        }
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.readEntriesVerified == 10)
    }

    @Test("a v8 database's read entries keep their meaning under v9, and still verify")
    func migrationFromV8() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        do {
            let store = try AuditStore(path: path)
            try store.createSession(sampleSession())
            let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .seconds(60))
            // One entry per process: every row names its process, as every v8 row did.
            for pid in Int32(10)..<Int32(14) { writer.record(read("/etc/p\(pid)", pid: pid, at: Int64(pid))) }
            writer.finishSession(endTimeMicros: 1_700_000_001_000_000, exitStatus: 0)
            store.close()
        }
        // v8 had the same tables; only the version says how to read the rows.
        try rawSQL(path, "PRAGMA user_version = 8;")
        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(try store.schemaVersion() == AuditSchema.currentVersion)
        #expect(try rawQuery(path, "SELECT count(*) FROM read_entries WHERE executable <> 0") == ["4"])
        let report = try store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.readEntriesVerified == 4)
        #expect(try store.events(sessionID: "session-1").filter { $0.event.readCount != nil }.map(\.event.pid).sorted() == [10, 11, 12, 13])
    }

    @Test("reads are flushed within a second without anyone asking, and when the map is full")
    func periodicAndBoundedFlush() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .milliseconds(10))
        defer { writer.close() }
        writer.record(read("/etc/hostname", pid: 10, at: 1))
        let started = Date()
        #expect(waitUntil(timeout: 5) { ((try? rawQuery(path, "SELECT count(*) FROM read_sets")) ?? []) == ["1"] })
        #expect(Date().timeIntervalSince(started) < 2.5)

        // A full map is flushed whole, before the periodic flush is due (an hour: the wait may
        // be long on a loaded machine).
        // Batches of one: the writer is woken when a record arrives after it drained the queue.
        // With larger batches, records left over after its last take (fewer than a batch) would
        // wait for the hourly tick, and the map would never fill: on a loaded machine the
        // writer's takes don't line up with the loop (a CI run on 2026-12-07 saw it).
        let slow = AuditWriter(store: store, sessionID: "session-1", batchSize: 1, flushInterval: .seconds(3600))
        for index in 0..<ReadAggregator.capacity { slow.record(read("/p/\(index)", pid: 20, at: Int64(index))) }
        #expect(waitUntil(timeout: 120) {
            ((try? rawQuery(path, "SELECT count(*) FROM read_entries")) ?? []) == ["\(ReadAggregator.capacity + 1)"]
        })
        slow.close()
    }

    @Test("read sets go to the fallback file when the database fails, and import back whole")
    func fallback() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .seconds(60),
                                 warningHandler: { _ in })
        writer.record(sampleEvent(1))
        writer.flush()
        store.close()
        recordSample(writer)
        writer.close()
        let lines = try String(contentsOfFile: writer.fallbackPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.contains { $0.contains("\"type\":\"read_set\"") })
        let reopened = try AuditStore(path: path)
        defer { reopened.close() }
        let report = try reopened.importFallback()
        #expect(report?.rejected == 0)
        let reads = try reopened.events(sessionID: "session-1").filter { $0.event.readCount != nil }
        #expect(reads.map(\.event.readCount).reduce(0) { $0 + ($1 ?? 0) } == 6)
        #expect(try reopened.verify().isValid)
        // A line whose entries don't match the digest its link covers is refused.
        let line = String(lines.first { $0.contains("\"type\":\"read_set\"") }!)
        #expect(FallbackRecord.parse(line) != nil)
        #expect(FallbackRecord.parse(line.replacingOccurrences(of: "\"count\":3", with: "\"count\":1")) == nil)
    }
}
