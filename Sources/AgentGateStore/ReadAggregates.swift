import CSQLite

/// Allowed reads as aggregates (schema v8, `audit: {reads: aggregate}`): per process and path,
/// the first and the last read and how many there were. The writer folds the reads it is
/// given into a bounded map (`ReadAggregator`) and flushes them as a *read set*: one link of
/// the session's chain (`ReadSetColumns`), whose hash covers the digest of its entries
/// (`ReadEntryColumns`, in order), so an edited, added or removed entry breaks the link.

/// One entry of a read set, as hashed and as a fallback line carries it (absolute times,
/// texts); the `read_entries` row stores the texts once in `read_strings` and the times
/// relative to the set. An entry of the same process as the one before it stores 0 for the
/// process and its first read relative to that entry's (schema v9); sets list their entries
/// by process, so most rows are such.
struct ReadEntryColumns: StoredRecordKind {
    var pid: Int64 = 0
    var ppid: Int64 = 0
    var executable = ""
    var target = ""
    var firstTime: Int64 = 0
    var lastTime: Int64 = 0
    var count: Int64 = 0
    var ruleIndex: Int64?
    var errno: Int64?

    static let hashDomain = "agentgate.read-entries.v1"
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.integer("pid", &pid)
        visitor.integer("ppid", &ppid)
        visitor.text("executable", &executable)
        visitor.text("target", &target)
        visitor.integer("first_time", &firstTime)
        visitor.integer("last_time", &lastTime)
        visitor.integer("count", &count)
        visitor.optionalInteger("rule_index", &ruleIndex)
        visitor.optionalInteger("errno", &errno)
    }

    /// Whether this entry's process is `previous`'s, so that its row can leave the process
    /// out (schema v9: pid, ppid and executable 0).
    func continues(_ previous: ReadEntryColumns) -> Bool {
        pid == previous.pid && ppid == previous.ppid && executable == previous.executable
    }

    /// Hex SHA-256 over the entries in order: what the set's link covers.
    static func digest(_ entries: [ReadEntryColumns]) -> String {
        var encoder = AuditChain.Encoder(domain: hashDomain, previous: [])
        encoder.integer(Int64(entries.count))
        for var entry in entries { entry.visitFields(&encoder) }
        return AuditChain.hex(encoder.digest())
    }
}

/// The columns of a `read_sets` row, plus the digest of its entries (not stored: recomputed
/// from `read_entries`).
struct ReadSetColumns: StoredRecordKind {
    var sessionID = ""
    var seq: Int64 = 0
    var time: Int64 = 0
    var policySHA256: String?
    var entryCount: Int64 = 0
    var entriesDigest = ""

    static let hashDomain = "agentgate.read-set.v1"
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.text("session_id", &sessionID)
        visitor.integer("seq", &seq)
        visitor.integer("time", &time)
        visitor.optionalText("policy_sha256", &policySHA256)
        visitor.integer("entry_count", &entryCount)
        visitor.text("entries_digest", &entriesDigest, role: .notWritten)
    }
}

/// Allowed reads waiting to be flushed, per process and path. Bounded: `isFull` at
/// `capacity` entries, and the writer then flushes them all.
struct ReadAggregator: Sendable {
    struct Key: Hashable, Sendable {
        var target: String
        var ruleIndex: Int?
        var errno: Int32?
        var policySHA256: String?
    }

    struct Value: Sendable {
        var ppid: Int32
        var executable: String
        var first: Int64
        var last: Int64
        var count: Int64
    }

    /// Entries the map holds at most before it is flushed whole: about 3 MB.
    static let capacity = 16384

    private(set) var byProcess: [Int32: [Key: Value]] = [:]
    private(set) var entryCount = 0
    /// Reads folded into the entries held now.
    private(set) var readCount = 0

    var isEmpty: Bool { entryCount == 0 }
    var isFull: Bool { entryCount >= Self.capacity }

    mutating func add(_ event: DecisionEvent) {
        let key = Key(target: event.target, ruleIndex: event.ruleIndex, errno: event.errno, policySHA256: event.policySHA256)
        readCount += 1
        let time = event.timeMicros
        if let existing = byProcess[event.pid]?[key] {
            var value = existing
            value.first = min(value.first, time)
            value.last = max(value.last, time)
            value.count += 1
            byProcess[event.pid]?[key] = value
            return
        }
        byProcess[event.pid, default: [:]][key] = Value(
            ppid: event.ppid, executable: event.executable, first: time, last: time, count: 1)
        entryCount += 1
    }

    /// Takes one process's entries (at its exec or exit), or every entry.
    mutating func take(pid: Int32? = nil) -> [(pid: Int32, key: Key, value: Value)] {
        var taken: [(pid: Int32, key: Key, value: Value)] = []
        if let pid {
            guard let entries = byProcess.removeValue(forKey: pid) else { return [] }
            for (key, value) in entries { taken.append((pid, key, value)) }
        } else {
            for (pid, entries) in byProcess { for (key, value) in entries { taken.append((pid, key, value)) } }
            byProcess.removeAll()
        }
        entryCount -= taken.count
        readCount -= taken.reduce(0) { $0 + Int($1.value.count) }
        if byProcess.isEmpty { entryCount = 0; readCount = 0 }
        return taken
    }
}

extension AuditStore {
    static let insertReadSetSQL = ReadSetColumns.insertSQL(into: "read_sets", extraColumns: [("hash", "?")])

