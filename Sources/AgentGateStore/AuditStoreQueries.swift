/// Reading sessions, events and process records back.
extension AuditStore {
    static let sessionColumns = """
        id, agent, command, cwd, policy_path, policy_sha256, start_time, end_time, exit_status, mode, context,
        unit, unit_cgroup, invocation_id
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
            context: statement.optionalText(10).flatMap(SessionContext.fromJSON),
            unit: statement.optionalText(11).map {
                SessionUnit(name: $0, cgroup: statement.optionalText(12) ?? "", invocationID: statement.optionalText(13) ?? "")
            })
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
                    session: try decodeSession(statement), eventCount: Int(statement.int64(14)),
                    deniedCount: Int(statement.int64(15)), lastEventTimeMicros: statement.optionalInt64(16)))
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
            return try Self.firstColumnTexts(statement)
        }
    }

    /// Sessions still running (or without a recorded end) or that ended at or after `since`.
    func sessionIDs(activeSince since: Int64) throws(StoreError) -> [String] {
        try withConnection { connection throws(StoreError) in
            let statement = try connection.statement(
                "SELECT id FROM sessions WHERE end_time IS NULL OR end_time >= ? ORDER BY start_time")
            defer { statement.reset() }
            try statement.bind(1, since)
            return try Self.firstColumnTexts(statement)
        }
    }

    /// The first column of every row `statement` returns.
    private static func firstColumnTexts(_ statement: PreparedStatement) throws(StoreError) -> [String] {
        var texts: [String] = []
        while try statement.step() { texts.append(statement.text(0)) }
        return texts
    }

    /// The most recently started session's id, or nil.
    public func latestSessionID() throws(StoreError) -> String? {
        try withConnection { connection throws(StoreError) in
            try connection.queryText("SELECT id FROM sessions ORDER BY start_time DESC, rowid DESC LIMIT 1")
        }
    }

    /// The newest event's id (where a live stream of new events starts), or 0 with none.
    public func latestEventID() throws(StoreError) -> Int64 {
        try withConnection { connection throws(StoreError) in
            try connection.queryInt("SELECT COALESCE(MAX(id), 0) FROM events") ?? 0
        }
    }

    /// Which events `events(matching:)` returns. Every filter is optional.
    public struct EventQuery: Sendable, Equatable {
        public var sessionID: String?
        public var decision: RecordedDecision?
        public var action: RecordedAction?
        /// Events at or after this time (µs since the epoch).
        public var since: Int64?
        /// A case-insensitive (ASCII) substring of the target, argv, executable, reason or intent.
        public var text: String?
        /// Events with a row id greater than this (for following a live session).
        public var afterID: Int64?
        public var limit: Int?
        /// Events whose syscall is none of these.
        public var excludedSyscalls: [String]
        /// With `afterID` (paging): read aggregates whose first read is after this time are
        /// included too; without `afterID`, every read aggregate matching the query is.
        public var readsAfter: Int64? = nil

        public init(
            sessionID: String? = nil, decision: RecordedDecision? = nil, action: RecordedAction? = nil, since: Int64? = nil,
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
        reason, errno, latency_us, rule_id, intent, notable, enforced, seq, hash,
        CASE policy_sha256 WHEN '\(ChainBuilder.sessionPolicyMark)'
            THEN (SELECT s.policy_sha256 FROM sessions s WHERE s.id = events.session_id) ELSE policy_sha256 END,
        answered_via, answered_by, source
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
            if merged.contains(where: { $0.event.readCount != nil }) {
                merged.sort { ($0.event.timeMicros, $0.id) < ($1.event.timeMicros, $1.id) }
            } else {
                merged.sort { $0.id < $1.id }
            }
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
            if let value = query.decision { try statement.bind(2, value.text) }
            if let value = query.action { try statement.bind(3, value.text) }
            if let value = query.since { try statement.bind(4, value) }
            if let value = query.text { try statement.bind(5, value) }
            if let value = query.afterID { try statement.bind(6, value) }
            if let value = query.limit { try statement.bind(7, Int64(value)) }
            for (index, syscall) in query.excludedSyscalls.enumerated() { try statement.bind(Int32(index + 8), syscall) }
            var events: [StoredEvent] = []
            while try statement.step() {
                events.append(try decodeEvent(statement))
            }
            // Aggregated reads (schema v8) stand for allowed reads: merged in by first read.
            let takesReads = (query.decision == nil || query.decision == .allow) && (query.action == nil || query.action == .fsRead)
                && (query.afterID == nil || query.readsAfter != nil)
            guard takesReads else { return events }
            let pageIsFull = query.limit.map { events.count >= $0 } ?? false
            let upper = pageIsFull ? events.last?.event.timeMicros : nil
            var reads = try Self.readAggregateEvents(
                sessionID: query.sessionID, connection: connection, after: query.afterID == nil ? nil : query.readsAfter,
                through: upper, since: query.since, text: query.text)
            guard !reads.isEmpty else { return events }
            reads.append(contentsOf: events)
            reads.sort { ($0.event.timeMicros, $0.id) < ($1.event.timeMicros, $1.id) }
            return reads
        }
    }

    /// Read aggregates as events: one per process and path, `readCount` reads from
    /// `timeMicros` to `lastReadMicros`, with row id 0 (they are not rows of `events`).
    static func readAggregateEvents(
        sessionID: String?, connection: SQLiteConnection, after: Int64?, through: Int64?, since: Int64?, text: String?
    ) throws(StoreError) -> [StoredEvent] {
        var sessions: [String] = []
        if let sessionID {
            sessions = [sessionID]
        } else {
            let statement = try connection.statement("SELECT DISTINCT session_id FROM read_sets")
            defer { statement.reset() }
            while try statement.step() { sessions.append(statement.text(0)) }
        }
        let needle = text.map { Array($0.lowercased().utf8) }
        var result: [StoredEvent] = []
        let sessionPolicy = try connection.statement("SELECT policy_sha256 FROM sessions WHERE id = ?")
        defer { sessionPolicy.reset() }
        for session in sessions {
            // A set decided under the session's own policy names it by a mark (ChainBuilder).
            try sessionPolicy.bind(1, session)
            let policy = try sessionPolicy.step() ? sessionPolicy.optionalText(0) : nil
            sessionPolicy.reset()
            for set in try readSets(sessionID: session, connection: connection) {
                for entry in set.entries {
                    if let after, entry.firstTime <= after { continue }
                    if let through, entry.firstTime > through { continue }
                    if let since, entry.lastTime < since { continue }
                    if let needle, !(Self.contains(entry.target, needle) || Self.contains(entry.executable, needle)) { continue }
                    var event = DecisionEvent(
                        timeMicros: entry.firstTime, pid: Int32(truncatingIfNeeded: entry.pid),
                        ppid: Int32(truncatingIfNeeded: entry.ppid), executable: entry.executable, syscall: "reads",
                        action: .fsRead, target: entry.target, decision: .allow,
                        ruleIndex: entry.ruleIndex.map { Int(truncatingIfNeeded: $0) },
                        reason: "allowed", errno: entry.errno.map { Int32(truncatingIfNeeded: $0) }, latencyMicros: 0,
                        ruleID: entry.ruleIndex.map { "\($0 + 1)" })
                    event.policySHA256 = set.set.policySHA256 == ChainBuilder.sessionPolicyMark ? policy : set.set.policySHA256
                    event.readCount = entry.count
                    event.lastReadMicros = entry.lastTime
                    result.append(StoredEvent(id: 0, sessionID: session, event: event, seq: set.set.seq, hash: set.hash))
                }
            }
        }
        return result
    }

    /// ASCII case-insensitive substring test (`needle` already lowercased).
    private static func contains(_ text: String, _ needle: [UInt8]) -> Bool {
        let haystack = Array(text.lowercased().utf8)
        guard needle.count <= haystack.count else { return false }
        if needle.isEmpty { return true }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return true
        }
        return false
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
        var event = DecisionEvent(
            timeMicros: statement.int64(2), pid: try statement.int32(3), ppid: try statement.int32(4),
            executable: statement.text(5), syscall: statement.text(6), action: RecordedAction(text: statement.text(7)),
            target: statement.text(8), argv: argv, decision: RecordedDecision(text: statement.text(10)),
            ruleIndex: statement.optionalInt64(11).map { Int(truncatingIfNeeded: $0) },
            reason: statement.text(12), errno: try statement.optionalInt32(13),
            latencyMicros: statement.int64(14), ruleID: statement.optionalText(15), intent: statement.optionalText(16),
            notable: statement.int64(17) != 0, enforced: statement.int64(18) != 0)
        event.policySHA256 = statement.optionalText(21)
        event.answeredVia = statement.optionalText(22)
        event.answeredBy = statement.optionalText(23)
        event.source = RecordedSource(column: statement.optionalText(24))
        return StoredEvent(
            id: id, sessionID: statement.text(1), event: event, seq: statement.optionalInt64(19),
            hash: statement.optionalText(20))
    }

    /// Events per (action, decision, enforced) in one session, for summaries.
    public struct EventCount: Sendable, Equatable {
        public var action: RecordedAction
        public var decision: RecordedDecision
        public var enforced: Bool
        public var count: Int

        public init(action: RecordedAction, decision: RecordedDecision, enforced: Bool, count: Int) {
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
                    action: RecordedAction(text: statement.text(0)), decision: RecordedDecision(text: statement.text(1)),
                    enforced: statement.int64(2) != 0,
                    count: Int(statement.int64(3))))
            }
            // Aggregated allowed reads count as the reads they stand for (only enforced
            // reads are aggregated).
            let reads = try connection.statement(
                "SELECT coalesce(sum(e.count), 0) FROM read_sets s JOIN read_entries e ON e.set_id = s.id WHERE s.session_id = ?")
            defer { reads.reset() }
            try reads.bind(1, sessionID)
            if try reads.step(), reads.int64(0) > 0 {
                let aggregated = Int(reads.int64(0))
                if let index = counts.firstIndex(where: { $0.action == .fsRead && $0.decision == .allow && $0.enforced }) {
                    counts[index].count += aggregated
                } else {
                    counts.append(EventCount(action: .fsRead, decision: .allow, enforced: true, count: aggregated))
                }
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

}
