/// One stored value, as the hash, SQLite and the fallback file see it.
enum StoredValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case text(String)
}

/// Where one field's value lives in its typed row.
enum FieldAccess<Row>: Sendable {
    case integer(WritableKeyPath<Row, Int64> & Sendable)
    case optionalInteger(WritableKeyPath<Row, Int64?> & Sendable)
    case text(WritableKeyPath<Row, String> & Sendable)
    case optionalText(WritableKeyPath<Row, String?> & Sendable)
}

/// One field of a stored record kind. A kind's list of fields, in order, is its format: the
/// hash covers them in that order, the SQL statements bind them, the fallback line writes and
/// reads them, and verify reads them back. Adding a column is one entry in the list.
struct RecordField<Row>: Sendable {
    /// What the SQL statements do with the field.
    enum Role: Sendable {
        /// Inserted, or set by an update.
        case written
        /// Names the row an update changes (`WHERE column = ?`).
        case locator
        /// Hashed and carried in the fallback line, but not written by this record's statement:
        /// an exit's start hash and pid are the start record's, a retention row's id is its rowid.
        case notWritten
    }

    /// The key in a fallback line.
    let key: String
    /// The SQL column.
    let column: String
    let access: FieldAccess<Row>
    let role: Role
    /// Covered by the hash: false only for a field that locates the row without being part of
    /// the record (an exit's `start_seq`).
    let isHashed: Bool
    /// A text column holding a JSON array of strings, written into the fallback line as JSON
    /// (not as a string), and read back from it as an array of strings.
    let isJSONArray: Bool
    /// What a fallback line without the key reads as (it was written before the field existed);
    /// nil when the key is required, or, for an optional field, reads as null.
    let whenAbsent: Int64?

    private init(
        _ key: String, column: String?, access: FieldAccess<Row>, role: Role, isHashed: Bool = true,
        isJSONArray: Bool = false, whenAbsent: Int64? = nil
    ) {
        self.key = key
        self.column = column ?? key
        self.access = access
        self.role = role
        self.isHashed = isHashed
        self.isJSONArray = isJSONArray
        self.whenAbsent = whenAbsent
    }

    static func integer(
        _ key: String, _ path: WritableKeyPath<Row, Int64> & Sendable, column: String? = nil, role: Role = .written,
        isHashed: Bool = true, whenAbsent: Int64? = nil
    ) -> Self {
        Self(key, column: column, access: .integer(path), role: role, isHashed: isHashed, whenAbsent: whenAbsent)
    }

    static func optionalInteger(
        _ key: String, _ path: WritableKeyPath<Row, Int64?> & Sendable, column: String? = nil, role: Role = .written
    ) -> Self {
        Self(key, column: column, access: .optionalInteger(path), role: role)
    }

    static func text(
        _ key: String, _ path: WritableKeyPath<Row, String> & Sendable, column: String? = nil, role: Role = .written,
        isJSONArray: Bool = false
    ) -> Self {
        Self(key, column: column, access: .text(path), role: role, isJSONArray: isJSONArray)
    }

    static func optionalText(
        _ key: String, _ path: WritableKeyPath<Row, String?> & Sendable, column: String? = nil, role: Role = .written,
        isJSONArray: Bool = false
    ) -> Self {
        Self(key, column: column, access: .optionalText(path), role: role, isJSONArray: isJSONArray)
    }

    func value(of row: Row) -> StoredValue {
        switch access {
        case .integer(let path): .integer(row[keyPath: path])
        case .optionalInteger(let path): row[keyPath: path].map(StoredValue.integer) ?? .null
        case .text(let path): .text(row[keyPath: path])
        case .optionalText(let path): row[keyPath: path].map(StoredValue.text) ?? .null
        }
    }

    /// Sets the field; a null for a non-optional field sets 0 or "" (as SQLite reads a NULL).
    func set(_ value: StoredValue, in row: inout Row) {
        switch (access, value) {
        case (.integer(let path), .integer(let number)): row[keyPath: path] = number
        case (.integer(let path), _): row[keyPath: path] = 0
        case (.optionalInteger(let path), .integer(let number)): row[keyPath: path] = number
        case (.optionalInteger(let path), _): row[keyPath: path] = nil
        case (.text(let path), .text(let text)): row[keyPath: path] = text
        case (.text(let path), _): row[keyPath: path] = ""
        case (.optionalText(let path), .text(let text)): row[keyPath: path] = text
        case (.optionalText(let path), _): row[keyPath: path] = nil
        }
    }

    var isOptional: Bool {
        switch access {
        case .optionalInteger, .optionalText: true
        case .integer, .text: false
        }
    }
}

/// A kind of stored record covered by a hash: its hash domain and its fields.
protocol StoredRecordKind: Sendable, Equatable {
    /// The hash's domain tag; part of the format, never changed for a released kind.
    static var hashDomain: String { get }
    /// The fields, in hash order (which is also the fallback line's order).
    static var fields: [RecordField<Self>] { get }
    /// Every field empty; the readers fill it field by field.
    init()
}

