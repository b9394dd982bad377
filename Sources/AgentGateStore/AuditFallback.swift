#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The JSONL fallback file, `<database>.fallback.jsonl`: where records go when the database
/// can't be written (disk full, read-only, locked past the busy timeout), one JSON object per
/// line, each with a `type` (see docs/audit-schema.md, "Fallback file"). Records carry their
/// chain position and hash, so they verify once imported.
///
/// Writers and the importer serialize on `flock` of the file. An importer removes the file
/// after its transaction commits, so an appender re-checks, once it holds the lock, that the
/// path still names the file it opened.
enum AuditFallbackFile {
    /// Appends `text` (whole lines) to `path`, created 0600 if missing. If the file ends in a
    /// partial line (a writer crashed mid-write), a newline is written first, so the partial
    /// line stays a line of its own (rejected at import) instead of corrupting this one.
    static func append(_ text: String, to path: String) throws(StoreError) {
        for _ in 0..<16 {
            let descriptor = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw failure("opening the fallback file failed", path: path)
            }
            defer { close(descriptor) }
            guard lock(descriptor) else { throw failure("locking the fallback file failed", path: path) }
            var opened = stat()
            var named = stat()
            guard fstat(descriptor, &opened) == 0 else { throw failure("stat of the fallback file failed", path: path) }
            // An importer removed (or replaced) the file while we waited for the lock: start over.
            guard stat(path, &named) == 0, named.st_ino == opened.st_ino, named.st_dev == opened.st_dev else { continue }
            var bytes: [UInt8] = []
            if opened.st_size > 0 {
                var last: UInt8 = 0
                if pread(descriptor, &last, 1, opened.st_size - 1) == 1, last != UInt8(ascii: "\n") {
                    bytes.append(UInt8(ascii: "\n"))
                }
            }
            bytes.append(contentsOf: text.utf8)
            try writeAll(descriptor, bytes, path: path)
            guard fsync(descriptor) == 0 else { throw failure("syncing the fallback file failed", path: path) }
            return
        }
        throw StoreError(code: .fallbackWriteFailed, path: path, message: "the fallback file kept being replaced while appending")
    }

    private static func lock(_ descriptor: Int32) -> Bool {
        while flock(descriptor, LOCK_EX) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws(StoreError) {
        let result: Int32? = bytes.withUnsafeBytes { buffer -> Int32? in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress?.advanced(by: offset), buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let result {
            throw StoreError(code: .fallbackWriteFailed, path: path, message: "writing the fallback file failed", systemErrno: result)
        }
    }

    private static func failure(_ message: String, path: String) -> StoreError {
        StoreError(code: .fallbackWriteFailed, path: path, message: message, systemErrno: errno)
    }

    /// Runs `body` with the file's contents while holding its lock; `body` returns whether to
    /// remove the file (still under the lock). nil when there is no file.
    static func withLockedContents<T>(
        _ path: String, _ body: ([UInt8]) throws(StoreError) -> (result: T, remove: Bool)
    ) throws(StoreError) -> T? {
        for _ in 0..<16 {
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            if descriptor < 0 {
                if errno == ENOENT { return nil }
                throw StoreError(code: .cannotOpen, path: path, message: "opening the fallback file for import failed", systemErrno: errno)
            }
            defer { close(descriptor) }
            guard lock(descriptor) else {
                throw StoreError(code: .sqlite, path: path, message: "locking the fallback file failed", systemErrno: errno)
            }
            var opened = stat()
            var named = stat()
            guard fstat(descriptor, &opened) == 0 else {
                throw StoreError(code: .sqlite, path: path, message: "stat of the fallback file failed", systemErrno: errno)
            }
            guard stat(path, &named) == 0, named.st_ino == opened.st_ino, named.st_dev == opened.st_dev else { continue }
            var contents: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            var offset: off_t = 0
            while true {
                let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw StoreError(code: .sqlite, path: path, message: "reading the fallback file failed", systemErrno: errno)
                }
                if count == 0 { break }
                contents.append(contentsOf: buffer[0..<count])
                offset += off_t(count)
            }
            let (result, remove) = try body(contents)
            if remove && unlink(path) != 0 {
                throw StoreError(code: .sqlite, path: path, message: "removing the imported fallback file failed", systemErrno: errno)
            }
            return result
        }
        throw StoreError(code: .sqlite, path: path, message: "the fallback file kept being replaced during import")
    }
}

