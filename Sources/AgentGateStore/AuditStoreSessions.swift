/// Sessions: their rows, and their links in the global session chain.
extension AuditStore {
    static let insertSessionStartSQL = SessionStartColumns.insertSQL(
        into: "sessions", extraColumns: [("chain_version", "2")])
    /// Chain version 3: the session's links are HMACs under the key named in `key_id`.
    static let insertKeyedSessionStartSQL = SessionStartColumns.insertSQL(
        into: "sessions", extraColumns: [("chain_version", "3"), ("key_id", "?")])
    static let updateSessionEndSQL = SessionEndColumns.updateSQL("sessions")

    /// Inserts a new session row and links it into the global session chain, in one
    /// `BEGIN IMMEDIATE` transaction (so concurrent supervisors serialize). The command and
    /// the context's environment are redacted first.
    /// - Throws: `.constraintViolation` if a session with this id exists.
    public func createSession(_ session: SessionRecord) throws(StoreError) {
        let columns = Self.sessionStartColumns(session)
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                _ = try Self.insertSessionStart(
                    columns, connection: connection, linkTime: AuditClock.nowMicros(), ifAbsent: false, key: chainKey,
                    sessionKeyID: chainKey?.id)
            }
        }
        // A session that starts with events already written can't exist: nothing to finish.
        if let end = session.endTimeMicros, let status = session.exitStatus {
            try finishSession(id: session.id, endTimeMicros: end, exitStatus: status)
        }
    }

    /// The stored (redacted, encoded) start columns of `session`.
    static func sessionStartColumns(_ session: SessionRecord) -> SessionStartColumns {
        var context = session.context
        if let environment = context?.environment {
            context?.environment = Redactor.redact(environment: environment)
        }
        // The same value is redacted the same way wherever it appears: the cwd is $PWD, the
        // program is the command's argv[0].
        if let program = context?.program { context?.program = Redactor.redact(text: program) }
        return SessionStartColumns(
            id: session.id, agent: session.agent, command: AuditJSON.encode(Redactor.redact(argv: session.command)),
            cwd: Redactor.redact(text: session.cwd), policyPath: session.policyPath, policySHA256: session.policySHA256,
            startTime: session.startTimeMicros, mode: session.mode, context: context?.jsonText(),
            unit: session.unit?.name, unitCgroup: session.unit?.cgroup, invocationID: session.unit?.invocationID)
    }

    /// Inserts the sessions row and its start link (an HMAC under `key`, the store's, when
    /// there is one). The session is keyed (chain version 3) when `sessionKeyID` names the key
    /// its chain is under; an unkeyed one (a fallback line of an earlier build) has nil.
    /// Inside a transaction.
    /// - Returns: false when `ifAbsent` and the session already exists (nothing written).
    static func insertSessionStart(
        _ columns: SessionStartColumns, connection: SQLiteConnection, linkTime: Int64, ifAbsent: Bool, key: AuditKey?,
        sessionKeyID: String?
    ) throws(StoreError) -> Bool {
        if ifAbsent {
            let exists = try connection.statement("SELECT 1 FROM sessions WHERE id = ?")
            defer { exists.reset() }
            try exists.bind(1, columns.id)
            if try exists.step() { return false }
        }
        let statement = try connection.statement(sessionKeyID == nil ? insertSessionStartSQL : insertKeyedSessionStartSQL)
        defer { statement.reset() }
        var texts = RowTextBuffer()
        try columns.execute(statement, texts: &texts, extra: sessionKeyID)
        let digest = AuditChain.hex(AuditChain.digest(columns))
        try appendGlobalLink(kind: "start", sessionID: columns.id, digest: digest, time: linkTime, connection: connection, key: key)
        return true
    }

    /// Appends a link to `session_chain` after its current last link: an HMAC under `key`
    /// (its id in `key_id`) when there is one. Inside a transaction.
    static func appendGlobalLink(
        kind: String, sessionID: String, digest: String, time: Int64, connection: SQLiteConnection, key: AuditKey?
    ) throws(StoreError) {
        let last = try connection.statement("SELECT seq, hash FROM session_chain ORDER BY seq DESC LIMIT 1")
        var seq: Int64 = 1
        var previous = AuditChain.globalGenesis
        if try last.step() {
            seq = last.int64(0) + 1
            previous = AuditChain.bytes(hex: last.text(1)) ?? AuditChain.globalGenesis
        }
        last.reset()
        let hash = AuditChain.globalLinkHash(
            seq: seq, kind: kind, sessionID: sessionID, digest: digest, previous: previous, key: key)
        let insert = try connection.statement(
            "INSERT INTO session_chain (seq, kind, session_id, time, digest, hash, key_id) VALUES (?, ?, ?, ?, ?, ?, ?)")
        defer { insert.reset() }
        try insert.bind(1, seq)
        try insert.bind(2, kind)
        try insert.bind(3, sessionID)
        try insert.bind(4, time)
        try insert.bind(5, digest)
        try insert.bind(6, AuditChain.hex(hash))
        if let key { try insert.bind(7, key.id) } else { try insert.bindNull(7) }
        _ = try insert.step()
    }

    /// Records a session's end, covering the session's whole event and process chain as
    /// stored now (its length and last hash), and links it into the global chain.
    /// `AuditWriter.finishSession` is the usual way: it knows the chain without reading it back.
    /// - Throws: `.notFound` if no session has this id; `.constraintViolation` if it has ended.
    public func finishSession(id: String, endTimeMicros: Int64, exitStatus: Int32) throws(StoreError) {
        let (columns, key) = try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                let key = try Self.chainKey(forSession: id, storeKey: chainKey, connection: connection)
                let head = try Self.chainHead(sessionID: id, key: key, connection: connection)
                let columns = SessionEndColumns(
                    id: id, endTime: endTimeMicros, exitStatus: Int64(exitStatus), linkCount: head.count,
                    lastHash: AuditChain.hex(head.lastHash))
                _ = try Self.insertSessionEnd(
                    columns, connection: connection, linkTime: AuditClock.nowMicros(), ifOpen: false, key: chainKey)
                return (columns, key)
            }
        }
        _ = anchor(sessionID: id, lastSeq: columns.linkCount, headHash: columns.lastHash, keyID: key?.id)
    }

    /// Records a session's end with a chain state the caller computed (the writer's).
    func finishSession(_ columns: SessionEndColumns) throws(StoreError) {
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                _ = try Self.insertSessionEnd(
                    columns, connection: connection, linkTime: AuditClock.nowMicros(), ifOpen: false, key: chainKey)
            }
        }
    }

    /// Fills the end columns and appends the end link. Inside a transaction.
    /// - Returns: false when `ifOpen` and the session has already ended with these values.
    @discardableResult
    static func insertSessionEnd(
        _ columns: SessionEndColumns, connection: SQLiteConnection, linkTime: Int64, ifOpen: Bool, key: AuditKey?
    ) throws(StoreError) -> Bool {
        let lookup = try connection.statement(
            "SELECT \(SessionEndColumns.columnList), chain_version FROM sessions WHERE id = ?")
        try lookup.bind(1, columns.id)
        guard try lookup.step() else {
            lookup.reset()
            throw StoreError(code: .notFound, path: connection.path, message: "no session with id \"\(columns.id)\"")
        }
        let fieldCount = Int32(SessionEndColumns.fields.count)
        let ended = !lookup.isNull(SessionEndColumns.position(of: "end_time"))
        let same = (0..<fieldCount).allSatisfy { !lookup.isNull($0) } && SessionEndColumns(from: lookup, at: 0) == columns
        let chained = !lookup.isNull(fieldCount)
        lookup.reset()
        if ended {
            if ifOpen && same { return false }
            throw StoreError(
                code: .constraintViolation, path: connection.path,
                message: "session \"\(columns.id)\" has already ended")
        }
        let update = try connection.statement(updateSessionEndSQL)
        defer { update.reset() }
        // A session from before the chains has no chain to cover.
        var texts = RowTextBuffer()
        try columns.execute(update, texts: &texts, nulling: chained ? [] : ["link_count", "last_hash"])
        if chained {
            let digest = AuditChain.hex(AuditChain.digest(columns))
            try appendGlobalLink(kind: "end", sessionID: columns.id, digest: digest, time: linkTime, connection: connection, key: key)
        }
        return true
    }

    /// The key a session's chain continues under: the store's for a keyed session (chain
    /// version 3) or one not stored yet, none for an unkeyed one (recorded before the key).
    /// - Throws: `.invalidData` when the session is keyed under another key than the store's.
    static func chainKey(forSession sessionID: String, storeKey: AuditKey?, connection: SQLiteConnection) throws(StoreError) -> AuditKey? {
        let statement = try connection.statement("SELECT chain_version, key_id FROM sessions WHERE id = ?")
        defer { statement.reset() }
        try statement.bind(1, sessionID)
        guard try statement.step() else { return storeKey }
        guard statement.optionalInt64(0) == 3 else { return nil }
        let keyID = statement.optionalText(1)
        guard let storeKey, storeKey.id == keyID else {
            throw StoreError(
                code: .invalidData, path: connection.path,
                message: "session \"\(sessionID)\" is keyed with audit key \(keyID ?? "?"), which is not this database's key ("
                    + (storeKey.map { $0.id } ?? "none") + ")")
        }
        return storeKey
    }

    /// A session's last chain link of every kind, read sets included. Events, process starts
    /// and read sets each take one index seek (events_by_session_seq, processes_by_session_seq,
    /// read_sets_by_session), so a hook's session, which holds only events, costs the same at
    /// its thousandth call as at its first; process exits are looked for among the session's
    /// processes (processes_by_pid).
    static let chainHeadSQL = """
        SELECT seq, hash FROM (
            SELECT * FROM (SELECT seq, hash FROM events WHERE session_id = ?1 AND seq IS NOT NULL
                           ORDER BY seq DESC LIMIT 1)
            UNION ALL SELECT * FROM (SELECT start_seq, start_hash FROM processes WHERE session_id = ?1
                                     ORDER BY start_seq DESC LIMIT 1)
            UNION ALL SELECT * FROM (SELECT exit_seq, exit_hash FROM processes WHERE session_id = ?1 AND exit_seq IS NOT NULL
                                     ORDER BY exit_seq DESC LIMIT 1)
            UNION ALL SELECT * FROM (SELECT seq, hash FROM read_sets WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1)
        ) ORDER BY seq DESC LIMIT 1
        """

    /// The session chain's length and last hash as stored (genesis when empty).
    static func chainHead(sessionID: String, key: AuditKey?, connection: SQLiteConnection) throws(StoreError)
        -> (count: Int64, lastHash: [UInt8], policySHA256: String?)
    {
        let policy = try connection.statement("SELECT policy_sha256 FROM sessions WHERE id = ?")
        defer { policy.reset() }
        try policy.bind(1, sessionID)
        let policySHA256 = try policy.step() ? policy.optionalText(0) : nil
        let statement = try connection.statement(chainHeadSQL)
        defer { statement.reset() }
        try statement.bind(1, sessionID)
        guard try statement.step() else { return (0, AuditChain.sessionGenesis(sessionID, key: key), policySHA256) }
        let hash = AuditChain.bytes(hex: statement.text(1)) ?? AuditChain.sessionGenesis(sessionID, key: key)
        return (statement.int64(0), hash, policySHA256)
    }

    /// The session chain's key, length and last hash as stored now, and the session's policy.
    func chainHead(sessionID: String) throws(StoreError) -> (key: AuditKey?, count: Int64, lastHash: [UInt8], policySHA256: String?) {
        try withConnection { connection throws(StoreError) in
            let key = try Self.chainKey(forSession: sessionID, storeKey: chainKey, connection: connection)
            let head = try Self.chainHead(sessionID: sessionID, key: key, connection: connection)
            return (key, head.count, head.lastHash, head.policySHA256)
        }
    }

}
