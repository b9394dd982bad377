import CSQLite
import Synchronization

/// The SQLite audit database: sessions and the decision events recorded in them.
///
/// Every call is synchronous and serialized on one connection; share one instance between
/// threads freely. For the supervisor's hot path use `AuditWriter`, which batches inserts
/// on a background thread.
public final class AuditStore: Sendable {
    /// The database file path, as given to `init`.
    public let path: String
    /// nil once closed.
    private let connection: Mutex<SQLiteConnection?>

    /// Opens the database at `path`, creating it (0600) and any missing parent directories (0700),
    /// and migrating its schema to `AuditSchema.currentVersion`.
    ///
    /// Sets WAL journaling, `synchronous=NORMAL` (durable across process crashes; a power
    /// loss may drop the last transactions), a 5 s busy timeout and foreign keys.
    /// - Throws: `StoreError` (never traps) when the path can't be created, opened or written.
    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws(StoreError) {
        self.path = path
        // SQLite would take "" as a private temporary database, gone at close.
        guard !path.isEmpty else {
            throw StoreError(code: .cannotOpen, path: path, message: "the database path is empty")
        }
        try AuditFileSystem.createDirectories(AuditFileSystem.parentDirectory(of: path), forDatabase: path)
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
        // when WAL isn't possible, e.g. on a filesystem without shared memory.
        let mode = try connection.queryText("PRAGMA journal_mode=WAL")
        guard mode?.lowercased() == "wal" else {
            throw StoreError(
                code: .sqlite, path: connection.path,
                message: "could not enable WAL journaling (journal_mode is \(mode ?? "unknown"))")
        }
        try connection.execute("PRAGMA synchronous=NORMAL")
        try connection.execute("PRAGMA foreign_keys=ON")
    }

    /// Runs `body` on the open connection, or throws `.closed`.
    private func withConnection<T: Sendable>(
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

    /// Inserts a new session row.
    /// - Throws: `.constraintViolation` if a session with this id exists.
    public func createSession(_ session: SessionRecord) throws(StoreError) {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                """
                INSERT INTO sessions (id, agent, command, cwd, policy_path, policy_sha256,
                                      start_time, end_time, exit_status)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            defer { statement.reset() }
            try statement.bind(1, session.id)
            try statement.bind(2, session.agent)
            try statement.bind(3, AuditJSON.encode(session.command))
            try statement.bind(4, session.cwd)
            try statement.bind(5, session.policyPath)
            try statement.bind(6, session.policySHA256)
            try statement.bind(7, session.startTimeMicros)
            try statement.bind(8, session.endTimeMicros)
            try statement.bind(9, session.exitStatus.map(Int64.init))
            _ = try statement.step()
        }
    }

    /// Records a session's end.
    /// - Throws: `.notFound` if no session has this id.
    public func finishSession(id: String, endTimeMicros: Int64, exitStatus: Int32) throws(StoreError) {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                "UPDATE sessions SET end_time = ?, exit_status = ? WHERE id = ?")
            defer { statement.reset() }
            try statement.bind(1, endTimeMicros)
            try statement.bind(2, Int64(exitStatus))
            try statement.bind(3, id)
            _ = try statement.step()
            guard sqlite3_changes(connection.handle) > 0 else {
                throw StoreError(code: .notFound, path: path, message: "no session with id \"\(id)\"")
            }
        }
    }

    /// Appends `events` to session `sessionID` in one transaction: all are stored or none.
    /// - Throws: `.constraintViolation` if the session doesn't exist.
    public func insert(events: [DecisionEvent], sessionID: String) throws(StoreError) {
        guard !events.isEmpty else { return }
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                """
                INSERT INTO events (session_id, time, pid, ppid, executable, syscall, action, target,
                                    argv, decision, rule_index, reason, errno, latency_us)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            try connection.inTransaction { () throws(StoreError) in
                // Clears the bindings too, which point into `texts` below.
                defer { statement.reset() }
                // sqlite3_reset keeps bindings, so the shared session id is bound once.
                try statement.bind(1, sessionID)
                var texts = RowTextBuffer()
                for event in events {
                    texts.removeAll()
                    texts.append(5, event.executable)
                    texts.append(6, event.syscall)
                    texts.append(7, event.action)
                    texts.append(8, event.target)
                    texts.append(9, event.argv.map(AuditJSON.encode))
                    texts.append(10, event.decision)
                    texts.append(12, event.reason)
                    try statement.bind(2, event.timeMicros)
                    try statement.bind(3, Int64(event.pid))
                    try statement.bind(4, Int64(event.ppid))
                    try statement.bind(11, event.ruleIndex.map(Int64.init))
                    try statement.bind(13, event.errno.map(Int64.init))
                    try statement.bind(14, event.latencyMicros)
                    try texts.bind(to: statement) { () throws(StoreError) in
                        _ = try statement.step()
                    }
                    sqlite3_reset(statement.raw)
                }
            }
        }
    }

    /// Every session, oldest first.
    public func sessions() throws(StoreError) -> [SessionRecord] {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                """
                SELECT id, agent, command, cwd, policy_path, policy_sha256, start_time, end_time, exit_status
                FROM sessions ORDER BY start_time, id
                """)
            defer { statement.reset() }
            var sessions: [SessionRecord] = []
            while try statement.step() {
                let commandJSON = statement.text(2)
                guard let command = AuditJSON.decodeStringArray(commandJSON) else {
                    throw StoreError(
                        code: .invalidData, path: path,
                        message: "session \"\(statement.text(0))\" has a malformed command: \(commandJSON.prefix(200))")
                }
                sessions.append(
                    SessionRecord(
                        id: statement.text(0), agent: statement.text(1), command: command,
                        cwd: statement.text(3), policyPath: statement.text(4), policySHA256: statement.text(5),
                        startTimeMicros: statement.int64(6), endTimeMicros: statement.optionalInt64(7),
                        exitStatus: try statement.optionalInt32(8)))
            }
            return sessions
        }
    }

    /// Events in insertion order: of one session, or of all sessions when `sessionID` is nil.
    public func events(sessionID: String?) throws(StoreError) -> [StoredEvent] {
        try withConnection { connection throws(StoreError) in
            let columns = """
                SELECT id, session_id, time, pid, ppid, executable, syscall, action, target,
                       argv, decision, rule_index, reason, errno, latency_us
                FROM events
                """
            let statement: PreparedStatement
            if let sessionID {
                statement = try connection.statement(columns + " WHERE session_id = ? ORDER BY id")
                try statement.bind(1, sessionID)
            } else {
                statement = try connection.statement(columns + " ORDER BY id")
            }
            defer { statement.reset() }
            var events: [StoredEvent] = []
            while try statement.step() {
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
                    latencyMicros: statement.int64(14))
                events.append(StoredEvent(id: id, sessionID: statement.text(1), event: event))
            }
            return events
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