/// What `AuditStore.importFallback()` did.
public struct FallbackImportReport: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    /// Records newly stored (events, process starts and exits, session starts and ends).
    public var imported = 0
    /// Records that were already in the database (an earlier, interrupted import).
    public var duplicates = 0
    /// Lines that couldn't be imported (unparseable, unknown session, conflicting), kept in
    /// `rejectedPath` with the reason.
    public var rejected = 0
    /// The file ended in a partial line (a writer crashed mid-write); it was rejected too.
    public var partialTrailingLine = false
    public var rejectedPath: String

    public var description: String {
        var text = "imported \(imported) audit records from \(path)"
        if duplicates > 0 { text += " (\(duplicates) already present)" }
        if rejected > 0 {
            text += "; \(rejected) lines could not be imported and were kept in \(rejectedPath)"
            if partialTrailingLine { text += " (including a partial last line from an interrupted write)" }
        }
        return text
    }
}

extension AuditStore {
    /// Where lines the import could not use are kept, each with the reason.
    public var fallbackRejectedPath: String { path + ".fallback.rejected.jsonl" }

    /// Imports `fallbackPath` into the database in one transaction, then removes the file.
    /// Idempotent: records already present (same chain position and hash) are skipped, so an
    /// import interrupted after its commit imports nothing twice. Unusable lines (malformed,
    /// a partial last line, an unknown session, a conflicting record) are kept in
    /// `fallbackRejectedPath` with the reason, never dropped.
    /// - Returns: nil when there is no fallback file.
    /// - Throws: when the database still can't be written; the file is then left as it is.
    @discardableResult
    public func importFallback() throws(StoreError) -> FallbackImportReport? {
        let rejectedPath = fallbackRejectedPath
        return try AuditFallbackFile.withLockedContents(fallbackPath) { (contents) throws(StoreError) -> (result: FallbackImportReport, remove: Bool) in
            var report = FallbackImportReport(path: fallbackPath, rejectedPath: rejectedPath)
            var lines = contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            var rejectedLines: [(line: String, reason: String)] = []
            if let last = lines.last, last.isEmpty {
                lines.removeLast()
            } else if let last = lines.popLast() {
                report.partialTrailingLine = true
                rejectedLines.append((String(decoding: last, as: UTF8.self), "partial last line (a write was interrupted)"))
            }
            let records: [(line: String, record: FallbackRecord?)] = lines.compactMap { bytes in
                let line = String(decoding: bytes, as: UTF8.self)
                if line.allSatisfy({ $0 == " " || $0 == "\r" }) { return nil }
                return (line, FallbackRecord.parse(line))
            }
            var presence = FallbackPresence(records: records.compactMap(\.record))
            try withConnection { connection throws(StoreError) in
                try connection.inTransaction { () throws(StoreError) in
                    var knownSessions = Set<String>()
                    func sessionExists(_ id: String) throws(StoreError) -> Bool {
                        if knownSessions.contains(id) { return true }
                        let statement = try connection.statement("SELECT 1 FROM sessions WHERE id = ?")
                        defer { statement.reset() }
                        try statement.bind(1, id)
                        let exists = try statement.step()
                        if exists { knownSessions.insert(id) }
                        return exists
                    }
                    for (line, record) in records {
                        guard let record else {
                            rejectedLines.append((line, "not a fallback record"))
                            continue
                        }
                        switch record {
                        case .sessionStart(let columns):
                            if try Self.insertSessionStart(columns, connection: connection, linkTime: AuditClock.nowMicros(), ifAbsent: true) {
                                report.imported += 1
                            } else {
                                report.duplicates += 1
                            }
                            knownSessions.insert(columns.id)
                        case .sessionEnd(let columns):
                            do throws(StoreError) {
                                if try Self.insertSessionEnd(columns, connection: connection, linkTime: AuditClock.nowMicros(), ifOpen: true) {
                                    report.imported += 1
                                } else {
                                    report.duplicates += 1
                                }
                            } catch {
                                guard error.code == .notFound || error.code == .constraintViolation else { throw error }
                                rejectedLines.append((line, error.message))
                            }
                        case .row(let row, let sessionID):
                            guard try sessionExists(sessionID) else {
                                rejectedLines.append((line, "unknown session \(sessionID)"))
                                continue
                            }
                            switch try presence.of(row, sessionID: sessionID, connection: connection) {
                            case .absent:
                                try Self.insertRows([row], connection: connection)
                                presence.inserted(row, sessionID: sessionID)
                                report.imported += 1
                            case .duplicate:
                                report.duplicates += 1
                            case .conflict(let reason):
                                rejectedLines.append((line, reason))
                            }
                        case .legacyEvent(let event, let sessionID):
                            guard try sessionExists(sessionID) else {
                                rejectedLines.append((line, "unknown session \(sessionID)"))
                                continue
                            }
                            try Self.insertLegacyEvent(event, sessionID: sessionID, connection: connection)
                            report.imported += 1
                        }
                    }
                }
            }
            report.rejected = rejectedLines.count
            if !rejectedLines.isEmpty {
                var text = ""
                for (line, reason) in rejectedLines {
                    text += "{\"reason\":"
                    AuditJSON.appendQuoted(reason, to: &text)
                    text += ",\"line\":"
                    AuditJSON.appendQuoted(line, to: &text)
                    text += "}\n"
                }
                // Keep the fallback file if the rejects can't be saved: a later import is a no-op
                // for what was imported, and tries the rest again.
                do {
                    try AuditFallbackFile.append(text, to: rejectedPath)
                } catch {
                    return (report, false)
                }
            }
            return (report, true)
        }
    }

