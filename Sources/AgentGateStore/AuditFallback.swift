import Foundation

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
    public var fallbackRejectedPath: String { files.fallbackRejected }

    /// Imports `fallbackPath` into the database in one transaction, then removes the file.
    /// Idempotent: records already present (same chain position and hash) are skipped, so an
    /// import interrupted after its commit imports nothing twice. Unusable lines (malformed,
    /// a partial last line, an unknown session, a conflicting record) are kept in
    /// `fallbackRejectedPath` with the reason, never dropped.
    ///
    /// The file is read in chunks, twice, so memory grows with the events it holds (16 bytes
    /// each, to tell duplicates), not with its bytes: session starts first,
    /// then the rows (their order doesn't matter: each carries its chain position; an exit
    /// found before its process's start waits for the end of the pass), then session ends.
    /// - Returns: nil when there is no fallback file.
    /// - Throws: when the database still can't be written; the file is then left as it is.
    @discardableResult
    public func importFallback() throws(StoreError) -> FallbackImportReport? {
        try takeSpill()
        let rejectedPath = fallbackRejectedPath
        return try AuditFallbackFile.withLockedReader(fallbackPath) { (reader) throws(StoreError) -> (result: FallbackImportReport, remove: Bool) in
            var report = FallbackImportReport(path: fallbackPath, rejectedPath: rejectedPath)
            var rejects = FallbackRejects(path: rejectedPath)
            do throws(StoreError) {
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
                        var presence = FallbackPresence()
                        /// Stores `row` unless its position is taken; nil when done, or why an
                        /// exit must wait (its process's start isn't stored).
                        func insert(_ row: ChainedRow, sessionID: String, line: () -> String) throws(StoreError) -> String? {
                            switch try presence.of(row, sessionID: sessionID, connection: connection) {
                            case .absent:
                                try Self.insertRows([row], connection: connection)
                                presence.inserted(row, sessionID: sessionID)
                                report.imported += 1
                            case .duplicate:
                                report.duplicates += 1
                            case .startMissing(let reason):
                                return reason
                            case .conflict(let reason):
                                rejects.add(line(), reason)
                            }
                            return nil
                        }

                        // Session starts, in file order (the rows below need theirs), and the
                        // positions of the events.
                        try reader.forEachLine { (bytes, complete) throws(StoreError) in
                            guard complete else { return }
                            if !FallbackRecord.mayBeSessionStart(bytes), let position = FallbackRecord.eventPosition(bytes) {
                                if let position { presence.note(sessionID: position.sessionID, seq: position.seq) }
                                return
                            }
                            let record = FallbackRecord.parse(bytes)
                            if case .row(.event(let event, _), let sessionID)? = record { presence.note(sessionID: sessionID, seq: event.seq) }
                            guard case .sessionStart(let columns, let keyID)? = record else { return }
                            if try Self.insertSessionStart(
                                columns, connection: connection, linkTime: AuditClock.nowMicros(), ifAbsent: true, key: chainKey,
                                sessionKeyID: keyID) {
                                report.imported += 1
                            } else {
                                report.duplicates += 1
                            }
                            knownSessions.insert(columns.id)
                        }
                        // Rows; ends and early exits are kept (they are few) for after the pass.
                        var ends: [(line: String, columns: SessionEndColumns)] = []
                        var earlyExits: [(line: String, row: ChainedRow, sessionID: String)] = []
                        try reader.forEachLine { (bytes, complete) throws(StoreError) in
                            guard complete else {
                                report.partialTrailingLine = true
                                rejects.add(String(decoding: bytes, as: UTF8.self), "partial last line (a write was interrupted)")
                                return
                            }
                            if bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { return }
                            guard let record = FallbackRecord.parse(bytes) else {
                                rejects.add(String(decoding: bytes, as: UTF8.self), "not a fallback record")
                                return
                            }
                            switch record {
                            case .sessionStart:
                                // Taken in the first pass, unless it hid its type from that pass's look.
                                guard !FallbackRecord.mayBeSessionStart(bytes) else { return }
                                rejects.add(String(decoding: bytes, as: UTF8.self), "session start in an unexpected form")
                            case .sessionEnd(let columns):
                                ends.append((String(decoding: bytes, as: UTF8.self), columns))
                            case .row(let row, let sessionID):
                                guard try sessionExists(sessionID) else {
                                    rejects.add(String(decoding: bytes, as: UTF8.self), "unknown session \(sessionID)")
                                    return
                                }
                                if try insert(row, sessionID: sessionID, line: { String(decoding: bytes, as: UTF8.self) }) != nil {
                                    earlyExits.append((String(decoding: bytes, as: UTF8.self), row, sessionID))
                                }
                            case .legacyEvent(let event, let sessionID):
                                guard try sessionExists(sessionID) else {
                                    rejects.add(String(decoding: bytes, as: UTF8.self), "unknown session \(sessionID)")
                                    return
                                }
                                try Self.insertLegacyEvent(event, sessionID: sessionID, connection: connection)
                                report.imported += 1
                            }
                        }
                        for exit in earlyExits {
                            if let reason = try insert(exit.row, sessionID: exit.sessionID, line: { exit.line }) {
                                rejects.add(exit.line, reason)
                            }
                        }
                        for end in ends {
                            do throws(StoreError) {
                                if try Self.insertSessionEnd(
                                    end.columns, connection: connection, linkTime: AuditClock.nowMicros(), ifOpen: true, key: chainKey) {
                                    report.imported += 1
                                } else {
                                    report.duplicates += 1
                                }
                            } catch {
                                guard error.code == .notFound || error.code == .constraintViolation else { throw error }
                                rejects.add(end.line, error.message)
                            }
                        }
                    }
                }
            } catch {
                rejects.discard()
                throw error
            }
            report.rejected = rejects.count
            // Keep the fallback file if the rejects can't be saved: a later import is a no-op
            // for what was imported, and tries the rest again.
            return (report, rejects.save())
        }
    }

    /// Moves what a session spilled (`AuditDatabaseFiles.spill`: its database's file system
    /// refused everything at its end) into the fallback file, to be imported with it, a
    /// chunk of whole lines at a time.
    func takeSpill() throws(StoreError) {
        takeSpilledAnchors()
        guard let spill = files.spill else { return }
        try AuditFallbackFile.moveLines(from: spill, to: fallbackPath)
    }

    /// Writes a session start to the fallback file, for when `createSession` failed
    /// (disk full, read-only, locked). The next `importFallback` links it into the chain.
    public func recordSessionStartInFallback(_ session: SessionRecord) throws(StoreError) {
        // A keyed session says so: its writer chains it under the key.
        try AuditFallbackFile.append(
            AuditJSON.fallbackLine(Self.sessionStartColumns(session), keyID: chainKey?.id) + "\n", to: fallbackPath)
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
        try statement.bind(7, event.action.text)
        try statement.bind(8, Redactor.redact(text: event.target))
        try statement.bind(9, event.argv.map { AuditJSON.encode(Redactor.redact(argv: $0)) })
        try statement.bind(10, event.decision.text)
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
    enum Answer {
        case absent, duplicate, conflict(String)
        /// An exit whose process start isn't stored (yet: it may come later in the file).
        case startMissing(String)
    }

    /// Per session, the range of event positions the file holds (events have no index by
    /// position: the stored ones in this range are read once per session).
    private var ranges: [String: ClosedRange<Int64>] = [:]
    /// The hash of each event at a position, as `String.hashValue` (a hash per event: 16 bytes,
    /// not the hex string's ~80; equal values are the same hash but for a 2^-64 chance).
    private var eventHashes: [String: [Int64: Int]] = [:]

    /// The file holds an event at `seq` of `sessionID`.
    mutating func note(sessionID: String, seq: Int64) {
        if let range = ranges[sessionID] {
            ranges[sessionID] = min(range.lowerBound, seq)...max(range.upperBound, seq)
        } else {
            ranges[sessionID] = seq...seq
        }
    }

    /// Whether `row`'s chain position is free, holds this very record, or holds another.
    mutating func of(_ row: ChainedRow, sessionID: String, connection: SQLiteConnection) throws(StoreError) -> Answer {
        switch row {
        case .event(let event, let hash):
            if eventHashes[sessionID] == nil {
                var stored: [Int64: Int] = [:]
                if let range = ranges[sessionID] {
                    let statement = try connection.statement(
                        "SELECT seq, hash FROM events WHERE session_id = ? AND seq BETWEEN ? AND ?")
                    defer { statement.reset() }
                    try statement.bind(1, sessionID)
                    try statement.bind(2, range.lowerBound)
                    try statement.bind(3, range.upperBound)
                    while try statement.step() { stored[statement.int64(0)] = (statement.optionalText(1) ?? "").hashValue }
                }
                eventHashes[sessionID] = stored
            }
            guard let existing = eventHashes[sessionID]?[event.seq] else { return .absent }
            return existing == hash.hashValue ? .duplicate
                : .conflict("another event holds chain position \(event.seq) of session \(sessionID)")
        case .processStart(let process, let hash):
            let statement = try connection.statement("SELECT start_hash FROM processes WHERE session_id = ? AND start_seq = ?")
            defer { statement.reset() }
            try statement.bind(1, sessionID)
            try statement.bind(2, process.seq)
            guard try statement.step() else { return .absent }
            return statement.text(0) == hash ? .duplicate
                : .conflict("another process record holds chain position \(process.seq) of session \(sessionID)")
        case .processExit(let exit, let hash):
            let startSeq = exit.startSeq
            let statement = try connection.statement("SELECT exit_hash FROM processes WHERE session_id = ? AND start_seq = ?")
            defer { statement.reset() }
            try statement.bind(1, sessionID)
            try statement.bind(2, startSeq)
            guard try statement.step() else {
                return .startMissing("no process record at chain position \(startSeq) of session \(sessionID) for the exit of pid \(exit.pid)")
            }
            guard let existing = statement.optionalText(0) else { return .absent }
            return existing == hash ? .duplicate
                : .conflict("the process at chain position \(startSeq) of session \(sessionID) already has another exit")
        case .readSet(let set, _, let hash):
            let statement = try connection.statement("SELECT hash FROM read_sets WHERE session_id = ? AND seq = ?")
            defer { statement.reset() }
            try statement.bind(1, sessionID)
            try statement.bind(2, set.seq)
            guard try statement.step() else { return .absent }
            return statement.text(0) == hash ? .duplicate
                : .conflict("another read set holds chain position \(set.seq) of session \(sessionID)")
        }
    }

    /// A row stored by this import: a later line at the same position is a duplicate.
    mutating func inserted(_ row: ChainedRow, sessionID: String) {
        if case .event(let event, let hash) = row { eventHashes[sessionID, default: [:]][event.seq] = hash.hashValue }
    }
}