extension StoredRecordKind {
    /// The SQL columns of `fields`, comma-separated, for a SELECT that `read(from:at:)` decodes.
    static var columnList: String { fields.map(\.column).joined(separator: ", ") }

    /// Decodes the row from `statement`'s columns `first`, `first + 1`, … (as `columnList`).
    init(from statement: PreparedStatement, at first: Int32) {
        self.init()
        for (offset, field) in Self.fields.enumerated() {
            let column = first + Int32(offset)
            let value: StoredValue
            if statement.isNull(column) {
                value = .null
            } else {
                switch field.access {
                case .integer, .optionalInteger: value = .integer(statement.int64(column))
                case .text, .optionalText: value = .text(statement.text(column))
                }
            }
            field.set(value, in: &self)
        }
    }

    /// `INSERT INTO table (written fields…, extra columns…) VALUES (?…, extra values…)`;
    /// run it with `execute`.
    static func insertSQL(into table: String, extraColumns: [(column: String, value: String)] = []) -> String {
        let written = fields.filter { $0.role == .written }
        let columns = written.map(\.column) + extraColumns.map(\.column)
        let values = written.map { _ in "?" } + extraColumns.map(\.value)
        return "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))"
    }

    /// `UPDATE table SET written fields… [, extra] WHERE locator fields… [AND condition]`;
    /// run it with `execute`, the extra columns' values in `extra`.
    static func updateSQL(_ table: String, alsoSetting extra: [String] = [], where condition: String? = nil) -> String {
        let set = fields.filter { $0.role == .written }.map { "\($0.column) = ?" } + extra.map { "\($0) = ?" }
        let locate = fields.filter { $0.role == .locator }.map { "\($0.column) = ?" } + (condition.map { [$0] } ?? [])
        return "UPDATE \(table) SET \(set.joined(separator: ", ")) WHERE \(locate.joined(separator: " AND "))"
    }

    /// The position of `column` in `columnList`.
    static func position(of column: String) -> Int32 {
        Int32(fields.firstIndex { $0.column == column } ?? fields.count)
    }

    /// Runs `statement` (from `insertSQL` or `updateSQL`) once for this row: its written fields,
    /// then `extra` values, then (for an update) its locators. `nulling` columns are bound as
    /// NULL whatever their value. `texts` is scratch space, reused between rows.
    func execute(
        _ statement: PreparedStatement, texts: inout RowTextBuffer, extra: [StoredValue] = [], nulling: Set<String> = []
    ) throws(StoreError) {
        texts.removeAll()
        var parameter: Int32 = 1
        for field in Self.fields where field.role == .written {
            try Self.bind(nulling.contains(field.column) ? .null : field.value(of: self), parameter, statement, &texts)
            parameter += 1
        }
        for value in extra {
            try Self.bind(value, parameter, statement, &texts)
            parameter += 1
        }
        for field in Self.fields where field.role == .locator {
            try Self.bind(field.value(of: self), parameter, statement, &texts)
            parameter += 1
        }
        try texts.bind(to: statement) { () throws(StoreError) in
            _ = try statement.step()
        }
    }

    /// Binds an integer now, and queues a text (bound, pinned, by `RowTextBuffer.bind`).
    private static func bind(
        _ value: StoredValue, _ parameter: Int32, _ statement: PreparedStatement, _ texts: inout RowTextBuffer
    ) throws(StoreError) {
        switch value {
        case .null: texts.append(parameter, nil)
        case .integer(let number): try statement.bind(parameter, number)
        case .text(let text): texts.append(parameter, text)
        }
    }
}

// MARK: - The record kinds

/// The columns of an `events` row, as stored (redacted, JSON-encoded).
struct EventColumns: StoredRecordKind {
    var sessionID = ""
    var seq: Int64 = 0
    var time: Int64 = 0
    var pid: Int64 = 0
    var ppid: Int64 = 0
    var executable = ""
    var syscall = ""
    var action = ""
    var target = ""
    /// The JSON text as stored, or nil (SQL NULL).
    var argv: String?
    var decision = ""
    var ruleIndex: Int64?
    var ruleID: String?
    var reason = ""
    var intent: String?
    var notable: Int64 = 0
    var enforced: Int64 = 1
    var errno: Int64?
    var latency: Int64 = 0

