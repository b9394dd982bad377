/// What the SQL statements do with a field.
enum FieldRole: Sendable {
    /// Inserted, or set by an update.
    case written
    /// Names the row an update changes (`WHERE column = ?`).
    case locator
    /// Hashed and carried in the fallback line, but not written by this record's statement:
    /// an exit's start hash and pid are the start record's, a retention row's id is its rowid.
    case notWritten
}

/// One field of a stored record kind, as its field list names it.
struct FieldInfo: Sendable {
    /// The key in a fallback line.
    let key: String
    /// The SQL column.
    let column: String
    let role: FieldRole
    /// Covered by the hash: false only for a field that locates the row without being part of
    /// the record (an exit's `start_seq`).
    let isHashed: Bool
    /// A text column holding a JSON array of strings, written into the fallback line as JSON
    /// (not as a string), and read back from it as an array of strings.
    let isJSONArray: Bool
    /// What a fallback line without the key reads as (it was written before the field
    /// existed); nil when the key is required, or, for an optional field, reads as null.
    let whenAbsent: Int64?
    /// A field added after its kind's first hash domain: when NULL it is left out of the hash
    /// and of the fallback line, so rows from before it existed hash and read as they did.
    /// Only the last field of a kind may be one (the encoding stays unambiguous), and a row
    /// that has it is hashed under a later domain (`rowHashDomain`).
    var isOmittedWhenNull = false
}

/// Does one thing with every field of a record, in its kind's order: hash it, bind it, write
/// or read its fallback line, read it from a result row. Each field comes `inout`, so a
/// reading visitor fills the record and a writing one leaves it as it is.
protocol FieldVisitor {
    mutating func visit(_ field: FieldInfo, _ value: inout Int64)
    mutating func visit(_ field: FieldInfo, _ value: inout Int64?)
    mutating func visit(_ field: FieldInfo, _ value: inout String)
    mutating func visit(_ field: FieldInfo, _ value: inout String?)
}

extension FieldVisitor {
    // The spellings a field list uses: the key, and what differs from the usual.

    @inline(__always)
    mutating func integer(
        _ key: String, _ value: inout Int64, column: String? = nil, role: FieldRole = .written, isHashed: Bool = true,
        whenAbsent: Int64? = nil
    ) {
        visit(FieldInfo(key: key, column: column ?? key, role: role, isHashed: isHashed, isJSONArray: false,
                        whenAbsent: whenAbsent), &value)
    }

    @inline(__always)
    mutating func optionalInteger(_ key: String, _ value: inout Int64?) {
        visit(FieldInfo(key: key, column: key, role: .written, isHashed: true, isJSONArray: false, whenAbsent: nil), &value)
    }

    @inline(__always)
    mutating func text(
        _ key: String, _ value: inout String, role: FieldRole = .written, isJSONArray: Bool = false
    ) {
        visit(FieldInfo(key: key, column: key, role: role, isHashed: true, isJSONArray: isJSONArray, whenAbsent: nil), &value)
    }

    @inline(__always)
    mutating func optionalText(_ key: String, _ value: inout String?, isJSONArray: Bool = false,
                               isOmittedWhenNull: Bool = false) {
        visit(FieldInfo(key: key, column: key, role: .written, isHashed: true, isJSONArray: isJSONArray, whenAbsent: nil,
                        isOmittedWhenNull: isOmittedWhenNull),
              &value)
    }
}

/// A kind of stored record covered by a hash: its hash domain and its one field list.
protocol StoredRecordKind: Sendable, Equatable {
    /// The hash's domain tag; part of the format, never changed for a released kind.
    static var hashDomain: String { get }
    /// The domain tag of this row's hash: `hashDomain`, or a later version for a row that
    /// has a field the kind gained later (`FieldInfo.isOmittedWhenNull`).
    var rowHashDomain: String { get }
    /// Every field empty; the readers fill it field by field.
    init()
    /// The field list: visits every field in hash order (which is also the fallback line's
    /// order). Adding a column is one line here.
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor)
}