/// Lines an import could not use, with the reason, for `fallbackRejectedPath`. Past a few MiB
/// they wait in `<rejected>.pending` (bounded memory for a large file), and reach the rejected
/// file only once the import has committed (`save`): an import that rolls back (`discard`)
/// leaves no rejects behind, so the retry doesn't save them twice.
struct FallbackRejects {
    let path: String
    var pendingPath: String { path + ".pending" }
    private(set) var count = 0
    private var text = ""
    private var pending = false
    /// False once a write of the rejects failed: the fallback file must then be kept.
    private var saved = true

    init(path: String) {
        self.path = path
        unlink(pendingPath)  // left by an import that crashed: its transaction never committed
    }

    mutating func add(_ line: String, _ reason: String) {
        count += 1
        text += "{\"reason\":"
        AuditJSON.appendQuoted(reason, to: &text)
        text += ",\"line\":"
        AuditJSON.appendQuoted(line, to: &text)
        text += "}\n"
        guard text.utf8.count >= AuditFallbackFile.chunkSize else { return }
        do {
            try AuditFallbackFile.append(text, to: pendingPath, sync: false)
            pending = true
        } catch {
            saved = false
        }
        text = ""
    }

    /// After the commit: appends every reject to the rejected file. True when all were saved.
    mutating func save() -> Bool {
        if pending {
            do throws(StoreError) {
                try AuditFallbackFile.moveLines(from: pendingPath, to: path)
            } catch {
                saved = false
            }
            pending = false
        }
        if !text.isEmpty {
            do {
                try AuditFallbackFile.append(text, to: path)
            } catch {
                saved = false
            }
            text = ""
        }
        return saved
    }