    static let hashDomain = "agentgate.event.v2"
    static let fields: [RecordField<Self>] = [
        .text("session_id", \.sessionID),
        .integer("seq", \.seq),
        .integer("time", \.time),
        .integer("pid", \.pid),
        .integer("ppid", \.ppid),
        .text("executable", \.executable),
        .text("syscall", \.syscall),
        .text("action", \.action),
        .text("target", \.target),
        .optionalText("argv", \.argv, isJSONArray: true),
        .text("decision", \.decision),
        .optionalInteger("rule_index", \.ruleIndex),
        .optionalText("rule_id", \.ruleID),
        .text("reason", \.reason),
        .optionalText("intent", \.intent),
        .integer("notable", \.notable, whenAbsent: 0),
        .integer("enforced", \.enforced, whenAbsent: 1),
        .optionalInteger("errno", \.errno),
        .integer("latency_us", \.latency),
    ]
}

/// The start columns of a `processes` row.
struct ProcessStartColumns: StoredRecordKind {
    var sessionID = ""
    var seq: Int64 = 0
    var pid: Int64 = 0
    var ppid: Int64 = 0
    var executable = ""
    /// JSON texts as stored.
    var argv = "[]"
    var uid: Int64 = 0
    var gid: Int64 = 0
    var capabilities = "[]"
    var cgroup = ""
    var startTime: Int64 = 0

    static let hashDomain = "agentgate.process-start.v2"
    static let fields: [RecordField<Self>] = [
        .text("session_id", \.sessionID),
        .integer("seq", \.seq, column: "start_seq"),
        .integer("pid", \.pid),
        .integer("ppid", \.ppid),
        .text("executable", \.executable),
        .text("argv", \.argv, isJSONArray: true),
        .integer("uid", \.uid),
        .integer("gid", \.gid),
        .text("capabilities", \.capabilities, isJSONArray: true),
        .text("cgroup", \.cgroup),
        .integer("start_time", \.startTime),
    ]
}

/// The exit columns of a `processes` row; `startHash` ties the exit to the image it ends, and
/// `startSeq` (not hashed) finds that image's row.
struct ProcessExitColumns: StoredRecordKind {
    var sessionID = ""
    var seq: Int64 = 0
    var startSeq: Int64 = 0
    var startHash = ""
    var pid: Int64 = 0
    var exitTime: Int64 = 0
    var exitStatus: Int64 = 0

    static let hashDomain = "agentgate.process-exit.v2"
    static let fields: [RecordField<Self>] = [
        .text("session_id", \.sessionID, role: .locator),
        .integer("seq", \.seq, column: "exit_seq"),
        .integer("start_seq", \.startSeq, role: .locator, isHashed: false),
        .text("start_hash", \.startHash, role: .notWritten),
        .integer("pid", \.pid, role: .notWritten),
        .integer("exit_time", \.exitTime),
        .integer("exit_status", \.exitStatus),
    ]
}

/// The start columns of a `sessions` row (what `createSession` writes).
struct SessionStartColumns: StoredRecordKind {
    var id = ""
    var agent = ""
    /// JSON text as stored.
    var command = "[]"
    var cwd = ""
    var policyPath = ""
    var policySHA256 = ""
    var startTime: Int64 = 0
    var mode = ""
    /// The context's JSON text as stored; a string (not embedded JSON) in the fallback line,
    /// so it imports byte for byte.
    var context: String?

    static let hashDomain = "agentgate.session-start.v2"
    static let fields: [RecordField<Self>] = [
        .text("id", \.id),
        .text("agent", \.agent),
        .text("command", \.command, isJSONArray: true),
        .text("cwd", \.cwd),
        .text("policy_path", \.policyPath),
        .text("policy_sha256", \.policySHA256),
        .integer("start_time", \.startTime),
        .text("mode", \.mode),
        .optionalText("context", \.context),
    ]
}

/// The end columns of a `sessions` row: the session's chain length and head are covered,
/// so removing its last events (or any) is detectable once the session has ended.
struct SessionEndColumns: StoredRecordKind {
    var id = ""
    var endTime: Int64 = 0
    var exitStatus: Int64 = 0
    var linkCount: Int64 = 0
    var lastHash = ""

    static let hashDomain = "agentgate.session-end.v2"
    static let fields: [RecordField<Self>] = [
        .text("id", \.id, role: .locator),
        .integer("end_time", \.endTime),
        .integer("exit_status", \.exitStatus),
        .integer("link_count", \.linkCount),
        .text("last_hash", \.lastHash),
    ]
}

/// A `retention_log` row, as its `retention` link carries it.
struct RetentionColumns: StoredRecordKind {
    var id: Int64 = 0
    var time: Int64 = 0
    var cutoff: Int64 = 0
    /// JSON array of session ids, as stored.
    var sessions = "[]"
    var eventsRemoved: Int64 = 0
    var processesRemoved: Int64 = 0

    static let hashDomain = "agentgate.retention.v2"
    static let fields: [RecordField<Self>] = [
        .integer("id", \.id, role: .notWritten),
        .integer("time", \.time),
        .integer("cutoff", \.cutoff),
        .text("sessions", \.sessions, isJSONArray: true),
        .integer("events_removed", \.eventsRemoved),
        .integer("processes_removed", \.processesRemoved),
    ]
}