extension StoredRecordKind {
    var rowHashDomain: String { Self.hashDomain }

    /// Visits every field of a copy: for visitors that only read the record.
    @inline(__always)
    func forEachField<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        var copy = self
        copy.visitFields(&visitor)
    }

    /// The fields' descriptions, in order.
    static var fields: [FieldInfo] {
        var collector = FieldCollector()
        Self().forEachField(&collector)
        return collector.fields
    }

    /// The SQL columns of `fields`, comma-separated, for a SELECT that `init(from:at:)` decodes.
    static var columnList: String { fields.map(\.column).joined(separator: ", ") }

    /// The position of `column` in `columnList` (past its end for a column the kind lacks).
    static func position(of column: String) -> Int32 {
        Int32(fields.firstIndex { $0.column == column } ?? fields.count)
    }

    /// Decodes the row from `statement`'s columns `first`, `first + 1`, … (as `columnList`).
    /// A NULL reads as nil, or as 0 or "" for a field that can't be nil (as SQLite reads it).
    @inline(__always)
    init(from statement: PreparedStatement, at first: Int32) {
        self.init()
        var reader = ColumnReader(statement: statement, column: first)
        visitFields(&reader)
    }

    /// `INSERT INTO table (written fields…, extra columns…) VALUES (?…, extra values…)`;
    /// run it with `execute`.
    static func insertSQL(into table: String, extraColumns: [(column: String, value: String)] = []) -> String {
        let written = fields.filter { $0.role == .written }
        let columns = written.map(\.column) + extraColumns.map(\.column)
        let values = written.map { _ in "?" } + extraColumns.map(\.value)
        return "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))"
    }

    /// `UPDATE table SET written fields… [, extra column] WHERE locator fields… [AND condition]`;
    /// run it with `execute`, the extra column's value in its `extra`.
    static func updateSQL(_ table: String, alsoSetting extra: [String] = [], where condition: String? = nil) -> String {
        let set = fields.filter { $0.role == .written }.map { "\($0.column) = ?" } + extra.map { "\($0) = ?" }
        let locate = fields.filter { $0.role == .locator }.map { "\($0.column) = ?" } + (condition.map { [$0] } ?? [])
        return "UPDATE \(table) SET \(set.joined(separator: ", ")) WHERE \(locate.joined(separator: " AND "))"
    }

    /// Runs `statement` (from `insertSQL` or `updateSQL`) once for this row: its written fields,
    /// then the `extra` text (the hash column), then (for an update) its locators. `nulling` columns are bound as
    /// NULL whatever their value. `texts` is scratch space, reused between rows.
    func execute(
        _ statement: PreparedStatement, texts: inout RowTextBuffer, extra: String? = nil, nulling: Set<String> = []
    ) throws(StoreError) {
        var binder = ParameterBinder(statement: statement, role: .written, nulling: nulling)
        swap(&binder.texts, &texts)
        defer { swap(&binder.texts, &texts) }
        binder.texts.removeAll()
        forEachField(&binder)
        if let extra {
            binder.texts.append(binder.parameter, extra)
            binder.parameter += 1
        }
        binder.role = .locator
        forEachField(&binder)
        if let failure = binder.failure { throw failure }
        try binder.texts.bind(to: statement) { () throws(StoreError) in
            _ = try statement.step()
        }
    }
}

/// Collects the fields' descriptions.
private struct FieldCollector: FieldVisitor {
    var fields: [FieldInfo] = []
    mutating func visit(_ field: FieldInfo, _ value: inout Int64) { fields.append(field) }
    mutating func visit(_ field: FieldInfo, _ value: inout Int64?) { fields.append(field) }
    mutating func visit(_ field: FieldInfo, _ value: inout String) { fields.append(field) }
    mutating func visit(_ field: FieldInfo, _ value: inout String?) { fields.append(field) }
}

