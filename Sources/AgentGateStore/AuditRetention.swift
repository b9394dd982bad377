import CSQLite

/// What `AuditStore.removeSessions(endedBefore:)` removed.
public struct RetentionReport: Sendable, Equatable {
    public var cutoffMicros: Int64
    public var sessionIDs: [String] = []
    public var eventsRemoved = 0
    public var processesRemoved = 0
    /// The retention record's id in `retention_log`; nil for a dry run or when nothing matched.
    public var retentionID: Int64?
}

extension AuditStore {
    /// Retention: removes the sessions that ended before `cutoffMicros`, with their events and
    /// process records, in one transaction. A session that never recorded its end (its
    /// supervisor died) counts as ended at its last event, or its start.
    ///
    /// The global chain stays verifiable: the removed sessions' links stay in `session_chain`,
    /// marked pruned, and a `retention_log` row listing the sessions is linked into the chain
    /// (kind `retention`), so `verify` accepts exactly those gaps. Pruned links before the
    /// first live link are then dropped but for the last one, the anchor the chain starts from.
    public func removeSessions(endedBefore cutoffMicros: Int64, dryRun: Bool = false) throws(StoreError) -> RetentionReport {
        try withConnection { connection throws(StoreError) in
            try connection.inTransaction { () throws(StoreError) -> RetentionReport in
                var report = RetentionReport(cutoffMicros: cutoffMicros)
                let select = try connection.statement(
                    """
                    SELECT id FROM sessions s
                    WHERE (end_time IS NOT NULL AND end_time < ?1)
                       OR (end_time IS NULL AND start_time < ?1
                           AND coalesce((SELECT time FROM events e WHERE e.session_id = s.id ORDER BY id DESC LIMIT 1), 0) < ?1)
                    ORDER BY start_time, id
                    """)
                try select.bind(1, cutoffMicros)
                while try select.step() { report.sessionIDs.append(select.text(0)) }
                select.reset()
                guard !report.sessionIDs.isEmpty else { return report }

                try connection.execute("CREATE TEMP TABLE IF NOT EXISTS retention_doomed (id TEXT PRIMARY KEY)")
                try connection.execute("DELETE FROM retention_doomed")
                let doom = try connection.statement("INSERT INTO retention_doomed (id) VALUES (?)")
                for id in report.sessionIDs {
                    try doom.bind(1, id)
                    _ = try doom.step()
                    doom.reset()
                }
                report.eventsRemoved = Int(try connection.queryInt(
                    "SELECT count(*) FROM events WHERE session_id IN (SELECT id FROM retention_doomed)") ?? 0)
                report.processesRemoved = Int(try connection.queryInt(
                    "SELECT count(*) FROM processes WHERE session_id IN (SELECT id FROM retention_doomed)") ?? 0)
                if dryRun {
                    try connection.execute("DELETE FROM retention_doomed")
                    return report
                }
                try connection.execute("DELETE FROM events WHERE session_id IN (SELECT id FROM retention_doomed)")
                try connection.execute("DELETE FROM processes WHERE session_id IN (SELECT id FROM retention_doomed)")
                try connection.execute(
                    "DELETE FROM read_entries WHERE set_id IN (SELECT id FROM read_sets WHERE session_id IN (SELECT id FROM retention_doomed))")
                try connection.execute("DELETE FROM read_sets WHERE session_id IN (SELECT id FROM retention_doomed)")
                try connection.execute("DELETE FROM sessions WHERE id IN (SELECT id FROM retention_doomed)")
                try connection.execute("UPDATE session_chain SET pruned = 1 WHERE session_id IN (SELECT id FROM retention_doomed)")
                try connection.execute("DELETE FROM retention_doomed")

                let now = AuditClock.nowMicros()
                var row = RetentionColumns(
                    time: now, cutoff: cutoffMicros, sessions: AuditJSON.encode(report.sessionIDs),
                    eventsRemoved: Int64(report.eventsRemoved), processesRemoved: Int64(report.processesRemoved))
                let insert = try connection.statement(RetentionColumns.insertSQL(into: "retention_log"))
                var texts = RowTextBuffer()
                try row.execute(insert, texts: &texts)
                insert.reset()
                row.id = sqlite3_last_insert_rowid(connection.handle)
                report.retentionID = row.id
                try Self.appendGlobalLink(
                    kind: "retention", sessionID: "retention:\(row.id)", digest: AuditChain.hex(AuditChain.digest(row)),
                    time: now, connection: connection, key: chainKey)

                // Compact: the pruned links before the first live one are only needed as an anchor.
                if let firstLive = try connection.queryInt("SELECT min(seq) FROM session_chain WHERE pruned = 0") {
                    try connection.execute("DELETE FROM session_chain WHERE pruned = 1 AND seq < \(firstLive - 1)")
                }
                return report
            }
        }
    }
}

extension AuditStore {
    /// Bytes the database's rows take (pages in use × page size; free pages not counted, since
    /// SQLite reuses them before the file grows).
    public func usedBytes() throws(StoreError) -> Int64 {
        try withConnection { connection throws(StoreError) in
            let pages = try connection.queryInt("PRAGMA page_count") ?? 0
            let free = try connection.queryInt("PRAGMA freelist_count") ?? 0
            let size = try connection.queryInt("PRAGMA page_size") ?? 4096
            return (pages - free) * size
        }
    }

    /// Size-based retention, for a supervisor's start: when the rows take more than
    /// `maxBytes`, removes the oldest ended sessions (as `removeSessions(endedBefore:)` does,
    /// so the chain stays verifiable) until about three quarters of `maxBytes` would remain,
    /// estimating each session's share by its rows. nil when under the limit or when no
    /// ended session can go (a running session is never removed).
    public func enforceSizeLimit(maxBytes: Int64) throws(StoreError) -> RetentionReport? {
        let used = try usedBytes()
        guard used > maxBytes, used > 0 else { return nil }
        let cutoff: Int64? = try withConnection { connection throws(StoreError) in
            let totalRows = (try connection.queryInt("SELECT count(*) FROM events") ?? 0)
                + (try connection.queryInt("SELECT count(*) FROM processes") ?? 0)
            guard totalRows > 0 else { return nil }
            let target = maxBytes / 4 * 3
            let neededRows = (Double(totalRows) * Double(used - target) / Double(used)).rounded(.up)
            let sessions = try connection.statement(
                """
                SELECT end_time, (SELECT count(*) FROM events e WHERE e.session_id = s.id)
                               + (SELECT count(*) FROM processes p WHERE p.session_id = s.id)
                FROM sessions s WHERE end_time IS NOT NULL ORDER BY end_time
                """)
            defer { sessions.reset() }
            var removed: Int64 = 0
            var cutoff: Int64?
            while try sessions.step() {
                removed += sessions.int64(1)
                cutoff = sessions.int64(0) + 1
                if Double(removed) >= neededRows { break }
            }
            return cutoff
        }
        guard let cutoff else { return nil }
        let report = try removeSessions(endedBefore: cutoff)
        return report.sessionIDs.isEmpty ? nil : report
    }
}
