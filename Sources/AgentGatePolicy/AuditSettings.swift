import Yams

/// How allowed reads are recorded (`audit: {reads: …}` in the policy). Every other event
/// (execs, writes, connects, denials, asks, logs) is always recorded as its own row.
public enum ReadRecording: UInt8, Sendable, CaseIterable, PolicySpelled {
    /// One row per allowed read, as every other event.
    case all
    /// One aggregate per process and path: first seen, last seen, count (the default: a build
    /// reads the same headers thousands of times, and a row each is most of the database).
    case aggregate
    /// Allowed reads are not recorded (denied and asked reads still are).
    case none

    public var name: String {
        switch self {
        case .all: "all"
        case .aggregate: "aggregate"
        case .none: "none"
        }
    }
}

extension PolicyParser {
    static let auditKeys = "reads, journal"

    /// `audit: {reads: all|aggregate|none, journal: true|false}` (top-level file only: an
    /// included file can't change how a session's events are recorded or where they go).
    mutating func readAudit(_ value: Node, keyNode: Node, depth: Int) throws(PolicyLoadError) {
        guard depth == 0 else {
            throw error(at: keyNode, "\"audit\" may only be set in the top-level policy, not in an included file")
        }
        if isNull(value) { return }
        guard case .mapping(let mapping) = value else {
            throw error(at: value, "expected \"audit\" to be a mapping with keys \(Self.auditKeys); found \(describe(value))")
        }
        for (keyNode, item) in mapping {
            switch try key(keyNode) {
            case "reads":
                let text = try string(item, key: "audit.reads", expected: "all, aggregate or none")
                guard let parsed = ReadRecording(name: text) else {
                    throw error(at: item, "expected \"audit.reads\" to be all, aggregate or none; found \"\(text)\"")
                }
                readRecording = parsed
            case "journal":
                let text = try string(item, key: "audit.journal", expected: "true or false")
                guard ["true", "True", "TRUE", "false", "False", "FALSE"].contains(text) else {
                    throw error(at: item, "expected \"audit.journal\" to be true or false; found \"\(text)\"")
                }
                outputs.journal = text.lowercased() == "true"
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in audit; expected one of \(Self.auditKeys)")
            }
        }
    }
}