/// Reads the fields from consecutive result columns.
private struct ColumnReader: FieldVisitor {
    let statement: PreparedStatement
    var column: Int32

    mutating func visit(_ field: FieldInfo, _ value: inout Int64) {
        value = statement.int64(column)
        column += 1
    }

    mutating func visit(_ field: FieldInfo, _ value: inout Int64?) {
        value = statement.optionalInt64(column)
        column += 1
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String) {
        value = statement.text(column)
        column += 1
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String?) {
        value = statement.optionalText(column)
        column += 1
    }
}

/// Binds the fields of one role to consecutive parameters: integers at once, texts queued in
/// `texts` (bound, pinned, by `RowTextBuffer.bind`).
private struct ParameterBinder: FieldVisitor {
    let statement: PreparedStatement
    var role: FieldRole
    let nulling: Set<String>
    var texts = RowTextBuffer()
    var parameter: Int32 = 1
    /// The first bind failure; binding stops there.
    var failure: StoreError?

    init(statement: PreparedStatement, role: FieldRole, nulling: Set<String>) {
        self.statement = statement
        self.role = role
        self.nulling = nulling
    }

    /// The next parameter for `field`, or nil when the field isn't bound in this pass.
    @inline(__always)
    private mutating func next(_ field: FieldInfo) -> Int32? {
        guard field.role == role, failure == nil else { return nil }
        defer { parameter += 1 }
        return parameter
    }

    @inline(__always)
    private func isNulled(_ field: FieldInfo) -> Bool {
        !nulling.isEmpty && nulling.contains(field.column)
    }

    mutating func visit(_ field: FieldInfo, _ value: inout Int64) {
        guard let parameter = next(field) else { return }
        if isNulled(field) { texts.append(parameter, nil); return }
        do throws(StoreError) { try statement.bind(parameter, value) } catch { failure = error }
    }

