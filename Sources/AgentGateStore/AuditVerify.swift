import CSQLite

/// One broken link found by `AuditStore.verify`: which row, and what doesn't match.
public struct ChainProblem: Sendable, Equatable, CustomStringConvertible {
    /// "events", "processes", "sessions", "session_chain" or "retention_log".
    public var table: String
    /// The row: its id (events, processes, retention_log), session id (sessions) or seq (session_chain).
    public var row: String
    public var sessionID: String?
    /// The link's position in its chain, when it has one.
    public var seq: Int64?
    public var message: String

    public var description: String {
        var text = "\(table) row \(row)"
        var details: [String] = []
        if let sessionID, table != "sessions" { details.append("session \(sessionID)") }
        if let seq, table != "session_chain" { details.append("seq \(seq)") }
        if !details.isEmpty { text += " (" + details.joined(separator: ", ") + ")" }
        return text + ": " + message
    }
}

/// What `AuditStore.verify` found.
public struct VerificationReport: Sendable, Equatable {
    /// Broken links in chain order (the global chain first, then each session's); the first is
    /// the first broken link. At most `problemLimit` are listed.
    public var problems: [ChainProblem] = []
    /// Problems beyond the listed ones.
    public var unlistedProblems = 0
    public var isValid: Bool { problems.isEmpty }
    public var firstBrokenLink: ChainProblem? { problems.first }

    /// Links of the global session chain checked.
    public var globalLinks = 0
    /// Chained sessions whose event/process chain was checked.
    public var sessionsVerified = 0
    public var eventsVerified = 0
    public var processLinksVerified = 0
    /// Sessions recorded before schema v2: stored, but not covered by any chain.
    public var unchainedSessions: [String] = []
    public var unchainedEvents = 0
    /// Chained sessions without an end record (running, or the supervisor died): their last
    /// links can't be vouched for by an end record.
    public var openSessions: [String] = []
    /// The global chain starts at this retention anchor (links before it were removed by
    /// `agentgate clean`), or nil when it starts at seq 1.
    public var anchorSeq: Int64?
    /// The last global link's hash: keep it elsewhere to detect a rewrite of the whole tail.
    public var headHash: String?

    /// The id of the key beside the database (`<database>.key`); nil when there is none.
    public var keyID: String?
    /// Why the key beside the database can't be used, when it can't.
    public var keyProblem: String?
    /// Chained sessions keyed with the key (HMAC, chain version 3), and those recorded
    /// before it (SHA-256, chain version 2).
    public var keyedSessions = 0
    public var unkeyedSessions = 0
    /// Read sets (aggregated allowed reads, schema v8) and their entries whose links matched.
    public var readSetsVerified = 0
    public var readEntriesVerified = 0
    /// Global links that are HMACs under the key.
    public var keyedLinks = 0

    /// `<database>.anchors`, and how many of its session heads were compared.
    public var anchorPath: String?
    public var anchorsChecked = 0
    /// Whether systemd's journal runs here (it gets a copy of each anchor).
    public var journalAvailable = false

    static let problemLimit = 100

    mutating func add(_ problem: ChainProblem) {
        if problems.count < Self.problemLimit { problems.append(problem) } else { unlistedProblems += 1 }
    }
}

extension AuditStore {
    /// Checks every hash chain: the global session chain (all of it; it is small) and the
    /// event/process chain of one session, or of every session when `sessionID` is nil.
    /// Detects an edited, deleted, inserted or reordered row anywhere they cover.
    public func verify(sessionID: String? = nil) throws(StoreError) -> VerificationReport {
        try withConnection { connection throws(StoreError) in
            var report = VerificationReport()
            // One read transaction: a consistent snapshot while supervisors keep writing.
            try connection.execute("BEGIN")
            defer { sqlite3_exec(connection.handle, "COMMIT", nil, nil, nil) }
            report.keyID = chainKey?.id
            report.keyProblem = chainKeyProblem
            report.journalAvailable = AuditJournal.isAvailable
            let sessions = try Self.loadSessions(connection)
            let retention = try Self.loadRetention(connection)
            let vouched = try Self.verifyGlobalChain(
                connection, sessions: sessions, retention: retention, key: chainKey, report: &report)
            verifyAnchors(sessions: sessions, removed: vouched, only: sessionID, report: &report)
            for session in sessions.values.sorted(by: { ($0.startTime, $0.id) < ($1.startTime, $1.id) }) {
                if let sessionID, session.id != sessionID { continue }
                if session.chained {
                    try Self.verifySessionChain(session, connection, key: chainKey, report: &report)
                } else {
                    report.unchainedEvents += Int(try Self.count(
                        "SELECT count(*) FROM events WHERE session_id = ?", session.id, connection))
                }
            }
            return report
        }
    }

