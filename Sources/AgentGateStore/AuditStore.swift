#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSQLite
import Synchronization

/// The SQLite audit database: sessions, their process records and decision events, and the
/// hash chains over them (schema in docs/audit-schema.md).
///
/// Every call is synchronous and serialized on one connection; share one instance between
/// threads freely. For the supervisor's hot path use `AuditWriter`, which batches inserts
/// on a background thread. Several processes may write one file at once (WAL, busy timeout):
/// every write is one `BEGIN IMMEDIATE` transaction.
public final class AuditStore: Sendable {
    /// The database file path, as given to `init`.
    public let path: String
    /// Opened with `readOnly`: no migration, no writes.
    public let isReadOnly: Bool
    /// nil once closed.
    private let connection: Mutex<SQLiteConnection?>

    /// Opens the database at `path`, creating it (0600) and any missing parent directories (0700),
    /// and migrating its schema to `AuditSchema.currentVersion`.
    ///
    /// Sets WAL journaling, `synchronous=NORMAL` (durable across process crashes; a power
    /// loss may drop the last transactions), a 5 s busy timeout and foreign keys.
    /// With `readOnly`, opens an existing file for queries only (SQLITE_OPEN_READONLY); its
    /// schema must already be current.
    /// - Throws: `StoreError` (never traps) when the path can't be created, opened or written.
    /// Missing directories of the database are created (0700) only below `creatingBelow`, which
    /// must exist: a path the user named gets no directories they didn't ask for (nil), and the
    /// default one none outside their home (a missing HOME is an error, not created).
    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000, readOnly: Bool = false,
                creatingBelow: String? = "/") throws(StoreError) {
        self.path = path
        self.isReadOnly = readOnly
        // SQLite would take "" as a private temporary database, gone at close.
        guard !path.isEmpty else {
            throw StoreError(code: .cannotOpen, path: path, message: "the database path is empty")
        }
        if readOnly {
            let opened = try SQLiteConnection.open(path: path, readOnly: true)
            do throws(StoreError) {
                sqlite3_busy_timeout(opened.handle, busyTimeoutMilliseconds)
                let version = try AuditSchema.version(of: opened)
                guard version == AuditSchema.currentVersion else {
                    throw StoreError(
                        code: .readOnly, path: path,
                        message: "the database has schema version \(version), this build needs \(AuditSchema.currentVersion); open it once with write access to upgrade it")
                }
            } catch {
                opened.close()
                throw error
            }
            connection = Mutex(opened)
            return
        }
        let directory = AuditFileSystem.parentDirectory(of: path)
        if !AuditFileSystem.isDirectory(directory) {
            let root = creatingBelow.map { $0.hasSuffix("/") && $0 != "/" ? String($0.dropLast()) : $0 }
            guard let root, root == "/" || directory.hasPrefix(root + "/") else {
                var info = stat()
                let failure = stat(directory, &info) == 0 ? ENOTDIR : errno
                throw StoreError(code: .cannotCreateDirectory, path: path,
                                 message: "the database's directory \(directory) is missing (it is not created for a named database)",
                                 systemErrno: failure)
            }
            guard AuditFileSystem.isDirectory(root) else {
                var info = stat()
                let failure = stat(root, &info) == 0 ? ENOTDIR : errno
                throw StoreError(code: .cannotCreateDirectory, path: path,
                                 message: "\(root) is missing, so the database's directory can't be made in it",
                                 systemErrno: failure)
            }
            try AuditFileSystem.createDirectories(directory, forDatabase: path)
        }
        try AuditFileSystem.createPrivateFileIfMissing(path)
        let opened = try SQLiteConnection.open(path: path)
        do {
            try Self.configure(opened, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            try AuditSchema.migrate(opened)
        } catch {
            opened.close()
            throw error
        }
        connection = Mutex(opened)
    }

    deinit {
        close()
    }

    private static func configure(_ connection: SQLiteConnection, busyTimeoutMilliseconds: Int32) throws(StoreError) {
        sqlite3_busy_timeout(connection.handle, busyTimeoutMilliseconds)
        // journal_mode answers with the mode in force, which stays "delete" (or similar)
        // when WAL isn't possible, e.g. on a filesystem without shared memory. Switching needs
        // an exclusive lock and answers SQLITE_BUSY at once, without the busy handler, while
        // another process opens (and converts) a new file: retry within the busy timeout.
        let deadline = AuditClock.nowMicros() + Int64(busyTimeoutMilliseconds) * 1000
        var mode: String?
        while true {
            do throws(StoreError) {
                mode = try connection.queryText("PRAGMA journal_mode=WAL")
                break
            } catch {
                let primary = (error.sqliteResultCode ?? 0) & 0xff
                guard primary == SQLITE_BUSY || primary == SQLITE_LOCKED, AuditClock.nowMicros() < deadline else { throw error }
                usleep(5_000)
            }
        }
        guard mode?.lowercased() == "wal" else {
            throw StoreError(
                code: .sqlite, path: connection.path,
                message: "could not enable WAL journaling (journal_mode is \(mode ?? "unknown"))")
        }
        try connection.execute("PRAGMA synchronous=NORMAL")
        // 16 MiB of page cache: a long session's index pages stay in memory.
        try connection.execute("PRAGMA cache_size=-16384")
        try connection.execute("PRAGMA foreign_keys=ON")
    }

    /// Runs `body` on the open connection, or throws `.closed`.
    func withConnection<T: Sendable>(
        _ body: (SQLiteConnection) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        try connection.withLock { (connection: inout SQLiteConnection?) throws(StoreError) -> T in
            guard let connection else {
                throw StoreError(code: .closed, path: path, message: "the audit store is closed")
            }
            return try body(connection)
        }
    }

    /// The database's schema version (`PRAGMA user_version`).
    public func schemaVersion() throws(StoreError) -> Int32 {
        try withConnection { connection throws(StoreError) in try AuditSchema.version(of: connection) }
    }

    /// `<database>.fallback.jsonl`: where records go when the database can't be written.
    public var fallbackPath: String { path + ".fallback.jsonl" }

    // MARK: - Sessions

    /// Inserts a new session row and links it into the global session chain, in one
    /// `BEGIN IMMEDIATE` transaction (so concurrent supervisors serialize). The command and
    /// the context's environment are redacted first.
    /// - Throws: `.constraintViolation` if a session with this id exists.
    public func createSession(_ session: SessionRecord) throws(StoreError) {
        let columns = Self.sessionStartColumns(session)
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                _ = try Self.insertSessionStart(columns, connection: connection, linkTime: AuditClock.nowMicros(), ifAbsent: false)
            }
        }
        // A session that starts with events already written can't exist: nothing to finish.
        if let end = session.endTimeMicros, let status = session.exitStatus {
            try finishSession(id: session.id, endTimeMicros: end, exitStatus: status)
        }
    }

    /// The stored (redacted, encoded) start columns of `session`.
    static func sessionStartColumns(_ session: SessionRecord) -> AuditChain.SessionStartColumns {
        var context = session.context
        if let environment = context?.environment {
            context?.environment = Redactor.redact(environment: environment)
        }
        // The same value is redacted the same way wherever it appears: the cwd is $PWD, the
        // program is the command's argv[0].
        if let program = context?.program { context?.program = Redactor.redact(text: program) }
        return AuditChain.SessionStartColumns(
            id: session.id, agent: session.agent, command: AuditJSON.encode(Redactor.redact(argv: session.command)),
            cwd: Redactor.redact(text: session.cwd), policyPath: session.policyPath, policySHA256: session.policySHA256,
            startTime: session.startTimeMicros, mode: session.mode, context: context?.jsonText())
    }

    /// Inserts the sessions row and its start link. Inside a transaction.
    /// - Returns: false when `ifAbsent` and the session already exists (nothing written).
    static func insertSessionStart(
        _ columns: AuditChain.SessionStartColumns, connection: SQLiteConnection, linkTime: Int64, ifAbsent: Bool
    ) throws(StoreError) -> Bool {
        if ifAbsent {
            let exists = try connection.statement("SELECT 1 FROM sessions WHERE id = ?")
            defer { exists.reset() }
            try exists.bind(1, columns.id)
            if try exists.step() { return false }
        }
        let statement = try connection.statement(
            """
            INSERT INTO sessions (id, agent, command, cwd, policy_path, policy_sha256,
                                  start_time, end_time, exit_status, mode, context, chain_version)
            VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, 2)
            """)
        defer { statement.reset() }
        try statement.bind(1, columns.id)
        try statement.bind(2, columns.agent)
        try statement.bind(3, columns.command)
        try statement.bind(4, columns.cwd)
        try statement.bind(5, columns.policyPath)
        try statement.bind(6, columns.policySHA256)
        try statement.bind(7, columns.startTime)
        try statement.bind(8, columns.mode)
        try statement.bind(9, columns.context)
        _ = try statement.step()
        let digest = AuditChain.hex(AuditChain.sessionStartDigest(columns))
        try appendGlobalLink(kind: "start", sessionID: columns.id, digest: digest, time: linkTime, connection: connection)
        return true
    }

    /// Appends a link to `session_chain` after its current last link. Inside a transaction.
    static func appendGlobalLink(
        kind: String, sessionID: String, digest: String, time: Int64, connection: SQLiteConnection
    ) throws(StoreError) {
        let last = try connection.statement("SELECT seq, hash FROM session_chain ORDER BY seq DESC LIMIT 1")
        var seq: Int64 = 1
        var previous = AuditChain.globalGenesis
        if try last.step() {
            seq = last.int64(0) + 1
            previous = AuditChain.bytes(hex: last.text(1)) ?? AuditChain.globalGenesis
        }
        last.reset()
        let hash = AuditChain.globalLinkHash(seq: seq, kind: kind, sessionID: sessionID, digest: digest, previous: previous)
        let insert = try connection.statement(
            "INSERT INTO session_chain (seq, kind, session_id, time, digest, hash) VALUES (?, ?, ?, ?, ?, ?)")
        defer { insert.reset() }
        try insert.bind(1, seq)
        try insert.bind(2, kind)
        try insert.bind(3, sessionID)
        try insert.bind(4, time)
        try insert.bind(5, digest)
        try insert.bind(6, AuditChain.hex(hash))
        _ = try insert.step()
    }

    /// Records a session's end, covering the session's whole event and process chain as
    /// stored now (its length and last hash), and links it into the global chain.
    /// `AuditWriter.finishSession` is the usual way: it knows the chain without reading it back.
    /// - Throws: `.notFound` if no session has this id; `.constraintViolation` if it has ended.
    public func finishSession(id: String, endTimeMicros: Int64, exitStatus: Int32) throws(StoreError) {
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                let head = try Self.chainHead(sessionID: id, connection: connection)
                let columns = AuditChain.SessionEndColumns(
                    id: id, endTime: endTimeMicros, exitStatus: Int64(exitStatus), linkCount: head.count,
                    lastHash: AuditChain.hex(head.lastHash))
                _ = try Self.insertSessionEnd(columns, connection: connection, linkTime: AuditClock.nowMicros(), ifOpen: false)
            }
        }
    }

    /// Records a session's end with a chain state the caller computed (the writer's).
    func finishSession(_ columns: AuditChain.SessionEndColumns) throws(StoreError) {
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                _ = try Self.insertSessionEnd(columns, connection: connection, linkTime: AuditClock.nowMicros(), ifOpen: false)
            }
        }
    }

    /// Fills the end columns and appends the end link. Inside a transaction.
    /// - Returns: false when `ifOpen` and the session has already ended with these values.
    @discardableResult
    static func insertSessionEnd(
        _ columns: AuditChain.SessionEndColumns, connection: SQLiteConnection, linkTime: Int64, ifOpen: Bool
    ) throws(StoreError) -> Bool {
        let lookup = try connection.statement(
            "SELECT end_time, exit_status, link_count, last_hash, chain_version FROM sessions WHERE id = ?")
        try lookup.bind(1, columns.id)
        guard try lookup.step() else {
            lookup.reset()
            throw StoreError(code: .notFound, path: connection.path, message: "no session with id \"\(columns.id)\"")
        }
        let ended = !lookup.isNull(0)
        let same = lookup.optionalInt64(0) == columns.endTime && lookup.optionalInt64(1) == columns.exitStatus
            && lookup.optionalInt64(2) == columns.linkCount && lookup.optionalText(3) == columns.lastHash
        let chained = lookup.optionalInt64(4) != nil
        lookup.reset()
        if ended {
            if ifOpen && same { return false }
            throw StoreError(
                code: .constraintViolation, path: connection.path,
                message: "session \"\(columns.id)\" has already ended")
        }
        let update = try connection.statement(
            "UPDATE sessions SET end_time = ?, exit_status = ?, link_count = ?, last_hash = ? WHERE id = ?")
        defer { update.reset() }
        try update.bind(1, columns.endTime)
        try update.bind(2, columns.exitStatus)
        try update.bind(3, chained ? columns.linkCount : nil)
        try update.bind(4, chained ? columns.lastHash : nil)
        try update.bind(5, columns.id)
        _ = try update.step()
        if chained {
            let digest = AuditChain.hex(AuditChain.sessionEndDigest(columns))
            try appendGlobalLink(kind: "end", sessionID: columns.id, digest: digest, time: linkTime, connection: connection)
        }
        return true
    }

    /// The session chain's length and last hash as stored (genesis when empty).
    static func chainHead(sessionID: String, connection: SQLiteConnection) throws(StoreError) -> (count: Int64, lastHash: [UInt8]) {
        let statement = try connection.statement(
            """
            SELECT seq, hash FROM (
                SELECT seq, hash FROM events WHERE session_id = ?1 AND seq IS NOT NULL
                UNION ALL SELECT start_seq, start_hash FROM processes WHERE session_id = ?1
                UNION ALL SELECT exit_seq, exit_hash FROM processes WHERE session_id = ?1 AND exit_seq IS NOT NULL
            ) ORDER BY seq DESC LIMIT 1
            """)
        defer { statement.reset() }
        try statement.bind(1, sessionID)
        guard try statement.step() else { return (0, AuditChain.sessionGenesis(sessionID)) }
        let hash = AuditChain.bytes(hex: statement.text(1)) ?? AuditChain.sessionGenesis(sessionID)
        return (statement.int64(0), hash)
    }

    /// The session chain's length and last hash as stored now.
    func chainHead(sessionID: String) throws(StoreError) -> (count: Int64, lastHash: [UInt8]) {
        try withConnection { connection throws(StoreError) in
            try Self.chainHead(sessionID: sessionID, connection: connection)
        }
    }

    // MARK: - Events and processes

    /// Appends `events` to session `sessionID` in one transaction: all are stored or none.
    /// They are redacted and chained after the session's last stored link.
    /// - Throws: `.constraintViolation` if the session doesn't exist.
    public func insert(events: [DecisionEvent], sessionID: String) throws(StoreError) {
        guard !events.isEmpty else { return }
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                let head = try Self.chainHead(sessionID: sessionID, connection: connection)
                var builder = ChainBuilder(sessionID: sessionID, count: head.count, lastHash: head.lastHash)
                let rows = events.map { builder.event($0) }
                try Self.insertRows(rows, connection: connection)
            }
        }
    }

    /// Writes rows the writer chained, in one transaction: all or none.
    func write(_ rows: [ChainedRow]) throws(StoreError) {
        guard !rows.isEmpty else { return }
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                try Self.insertRows(rows, connection: connection)
            }
        }
    }

    /// Inserts chained rows. Inside a transaction.
    static func insertRows(_ rows: [ChainedRow], connection: SQLiteConnection) throws(StoreError) {
        let insertEvent = try connection.statement(
            """
            INSERT INTO events (session_id, seq, time, pid, ppid, executable, syscall, action, target, argv, decision,
                                rule_index, rule_id, reason, intent, notable, enforced, errno, latency_us, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let insertProcess = try connection.statement(
            """
            INSERT INTO processes (session_id, start_seq, pid, ppid, executable, argv, uid, gid,
                                   capabilities, cgroup, start_time, start_hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let updateExit = try connection.statement(
            """
            UPDATE processes SET exit_time = ?, exit_status = ?, exit_seq = ?, exit_hash = ?
            WHERE session_id = ? AND start_seq = ? AND exit_seq IS NULL
            """)
        defer {
            insertEvent.reset()
            insertProcess.reset()
            updateExit.reset()
        }
        var texts = RowTextBuffer()
        for row in rows {
            texts.removeAll()
            switch row {
            case .event(let event, let hash):
                texts.append(1, event.sessionID)
                texts.append(6, event.executable)
                texts.append(7, event.syscall)
                texts.append(8, event.action)
                texts.append(9, event.target)
                texts.append(10, event.argv)
                texts.append(11, event.decision)
                texts.append(13, event.ruleID)
                texts.append(14, event.reason)
                texts.append(15, event.intent)
                texts.append(20, hash)
                try insertEvent.bind(2, event.seq)
                try insertEvent.bind(3, event.time)
                try insertEvent.bind(4, event.pid)
                try insertEvent.bind(5, event.ppid)
                try insertEvent.bind(12, event.ruleIndex)
                try insertEvent.bind(16, event.notable)
                try insertEvent.bind(17, event.enforced)
                try insertEvent.bind(18, event.errno)
                try insertEvent.bind(19, event.latency)
                try texts.bind(to: insertEvent) { () throws(StoreError) in
                    _ = try insertEvent.step()
                }
                sqlite3_reset(insertEvent.raw)
            case .processStart(let process, let hash):
                texts.append(1, process.sessionID)
                texts.append(5, process.executable)
                texts.append(6, process.argv)
                texts.append(9, process.capabilities)
                texts.append(10, process.cgroup)
                texts.append(12, hash)
                try insertProcess.bind(2, process.seq)
                try insertProcess.bind(3, process.pid)
                try insertProcess.bind(4, process.ppid)
                try insertProcess.bind(7, process.uid)
                try insertProcess.bind(8, process.gid)
                try insertProcess.bind(11, process.startTime)
                try texts.bind(to: insertProcess) { () throws(StoreError) in
                    _ = try insertProcess.step()
                }
                sqlite3_reset(insertProcess.raw)
            case .processExit(let exit, let startSeq, let hash):
                try updateExit.bind(1, exit.exitTime)
                try updateExit.bind(2, exit.exitStatus)
                try updateExit.bind(3, exit.seq)
                try updateExit.bind(4, hash)
                try updateExit.bind(5, exit.sessionID)
                try updateExit.bind(6, startSeq)
                _ = try updateExit.step()
                updateExit.reset()
                guard sqlite3_changes(connection.handle) > 0 else {
                    throw StoreError(
                        code: .constraintViolation, path: connection.path,
                        message: "no running process record at chain position \(startSeq) of session \(exit.sessionID) for the exit of pid \(exit.pid)")
                }
            }
        }
    }

    // MARK: - Queries

    static let sessionColumns = """
        id, agent, command, cwd, policy_path, policy_sha256, start_time, end_time, exit_status, mode, context
        """

    private func decodeSession(_ statement: PreparedStatement) throws(StoreError) -> SessionRecord {
        let commandJSON = statement.text(2)
        guard let command = AuditJSON.decodeStringArray(commandJSON) else {
            throw StoreError(
                code: .invalidData, path: path,
                message: "session \"\(statement.text(0))\" has a malformed command: \(commandJSON.prefix(200))")
        }
        return SessionRecord(
            id: statement.text(0), agent: statement.text(1), command: command,
            cwd: statement.text(3), policyPath: statement.text(4), policySHA256: statement.text(5),
            startTimeMicros: statement.int64(6), endTimeMicros: statement.optionalInt64(7),
            exitStatus: try statement.optionalInt32(8), mode: statement.text(9),
            context: statement.optionalText(10).flatMap(SessionContext.fromJSON))
    }

    /// Every session, oldest first.
    public func sessions() throws(StoreError) -> [SessionRecord] {
        try sessionSummaries().map(\.session)
    }

    /// A session and what happened in it, for listings.
    public struct SessionSummary: Sendable, Equatable {
        public var session: SessionRecord
        public var eventCount: Int
        public var deniedCount: Int
        /// Time of the last event, or nil without events.
        public var lastEventTimeMicros: Int64?
    }

    /// Sessions, oldest first, optionally of one agent and started at or after `since`.
    public func sessionSummaries(agent: String? = nil, since: Int64? = nil) throws(StoreError) -> [SessionSummary] {
        try withConnection { connection throws(StoreError) in
            var sql = """
                SELECT \(Self.sessionColumns),
                       (SELECT count(*) FROM events e WHERE e.session_id = s.id),
                       (SELECT count(*) FROM events e WHERE e.session_id = s.id AND e.decision = 'deny'),
                       (SELECT time FROM events e WHERE e.session_id = s.id ORDER BY id DESC LIMIT 1)
                FROM sessions s WHERE 1
                """
            if agent != nil { sql += " AND agent = ?1" }
            if since != nil { sql += " AND start_time >= ?2" }
            sql += " ORDER BY start_time, id"
            let statement = try connection.statement(sql)
            defer { statement.reset() }
            if let agent { try statement.bind(1, agent) }
            if let since { try statement.bind(2, since) }
            var result: [SessionSummary] = []
            while try statement.step() {
                result.append(SessionSummary(
                    session: try decodeSession(statement), eventCount: Int(statement.int64(11)),
                    deniedCount: Int(statement.int64(12)), lastEventTimeMicros: statement.optionalInt64(13)))
            }
            return result
        }
    }

    /// The session with this id, or nil.
    public func session(id: String) throws(StoreError) -> SessionRecord? {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement("SELECT \(Self.sessionColumns) FROM sessions WHERE id = ?")
            defer { statement.reset() }
            try statement.bind(1, id)
            guard try statement.step() else { return nil }
            return try decodeSession(statement)
        }
    }

    /// The ids of sessions whose id is `prefix` or starts with it (an exact match alone wins).
    public func sessionIDs(matching prefix: String) throws(StoreError) -> [String] {
        try withConnection { connection throws(StoreError) in
            let exact = try connection.statement("SELECT id FROM sessions WHERE id = ?")
            try exact.bind(1, prefix)
            let found = try exact.step()
            exact.reset()
            if found { return [prefix] }
            let statement = try connection.statement(
                "SELECT id FROM sessions WHERE substr(id, 1, length(?1)) = ?1 ORDER BY start_time LIMIT 10")
            defer { statement.reset() }
            try statement.bind(1, prefix)
            var ids: [String] = []
            while try statement.step() { ids.append(statement.text(0)) }
            return ids
        }
    }

    /// Sessions still running (or without a recorded end) or that ended at or after `since`.
    func sessionIDs(activeSince since: Int64) throws(StoreError) -> [String] {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                "SELECT id FROM sessions WHERE end_time IS NULL OR end_time >= ? ORDER BY start_time")
            defer { statement.reset() }
            try statement.bind(1, since)
            var ids: [String] = []
            while try statement.step() { ids.append(statement.text(0)) }
            return ids
        }
    }

    /// The most recently started session's id, or nil.
    public func latestSessionID() throws(StoreError) -> String? {
        try withConnection { connection throws(StoreError) in
            try connection.queryText("SELECT id FROM sessions ORDER BY start_time DESC, rowid DESC LIMIT 1")
        }
    }

    /// Which events `events(matching:)` returns. Every filter is optional.
    public struct EventQuery: Sendable, Equatable {
        public var sessionID: String?
        public var decision: String?
        public var action: String?
        /// Events at or after this time (µs since the epoch).
        public var since: Int64?
        /// A case-insensitive (ASCII) substring of the target, argv, executable, reason or intent.
        public var text: String?
        /// Events with a row id greater than this (for following a live session).
        public var afterID: Int64?
        public var limit: Int?
        /// Events whose syscall is none of these.
        public var excludedSyscalls: [String]

        public init(
            sessionID: String? = nil, decision: String? = nil, action: String? = nil, since: Int64? = nil,
            text: String? = nil, afterID: Int64? = nil, limit: Int? = nil, excludedSyscalls: [String] = []
        ) {
            self.sessionID = sessionID
            self.decision = decision
            self.action = action
            self.since = since
            self.text = text
            self.afterID = afterID
            self.limit = limit
            self.excludedSyscalls = excludedSyscalls
        }
    }

    static let eventColumns = """
        id, session_id, time, pid, ppid, executable, syscall, action, target, argv, decision, rule_index,
        reason, errno, latency_us, rule_id, intent, notable, enforced, seq, hash
        """

    /// Events in insertion order: of one session, or of all sessions when `sessionID` is nil.
    public func events(sessionID: String?) throws(StoreError) -> [StoredEvent] {
        try events(matching: EventQuery(sessionID: sessionID))
    }

    /// Events matching `query`, in insertion order.
    public func events(matching query: EventQuery) throws(StoreError) -> [StoredEvent] {
        if query.sessionID == nil, let since = query.since {
            // Events have no index on time (it would slow every insert): go through the
            // sessions that were running since then, each through its session index.
            var merged: [StoredEvent] = []
            for id in try sessionIDs(activeSince: since) {
                var perSession = query
                perSession.sessionID = id
                merged += try events(matching: perSession)
            }
            merged.sort { $0.id < $1.id }
            if let limit = query.limit, merged.count > limit { merged.removeLast(merged.count - limit) }
            return merged
        }
        return try withConnection { connection throws(StoreError) in
            var sql = "SELECT \(Self.eventColumns) FROM events WHERE 1"
            if query.sessionID != nil { sql += " AND session_id = ?1" }
            if query.decision != nil { sql += " AND decision = ?2" }
            if query.action != nil { sql += " AND action = ?3" }
            if query.since != nil { sql += " AND time >= ?4" }
            if query.text != nil {
                sql += """
                     AND (instr(lower(target), lower(?5)) OR instr(lower(coalesce(argv, '')), lower(?5))
                     OR instr(lower(executable), lower(?5)) OR instr(lower(reason), lower(?5))
                     OR instr(lower(coalesce(intent, '')), lower(?5)))
                    """
            }
            if query.afterID != nil { sql += " AND id > ?6" }
            if !query.excludedSyscalls.isEmpty {
                sql += " AND syscall NOT IN (" + query.excludedSyscalls.indices.map { "?\($0 + 8)" }.joined(separator: ", ") + ")"
            }
            sql += " ORDER BY id"
            if query.limit != nil { sql += " LIMIT ?7" }
            let statement = try connection.statement(sql)
            defer { statement.reset() }
            if let value = query.sessionID { try statement.bind(1, value) }
            if let value = query.decision { try statement.bind(2, value) }
            if let value = query.action { try statement.bind(3, value) }
            if let value = query.since { try statement.bind(4, value) }
            if let value = query.text { try statement.bind(5, value) }
            if let value = query.afterID { try statement.bind(6, value) }
            if let value = query.limit { try statement.bind(7, Int64(value)) }
            for (index, syscall) in query.excludedSyscalls.enumerated() { try statement.bind(Int32(index + 8), syscall) }
            var events: [StoredEvent] = []
            while try statement.step() {
                events.append(try decodeEvent(statement))
            }
            return events
        }
    }

    private func decodeEvent(_ statement: PreparedStatement) throws(StoreError) -> StoredEvent {
        let id = statement.int64(0)
        var argv: [String]?
        if let argvJSON = statement.optionalText(9) {
            guard let decoded = AuditJSON.decodeStringArray(argvJSON) else {
                throw StoreError(
                    code: .invalidData, path: path,
                    message: "event \(id) has a malformed argv: \(argvJSON.prefix(200))")
            }
            argv = decoded
        }
        let event = DecisionEvent(
            timeMicros: statement.int64(2), pid: try statement.int32(3), ppid: try statement.int32(4),
            executable: statement.text(5), syscall: statement.text(6), action: statement.text(7),
            target: statement.text(8), argv: argv, decision: statement.text(10),
            ruleIndex: statement.optionalInt64(11).map { Int(truncatingIfNeeded: $0) },
            reason: statement.text(12), errno: try statement.optionalInt32(13),
            latencyMicros: statement.int64(14), ruleID: statement.optionalText(15), intent: statement.optionalText(16),
            notable: statement.int64(17) != 0, enforced: statement.int64(18) != 0)
        return StoredEvent(
            id: id, sessionID: statement.text(1), event: event, seq: statement.optionalInt64(19),
            hash: statement.optionalText(20))
    }

    /// Events per (action, decision, enforced) in one session, for summaries.
    public struct EventCount: Sendable, Equatable {
        public var action: String
        public var decision: String
        public var enforced: Bool
        public var count: Int

        public init(action: String, decision: String, enforced: Bool, count: Int) {
            self.action = action
            self.decision = decision
            self.enforced = enforced
            self.count = count
        }
    }

    public func eventCounts(sessionID: String) throws(StoreError) -> [EventCount] {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                """
                SELECT action, decision, enforced, count(*) FROM events WHERE session_id = ?
                GROUP BY action, decision, enforced ORDER BY action, decision, enforced
                """)
            defer { statement.reset() }
            try statement.bind(1, sessionID)
            var counts: [EventCount] = []
            while try statement.step() {
                counts.append(EventCount(
                    action: statement.text(0), decision: statement.text(1), enforced: statement.int64(2) != 0,
                    count: Int(statement.int64(3))))
            }
            return counts
        }
    }

    /// The process records of one session, in record order.
    public func processes(sessionID: String) throws(StoreError) -> [StoredProcess] {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                """
                SELECT id, session_id, pid, ppid, executable, argv, uid, gid, capabilities, cgroup, start_time,
                       exit_time, exit_status
                FROM processes WHERE session_id = ? ORDER BY start_seq
                """)
            defer { statement.reset() }
            try statement.bind(1, sessionID)
            var result: [StoredProcess] = []
            while try statement.step() {
                let id = statement.int64(0)
                guard let argv = AuditJSON.decodeStringArray(statement.text(5)),
                      let capabilities = AuditJSON.decodeStringArray(statement.text(8))
                else {
                    throw StoreError(code: .invalidData, path: path, message: "process row \(id) has a malformed argv or capability list")
                }
                let record = ProcessRecord(
                    pid: try statement.int32(2), ppid: try statement.int32(3), executable: statement.text(4), argv: argv,
                    uid: UInt32(truncatingIfNeeded: statement.int64(6)), gid: UInt32(truncatingIfNeeded: statement.int64(7)),
                    capabilities: capabilities, cgroup: statement.text(9), startTimeMicros: statement.int64(10),
                    exitTimeMicros: statement.optionalInt64(11), exitStatus: try statement.optionalInt32(12))
                result.append(StoredProcess(id: id, sessionID: statement.text(1), process: record))
            }
            return result
        }
    }

    /// Closes the database. Later calls throw `.closed`; closing again does nothing.
    public func close() {
        connection.withLock { connection in
            connection?.close()
            connection = nil
        }
    }
}

