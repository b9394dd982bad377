import CSQLite

/// SQLite's "copy this buffer now" destructor, which Swift can't import as a macro.
let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// An open SQLite database and its cached prepared statements.
///
/// Not thread-safe on its own: `AuditStore` only touches it inside its mutex, which is why
/// the database is opened with SQLITE_OPEN_NOMUTEX.
final class SQLiteConnection {
    let handle: OpaquePointer
    let path: String
    private var statementCache: [String: PreparedStatement] = [:]

    private init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    /// Opens (creating if missing) the database file read-write; fails rather than
    /// silently degrading to read-only. With `readOnly`, opens an existing file for reading.
    static func open(path: String, readOnly: Bool = false) throws(StoreError) -> SQLiteConnection {
        var handle: OpaquePointer?
        let access = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        let flags = access | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let result = sqlite3_open_v2(path, &handle, flags, nil)
        guard let handle else {
            // Only happens when SQLite can't even allocate the connection object.
            throw StoreError(
                code: .cannotOpen, path: path, message: "opening database: out of memory",
                sqliteResultCode: result)
        }
        guard result == SQLITE_OK else {
            let error = StoreError(
                code: .cannotOpen, path: path,
                message: "opening database: \(String(cString: sqlite3_errmsg(handle)))",
                sqliteResultCode: sqlite3_extended_errcode(handle),
                systemErrno: sqlite3_system_errno(handle))
            sqlite3_close_v2(handle)
            throw error
        }
        let connection = SQLiteConnection(handle: handle, path: path)
        // SQLite opens read-only without complaint when the file isn't writable; an audit
        // log that can't be appended to must be reported, not discovered on first insert.
        if !readOnly && sqlite3_db_readonly(handle, "main") == 1 {
            connection.close()
            throw StoreError(
                code: .readOnly, path: path,
                message: "database file is not writable (opened read-only)",
                sqliteResultCode: SQLITE_READONLY)
        }
        return connection
    }

    /// Builds an error from the connection's most recent failure.
    func error(_ context: String, result: Int32, code: StoreError.Code? = nil) -> StoreError {
        let extended = sqlite3_extended_errcode(handle)
        let primary = result & 0xff
        let resolvedCode: StoreError.Code
        if let code {
            resolvedCode = code
        } else if primary == SQLITE_CONSTRAINT {
            resolvedCode = .constraintViolation
        } else if primary == SQLITE_READONLY {
            resolvedCode = .readOnly
        } else if primary == SQLITE_CANTOPEN {
            resolvedCode = .cannotOpen
        } else {
            resolvedCode = .sqlite
        }
        let systemErrno = sqlite3_system_errno(handle)
        return StoreError(
            code: resolvedCode, path: path,
            message: "\(context): \(String(cString: sqlite3_errmsg(handle)))",
            sqliteResultCode: (extended & 0xff) == primary ? extended : result,
            systemErrno: systemErrno == 0 ? nil : systemErrno)
    }

    /// Runs one or more statements that return no rows of interest.
    func execute(_ sql: String) throws(StoreError) {
        var errorText: UnsafeMutablePointer<CChar>?
        let result = sqlite3_exec(handle, sql, nil, nil, &errorText)
        sqlite3_free(errorText)
        guard result == SQLITE_OK else {
            throw error("executing \"\(sql.prefix(80))\"", result: result)
        }
    }

    /// A cached prepared statement for `sql`, reset and with bindings cleared by its last user.
    func statement(_ sql: String) throws(StoreError) -> PreparedStatement {
        if let cached = statementCache[sql] {
            return cached
        }
        var raw: OpaquePointer?
        let result = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard result == SQLITE_OK, let raw else {
            throw error("preparing \"\(sql.prefix(80))\"", result: result)
        }
        let statement = PreparedStatement(raw: raw, connection: self)
        statementCache[sql] = statement
        return statement
    }

    /// Runs a query returning a single text value, e.g. `PRAGMA journal_mode=WAL`.
    func queryText(_ sql: String) throws(StoreError) -> String? {
        let statement = try statement(sql)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return statement.optionalText(0)
    }