    struct SessionRow {
        var id: String
        var start: SessionStartColumns
        var startTime: Int64
        var endTime: Int64?
        var exitStatus: Int64?
        var linkCount: Int64?
        var lastHash: String?
        var chained: Bool
        /// Chain version 3: HMAC links under the key with this id.
        var keyID: String?
    }

    private static func loadSessions(_ connection: SQLiteConnection) throws(StoreError) -> [String: SessionRow] {
        let statement = try connection.statement(
            "SELECT \(SessionStartColumns.columnList), end_time, exit_status, link_count, last_hash, chain_version, key_id FROM sessions")
        defer { statement.reset() }
        let end = Int32(SessionStartColumns.fields.count)
        var rows: [String: SessionRow] = [:]
        while try statement.step() {
            let start = SessionStartColumns(from: statement, at: 0)
            rows[start.id] = SessionRow(
                id: start.id, start: start, startTime: start.startTime, endTime: statement.optionalInt64(end),
                exitStatus: statement.optionalInt64(end + 1), linkCount: statement.optionalInt64(end + 2),
                lastHash: statement.optionalText(end + 3), chained: !statement.isNull(end + 4),
                keyID: statement.optionalInt64(end + 4) == 3 ? statement.optionalText(end + 5) ?? "" : nil)
        }
        return rows
    }

    private static func loadRetention(_ connection: SQLiteConnection) throws(StoreError) -> [Int64: RetentionColumns] {
        let statement = try connection.statement("SELECT \(RetentionColumns.columnList) FROM retention_log")
        defer { statement.reset() }
        var rows: [Int64: RetentionColumns] = [:]
        while try statement.step() {
            let row = RetentionColumns(from: statement, at: 0)
            rows[row.id] = row
        }
        return rows
    }

    private static func count(_ sql: String, _ id: String, _ connection: SQLiteConnection) throws(StoreError) -> Int64 {
        let statement = try connection.statement(sql)
        defer { statement.reset() }
        try statement.bind(1, id)
        return try statement.step() ? statement.int64(0) : 0
    }

    static func short(_ hash: String) -> String { String(hash.prefix(16)) + "…" }

    // MARK: - Global chain

    /// Why a keyed link can't be checked with `key`, or nil when it can.
    static func keyMismatch(_ keyID: String, _ key: AuditKey?) -> String? {
        guard let key else { return "it is keyed with audit key \(keyID), and there is no key here to check it" }
        return key.id == keyID ? nil : "it is keyed with audit key \(keyID), not with the key here (\(key.id))"
    }