    /// The import rolled back: nothing of it is kept.
    mutating func discard() {
        unlink(pendingPath)
        pending = false
        text = ""
    }
}

/// One parsed fallback line.
enum FallbackRecord {
    /// With the key id of a keyed session (its chain is HMACs); nil for an unkeyed one.
    case sessionStart(SessionStartColumns, keyID: String?)
    case sessionEnd(SessionEndColumns)
    case row(ChainedRow, sessionID: String)
    /// A line written by a v1 writer (no `type`, no chain position).
    case legacyEvent(DecisionEvent, sessionID: String)

    /// How often `key` occurs in `bytes` (outside string values it can't: their quotes are escaped).
    private static func occurrences(of key: String, in bytes: ArraySlice<UInt8>) -> Int {
        let needle = Array(key.utf8)
        var count = 0
        var index = bytes.startIndex
        while let found = bytes[index...].firstIndex(of: needle[0]) {
            if bytes[found...].starts(with: needle) { count += 1 }
            index = found + 1
        }
        return count
    }

    /// Parses a line's bytes as text (invalid UTF-8 repaired, as a line read as text is).
    static func parse(_ bytes: ArraySlice<UInt8>) -> FallbackRecord? { parse(String(decoding: bytes, as: UTF8.self)) }

    /// Whether the line may be a session start: false only for a line that starts with
    /// another `type` (as the writer writes them), so a pass that wants only session starts
    /// need not parse the rest.
    static func mayBeSessionStart(_ bytes: ArraySlice<UInt8>) -> Bool {
        let prefix = Array(#"{"type":""#.utf8)
        // A second `type` key (the parse keeps the last) is for the whole parse to judge.
        guard bytes.starts(with: prefix), occurrences(of: #""type":"#, in: bytes) == 1 else { return true }
        let value = bytes.dropFirst(prefix.count)
        guard let close = value.firstIndex(of: UInt8(ascii: "\"")), !value[..<close].contains(UInt8(ascii: "\\")) else { return true }
        return value[..<close].elementsEqual(SessionStartColumns.fallbackType.utf8)
    }

    /// The session and chain position of an event line as the writer writes it, read without
    /// parsing it whole: `.some(nil)` for a line of another type, nil when only a whole parse
    /// can tell.
    static func eventPosition(_ bytes: ArraySlice<UInt8>) -> (sessionID: String, seq: Int64)?? {
        let prefix = Array(#"{"type":""#.utf8)
        guard bytes.starts(with: prefix) else { return nil }
        let typeStart = bytes.index(bytes.startIndex, offsetBy: prefix.count)
        guard let typeEnd = bytes[typeStart...].firstIndex(of: UInt8(ascii: "\"")),
              !bytes[typeStart..<typeEnd].contains(UInt8(ascii: "\\")) else { return nil }
        guard bytes[typeStart..<typeEnd].elementsEqual(EventColumns.fallbackType.utf8) else { return .some(nil) }
        // A key can't be mistaken for text inside a value: a quote in a value is escaped.
        func after(_ key: String) -> ArraySlice<UInt8>.Index? {
            let needle = Array(key.utf8)
            var index = typeEnd
            while let found = bytes[index...].firstIndex(of: needle[0]) {
                if bytes[found...].starts(with: needle) { return found + needle.count }
                index = found + 1
            }
            return nil
        }
        // Each key once: with a repeated key the parse keeps the last, so it must decide.
        guard occurrences(of: #""type":"#, in: bytes) == 1, occurrences(of: #""session_id":"#, in: bytes) == 1,
              occurrences(of: #""seq":"#, in: bytes) == 1,
              let idStart = after(#""session_id":""#),
              let idEnd = bytes[idStart...].firstIndex(of: UInt8(ascii: "\"")),
              !bytes[idStart..<idEnd].contains(UInt8(ascii: "\\")),
              let seqStart = after(#""seq":"#) else { return nil }
        let digits = bytes[seqStart...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty, digits.count <= 18,
              let next = bytes[digits.endIndex...].first, next == UInt8(ascii: ",") || next == UInt8(ascii: "}") else { return nil }
        let seq = digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
        return .some((String(decoding: bytes[idStart..<idEnd], as: UTF8.self), seq))
    }

    static func parse(_ line: String) -> FallbackRecord? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        let fields = Fields(object)
        switch object["type"] as? String {
        case SessionStartColumns.fallbackType:
            return fields.record(SessionStartColumns.self).map { .sessionStart($0, keyID: fields.text("key_id")) }
        case SessionEndColumns.fallbackType:
            return fields.record(SessionEndColumns.self).map { .sessionEnd($0) }
        case EventColumns.fallbackType:
            guard let columns = fields.record(EventColumns.self), let hash = fields.text("hash") else { return nil }
            return .row(.event(columns, hash: hash), sessionID: columns.sessionID)
        case ProcessStartColumns.fallbackType:
            guard let columns = fields.record(ProcessStartColumns.self), let hash = fields.text("hash") else { return nil }
            return .row(.processStart(columns, hash: hash), sessionID: columns.sessionID)
        case ProcessExitColumns.fallbackType:
            guard let columns = fields.record(ProcessExitColumns.self), let hash = fields.text("hash") else { return nil }
            return .row(.processExit(columns, hash: hash), sessionID: columns.sessionID)
        case ReadSetColumns.fallbackType:
            guard let columns = fields.record(ReadSetColumns.self), let hash = fields.text("hash"),
                  let objects = fields.object["entries"] as? [[String: Any]] else { return nil }
            var entries: [ReadEntryColumns] = []
            for object in objects {
                guard let entry = Fields(object).record(ReadEntryColumns.self) else { return nil }
                entries.append(entry)
            }
            // Entries that don't match the digest the link covers are not the set that was chained.
            guard Int64(entries.count) == columns.entryCount, ReadEntryColumns.digest(entries) == columns.entriesDigest else {
                return nil
            }
            return .row(.readSet(columns, entries: entries, hash: hash), sessionID: columns.sessionID)
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
                action: RecordedAction(text: action), target: target,
                argv: fields.isNull("argv") ? nil : fields.strings("argv"),
                decision: RecordedDecision(text: decision), ruleIndex: fields.int("rule_index").map { Int($0) }, reason: reason,
                errno: fields.int("errno").flatMap { Int32(exactly: $0) }, latencyMicros: latency)
            return .legacyEvent(event, sessionID: session)
        default:
            return nil
        }
    }

    /// Typed access to a decoded JSON object.
    fileprivate struct Fields {
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

        /// The record of kind `Row` the line holds, field by field; nil when a required field
        /// is missing or of the wrong type.
        func record<Row: StoredRecordKind>(_: Row.Type) -> Row? {
            var row = Row()
            var reader = FallbackFieldReader(fields: self)
            row.visitFields(&reader)
            return reader.isComplete ? row : nil
        }
    }
}

extension AuditJSON {
    /// One JSON object on one line, written key by key in order.
    fileprivate struct LineBuilder {
        private var line = "{"
        private var isEmpty = true

        /// Appends `"name":` and then `value`, JSON as it is (nil: null).
        mutating func raw(_ name: String, _ value: String?) {
            if !isEmpty { line += "," }
            isEmpty = false
            line += "\"\(name)\":"
            line += value ?? "null"
        }

        mutating func text(_ name: String, _ value: String) {
            var quoted = ""
            AuditJSON.appendQuoted(value, to: &quoted)
            raw(name, quoted)
        }

        mutating func finish() -> String {
            line += "}"
            return line
        }
    }

    /// One fallback line (no newline): the record's `type`, its fields, and its chain hash.
    static func fallbackLine<Row: FallbackRecordKind>(_ row: Row, hash: String? = nil, keyID: String? = nil) -> String {
        var writer = FallbackFieldWriter()
        writer.line.text("type", Row.fallbackType)
        row.forEachField(&writer)
        if let hash { writer.line.text("hash", hash) }
        if let keyID { writer.line.text("key_id", keyID) }
        return writer.line.finish()
    }

    /// One fallback line (no newline) for a chained row.
    static func fallbackLine(row: ChainedRow) -> String {
        switch row {
        case .event(let columns, let hash): fallbackLine(columns, hash: hash)
        case .processStart(let columns, let hash): fallbackLine(columns, hash: hash)
        case .processExit(let columns, let hash): fallbackLine(columns, hash: hash)
        case .readSet(let columns, let entries, let hash): readSetLine(columns, entries: entries, hash: hash)
        }
    }

    /// A read set's line: its fields, its hash, and its entries as an array of objects.
    private static func readSetLine(_ set: ReadSetColumns, entries: [ReadEntryColumns], hash: String) -> String {
        var writer = FallbackFieldWriter()
        writer.line.text("type", ReadSetColumns.fallbackType)
        set.forEachField(&writer)
        writer.line.text("hash", hash)
        var array = "["
        for (index, entry) in entries.enumerated() {
            if index > 0 { array += "," }
            var entryWriter = FallbackFieldWriter()
            entry.forEachField(&entryWriter)
            array += entryWriter.line.finish()
        }
        array += "]"
        writer.line.raw("entries", array)
        return writer.line.finish()
    }
}

/// A record kind that can stand on its own line of the fallback file.
protocol FallbackRecordKind: StoredRecordKind {
    /// The line's `type`.
    static var fallbackType: String { get }
}

extension EventColumns: FallbackRecordKind { static let fallbackType = "event" }
extension ProcessStartColumns: FallbackRecordKind { static let fallbackType = "process_start" }
extension ProcessExitColumns: FallbackRecordKind { static let fallbackType = "process_exit" }
extension SessionStartColumns: FallbackRecordKind { static let fallbackType = "session_start" }
extension SessionEndColumns: FallbackRecordKind { static let fallbackType = "session_end" }
extension ReadSetColumns: FallbackRecordKind { static let fallbackType = "read_set" }

/// Writes each field under its key: integers and JSON arrays as they are, texts quoted.
private struct FallbackFieldWriter: FieldVisitor {
    var line = AuditJSON.LineBuilder()

    mutating func visit(_ field: FieldInfo, _ value: inout Int64) {
        line.raw(field.key, String(value))
    }

    mutating func visit(_ field: FieldInfo, _ value: inout Int64?) {
        line.raw(field.key, value.map { String($0) })
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String) {
        if field.isJSONArray { line.raw(field.key, value) } else { line.text(field.key, value) }
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String?) {
        guard let text = value else { return field.isOmittedWhenNull ? () : line.raw(field.key, nil) }
        if field.isJSONArray { line.raw(field.key, text) } else { line.text(field.key, text) }
    }
}

/// Reads each field from its key. A required field that is missing or of the wrong type makes
/// the line unusable; an optional one then reads as nil, a defaulted one as its default.
private struct FallbackFieldReader: FieldVisitor {
    let fields: FallbackRecord.Fields
    private(set) var isComplete = true

    init(fields: FallbackRecord.Fields) {
        self.fields = fields
    }

    mutating func visit(_ field: FieldInfo, _ value: inout Int64) {
        if let number = fields.int(field.key) {
            value = number
        } else if let whenAbsent = field.whenAbsent {
            value = whenAbsent
        } else {
            isComplete = false
        }
    }

    mutating func visit(_ field: FieldInfo, _ value: inout Int64?) {
        value = fields.int(field.key)
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String) {
        guard let text = field.isJSONArray ? fields.strings(field.key).map(AuditJSON.encode) : fields.text(field.key) else {
            isComplete = false
            return
        }
        value = text
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String?) {
        guard field.isJSONArray else {
            value = fields.text(field.key)
            return
        }
        if fields.isNull(field.key) {
            value = nil
        } else if let strings = fields.strings(field.key) {
            value = AuditJSON.encode(strings)
        } else {
            isComplete = false
        }
    }
}

/// For the fuzzer (Sources/agentgate-fuzz): whether `line` parses as a fallback record, and for
/// a chained row, the line it is written back as.
package func parseFallbackLineForFuzzing(_ line: String) -> (parsed: Bool, rewritten: String?) {
    switch FallbackRecord.parse(line) {
    case nil: return (false, nil)
    case .row(let row, _)?: return (true, AuditJSON.fallbackLine(row: row))
    case .sessionStart?, .sessionEnd?, .legacyEvent?: return (true, nil)
    }
}
