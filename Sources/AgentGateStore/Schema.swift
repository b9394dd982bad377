/// The audit database schema and its forward-only migrations.
///
/// The schema version lives in SQLite's `PRAGMA user_version` (0 for a new file).
/// To change the schema, append a migration to `migrations`; never edit a released one,
/// since databases in the field have already run it.
public enum AuditSchema {
    /// A step from version `version - 1` to `version`.
    struct Migration: Sendable {
        let version: Int32
        let sql: String
    }

    static let migrations: [Migration] = [
        Migration(
            version: 1,
            sql: """
                CREATE TABLE sessions (
                    id            TEXT PRIMARY KEY NOT NULL,
                    agent         TEXT NOT NULL,
                    command       TEXT NOT NULL,      -- JSON array of argv
                    cwd           TEXT NOT NULL,
                    policy_path   TEXT NOT NULL,
                    policy_sha256 TEXT NOT NULL,
                    start_time    INTEGER NOT NULL,   -- µs since the Unix epoch
                    end_time      INTEGER,            -- µs since the Unix epoch; NULL while running
                    exit_status   INTEGER
                );
                CREATE TABLE events (
                    id          INTEGER PRIMARY KEY,
                    session_id  TEXT NOT NULL REFERENCES sessions(id),
                    time        INTEGER NOT NULL,     -- µs since the Unix epoch
                    pid         INTEGER NOT NULL,
                    ppid        INTEGER NOT NULL,
                    executable  TEXT NOT NULL,
                    syscall     TEXT NOT NULL,
                    action      TEXT NOT NULL,
                    target      TEXT NOT NULL,
                    argv        TEXT,                 -- JSON array; NULL when not an exec
                    decision    TEXT NOT NULL,
                    rule_index  INTEGER,              -- 0-based; NULL = the default applied
                    reason      TEXT NOT NULL,
                    errno       INTEGER,
                    latency_us  INTEGER NOT NULL
                );
                -- Also serves the foreign key from events to sessions.
                CREATE INDEX events_by_session ON events(session_id, id);
                CREATE INDEX events_by_time ON events(time);
                """),
        // v2 (issue 5): context, process records, tamper evidence, retention anchors.
        // Columns are only added: every v1 row survives, unchained (seq and hash NULL).
        Migration(
            version: 2,
            sql: """
                ALTER TABLE sessions ADD COLUMN mode TEXT NOT NULL DEFAULT 'enforce';  -- enforce | audit
                ALTER TABLE sessions ADD COLUMN context TEXT;        -- JSON SessionContext; NULL = none
                ALTER TABLE sessions ADD COLUMN chain_version INTEGER; -- 2 = chained; NULL = pre-v2 row
                ALTER TABLE sessions ADD COLUMN link_count INTEGER;  -- at end: events + process links
                ALTER TABLE sessions ADD COLUMN last_hash TEXT;      -- at end: hash of the last link

                ALTER TABLE events ADD COLUMN seq INTEGER;           -- 1-based position in the session chain
                ALTER TABLE events ADD COLUMN rule_id TEXT;          -- rule id:, or its 1-based number
                ALTER TABLE events ADD COLUMN intent TEXT;
                ALTER TABLE events ADD COLUMN notable INTEGER NOT NULL DEFAULT 0;  -- decision log
                ALTER TABLE events ADD COLUMN enforced INTEGER NOT NULL DEFAULT 1; -- 0 in audit mode
                ALTER TABLE events ADD COLUMN hash TEXT;             -- hex SHA-256 chain link
                -- Every index costs each insert; events keep only events_by_session. Queries by time
                -- go through the sessions active then (see AuditStore.events(matching:)).
                DROP INDEX events_by_time;

                CREATE TABLE processes (
                    id           INTEGER PRIMARY KEY,
                    session_id   TEXT NOT NULL REFERENCES sessions(id),
                    pid          INTEGER NOT NULL,
                    ppid         INTEGER NOT NULL,
                    executable   TEXT NOT NULL,
                    argv         TEXT NOT NULL,      -- JSON array, redacted
                    uid          INTEGER NOT NULL,
                    gid          INTEGER NOT NULL,
                    capabilities TEXT NOT NULL,      -- JSON array of names
                    cgroup       TEXT NOT NULL,
                    start_time   INTEGER NOT NULL,   -- µs since the Unix epoch
                    start_seq    INTEGER NOT NULL,   -- position of the start link in the session chain
                    start_hash   TEXT NOT NULL,
                    exit_time    INTEGER,
                    exit_status  INTEGER,
                    exit_seq     INTEGER,            -- position of the exit link; NULL while running
                    exit_hash    TEXT
                );
                CREATE UNIQUE INDEX processes_by_session_seq ON processes(session_id, start_seq);
                CREATE INDEX processes_by_pid ON processes(session_id, pid);

                -- The global chain of session records: a start link per session, an end link when it
                -- finishes, in commit order. Retention keeps the links of removed sessions (pruned = 1).
                CREATE TABLE session_chain (
                    seq        INTEGER PRIMARY KEY,  -- 1, 2, 3 ...
                    kind       TEXT NOT NULL,        -- start | end | retention
                    session_id TEXT NOT NULL,
                    time       INTEGER NOT NULL,     -- µs since the Unix epoch, when linked
                    digest     TEXT NOT NULL,        -- hex SHA-256 of the session's start or end fields
                    hash       TEXT NOT NULL,        -- hex SHA-256 link
                    pruned     INTEGER NOT NULL DEFAULT 0
                );
                CREATE UNIQUE INDEX session_chain_by_session ON session_chain(session_id, kind);

                -- One row per retention run (`agentgate clean`), itself linked into session_chain
                -- (kind 'retention', session_id 'retention:<id>'): it vouches for the pruned links.
                CREATE TABLE retention_log (
                    id                INTEGER PRIMARY KEY,
                    time              INTEGER NOT NULL,
                    cutoff            INTEGER NOT NULL, -- sessions that ended before this were removed
                    sessions          TEXT NOT NULL,    -- JSON array of the removed sessions' ids
                    events_removed    INTEGER NOT NULL,
                    processes_removed INTEGER NOT NULL
                );
                """),
        // v3: the policy in force when each event was decided (a session's policy can be
        // reloaded). NULL in older rows, whose hashes leave it out (EventColumns).
        Migration(
            version: 3,
            sql: """
                ALTER TABLE events ADD COLUMN policy_sha256 TEXT;    -- hex SHA-256 of the policy files
                """),
        // v4: who settled an `ask`, and how. NULL for every other event, whose hashes leave
        // them out (EventColumns).
        Migration(
            version: 4,
            sql: """
                ALTER TABLE events ADD COLUMN answered_via TEXT;     -- tty | socket | timeout
                ALTER TABLE events ADD COLUMN answered_by TEXT;      -- the person: "alice (uid 1000)"
                """),
        // v5: the systemd unit a session ran in (`agentgate-supervise --unit`). NULL for a
        // session outside one, whose start digest leaves them out (SessionStartColumns).
        Migration(
            version: 5,
            sql: """
                ALTER TABLE sessions ADD COLUMN unit TEXT;           -- "nightly.scope"
                ALTER TABLE sessions ADD COLUMN unit_cgroup TEXT;    -- "/system.slice/nightly.scope"
                ALTER TABLE sessions ADD COLUMN invocation_id TEXT;  -- systemd's, 32 hex digits
                """),
        // v6: which layer decided an event. NULL is the supervisor ("kernel"), so every older
        // row keeps its meaning and its hash (EventColumns).
        Migration(
            version: eventSourceVersion,
            sql: """
                ALTER TABLE events ADD COLUMN source TEXT;           -- NULL = kernel | hook
                """),
        // v7: keyed chains (HMAC-SHA256 under `<database>.key`). Sessions and links recorded
        // before keep chain version 2 and their SHA-256 links, and verify as unkeyed.
        Migration(
            version: 7,
            sql: """
                ALTER TABLE sessions ADD COLUMN key_id TEXT;         -- chain_version 3: the key's id
                ALTER TABLE session_chain ADD COLUMN key_id TEXT;    -- non-NULL: an HMAC link under this key
                """),
        // v8: allowed reads as aggregates (issue 16): per process and path, the first and last
        // read and how many, flushed in sets. A set is one link of its session's chain; its
        // entries are covered through the set's hash. Paths and executables are stored once
        // (read_strings), so a build's thousands of header reads cost a few bytes each.
        Migration(
            version: readAggregateVersion,
            sql: """
                CREATE TABLE read_strings (
                    id   INTEGER PRIMARY KEY,
                    text TEXT NOT NULL UNIQUE
                );
                CREATE TABLE read_sets (
                    id            INTEGER PRIMARY KEY,
                    session_id    TEXT NOT NULL REFERENCES sessions(id),
                    seq           INTEGER NOT NULL,  -- position in the session chain
                    time          INTEGER NOT NULL,  -- µs since the Unix epoch, when flushed
                    policy_sha256 TEXT,              -- the policy that allowed the reads
                    entry_count   INTEGER NOT NULL,
                    hash          TEXT NOT NULL      -- chain link over the set and its entries
                );
                CREATE INDEX read_sets_by_session ON read_sets(session_id, seq);
                CREATE TABLE read_entries (
                    set_id       INTEGER NOT NULL,   -- read_sets.id
                    ordinal      INTEGER NOT NULL,   -- 0-based, in hash order
                    pid          INTEGER NOT NULL,
                    ppid         INTEGER NOT NULL,
                    executable   INTEGER NOT NULL,   -- read_strings.id
                    target       INTEGER NOT NULL,   -- read_strings.id
                    first_before INTEGER NOT NULL,   -- µs from the first read to the set's time
                    span         INTEGER NOT NULL,   -- µs from the first read to the last
                    count        INTEGER NOT NULL,
                    rule_index   INTEGER,            -- 0-based; NULL = the default applied
                    errno        INTEGER,            -- the open's own failure (ENOENT), not a denial
                    PRIMARY KEY (set_id, ordinal)
                ) WITHOUT ROWID;
                """),
        // v9: a read entry that continues the process of the entry before it stores 0 for pid,
        // ppid and executable (0 costs SQLite no bytes, and no read_strings id is 0) and counts
        // its first read from the entry before's (ReadAggregates.swift); rows decided under the
        // session's own policy store "=" for its hash (ChainBuilder.sessionPolicyMark). No
        // table changes: the version only keeps builds that would misread such rows away.
        Migration(
            version: compactReadEntriesVersion,
            sql: "-- v9: continuing read entries and the session-policy mark (no table changes)"),
        // v10: a session's last chain link found with one index seek. A recorder with a
        // connection per call (`agentgate hook` outside a session) reads its session's chain head
        // at every call; without it that read went through all of the session's events (a
        // session's thousandth tool call read a thousand rows first).
        Migration(
            version: 10,
            sql: "CREATE INDEX IF NOT EXISTS events_by_session_seq ON events(session_id, seq);"),
    ]