    /// Runs a query returning a single integer value, e.g. `PRAGMA user_version`.
    func queryInt(_ sql: String) throws(StoreError) -> Int64? {
        let statement = try statement(sql)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return statement.optionalInt64(0)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE ... COMMIT`, rolling back if it throws.
    ///
    /// IMMEDIATE takes the write lock up front so a busy database waits (busy_timeout)
    /// at BEGIN instead of failing mid-transaction on lock upgrade.
    func inTransaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            // A failed COMMIT may already have rolled back; ignore "no transaction is active".
            sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    /// Finalizes every statement and closes the database (checkpointing the WAL if last).
    func close() {
        for statement in statementCache.values {
            sqlite3_finalize(statement.raw)
        }
        statementCache.removeAll()
        sqlite3_close_v2(handle)
    }
}

/// A non-owning view of a prepared statement (the connection's cache owns and finalizes it).
/// Parameter and column indexes follow SQLite: parameters from 1, columns from 0.
struct PreparedStatement {
    let raw: OpaquePointer
    unowned let connection: SQLiteConnection

    func bind(_ index: Int32, _ value: String) throws(StoreError) {
        var text = value
        let result = text.withUTF8 { bytes in
            // An empty buffer may have a nil base address, which SQLite would store as NULL.
            guard let base = bytes.baseAddress, !bytes.isEmpty else {
                return sqlite3_bind_text(raw, index, "", 0, sqliteTransient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { chars in
                sqlite3_bind_text64(raw, index, chars, UInt64(bytes.count), sqliteTransient, UInt8(SQLITE_UTF8))
            }
        }
        try checkBind(result, index)
    }

    func bind(_ index: Int32, _ value: String?) throws(StoreError) {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    func bind(_ index: Int32, _ value: Int64) throws(StoreError) {
        try checkBind(sqlite3_bind_int64(raw, index, value), index)
    }

    func bind(_ index: Int32, _ value: Int64?) throws(StoreError) {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    func bindNull(_ index: Int32) throws(StoreError) {
        try checkBind(sqlite3_bind_null(raw, index), index)
    }

    /// Advances the statement: true when a row is available, false when done.
    func step() throws(StoreError) -> Bool {
        let result = sqlite3_step(raw)
        switch result {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.error("running \"\(sqlSummary)\"", result: result)
            reset()
            throw error
        }
    }

    /// Makes the statement reusable and drops its bindings; also ends any read it held open,
    /// which would otherwise pin the WAL and block checkpoints.
    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(raw, column) == SQLITE_NULL
    }

    func optionalText(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(raw, column) else { return nil }
        let count = Int(sqlite3_column_bytes(raw, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    func text(_ column: Int32) -> String {
        optionalText(column) ?? ""
    }

    func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(raw, column)
    }

    func optionalInt64(_ column: Int32) -> Int64? {
        isNull(column) ? nil : int64(column)
    }

    func int32(_ column: Int32) throws(StoreError) -> Int32 {
        let value = int64(column)
        guard let narrowed = Int32(exactly: value) else {
            throw StoreError(
                code: .invalidData, path: connection.path,
                message: "column \(column) value \(value) of \"\(sqlSummary)\" doesn't fit in Int32")
        }
        return narrowed
    }

    func optionalInt32(_ column: Int32) throws(StoreError) -> Int32? {
        isNull(column) ? nil : try int32(column)
    }

    private var sqlSummary: String {
        guard let sql = sqlite3_sql(raw) else { return "?" }
        return String(String(cString: sql).prefix(80))
    }

    /// Hot path: the message is only built on failure.
    @inline(__always)
    private func checkBind(_ result: Int32, _ index: Int32) throws(StoreError) {
        guard result == SQLITE_OK else {
            throw connection.error("binding parameter \(index) of \"\(sqlSummary)\"", result: result)
        }
    }
}

/// Binds a row's text parameters without a malloc and copy per string inside SQLite.
///
/// The strings are gathered into one reusable byte buffer and bound SQLITE_STATIC, which is
/// valid only while `bind(to:thenRun:)` runs; the caller steps the statement inside it.
/// Halves insert cost compared with SQLITE_TRANSIENT, which copies every string.
struct RowTextBuffer {
    private struct Field {
        let parameter: Int32
        /// Byte offset in `bytes`, or -1 for SQL NULL.
        let start: Int
        let count: Int
    }

    private var bytes: [UInt8] = []
    private var fields: [Field] = []

    /// Forgets the previous row, keeping the capacity.
    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
    }

    /// Queues `text` (nil for SQL NULL) for parameter `parameter`.
    mutating func append(_ parameter: Int32, _ text: String?) {
        guard let text else {
            fields.append(Field(parameter: parameter, start: -1, count: 0))
            return
        }
        let start = bytes.count
        bytes.append(contentsOf: text.utf8)
        fields.append(Field(parameter: parameter, start: start, count: bytes.count - start))
        // Keeps the buffer non-empty (so it has an address, even for "") and each text terminated.
        bytes.append(0)
    }

    /// Binds every queued text to `statement`, then runs `body` while the bytes are pinned.
    func bind<Result>(
        to statement: PreparedStatement, thenRun body: () throws(StoreError) -> Result
    ) throws(StoreError) -> Result {
        try bytes.withUnsafeBufferPointer { (buffer) throws(StoreError) -> Result in
            for field in fields {
                guard field.start >= 0, let base = buffer.baseAddress else {
                    try statement.bindNull(field.parameter)
                    continue
                }
                let result = (base + field.start).withMemoryRebound(to: CChar.self, capacity: field.count + 1) { text in
                    sqlite3_bind_text64(statement.raw, field.parameter, text, UInt64(field.count), nil, UInt8(SQLITE_UTF8))
                }
                guard result == SQLITE_OK else {
                    throw statement.connection.error("binding parameter \(field.parameter)", result: result)
                }
            }
            return try body()
        }
    }
}