/// One row the writer has redacted, encoded and chained, ready for SQLite or the fallback file.
enum ChainedRow: Sendable {
    case event(AuditChain.EventColumns, hash: String)
    case processStart(AuditChain.ProcessStartColumns, hash: String)
    case processExit(AuditChain.ProcessExitColumns, startSeq: Int64, hash: String)

    var seq: Int64 {
        switch self {
        case .event(let columns, _): columns.seq
        case .processStart(let columns, _): columns.seq
        case .processExit(let columns, _, _): columns.seq
        }
    }

    var hash: String {
        switch self {
        case .event(_, let hash), .processStart(_, let hash), .processExit(_, _, let hash): hash
        }
    }
}

/// Chains one session's records in record order: redaction, encoding, SHA-256.
struct ChainBuilder: Sendable {
    let sessionID: String
    /// Links so far (the last one's `seq`).
    private(set) var count: Int64
    private(set) var lastHash: [UInt8]
    /// The latest image of each pid: its start link, which its exit refers to.
    private var openProcesses: [Int32: (seq: Int64, hash: String)] = [:]
    private var encoder = AuditChain.Encoder(domain: "", previous: [])

    init(sessionID: String, count: Int64 = 0, lastHash: [UInt8]? = nil) {
        self.sessionID = sessionID
        self.count = count
        self.lastHash = lastHash ?? AuditChain.sessionGenesis(sessionID)
    }

