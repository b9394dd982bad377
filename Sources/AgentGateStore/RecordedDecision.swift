/// A recorded verdict, the `events.decision` column. It is text only in the stored row.
public enum RecordedDecision: Sendable, Hashable, CustomStringConvertible, StoredSpelling {
    case allow
    case deny
    /// Asked a person, and ended without an answer (nobody could be asked, or the call ended
    /// first): the call failed. An answered ask is recorded as its answer (allow or deny).
    case ask
    /// Allowed, and flagged for review.
    case log
    /// Text this build doesn't know, read from an older or newer database or fallback file;
    /// kept as stored so the row stays readable and verifiable.
    case unrecognized(String)

    static let spellings = StoredSpellings<Self>([(.allow, "allow"), (.deny, "deny"), (.ask, "ask"), (.log, "log")])

    /// Parses the stored text; unknown text becomes `.unrecognized`, never a failure.
    public init(text: String) { self.init(storedText: text) }

    /// The stored text, e.g. "deny".
    public var text: String { storedText }

    public var description: String { storedText }

    var unrecognizedText: String? {
        if case .unrecognized(let text) = self { text } else { nil }
    }
}

/// What kind of operation a recorded event is, the `events.action` column. It is text only
/// in the stored row.
public enum RecordedAction: Sendable, Hashable, CustomStringConvertible, StoredSpelling {
    case exec
    case fsRead
    case fsWrite
    case netEgress
    /// A syscall decided by name alone (the unsupervised-route table), not by a policy action.
    case syscall
    /// A DNS query the session's forwarder decided (and, when allowed, its answer).
    case dns
    /// A call of an MCP tool, decided by an agent hook (`agentgate hook`).
    case mcp
    /// Text this build doesn't know, read from an older or newer database or fallback file;
    /// kept as stored so the row stays readable and verifiable.
    case unrecognized(String)

    static let spellings = StoredSpellings<Self>([
        (.exec, "exec"), (.fsRead, "fs_read"), (.fsWrite, "fs_write"), (.netEgress, "net_egress"), (.syscall, "syscall"),
        (.dns, "dns"), (.mcp, "mcp"),
    ])

    /// Parses the stored text; unknown text becomes `.unrecognized`, never a failure.
    public init(text: String) { self.init(storedText: text) }

    /// The stored text, e.g. "fs_read".
    public var text: String { storedText }

    public var description: String { storedText }

    var unrecognizedText: String? {
        if case .unrecognized(let text) = self { text } else { nil }
    }
}

/// An enum stored as text: its known cases have fixed spellings, and any other text it reads
/// is kept as it was (`unrecognized`), so nothing stored is ever unreadable.
protocol StoredSpelling: Hashable, Sendable {
    static var spellings: StoredSpellings<Self> { get }
    static func unrecognized(_ text: String) -> Self
    /// The text of the `unrecognized` case; nil for a known case.
    var unrecognizedText: String? { get }
}

extension StoredSpelling {
    init(storedText text: String) {
        self = Self.spellings.value(text) ?? .unrecognized(text)
    }

    var storedText: String {
        unrecognizedText ?? Self.spellings.text(self)
    }
}

/// The stored text of each known case of a `StoredSpelling` enum: one table for both directions.
struct StoredSpellings<Value: Hashable & Sendable>: Sendable {
    private let texts: [Value: String]
    private let values: [String: Value]

    init(_ pairs: [(Value, String)]) {
        texts = Dictionary(uniqueKeysWithValues: pairs)
        values = Dictionary(uniqueKeysWithValues: pairs.map { ($0.1, $0.0) })
    }

    func value(_ text: String) -> Value? { values[text] }

    /// The text of a known case ("" for one the table lacks, which the enums rule out).
    func text(_ value: Value) -> String { texts[value] ?? "" }
}

/// Which layer decided a recorded event, the `events.source` column (schema v6): the
/// supervisor, from the syscall it trapped, or an agent's hook, from the tool call it was
/// about to make. Stored as NULL for the supervisor, so rows from before the column read,
/// hash and verify as they did.
public enum RecordedSource: Sendable, Hashable, CustomStringConvertible, StoredSpelling {
    /// The seccomp supervisor (`agentgate-supervise`): what the kernel was asked to do.
    case kernel
    /// An agent hook (`agentgate hook claude-code`): what the agent said it was about to do.
    /// Its pid, parent and executable are the hook process's own.
    case hook
    /// The MCP gateway (`agentgate mcp`): a tools/call request it passed on or refused.
    case mcp
    case unrecognized(String)

    static let spellings = StoredSpellings<Self>([(.kernel, "kernel"), (.hook, "hook"), (.mcp, "mcp")])

    public init(text: String) { self.init(storedText: text) }

    /// The stored text; nil for `.kernel` (the column's NULL).
    init(column: String?) { self = column.map(Self.init(text:)) ?? .kernel }
    var columnText: String? { self == .kernel ? nil : storedText }

    public var text: String { storedText }
    public var description: String { storedText }

    var unrecognizedText: String? {
        if case .unrecognized(let text) = self { text } else { nil }
    }
}
