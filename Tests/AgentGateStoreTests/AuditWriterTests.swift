import Dispatch
import Foundation
import Testing

@testable import AgentGateStore

@Suite("AuditWriter")
struct AuditWriterTests {
    @Test("10,000 events recorded from 2 threads are all present after close")
    func concurrentRecordKeepsEverything() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 64, flushInterval: .milliseconds(5))

        let perThread = 5_000
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            for index in 0..<perThread {
                writer.record(sampleEvent(index, pid: Int32(thread + 1)))
            }
        }
        writer.close()
        writer.close()  // idempotent

        let stored = try store.events(sessionID: "session-1")
        #expect(stored.count == 2 * perThread)
        #expect(writer.writeErrors == 0)
        #expect(writer.lostEventCount == 0)
        #expect(writer.lastErrorMessage == nil)
        for pid in [Int32(1), 2] {
            // Each thread's events arrive complete and in its own order.
            let ofThread = stored.filter { $0.event.pid == pid }.map(\.event)
            #expect(ofThread == (0..<perThread).map { sampleEvent($0, pid: pid) })
        }
    }

    @Test("flush commits everything recorded before it, without closing")
    func flushCommits() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        // A long interval and big batch: only flush can get these written in time.
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 10_000, flushInterval: .seconds(60))
        defer { writer.close() }

        for index in 0..<100 { writer.record(sampleEvent(index)) }
        writer.flush()
        #expect(try store.events(sessionID: nil).count == 100)

        writer.flush()  // nothing new: returns at once
        for index in 100..<150 { writer.record(sampleEvent(index)) }
        writer.flush()
        #expect(try store.events(sessionID: nil).map(\.event) == (0..<150).map { sampleEvent($0) })
    }

    @Test("the flush interval writes without anyone asking")
    func intervalWrites() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", batchSize: 10_000, flushInterval: .milliseconds(10))
        defer { writer.close() }

        writer.record(sampleEvent(1))
        var found = 0
        waitUntil(timeout: 5) {
            found = (try? store.events(sessionID: nil).count) ?? 0
            return found > 0
        }
        #expect(found == 1)
    }

    @Test("events the database refuses go to the JSONL fallback at once, with one warning, never silently dropped")
    func fallbackWhenDatabaseFails() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        try store.createSession(sampleSession())
        let warnings = WarningLog()
        let writer = AuditWriter(
            store: store, sessionID: "session-1", batchSize: 4, flushInterval: .milliseconds(5),
            warningHandler: warnings.handler)

        for index in 0..<3 { writer.record(sampleEvent(index)) }
        writer.flush()
        store.close()  // from now on every insert fails with .closed
        var argvEvent = sampleEvent(3)
        argvEvent.argv = ["sh", "-c", "echo \"hi\"", "--token=hunter2"]
        writer.record(argvEvent)
        writer.flush()
        for index in 4..<10 { writer.record(sampleEvent(index)) }
        writer.flush()
        // Promptly, not only at close: the fallback file already holds all 7.
        #expect(writer.writeErrors == 1)
        #expect(writer.isUsingFallback)
        #expect(writer.heldEventCount == 0)
        #expect(writer.fallbackEventCount == 7)
        #expect(writer.lastErrorMessage?.contains("closed") == true)
        #expect(warnings.messages.count == 1, "one warning, not one per batch: \(warnings.messages)")
        #expect(warnings.messages.first?.contains(writer.fallbackPath) == true)
        #expect(FileManager.default.fileExists(atPath: writer.fallbackPath))
        writer.close()

        #expect(writer.fallbackPath == path + ".fallback.jsonl")
        #expect(writer.fallbackEventCount == 7)
        #expect(writer.lostEventCount == 0)
        #expect(writer.lastErrorMessage?.contains(writer.fallbackPath) == true)

        let lines = try String(contentsOfFile: writer.fallbackPath, encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect(first?["type"] as? String == "event")
        #expect(first?["session_id"] as? String == "session-1")
        #expect(first?["seq"] as? Int64 == 4)
        #expect((first?["hash"] as? String)?.count == 64)
        // Redacted before it reached the file.
        #expect(first?["argv"] as? [String] == ["sh", "-c", "echo \"hi\"", "--token=[REDACTED]"])
        #expect(!lines[0].contains("hunter2"))
        #expect(first?["time"] as? Int64 == argvEvent.timeMicros)
        #expect(first?["errno"] is NSNull)

        // The next open imports them, and the chain verifies.
        let reopened = try AuditStore(path: path)
        defer { reopened.close() }
        #expect(try reopened.events(sessionID: nil).count == 3)
        let report = try reopened.importFallback()
        #expect(report?.imported == 7)
        #expect(try reopened.events(sessionID: nil).count == 10)
        #expect(try reopened.verify().isValid)
        #expect(!FileManager.default.fileExists(atPath: writer.fallbackPath))
    }

    @Test("a batch refused for a while goes to the fallback file, and is imported at close once the database takes it")
    func refusedBatchImportedAtClose() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        defer { store.close() }
        let warnings = WarningLog()
        // The session doesn't exist yet, so inserts fail on the foreign key...
        let writer = AuditWriter(
            store: store, sessionID: "late", batchSize: 512, flushInterval: .milliseconds(5),
            warningHandler: warnings.handler)
        for index in 0..<5 { writer.record(sampleEvent(index)) }
        writer.flush()
        #expect(writer.writeErrors == 1)
        #expect(writer.fallbackEventCount == 5)
        // ...until it does; close imports the fallback file.
        try store.createSession(sampleSession(id: "late"))
        writer.finishSession(endTimeMicros: 1_700_000_000_100_000, exitStatus: 0)
        #expect(try store.events(sessionID: "late").count == 5)
        #expect(writer.closeImport?.imported == 6)  // 5 events and the session end
        #expect(writer.lostEventCount == 0)
        #expect(!FileManager.default.fileExists(atPath: writer.fallbackPath))
        #expect(try store.session(id: "late")?.exitStatus == 0)
        #expect(try store.verify().isValid)
    }

    @Test("events recorded after close are counted as lost, not written")
    func recordAfterClose() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1")
        writer.record(sampleEvent(0))
        writer.close()
        writer.record(sampleEvent(1))
        writer.flush()  // after close: returns at once
        #expect(writer.lostEventCount == 1)
        #expect(try store.events(sessionID: nil).count == 1)
    }

    @Test("dropping the last reference closes the writer and writes its events")
    func deinitCloses() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        do {
            let writer = AuditWriter(store: store, sessionID: "session-1", flushInterval: .seconds(60))
            for index in 0..<10 { writer.record(sampleEvent(index)) }
        }
        #expect(try store.events(sessionID: nil).count == 10)
    }

    @Test("close from several threads at once: all return, nothing lost")
    func concurrentClose() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        let writer = AuditWriter(store: store, sessionID: "session-1", flushInterval: .seconds(60))
        for index in 0..<1_000 { writer.record(sampleEvent(index)) }
        DispatchQueue.concurrentPerform(iterations: 4) { _ in writer.close() }
        #expect(try store.events(sessionID: nil).count == 1_000)
    }

    @Test("throughput: 50,000 events through the writer (prints the rate)")
    func throughput() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        let count = 50_000
        let events = (0..<count).map { sampleEvent($0) }

        let writer = AuditWriter(store: store, sessionID: "session-1")
        let clock = ContinuousClock()
        let start = clock.now
        for event in events { writer.record(event) }
        let recorded = clock.now
        writer.close()
        let elapsed = clock.now - start

        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let recordSeconds = Double((recorded - start).components.attoseconds) / 1e18
            + Double((recorded - start).components.seconds)
        print(
            "AuditWriter throughput: \(count) events in \(String(format: "%.3f", seconds)) s = "
                + "\(Int(Double(count) / seconds)) events/s (record() alone: "
                + "\(Int(recordSeconds / Double(count) * 1e9)) ns/event)")

        // Direct batched inserts, for comparison.
        let direct = try AuditStore(path: directory.file("direct.db"))
        defer { direct.close() }
        try direct.createSession(sampleSession())
        let directStart = clock.now
        var offset = 0
        while offset < count {
            try direct.insert(events: Array(events[offset..<min(offset + 512, count)]), sessionID: "session-1")
            offset += 512
        }
        let directElapsed = clock.now - directStart
        let directSeconds = Double(directElapsed.components.seconds) + Double(directElapsed.components.attoseconds) / 1e18
        print("AuditStore.insert throughput (512/batch): \(Int(Double(count) / directSeconds)) events/s")

        #expect(try store.events(sessionID: nil).count == count)
    }
}