    /// Inserts one read set and its entries. Inside a transaction.
    static func insertReadSet(
        _ set: ReadSetColumns, entries: [ReadEntryColumns], hash: String, connection: SQLiteConnection,
        strings: inout [String: Int64]
    ) throws(StoreError) {
        let insertSet = try connection.statement(insertReadSetSQL)
        var texts = RowTextBuffer()
        try set.execute(insertSet, texts: &texts, extra: hash)
        insertSet.reset()
        let setID = sqlite3_last_insert_rowid(connection.handle)
        let insertEntry = try connection.statement(
            """
            INSERT INTO read_entries (set_id, ordinal, pid, ppid, executable, target, first_before, span, count, rule_index, errno)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        defer { insertEntry.reset() }
        var previous: ReadEntryColumns?
        for (ordinal, entry) in entries.enumerated() {
            let target = try stringID(entry.target, connection: connection, cache: &strings)
            try insertEntry.bind(1, setID)
            try insertEntry.bind(2, Int64(ordinal))
            if let previous, entry.continues(previous) {
                // The same process as the entry before: SQLite stores the integer 0 in no bytes.
                try insertEntry.bind(3, Int64(0))
                try insertEntry.bind(4, Int64(0))
                try insertEntry.bind(5, Self.continuingExecutable)
                try insertEntry.bind(7, entry.firstTime &- previous.firstTime)
            } else {
                try insertEntry.bind(3, entry.pid)
                try insertEntry.bind(4, entry.ppid)
                try insertEntry.bind(5, try stringID(entry.executable, connection: connection, cache: &strings))
                try insertEntry.bind(7, set.time &- entry.firstTime)
            }
            previous = entry
            try insertEntry.bind(6, target)
            try insertEntry.bind(8, entry.lastTime &- entry.firstTime)
            try insertEntry.bind(9, entry.count)
            if let value = entry.ruleIndex { try insertEntry.bind(10, value) } else { try insertEntry.bindNull(10) }
            if let value = entry.errno { try insertEntry.bind(11, value) } else { try insertEntry.bindNull(11) }
            _ = try insertEntry.step()
            insertEntry.reset()
        }
    }

    /// `read_entries.executable` of an entry that continues the process of the entry before it
    /// (schema v9), with pid and ppid 0: no `read_strings` row has id 0 (rowids start at 1).
    static let continuingExecutable: Int64 = 0

    /// The id of `text` in `read_strings`, adding it when new.
    private static func stringID(_ text: String, connection: SQLiteConnection, cache: inout [String: Int64]) throws(StoreError) -> Int64 {
        if let id = cache[text] { return id }
        let find = try connection.statement("SELECT id FROM read_strings WHERE text = ?")
        try find.bind(1, text)
        var id: Int64?
        if try find.step() { id = find.int64(0) }
        find.reset()
        if id == nil {
            let insert = try connection.statement("INSERT INTO read_strings (text) VALUES (?)")
            try insert.bind(1, text)
            _ = try insert.step()
            insert.reset()
            id = sqlite3_last_insert_rowid(connection.handle)
        }
        cache[text] = id
        return id ?? 0
    }

    /// The read sets of one session with their entries, in chain order: for verify and for
    /// queries.
    static func readSets(sessionID: String, connection: SQLiteConnection) throws(StoreError)
        -> [(id: Int64, set: ReadSetColumns, hash: String, entries: [ReadEntryColumns])]
    {
        let sets = try connection.statement(
            "SELECT id, seq, time, policy_sha256, entry_count, hash FROM read_sets WHERE session_id = ? ORDER BY seq, id")
        defer { sets.reset() }
        try sets.bind(1, sessionID)
        let entries = try connection.statement(
            """
            SELECT e.pid, e.ppid, x.text, t.text, e.first_before, e.span, e.count, e.rule_index, e.errno, e.executable
            FROM read_entries e LEFT JOIN read_strings x ON x.id = e.executable LEFT JOIN read_strings t ON t.id = e.target
            WHERE e.set_id = ? ORDER BY e.ordinal
            """)
        defer { entries.reset() }
        var result: [(id: Int64, set: ReadSetColumns, hash: String, entries: [ReadEntryColumns])] = []
        while try sets.step() {
            let id = sets.int64(0)
            var set = ReadSetColumns(
                sessionID: sessionID, seq: sets.int64(1), time: sets.int64(2), policySHA256: sets.optionalText(3),
                entryCount: sets.int64(4))
            try entries.bind(1, id)
            var rows: [ReadEntryColumns] = []
            while try entries.step() {
                var entry: ReadEntryColumns
                if entries.int64(9) != Self.continuingExecutable {
                    entry = ReadEntryColumns(
                        pid: entries.int64(0), ppid: entries.int64(1), executable: entries.text(2),
                        firstTime: set.time &- entries.int64(4))
                } else if let previous = rows.last, entries.int64(0) == 0, entries.int64(1) == 0 {
                    // A continuing entry (v9): its process is the entry before's.
                    entry = ReadEntryColumns(
                        pid: previous.pid, ppid: previous.ppid, executable: previous.executable,
                        firstTime: previous.firstTime &+ entries.int64(4))
                } else {
                    // Nothing to continue, or a pid or ppid beside the mark: only an edited
                    // database has this. Read as an entry no writer hashes, so that the set's
                    // digest no longer matches and verify names the set.
                    entry = ReadEntryColumns(
                        pid: entries.int64(0), ppid: entries.int64(1), executable: "\u{0}continuing entry without a process",
                        firstTime: set.time &- entries.int64(4))
                }
                entry.target = entries.text(3)
                entry.lastTime = entry.firstTime &+ entries.int64(5)
                entry.count = entries.int64(6)
                entry.ruleIndex = entries.optionalInt64(7)
                entry.errno = entries.optionalInt64(8)
                rows.append(entry)
            }
            entries.reset()
            set.entriesDigest = ReadEntryColumns.digest(rows)
            result.append((id, set, sets.text(5), rows))
        }
        return result
    }
}