    mutating func visit(_ field: FieldInfo, _ value: inout Int64?) {
        guard let parameter = next(field) else { return }
        guard let number = value, !isNulled(field) else { texts.append(parameter, nil); return }
        do throws(StoreError) { try statement.bind(parameter, number) } catch { failure = error }
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String) {
        guard let parameter = next(field) else { return }
        texts.append(parameter, isNulled(field) ? nil : value)
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String?) {
        guard let parameter = next(field) else { return }
        texts.append(parameter, isNulled(field) ? nil : value)
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
    /// The SHA-256 of the policy in force when the event was decided (schema v3); nil in rows
    /// from before it, which keep their v2 hash.
    var policySHA256: String?
    /// How and by whom an `ask` was settled (schema v4); nil for every other event.
    var answeredVia: String?
    var answeredBy: String?
    /// Which layer decided (schema v6): NULL for the supervisor, "hook" for an agent hook.
    var source: String?

    static let hashDomain = "agentgate.event.v2"
    /// Events that carry `policy_sha256` (schema v3) hash it, under this domain.
    static let policyHashDomain = "agentgate.event.v3"
    /// Events that record an ask's answer (schema v4) hash it too, under this domain.
    static let answerHashDomain = "agentgate.event.v4"
    /// Events from another layer than the supervisor (schema v6) hash their source, under
    /// this domain, with every optional field before it hashed in full (NULL as NULL), so no
    /// two rows can encode alike.
    static let sourceHashDomain = "agentgate.event.source.v1"
    var rowHashDomain: String {
        if source != nil { return Self.sourceHashDomain }
        if answeredVia != nil || answeredBy != nil { return Self.answerHashDomain }
        return policySHA256 == nil ? Self.hashDomain : Self.policyHashDomain
    }
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.text("session_id", &sessionID)
        visitor.integer("seq", &seq)
        visitor.integer("time", &time)
        visitor.integer("pid", &pid)
        visitor.integer("ppid", &ppid)
        visitor.text("executable", &executable)
        visitor.text("syscall", &syscall)
        visitor.text("action", &action)
        visitor.text("target", &target)
        visitor.optionalText("argv", &argv, isJSONArray: true)
        visitor.text("decision", &decision)
        visitor.optionalInteger("rule_index", &ruleIndex)
        visitor.optionalText("rule_id", &ruleID)
        visitor.text("reason", &reason)
        visitor.optionalText("intent", &intent)
        visitor.integer("notable", &notable, whenAbsent: 0)
        visitor.integer("enforced", &enforced, whenAbsent: 1)
        visitor.optionalInteger("errno", &errno)
        visitor.integer("latency_us", &latency)
        // Omitted when NULL only in rows without a source: those hash as before schema v6.
        let omitsNull = source == nil
        visitor.optionalText("policy_sha256", &policySHA256, isOmittedWhenNull: omitsNull)
        visitor.optionalText("answered_via", &answeredVia, isOmittedWhenNull: omitsNull)
        visitor.optionalText("answered_by", &answeredBy, isOmittedWhenNull: omitsNull)
        visitor.optionalText("source", &source, isOmittedWhenNull: true)
    }
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
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.text("session_id", &sessionID)
        visitor.integer("seq", &seq, column: "start_seq")
        visitor.integer("pid", &pid)
        visitor.integer("ppid", &ppid)
        visitor.text("executable", &executable)
        visitor.text("argv", &argv, isJSONArray: true)
        visitor.integer("uid", &uid)
        visitor.integer("gid", &gid)
        visitor.text("capabilities", &capabilities, isJSONArray: true)
        visitor.text("cgroup", &cgroup)
        visitor.integer("start_time", &startTime)
    }
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
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.text("session_id", &sessionID, role: .locator)
        visitor.integer("seq", &seq, column: "exit_seq")
        visitor.integer("start_seq", &startSeq, role: .locator, isHashed: false)
        visitor.text("start_hash", &startHash, role: .notWritten)
        visitor.integer("pid", &pid, role: .notWritten)
        visitor.integer("exit_time", &exitTime)
        visitor.integer("exit_status", &exitStatus)
    }
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
    /// The systemd unit (schema v5): all three set, or all three nil (a session outside a
    /// unit, and every row from before v5, which keeps its v2 digest).
    var unit: String?
    var unitCgroup: String?
    var invocationID: String?

    static let hashDomain = "agentgate.session-start.v2"
    /// Sessions started in a unit (schema v5) hash its three columns too, under this domain.
    static let unitHashDomain = "agentgate.session-start.v5"
    var rowHashDomain: String { unit == nil ? Self.hashDomain : Self.unitHashDomain }
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.text("id", &id)
        visitor.text("agent", &agent)
        visitor.text("command", &command, isJSONArray: true)
        visitor.text("cwd", &cwd)
        visitor.text("policy_path", &policyPath)
        visitor.text("policy_sha256", &policySHA256)
        visitor.integer("start_time", &startTime)
        visitor.text("mode", &mode)
        visitor.optionalText("context", &context)
        visitor.optionalText("unit", &unit, isOmittedWhenNull: true)
        visitor.optionalText("unit_cgroup", &unitCgroup, isOmittedWhenNull: true)
        visitor.optionalText("invocation_id", &invocationID, isOmittedWhenNull: true)
    }
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
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.text("id", &id, role: .locator)
        visitor.integer("end_time", &endTime)
        visitor.integer("exit_status", &exitStatus)
        visitor.integer("link_count", &linkCount)
        visitor.text("last_hash", &lastHash)
    }
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
    mutating func visitFields<Visitor: FieldVisitor>(_ visitor: inout Visitor) {
        visitor.integer("id", &id, role: .notWritten)
        visitor.integer("time", &time)
        visitor.integer("cutoff", &cutoff)
        visitor.text("sessions", &sessions, isJSONArray: true)
        visitor.integer("events_removed", &eventsRemoved)
        visitor.integer("processes_removed", &processesRemoved)
    }
}
