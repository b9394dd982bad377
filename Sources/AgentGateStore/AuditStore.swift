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
    /// The key new sessions' chains are keyed with (`<database>.key`); nil when there is none
    /// (a read-only open before any keyed session, or a directory where it can't be made).
    public let chainKey: AuditKey?
    /// Why there is no usable key, when that is worth saying.
    public let chainKeyProblem: String?

    /// Opens the database at `path`, creating it (0600) and any missing parent directories (0700),
    /// and migrating its schema to `AuditSchema.currentVersion`.
    ///
    /// Sets WAL journaling, `synchronous=FULL` (each commit is fsynced: durable across process
    /// crashes and power loss), a 5 s busy timeout and foreign keys.
    /// With `readOnly`, opens an existing file for queries only (SQLITE_OPEN_READONLY); its
    /// schema must already be current.
    /// - Throws: `StoreError` (never traps) when the path can't be created, opened or written.
    /// Missing directories of the database are created (0700) only below `creatingBelow`, which
    /// must exist: a path the user named gets no directories they didn't ask for (nil), and the
    /// default one none outside their home (a missing HOME is an error, not created).
    public convenience init(path: String, busyTimeoutMilliseconds: Int32 = 5000, readOnly: Bool = false,
                            creatingBelow: String? = "/") throws(StoreError) {
        try self.init(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds, readOnly: readOnly,
                      creatingBelow: creatingBelow, keyed: true)
    }

    /// `keyed: false` writes as builds before keyed chains did (tests of old databases).
    init(path: String, busyTimeoutMilliseconds: Int32, readOnly: Bool, creatingBelow: String?, keyed: Bool) throws(StoreError) {
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
            do throws(StoreError) {
                chainKey = try AuditKey.load(path: AuditDatabaseFiles(databasePath: path).key)
                chainKeyProblem = nil
            } catch {
                chainKey = nil
                chainKeyProblem = error.description
            }
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
        (chainKey, chainKeyProblem) = keyed ? try Self.keyForWriting(AuditDatabaseFiles(databasePath: path).key) : (nil, nil)
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

    /// The chain key, made on first use. A key that exists but isn't sound (another owner, a
    /// mode others can read, malformed) stops the open: someone other than us made it. One
    /// that can't be made (a read-only or full directory) leaves new sessions unkeyed, said
    /// in `chainKeyProblem`, as the database's fallback file does for writes.
    private static func keyForWriting(_ keyPath: String) throws(StoreError) -> (AuditKey?, String?) {
        do throws(StoreError) {
            return (try AuditKey.loadOrCreate(path: keyPath), nil)
        } catch {
            guard error.code == .cannotOpen, let failure = error.systemErrno,
                  [EACCES, EROFS, ENOSPC, EDQUOT, EPERM].contains(failure)
            else { throw error }
            return (nil, "new sessions are not keyed: \(error)")
        }
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
        // FULL: WAL commits are fsynced, so a record the writer committed survives a power loss
        // or a disk error too. The writer commits in batches, so it costs nothing measurable.
        try connection.execute("PRAGMA synchronous=FULL")
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
    public var fallbackPath: String { files.fallback }

    /// The database's files (the database, SQLite's journals, the fallback file).
    public var files: AuditDatabaseFiles { AuditDatabaseFiles(databasePath: path) }

    /// Closes the database. Later calls throw `.closed`; closing again does nothing.
    public func close() {
        connection.withLock { connection in
            connection?.close()
            connection = nil
        }
    }

    /// Closes without the checkpoint SQLite makes when the last connection closes: the WAL
    /// stays, with what was committed (durable: `synchronous=FULL` fsynced it), for the next
    /// connection to read. For short-lived writers (`agentgate hook` outside a session):
    /// closing checkpointed and deleted the WAL at every call, four fsyncs and a new WAL (and a
    /// directory fsync) each.
    ///
    /// A WAL over `truncatingOver` bytes is first moved into the database and truncated
    /// (`sqlite3_wal_checkpoint_v2`, TRUNCATE, without waiting for other connections' readers:
    /// then it is a passive checkpoint). SQLite's automatic checkpoint can't keep it small here:
    /// a first connection rebuilds the WAL's index by reading the whole file, and the rebuilt
    /// index doesn't know which frames were already checkpointed, so the WAL never starts over
    /// and every call would read more of it (5.6 MB after 500 hook calls).
    public func closeLeavingJournal(truncatingOver bytes: Int = 256 << 10) {
        let journal = path + "-wal"
        connection.withLock { connection in
            guard let handle = connection?.handle else { return }
            var status = stat()
            if stat(journal, &status) == 0, Int(status.st_size) > bytes {
                sqlite3_busy_timeout(handle, 0)
                _ = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil)
            }
            _ = agentgate_sqlite3_no_checkpoint_on_close(handle, 1)
            connection?.close()
            connection = nil
        }
    }
}

