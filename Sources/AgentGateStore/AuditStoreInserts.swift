import CSQLite

/// Events and process records: chained rows into their tables.
extension AuditStore {
    /// Appends `events` to session `sessionID` in one transaction: all are stored or none.
    /// They are redacted and chained after the session's last stored link.
    /// - Throws: `.constraintViolation` if the session doesn't exist.
    public func insert(events: [DecisionEvent], sessionID: String) throws(StoreError) {
        guard !events.isEmpty else { return }
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                let key = try Self.chainKey(forSession: sessionID, storeKey: chainKey, connection: connection)
                let head = try Self.chainHead(sessionID: sessionID, key: key, connection: connection)
                var builder = ChainBuilder(
                    sessionID: sessionID, key: key, count: head.count, lastHash: head.lastHash, sessionPolicySHA256: head.policySHA256)
                let rows = events.map { builder.event($0) }
                try Self.insertRows(rows, connection: connection)
            }
        }
    }

    /// Appends `events` to `session`, creating the session first when no session has its id,
    /// in one transaction: for recorders without a session of their own to begin and end (an
    /// agent hook, one process per tool call, several at once). Sessions made here stay open.
    public func insert(events: [DecisionEvent], creatingIfAbsent session: SessionRecord) throws(StoreError) {
        let columns = Self.sessionStartColumns(session)
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) in
                let created = try Self.insertSessionStart(columns, connection: connection, linkTime: AuditClock.nowMicros(),
                                                          ifAbsent: true, key: chainKey, sessionKeyID: chainKey?.id)
                if !created {
                    // Never into another recorder's session, nor one that has ended.
                    let existing = try connection.statement("SELECT agent, end_time IS NULL FROM sessions WHERE id = ?")
                    defer { existing.reset() }
                    try existing.bind(1, session.id)
                    guard try existing.step(), existing.text(0) == session.agent, existing.int64(1) != 0 else {
                        throw StoreError(code: .constraintViolation, path: connection.path,
                                         message: "session \"\(session.id)\" exists and is not an open session of \(session.agent)")
                    }
                }
                let key = try Self.chainKey(forSession: session.id, storeKey: chainKey, connection: connection)
                let head = try Self.chainHead(sessionID: session.id, key: key, connection: connection)
                var builder = ChainBuilder(
                    sessionID: session.id, key: key, count: head.count, lastHash: head.lastHash, sessionPolicySHA256: head.policySHA256)
                try Self.insertRows(events.map { builder.event($0) }, connection: connection)
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

    static let insertEventSQL = EventColumns.insertSQL(into: "events", extraColumns: [("hash", "?")])
    static let insertProcessStartSQL = ProcessStartColumns.insertSQL(into: "processes", extraColumns: [("start_hash", "?")])
    static let updateProcessExitSQL = ProcessExitColumns.updateSQL(
        "processes", alsoSetting: ["exit_hash"], where: "exit_seq IS NULL")

    /// Inserts chained rows. Inside a transaction.
    static func insertRows(_ rows: [ChainedRow], connection: SQLiteConnection) throws(StoreError) {
        let insertEvent = try connection.statement(insertEventSQL)
        let insertProcess = try connection.statement(insertProcessStartSQL)
        let updateExit = try connection.statement(updateProcessExitSQL)
        defer {
            insertEvent.reset()
            insertProcess.reset()
            updateExit.reset()
        }
        var texts = RowTextBuffer()
        var strings: [String: Int64] = [:]
        for row in rows {
            switch row {
            case .event(let event, let hash):
                try event.execute(insertEvent, texts: &texts, extra: hash)
                sqlite3_reset(insertEvent.raw)
            case .processStart(let process, let hash):
                try process.execute(insertProcess, texts: &texts, extra: hash)
                sqlite3_reset(insertProcess.raw)
            case .processExit(let exit, let hash):
                try exit.execute(updateExit, texts: &texts, extra: hash)
                updateExit.reset()
                guard sqlite3_changes(connection.handle) > 0 else {
                    throw StoreError(
                        code: .constraintViolation, path: connection.path,
                        message: "no running process record at chain position \(exit.startSeq) of session \(exit.sessionID) for the exit of pid \(exit.pid)")
                }
            case .readSet(let set, let entries, let hash):
                try insertReadSet(set, entries: entries, hash: hash, connection: connection, strings: &strings)
            }
        }
    }
}