    /// - Returns: the sessions removed by retention (vouched for by a retention record).
    private static func verifyGlobalChain(
        _ connection: SQLiteConnection, sessions: [String: SessionRow],
        retention: [Int64: RetentionColumns], key: AuditKey?, report: inout VerificationReport
    ) throws(StoreError) -> Set<String> {
        let statement = try connection.statement(
            "SELECT seq, kind, session_id, digest, hash, pruned, key_id FROM session_chain ORDER BY seq")
        defer { statement.reset() }
        var previous: [UInt8]?
        var lastSeq: Int64 = 0
        var linked: [String: Set<String>] = [:]
        var prunedSessions: [(seq: Int64, session: String)] = []
        var vouched = Set<String>()
        var sawKeyedLink = false
        while try statement.step() {
            let seq = statement.int64(0)
            let kind = statement.text(1)
            let sessionID = statement.text(2)
            let digest = statement.text(3)
            let stored = statement.text(4)
            let pruned = statement.int64(5) != 0
            let linkKeyID = statement.optionalText(6)
            report.globalLinks += 1
            func problem(_ message: String) {
                report.add(ChainProblem(table: "session_chain", row: "\(seq)", sessionID: sessionID, seq: seq, message: message))
            }
            // Once the chain is keyed it stays keyed: an unkeyed link after a keyed one was
            // written by someone without the key.
            var checkable = true
            if let linkKeyID {
                report.keyedLinks += 1
                sawKeyedLink = true
                if let mismatch = keyMismatch(linkKeyID, key) {
                    problem("can't be verified: \(mismatch)")
                    checkable = false
                }
            } else if sawKeyedLink {
                problem("is unkeyed (plain SHA-256) after keyed links: rewritten by someone without the key")
            }
            let linkKey = linkKeyID == nil ? nil : key
            let keyedWhy = linkKeyID == nil ? "" : " under the key"
            if !checkable {
                if previous == nil && seq != 1 && pruned { report.anchorSeq = seq }
            } else if let expected = previous {
                if seq != lastSeq + 1 {
                    let missing = seq - 1 == lastSeq + 1 ? "seq \(lastSeq + 1) is" : "seqs \(lastSeq + 1)–\(seq - 1) are"
                    problem("session chain link \(missing) missing before this one: deleted")
                } else {
                    let computed = AuditChain.hex(AuditChain.globalLinkHash(
                        seq: seq, kind: kind, sessionID: sessionID, digest: digest, previous: expected, key: linkKey))
                    if computed != stored {
                        problem("link hash doesn't match\(keyedWhy) (stored \(short(stored)), computed \(short(computed))): this link or the one before it was edited")
                    }
                }
            } else if seq == 1 {
                let computed = AuditChain.hex(AuditChain.globalLinkHash(
                    seq: seq, kind: kind, sessionID: sessionID, digest: digest, previous: AuditChain.globalGenesis, key: linkKey))
                if computed != stored {
                    problem("link hash doesn't match\(keyedWhy) (stored \(short(stored)), computed \(short(computed))): the first link was edited")
                }
            } else if pruned {
                report.anchorSeq = seq // a retention anchor: the chain legitimately starts here
            } else {
                problem("the session chain starts at seq \(seq) without a retention anchor: links 1–\(seq - 1) were deleted")
            }
            previous = AuditChain.bytes(hex: stored) ?? []
            lastSeq = seq
            report.headHash = stored

            if pruned {
                prunedSessions.append((seq, sessionID))
                continue
            }
            linked[sessionID, default: []].insert(kind)
            if kind == "retention" {
                guard sessionID.hasPrefix("retention:"), let id = Int64(sessionID.dropFirst("retention:".count)),
                      let row = retention[id]
                else {
                    problem("its retention_log row is missing: deleted")
                    continue
                }
                if AuditChain.hex(AuditChain.digest(row)) != digest {
                    report.add(ChainProblem(
                        table: "retention_log", row: "\(id)", sessionID: nil, seq: seq,
                        message: "its fields don't match its record in the session chain (seq \(seq)): edited"))
                }
                for removed in AuditJSON.decodeStringArray(row.sessions) ?? [] { vouched.insert(removed) }
                continue
            }
            guard let session = sessions[sessionID] else {
                report.add(ChainProblem(
                    table: "sessions", row: sessionID, sessionID: sessionID, seq: nil,
                    message: "missing: the row was deleted (its \(kind) record is session chain seq \(seq))"))
                continue
            }
            switch kind {
            case "start":
                if AuditChain.hex(AuditChain.digest(session.start)) != digest {
                    report.add(ChainProblem(
                        table: "sessions", row: sessionID, sessionID: sessionID, seq: nil,
                        message: "its start fields (agent, command, cwd, policy, start time, mode, context) don't match its start record (session chain seq \(seq)): edited"))
                }
            case "end":
                guard let end = session.endTime, let status = session.exitStatus, let count = session.linkCount,
                      let last = session.lastHash
                else {
                    report.add(ChainProblem(
                        table: "sessions", row: sessionID, sessionID: sessionID, seq: nil,
                        message: "its end fields were cleared, but its end record is session chain seq \(seq)"))
                    continue
                }
                let columns = SessionEndColumns(id: sessionID, endTime: end, exitStatus: status, linkCount: count, lastHash: last)
                if AuditChain.hex(AuditChain.digest(columns)) != digest {
                    report.add(ChainProblem(
                        table: "sessions", row: sessionID, sessionID: sessionID, seq: nil,
                        message: "its end fields (end time, exit status, link count, last hash) don't match its end record (session chain seq \(seq)): edited"))
                }
            default:
                problem("unknown link kind \"\(kind)\"")
            }
        }
        // A pruned link must be vouched for by a retention record.
        for (seq, session) in prunedSessions where !vouched.contains(session) && seq != report.anchorSeq {
            report.add(ChainProblem(
                table: "session_chain", row: "\(seq)", sessionID: session, seq: seq,
                message: "marked as removed by retention, but no retention record lists session \(session)"))
        }
        // Every chained session must be in the chain; an unchained one must really be pre-v2.
        for session in sessions.values.sorted(by: { $0.id < $1.id }) {
            let kinds = linked[session.id] ?? []
            if session.chained {
                if session.keyID != nil {
                    report.keyedSessions += 1
                } else {
                    report.unkeyedSessions += 1
                    // A session that started once the key existed was keyed when recorded.
                    if let key, session.startTime >= key.createdMicros {
                        report.add(ChainProblem(
                            table: "sessions", row: session.id, sessionID: session.id, seq: nil,
                            message: "is unkeyed, but it started after the audit key was made: rewritten by someone without the key"))
                    }
                }
                if !kinds.contains("start") {
                    report.add(ChainProblem(
                        table: "sessions", row: session.id, sessionID: session.id, seq: nil,
                        message: "has no start record in the session chain: inserted outside the audit store"))
                }
                if session.endTime != nil && !kinds.contains("end") {
                    report.add(ChainProblem(
                        table: "sessions", row: session.id, sessionID: session.id, seq: nil,
                        message: "has end fields but no end record in the session chain: edited"))
                }
                if session.endTime == nil { report.openSessions.append(session.id) }
            } else if !kinds.isEmpty {
                report.add(ChainProblem(
                    table: "sessions", row: session.id, sessionID: session.id, seq: nil,
                    message: "is marked unchained (pre-v2), but it has records in the session chain: chain_version was cleared"))
            } else {
                report.unchainedSessions.append(session.id)
            }
        }
        return vouched
    }

