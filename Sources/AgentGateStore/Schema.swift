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
    ]

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
            for migration in migrations where migration.version > start {
                try connection.execute(migration.sql)
                // user_version is in the file header, so this is part of the transaction.
                try connection.execute("PRAGMA user_version = \(migration.version)")
            }
        }
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