    /// The schema version that stores allowed reads as aggregates.
    public static let readAggregateVersion: Int32 = 8

    /// The schema version whose read entries continue runs of one process (NULL pid).
    static let compactReadEntriesVersion: Int32 = 9

    /// The schema version that adds `events.source`.
    static let eventSourceVersion: Int32 = 6

    /// The schema version this build creates and understands.
    public static var currentVersion: Int32 { migrations.last?.version ?? 0 }

    /// Brings the database up to `currentVersion`. Idempotent; safe against another
    /// process migrating the same file at the same time.
    static func migrate(_ connection: SQLiteConnection) throws(StoreError) {
        // Fast path without taking the write lock: already current.
        let observed = try version(of: connection)
        if observed == currentVersion { return }
        try checkNotTooNew(observed, connection)

        try connection.inTransaction { () throws(StoreError) in
            // Re-read under the write lock: another process may have migrated meanwhile.
            let start = try version(of: connection)
            try checkNotTooNew(start, connection)
            let before = start > 0 ? try rowCounts(connection) : [:]
            for migration in migrations where migration.version > start {
                try connection.execute(migration.sql)
                // user_version is in the file header, so this is part of the transaction.
                try connection.execute("PRAGMA user_version = \(migration.version)")
            }
            // Never lose data silently: an upgrade keeps every row, or it doesn't happen.
            if start > 0 {
                let after = try rowCounts(connection)
                for (table, count) in before where after[table] != count {
                    throw StoreError(
                        code: .invalidData, path: connection.path,
                        message: "migrating from schema \(start) would change the row count of \(table) (\(count) → \(after[table] ?? 0)); not migrated")
                }
            }
        }
    }

    /// Rows of the tables that existed in v1, and of the read entries once they exist (v8):
    /// what a migration must keep.
    private static func rowCounts(_ connection: SQLiteConnection) throws(StoreError) -> [String: Int64] {
        var counts: [String: Int64] = [:]
        var tables = ["sessions", "events"]
        if try version(of: connection) >= readAggregateVersion { tables.append("read_entries") }
        for table in tables {
            counts[table] = try connection.queryInt("SELECT count(*) FROM \(table)") ?? 0
        }
        return counts
    }

    static func version(of connection: SQLiteConnection) throws(StoreError) -> Int32 {
        let value = try connection.queryInt("PRAGMA user_version") ?? 0
        return Int32(truncatingIfNeeded: value)
    }

    private static func checkNotTooNew(_ version: Int32, _ connection: SQLiteConnection) throws(StoreError) {
        guard version <= currentVersion else {
            throw StoreError(
                code: .schemaTooNew, path: connection.path,
                message: "database schema version \(version) is newer than this build supports (\(currentVersion))")
        }
    }
}