    mutating func event(_ event: DecisionEvent) -> ChainedRow {
        count += 1
        let columns = AuditChain.EventColumns(
            sessionID: sessionID, seq: count, time: event.timeMicros, pid: Int64(event.pid), ppid: Int64(event.ppid),
            executable: Redactor.redact(text: event.executable), syscall: event.syscall, action: event.action,
            target: Redactor.redact(text: event.target),
            argv: event.argv.map { AuditJSON.encode(Redactor.redact(argv: $0)) },
            decision: event.decision, ruleIndex: event.ruleIndex.map(Int64.init), ruleID: event.ruleID,
            // The intent quotes the argv: it loses what the argv loses (`--password x`).
            reason: event.reason, intent: event.intent.map(Redactor.redact(commandText:)),
            notable: event.notable ? 1 : 0, enforced: event.enforced ? 1 : 0,
            errno: event.errno.map(Int64.init), latency: event.latencyMicros)
        lastHash = AuditChain.eventHash(columns, previous: lastHash, encoder: &encoder)
        return .event(columns, hash: AuditChain.hex(lastHash))
    }

    mutating func processStart(_ process: ProcessRecord) -> ChainedRow {
        count += 1
        let columns = AuditChain.ProcessStartColumns(
            sessionID: sessionID, seq: count, pid: Int64(process.pid), ppid: Int64(process.ppid),
            executable: Redactor.redact(text: process.executable), argv: AuditJSON.encode(Redactor.redact(argv: process.argv)),
            uid: Int64(process.uid), gid: Int64(process.gid), capabilities: AuditJSON.encode(process.capabilities),
            cgroup: process.cgroup, startTime: process.startTimeMicros)
        lastHash = AuditChain.processStartHash(columns, previous: lastHash, encoder: &encoder)
        let hash = AuditChain.hex(lastHash)
        openProcesses[process.pid] = (count, hash)
        return .processStart(columns, hash: hash)
    }

    /// nil when no image of `pid` was recorded (or its exit already was): nothing to fill.
    mutating func processExit(pid: Int32, timeMicros: Int64, exitStatus: Int32) -> ChainedRow? {
        guard let start = openProcesses.removeValue(forKey: pid) else { return nil }
        count += 1
        let columns = AuditChain.ProcessExitColumns(
            sessionID: sessionID, seq: count, startHash: start.hash, pid: Int64(pid), exitTime: timeMicros,
            exitStatus: Int64(exitStatus))
        lastHash = AuditChain.processExitHash(columns, previous: lastHash, encoder: &encoder)
        return .processExit(columns, startSeq: start.seq, hash: AuditChain.hex(lastHash))
    }
}