    // MARK: - Session chains

    private struct ProcessRow {
        var id: Int64
        var start: ProcessStartColumns
        var startHash: String
        var exit: ProcessExitColumns?
        var exitHash: String?
    }

    private static func verifySessionChain(
        _ session: SessionRow, _ connection: SQLiteConnection, key storeKey: AuditKey?, report: inout VerificationReport
    ) throws(StoreError) {
        if let keyID = session.keyID, let mismatch = keyMismatch(keyID, storeKey) {
            report.add(ChainProblem(table: "sessions", row: session.id, sessionID: session.id, seq: nil,
                                    message: "its chain can't be verified: \(mismatch)"))
            return
        }
        let key = session.keyID == nil ? nil : storeKey
        let keyedWhy = key == nil ? "" : " under the key"
        report.sessionsVerified += 1
        // Each row: its id, its start record and hash, then its exit record and hash.
        let processStatement = try connection.statement(
            """
            SELECT id, \(ProcessStartColumns.columnList), start_hash, \(ProcessExitColumns.columnList), exit_hash
            FROM processes WHERE session_id = ?
            """)
        try processStatement.bind(1, session.id)
        let startHashColumn = 1 + Int32(ProcessStartColumns.fields.count)
        let exitHashColumn = startHashColumn + 1 + Int32(ProcessExitColumns.fields.count)
        var processes: [ProcessRow] = []
        while try processStatement.step() {
            var exit: ProcessExitColumns?
            if !processStatement.isNull(startHashColumn + 1 + ProcessExitColumns.position(of: "exit_seq")) {
                exit = ProcessExitColumns(from: processStatement, at: startHashColumn + 1)
            }
            processes.append(ProcessRow(
                id: processStatement.int64(0), start: ProcessStartColumns(from: processStatement, at: 1),
                startHash: processStatement.text(startHashColumn), exit: exit,
                exitHash: processStatement.optionalText(exitHashColumn)))
        }
        processStatement.reset()
        // Process links and read sets in chain order: (seq, index, what). A read set's entries
        // are covered by its link through their digest.
        let readSets = try readSets(sessionID: session.id, connection: connection)
        var processLinks: [(seq: Int64, index: Int, isExit: Bool, isReadSet: Bool)] = []
        for (index, process) in processes.enumerated() {
            processLinks.append((process.start.seq, index, false, false))
            if let exit = process.exit { processLinks.append((exit.seq, index, true, false)) }
        }
        for (index, set) in readSets.enumerated() { processLinks.append((set.set.seq, index, false, true)) }
        processLinks.sort { $0.seq < $1.seq }

        // Events in chain order. The writer stores them in record order, so row id order is
        // chain order and the session index serves it without a sort; only when that doesn't
        // hold (rows copied or renumbered) are they sorted by position.
        let outOfOrder = try connection.statement(
            """
            SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY id) AS previous
                                  FROM events WHERE session_id = ? AND seq IS NOT NULL)
            WHERE seq <= previous
            """)
        try outOfOrder.bind(1, session.id)
        let sorted = try outOfOrder.step() && outOfOrder.int64(0) == 0
        outOfOrder.reset()
        // Each row: its id, its chain position (NULL for a row inserted without one), its
        // record and its hash.
        let events = try connection.statement(
            "SELECT id, seq, \(EventColumns.columnList), hash FROM events WHERE session_id = ?"
                + (sorted ? " ORDER BY id" : " ORDER BY seq, id"))
        let eventHashColumn = 2 + Int32(EventColumns.fields.count)
        defer { events.reset() }
        try events.bind(1, session.id)
        var nextProcess = 0
        var previous = AuditChain.sessionGenesis(session.id, key: key)
        var expectedSeq: Int64 = 1
        var encoder = AuditChain.Encoder(domain: "", previous: [], key: key)

        /// Steps to the next event that has a chain position; those without one are problems.
        func nextEvent() throws(StoreError) -> Bool {
            while try events.step() {
                guard events.isNull(1) else { return true }
                report.add(ChainProblem(
                    table: "events", row: "\(events.int64(0))", sessionID: session.id, seq: nil,
                    message: "has no chain position in a chained session: inserted outside the audit writer"))
            }
            return false
        }
        var hasEvent = try nextEvent()

        while hasEvent || nextProcess < processLinks.count {
            let eventSeq: Int64? = hasEvent ? events.int64(1) : nil
            let processSeq: Int64? = nextProcess < processLinks.count ? processLinks[nextProcess].seq : nil
            let takeEvent: Bool
            if let eventSeq, let processSeq { takeEvent = eventSeq <= processSeq } else { takeEvent = eventSeq != nil }

            let table: String
            let rowID: Int64
            let seq: Int64
            let stored: String
            let computed: String
            if takeEvent {
                var columns = EventColumns(from: events, at: 2)
                columns.policySHA256 = ChainBuilder.hashedPolicy(columns.policySHA256, sessionPolicySHA256: session.start.policySHA256)
                table = "events"
                rowID = events.int64(0)
                seq = columns.seq
                stored = events.text(eventHashColumn)
                computed = AuditChain.hex(AuditChain.hash(inPlace: &columns, previous: previous, encoder: &encoder))
                report.eventsVerified += 1
            } else if processLinks[nextProcess].isReadSet {
                let set = readSets[processLinks[nextProcess].index]
                table = "read_sets"
                rowID = set.id
                seq = set.set.seq
                stored = set.hash
                var columns = set.set
                columns.policySHA256 = ChainBuilder.hashedPolicy(columns.policySHA256, sessionPolicySHA256: session.start.policySHA256)
                computed = AuditChain.hex(AuditChain.hash(columns, previous: previous, encoder: &encoder))
                report.readSetsVerified += 1
                report.readEntriesVerified += set.entries.count
            } else {
                let link = processLinks[nextProcess]
                let process = processes[link.index]
                table = "processes"
                rowID = process.id
                seq = link.seq
                if link.isExit, let exit = process.exit {
                    stored = process.exitHash ?? ""
                    computed = AuditChain.hex(AuditChain.hash(exit, previous: previous, encoder: &encoder))
                } else {
                    stored = process.startHash
                    computed = AuditChain.hex(AuditChain.hash(process.start, previous: previous, encoder: &encoder))
                }
                report.processLinksVerified += 1
            }
            let what = table == "processes" ? (processLinks[nextProcess].isExit ? "exit" : "start") : ""
            func problem(_ message: String) {
                report.add(ChainProblem(table: table, row: "\(rowID)", sessionID: session.id, seq: seq, message: message))
            }
            if seq > expectedSeq {
                let missing = seq - 1 == expectedSeq ? "seq \(expectedSeq) is" : "seqs \(expectedSeq)–\(seq - 1) are"
                problem("chain link \(missing) missing before this \(what.isEmpty ? "row" : what + " record"): deleted")
            } else if seq < expectedSeq {
                problem("chain position \(seq) is used twice: a row was inserted or copied")
            } else if computed != stored {
                problem("stored \(what.isEmpty ? "" : what + " ")hash \(short(stored)) doesn't match its content\(keyedWhy) (computed \(short(computed))): this row was edited, or moved")
            }
            previous = AuditChain.bytes(hex: stored) ?? []
            expectedSeq = max(expectedSeq, seq + 1)
            if takeEvent { hasEvent = try nextEvent() } else { nextProcess += 1 }
        }

        // The end record vouches for the length and the last link.
        let count = expectedSeq - 1
        if let linkCount = session.linkCount, let lastHash = session.lastHash, session.endTime != nil {
            let head = count == 0 ? AuditChain.hex(AuditChain.sessionGenesis(session.id, key: key)) : AuditChain.hex(previous)
            if linkCount != count || lastHash != head {
                let message = linkCount > count
                    ? "its end record covers \(linkCount) links ending in \(short(lastHash)), but only \(count) are stored: the last \(linkCount - count) were deleted"
                    : "its end record covers \(linkCount) links ending in \(short(lastHash)), but \(count) are stored ending in \(short(head)): rows were added or edited after the end"
                report.add(ChainProblem(table: "sessions", row: session.id, sessionID: session.id, seq: nil, message: message))
            }
        }
    }
}