    /// Writes a session start to the fallback file, for when `createSession` failed
    /// (disk full, read-only, locked). The next `importFallback` links it into the chain.
    public func recordSessionStartInFallback(_ session: SessionRecord) throws(StoreError) {
        let columns = Self.sessionStartColumns(session)
        try AuditFallbackFile.append(AuditJSON.fallbackLine(sessionStart: columns) + "\n", to: fallbackPath)
    }

    /// A v1 fallback line: an event without a chain position (pre-v2 sessions only).
    static func insertLegacyEvent(_ event: DecisionEvent, sessionID: String, connection: SQLiteConnection) throws(StoreError) {
        let statement = try connection.statement(
            """
            INSERT INTO events (session_id, time, pid, ppid, executable, syscall, action, target, argv, decision,
                                rule_index, reason, errno, latency_us)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        defer { statement.reset() }
        try statement.bind(1, sessionID)
        try statement.bind(2, event.timeMicros)
        try statement.bind(3, Int64(event.pid))
        try statement.bind(4, Int64(event.ppid))
        try statement.bind(5, Redactor.redact(text: event.executable))
        try statement.bind(6, event.syscall)
        try statement.bind(7, event.action)
        try statement.bind(8, Redactor.redact(text: event.target))
        try statement.bind(9, event.argv.map { AuditJSON.encode(Redactor.redact(argv: $0)) })
        try statement.bind(10, event.decision)
        try statement.bind(11, event.ruleIndex.map(Int64.init))
        try statement.bind(12, event.reason)
        try statement.bind(13, event.errno.map(Int64.init))
        try statement.bind(14, event.latencyMicros)
        _ = try statement.step()
    }
}

/// Whether a fallback record is already stored (an import interrupted after its commit, or
/// a batch appended twice), so import never stores anything twice. Events have no index on
/// their chain position (each index slows every insert), so a session's stored positions in
/// the file's range are read once, on first use.
struct FallbackPresence {
    enum Answer { case absent, duplicate, conflict(String) }

    /// Per session, the range of event positions the file holds.
    private var ranges: [String: ClosedRange<Int64>] = [:]
    private var eventHashes: [String: [Int64: String]] = [:]

    init(records: [FallbackRecord]) {
        for case .row(.event(let event, _), let sessionID) in records {
            if let range = ranges[sessionID] {
                ranges[sessionID] = min(range.lowerBound, event.seq)...max(range.upperBound, event.seq)
            } else {
                ranges[sessionID] = event.seq...event.seq
            }
        }
    }

    mutating func of(_ row: ChainedRow, sessionID: String, connection: SQLiteConnection) throws(StoreError) -> Answer {
        switch row {
        case .event(let event, let hash):
            if eventHashes[sessionID] == nil {
                var stored: [Int64: String] = [:]
                if let range = ranges[sessionID] {
                    let statement = try connection.statement(
                        "SELECT seq, hash FROM events WHERE session_id = ? AND seq BETWEEN ? AND ?")
                    defer { statement.reset() }
                    try statement.bind(1, sessionID)
                    try statement.bind(2, range.lowerBound)
                    try statement.bind(3, range.upperBound)
                    while try statement.step() { stored[statement.int64(0)] = statement.optionalText(1) ?? "" }
                }
                eventHashes[sessionID] = stored
            }
            guard let existing = eventHashes[sessionID]?[event.seq] else { return .absent }
            return existing == hash ? .duplicate
                : .conflict("another event holds chain position \(event.seq) of session \(sessionID)")
        case .processStart(let process, let hash):
            let statement = try connection.statement("SELECT start_hash FROM processes WHERE session_id = ? AND start_seq = ?")
            defer { statement.reset() }
            try statement.bind(1, sessionID)
            try statement.bind(2, process.seq)
            guard try statement.step() else { return .absent }
            return statement.text(0) == hash ? .duplicate
                : .conflict("another process record holds chain position \(process.seq) of session \(sessionID)")
        case .processExit(let exit, let startSeq, let hash):
            let statement = try connection.statement("SELECT exit_hash FROM processes WHERE session_id = ? AND start_seq = ?")
            defer { statement.reset() }
            try statement.bind(1, sessionID)
            try statement.bind(2, startSeq)
            guard try statement.step() else {
                return .conflict("no process record at chain position \(startSeq) of session \(sessionID) for the exit of pid \(exit.pid)")
            }
            guard let existing = statement.optionalText(0) else { return .absent }
            return existing == hash ? .duplicate
                : .conflict("the process at chain position \(startSeq) of session \(sessionID) already has another exit")
        }
    }

    mutating func inserted(_ row: ChainedRow, sessionID: String) {
        if case .event(let event, let hash) = row { eventHashes[sessionID, default: [:]][event.seq] = hash }
    }
}

/// One parsed fallback line.
enum FallbackRecord {
    case sessionStart(AuditChain.SessionStartColumns)
    case sessionEnd(AuditChain.SessionEndColumns)
    case row(ChainedRow, sessionID: String)
    /// A line written by a v1 writer (no `type`, no chain position).
    case legacyEvent(DecisionEvent, sessionID: String)

    static func parse(_ line: String) -> FallbackRecord? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        let fields = Fields(object)
        switch object["type"] as? String {
        case "session_start":
            guard let id = fields.text("id"), let agent = fields.text("agent"), let command = fields.strings("command"),
                  let cwd = fields.text("cwd"), let policyPath = fields.text("policy_path"),
                  let policySHA = fields.text("policy_sha256"), let start = fields.int("start_time"),
                  let mode = fields.text("mode")
            else { return nil }
            return .sessionStart(AuditChain.SessionStartColumns(
                id: id, agent: agent, command: AuditJSON.encode(command), cwd: cwd, policyPath: policyPath,
                policySHA256: policySHA, startTime: start, mode: mode, context: fields.text("context")))
        case "session_end":
            guard let id = fields.text("id"), let end = fields.int("end_time"), let status = fields.int("exit_status"),
                  let count = fields.int("link_count"), let last = fields.text("last_hash")
            else { return nil }
            return .sessionEnd(AuditChain.SessionEndColumns(id: id, endTime: end, exitStatus: status, linkCount: count, lastHash: last))
        case "event":
            guard let session = fields.text("session_id"), let seq = fields.int("seq"), let time = fields.int("time"),
                  let pid = fields.int("pid"), let ppid = fields.int("ppid"), let executable = fields.text("executable"),
                  let syscall = fields.text("syscall"), let action = fields.text("action"), let target = fields.text("target"),
                  let decision = fields.text("decision"), let reason = fields.text("reason"),
                  let latency = fields.int("latency_us"), let hash = fields.text("hash")
            else { return nil }
            let argv: String?
            if fields.isNull("argv") {
                argv = nil
            } else {
                guard let strings = fields.strings("argv") else { return nil }
                argv = AuditJSON.encode(strings)
            }
            let columns = AuditChain.EventColumns(
                sessionID: session, seq: seq, time: time, pid: pid, ppid: ppid, executable: executable,
                syscall: syscall, action: action, target: target, argv: argv, decision: decision,
                ruleIndex: fields.int("rule_index"), ruleID: fields.text("rule_id"), reason: reason,
                intent: fields.text("intent"), notable: fields.int("notable") ?? 0, enforced: fields.int("enforced") ?? 1,
                errno: fields.int("errno"), latency: latency)
            return .row(.event(columns, hash: hash), sessionID: session)
        case "process_start":
            guard let session = fields.text("session_id"), let seq = fields.int("seq"), let pid = fields.int("pid"),
                  let ppid = fields.int("ppid"), let executable = fields.text("executable"),
                  let argv = fields.strings("argv"), let uid = fields.int("uid"), let gid = fields.int("gid"),
                  let capabilities = fields.strings("capabilities"), let cgroup = fields.text("cgroup"),
                  let start = fields.int("start_time"), let hash = fields.text("hash")
            else { return nil }
            let columns = AuditChain.ProcessStartColumns(
                sessionID: session, seq: seq, pid: pid, ppid: ppid, executable: executable, argv: AuditJSON.encode(argv),
                uid: uid, gid: gid, capabilities: AuditJSON.encode(capabilities), cgroup: cgroup, startTime: start)
            return .row(.processStart(columns, hash: hash), sessionID: session)
        case "process_exit":
            guard let session = fields.text("session_id"), let seq = fields.int("seq"),
                  let startSeq = fields.int("start_seq"), let startHash = fields.text("start_hash"),
                  let pid = fields.int("pid"), let time = fields.int("exit_time"), let status = fields.int("exit_status"),
                  let hash = fields.text("hash")
            else { return nil }
            let columns = AuditChain.ProcessExitColumns(
                sessionID: session, seq: seq, startHash: startHash, pid: pid, exitTime: time, exitStatus: status)
            return .row(.processExit(columns, startSeq: startSeq, hash: hash), sessionID: session)
        case nil:
            // v1: the events table's columns, no type.
            guard let session = fields.text("session_id"), let time = fields.int("time"),
                  let pid = fields.int("pid"), let ppid = fields.int("ppid"), let executable = fields.text("executable"),
                  let syscall = fields.text("syscall"), let action = fields.text("action"), let target = fields.text("target"),
                  let decision = fields.text("decision"), let reason = fields.text("reason"),
                  let latency = fields.int("latency_us"),
                  let pid32 = Int32(exactly: pid), let ppid32 = Int32(exactly: ppid)
            else { return nil }
            let event = DecisionEvent(
                timeMicros: time, pid: pid32, ppid: ppid32, executable: executable, syscall: syscall,
                action: action, target: target, argv: fields.isNull("argv") ? nil : fields.strings("argv"),
                decision: decision, ruleIndex: fields.int("rule_index").map { Int($0) }, reason: reason,
                errno: fields.int("errno").flatMap { Int32(exactly: $0) }, latencyMicros: latency)
            return .legacyEvent(event, sessionID: session)
        default:
            return nil
        }
    }

    /// Typed access to a decoded JSON object.
    private struct Fields {
        let object: [String: Any]
        init(_ object: [String: Any]) { self.object = object }

        func text(_ key: String) -> String? { object[key] as? String }

        func int(_ key: String) -> Int64? {
            guard let number = object[key] as? NSNumber else { return nil }
            // Reject fractions: every stored number is an integer.
            let value = number.int64Value
            return NSNumber(value: value) == number ? value : nil
        }

        func strings(_ key: String) -> [String]? { object[key] as? [String] }

        func isNull(_ key: String) -> Bool { object[key] == nil || object[key] is NSNull }
    }
}

extension AuditJSON {
    /// Appends `"key":` (after a comma unless first).
    fileprivate static func key(_ name: String, _ line: inout String, _ first: inout Bool) {
        if !first { line += "," }
        first = false
        line += "\"\(name)\":"
    }

    private struct LineBuilder {
        var line = "{"
        var first = true

        mutating func text(_ name: String, _ value: String?) {
            AuditJSON.key(name, &line, &first)
            if let value { AuditJSON.appendQuoted(value, to: &line) } else { line += "null" }
        }

        mutating func int(_ name: String, _ value: Int64?) {
            AuditJSON.key(name, &line, &first)
            line += value.map { String($0) } ?? "null"
        }

        /// A column that is stored as JSON text, embedded as JSON.
        mutating func raw(_ name: String, _ json: String?) {
            AuditJSON.key(name, &line, &first)
            line += json ?? "null"
        }

        mutating func finish() -> String {
            line += "}"
            return line
        }
    }

    /// One fallback line (no newline) for a chained row.
    static func fallbackLine(row: ChainedRow) -> String {
        var builder = LineBuilder()
        switch row {
        case .event(let event, let hash):
            builder.text("type", "event")
            builder.text("session_id", event.sessionID)
            builder.int("seq", event.seq)
            builder.int("time", event.time)
            builder.int("pid", event.pid)
            builder.int("ppid", event.ppid)
            builder.text("executable", event.executable)
            builder.text("syscall", event.syscall)
            builder.text("action", event.action)
            builder.text("target", event.target)
            builder.raw("argv", event.argv)
            builder.text("decision", event.decision)
            builder.int("rule_index", event.ruleIndex)
            builder.text("rule_id", event.ruleID)
            builder.text("reason", event.reason)
            builder.text("intent", event.intent)
            builder.int("notable", event.notable)
            builder.int("enforced", event.enforced)
            builder.int("errno", event.errno)
            builder.int("latency_us", event.latency)
            builder.text("hash", hash)
        case .processStart(let process, let hash):
            builder.text("type", "process_start")
            builder.text("session_id", process.sessionID)
            builder.int("seq", process.seq)
            builder.int("pid", process.pid)
            builder.int("ppid", process.ppid)
            builder.text("executable", process.executable)
            builder.raw("argv", process.argv)
            builder.int("uid", process.uid)
            builder.int("gid", process.gid)
            builder.raw("capabilities", process.capabilities)
            builder.text("cgroup", process.cgroup)
            builder.int("start_time", process.startTime)
            builder.text("hash", hash)
        case .processExit(let exit, let startSeq, let hash):
            builder.text("type", "process_exit")
            builder.text("session_id", exit.sessionID)
            builder.int("seq", exit.seq)
            builder.int("start_seq", startSeq)
            builder.text("start_hash", exit.startHash)
            builder.int("pid", exit.pid)
            builder.int("exit_time", exit.exitTime)
            builder.int("exit_status", exit.exitStatus)
            builder.text("hash", hash)
        }
        return builder.finish()
    }

    static func fallbackLine(sessionStart columns: AuditChain.SessionStartColumns) -> String {
        var builder = LineBuilder()
        builder.text("type", "session_start")
        builder.text("id", columns.id)
        builder.text("agent", columns.agent)
        builder.raw("command", columns.command)
        builder.text("cwd", columns.cwd)
        builder.text("policy_path", columns.policyPath)
        builder.text("policy_sha256", columns.policySHA256)
        builder.int("start_time", columns.startTime)
        builder.text("mode", columns.mode)
        // The context is hashed as stored text: kept as a string so it imports byte for byte.
        builder.text("context", columns.context)
        return builder.finish()
    }

    static func fallbackLine(sessionEnd columns: AuditChain.SessionEndColumns) -> String {
        var builder = LineBuilder()
        builder.text("type", "session_end")
        builder.text("id", columns.id)
        builder.int("end_time", columns.endTime)
        builder.int("exit_status", columns.exitStatus)
        builder.int("link_count", columns.linkCount)
        builder.text("last_hash", columns.lastHash)
        return builder.finish()
    }
}
