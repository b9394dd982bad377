import CSQLite
import Foundation
import Testing

@testable import AgentGateStore

@Suite("Session lifecycle")
struct AuditSessionTests {
    @Test("a session begins, records through its writer, and finishes with its end in the chain")
    func beginAndFinish() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path)
        #expect(AuditSession.importEarlierRecords(into: store) == nil)  // no fallback file: nothing to say
        let session = try AuditSession.begin(sampleSession(), in: store)
        #expect(session.startFallbackReason == nil)
        for index in 0..<5 { session.writer.record(sampleEvent(index)) }
        #expect(session.finish(exitStatus: 3) == nil)
        #expect(throws: StoreError.self) { try store.sessions() }  // finish closes the store
        let reopened = try AuditStore(path: path)
        defer { reopened.close() }
        #expect(try reopened.session(id: "session-1")?.exitStatus == 3)
        #expect(try reopened.events(sessionID: "session-1").count == 5)
        #expect(try reopened.verify().isValid)
    }

    @Test("a second session with the same id is refused before anything is recorded")
    func duplicateSession() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        try store.createSession(sampleSession())
        #expect {
            _ = try AuditSession.begin(sampleSession(), in: store)
        } throws: { error in
            guard case AuditSession.BeginError.duplicateSession(let id) = error else { return false }
            return id == "session-1"
        }
        #expect(!FileManager.default.fileExists(atPath: store.fallbackPath))
    }

    @Test("a database that refuses the session: its start goes to the fallback file, and is imported at the end")
    func lockedDatabaseFallsBack() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        let store = try AuditStore(path: path, busyTimeoutMilliseconds: 50)
        // Another process holds the write lock.
        var locker: OpaquePointer?
        #expect(sqlite3_open(path, &locker) == SQLITE_OK)
        #expect(sqlite3_exec(locker, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
        let session = try AuditSession.begin(sampleSession(), in: store)
        #expect(session.startFallbackReason != nil)
        #expect(FileManager.default.fileExists(atPath: store.fallbackPath))
        for index in 0..<3 { session.writer.record(sampleEvent(index)) }
        sqlite3_exec(locker, "ROLLBACK", nil, nil, nil)
        sqlite3_close(locker)
        // The writer imported the fallback file at close, and says so.
        let message = session.finish(exitStatus: 0)
        #expect(message?.contains("imported at close") == true, "\(message ?? "nil")")
        #expect(session.writer.closeImport != nil)
        let reopened = try AuditStore(path: path)
        defer { reopened.close() }
        #expect(try reopened.events(sessionID: "session-1").count == 3)
        #expect(try reopened.verify().isValid)
    }

    @Test("records an earlier session left in the fallback file are imported, and said so")
    func importsEarlierRecords() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("audit.db")
        try StoredFormatTests.expectedFallback.write(toFile: path + ".fallback.jsonl", atomically: false, encoding: .utf8)
        let store = try AuditStore(path: path)
        defer { store.close() }
        #expect(AuditSession.importEarlierRecords(into: store) == "imported 7 audit records from \(path).fallback.jsonl")
        #expect(!FileManager.default.fileExists(atPath: store.fallbackPath))
    }

    @Test("a database's files are the database, SQLite's journals, the fallback file, the key, the anchors and the spill file")
    func databaseFiles() {
        let files = AuditDatabaseFiles(databasePath: "/d/audit.db")
        #expect(files.all == ["/d/audit.db", "/d/audit.db-wal", "/d/audit.db-shm", "/d/audit.db-journal",
                              "/d/audit.db.fallback.jsonl", "/d/audit.db.key", "/d/audit.db.anchors",
                              "/d/audit.db.fallback.rejected.jsonl", "/d/audit.db.fallback.rejected.jsonl.pending"]
                             + [files.spill, files.anchorSpill].compactMap { $0 })
        // Named for the database, in a directory of the user's own.
        if let spill = files.spill {
            #expect(spill.hasSuffix(".jsonl") && spill != AuditDatabaseFiles(databasePath: "/e/audit.db").spill)
        }
        #expect(files.key == "/d/audit.db.key" && files.anchors == "/d/audit.db.anchors")
        #expect(files.fallback == "/d/audit.db.fallback.jsonl")
        #expect(files.fallbackRejected == "/d/audit.db.fallback.rejected.jsonl")
    }
}

@Suite("Path resolution")
struct FilePathsTests {
    @Test("symlinks resolve whole when the path exists, by directory when the file is still to be made")
    func resolution() throws {
        let directory = try TemporaryDirectory()
        let real = FilePaths.resolved(directory.path)
        try FileManager.default.createDirectory(atPath: directory.file("real"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: directory.file("link"), withDestinationPath: directory.file("real"))
        #expect(FilePaths.resolved(directory.file("link")) == real + "/real")
        #expect(FilePaths.resolved(directory.file("missing/x")) == directory.file("missing/x"))
        #expect(FilePaths.resolvedDirectory(of: directory.file("link/new.txt")) == real + "/real/new.txt")
        #expect(FilePaths.resolvedExisting(directory.file("link/a/b")) == real + "/real/a/b")
    }
}
