import Crypto

/// The tamper-evidence hash chains (schema v2), shared by the writer (which computes them in
/// record order) and `verify` (which recomputes them from the stored rows).
///
/// Every link is SHA-256 over a canonical encoding:
///
///     domain tag (text) ‖ previous link's hash (32 raw bytes) ‖ field ‖ field ‖ …
///
/// where a field is `0x00` (NULL), `0x01` + 8-byte big-endian two's-complement integer, or
/// `0x02` + 8-byte big-endian byte count + UTF-8 bytes (text). Every stored column of the row
/// takes part except its rowid and the hash itself, so an edit of any value changes the hash,
/// and the position (`seq`) is hashed too, so rows can't be reordered or renumbered.
///
/// Two kinds of chain (docs/audit-schema.md, "Tamper evidence"):
/// - per session, one chain over its events and process records, in record order (`seq`
///   1, 2, 3 …), starting from `sessionGenesis(id)`;
/// - one global chain over session records (`session_chain`: a start link when a session is
///   created, an end link when it finishes, each carrying the digest of the sessions row's
///   fields at that point), in commit order, starting from `globalGenesis`.
public enum AuditChain {
    /// 32 zero bytes: the "previous hash" of the first global link.
    public static let globalGenesis = [UInt8](repeating: 0, count: 32)

    /// The "previous hash" of a session's first event or process record.
    public static func sessionGenesis(_ sessionID: String) -> [UInt8] {
        var encoder = Encoder(domain: "agentgate.session-genesis.v2", previous: globalGenesis)
        encoder.text(sessionID)
        return encoder.digest()
    }

    /// Builds one link's input and hashes it. Reuse one encoder (`reset`) to avoid allocations.
    public struct Encoder: Sendable {
        private(set) var bytes: [UInt8] = []

        public init(domain: String, previous: [UInt8]) {
            bytes.reserveCapacity(512)
            reset(domain: domain, previous: previous)
        }

        public mutating func reset(domain: String, previous: [UInt8]) {
            bytes.removeAll(keepingCapacity: true)
            text(domain)
            bytes.append(contentsOf: previous)
        }

        public mutating func null() {
            bytes.append(0)
        }

        public mutating func integer(_ value: Int64) {
            bytes.append(1)
            withUnsafeBytes(of: UInt64(bitPattern: value).bigEndian) { bytes.append(contentsOf: $0) }
        }

        public mutating func integer(_ value: Int64?) {
            if let value { integer(value) } else { null() }
        }

        public mutating func text(_ value: String) {
            bytes.append(2)
            var value = value
            value.withUTF8 { utf8 in
                withUnsafeBytes(of: UInt64(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
                bytes.append(contentsOf: utf8)
            }
        }

        public mutating func text(_ value: String?) {
            if let value { text(value) } else { null() }
        }

        public func digest() -> [UInt8] {
            var hasher = SHA256()
            bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            return Array(hasher.finalize())
        }
    }

    // MARK: - Link kinds (field order is part of the format; never change a released one)

    static let eventDomain = "agentgate.event.v2"
    static let processStartDomain = "agentgate.process-start.v2"
    static let processExitDomain = "agentgate.process-exit.v2"
    static let sessionStartDomain = "agentgate.session-start.v2"
    static let sessionEndDomain = "agentgate.session-end.v2"
    static let globalLinkDomain = "agentgate.session-chain.v2"
    static let retentionDomain = "agentgate.retention.v2"

    /// The columns of an `events` row that its hash covers, as stored.
    struct EventColumns: Sendable {
        var sessionID: String
        var seq: Int64
        var time: Int64
        var pid: Int64
        var ppid: Int64
        var executable: String
        var syscall: String
        var action: String
        var target: String
        /// The JSON text as stored, or nil (SQL NULL).
        var argv: String?
        var decision: String
        var ruleIndex: Int64?
        var ruleID: String?
        var reason: String
        var intent: String?
        var notable: Int64
        var enforced: Int64
        var errno: Int64?
        var latency: Int64
    }

    static func eventHash(_ row: EventColumns, previous: [UInt8], encoder: inout Encoder) -> [UInt8] {
        encoder.reset(domain: eventDomain, previous: previous)
        encoder.text(row.sessionID)
        encoder.integer(row.seq)
        encoder.integer(row.time)
        encoder.integer(row.pid)
        encoder.integer(row.ppid)
        encoder.text(row.executable)
        encoder.text(row.syscall)
        encoder.text(row.action)
        encoder.text(row.target)
        encoder.text(row.argv)
        encoder.text(row.decision)
        encoder.integer(row.ruleIndex)
        encoder.text(row.ruleID)
        encoder.text(row.reason)
        encoder.text(row.intent)
        encoder.integer(row.notable)
        encoder.integer(row.enforced)
        encoder.integer(row.errno)
        encoder.integer(row.latency)
        return encoder.digest()
    }

    /// The start columns of a `processes` row.
    struct ProcessStartColumns: Sendable {
        var sessionID: String
        var seq: Int64
        var pid: Int64
        var ppid: Int64
        var executable: String
        /// JSON texts as stored.
        var argv: String
        var uid: Int64
        var gid: Int64
        var capabilities: String
        var cgroup: String
        var startTime: Int64
    }

    static func processStartHash(_ row: ProcessStartColumns, previous: [UInt8], encoder: inout Encoder) -> [UInt8] {
        encoder.reset(domain: processStartDomain, previous: previous)
        encoder.text(row.sessionID)
        encoder.integer(row.seq)
        encoder.integer(row.pid)
        encoder.integer(row.ppid)
        encoder.text(row.executable)
        encoder.text(row.argv)
        encoder.integer(row.uid)
        encoder.integer(row.gid)
        encoder.text(row.capabilities)
        encoder.text(row.cgroup)
        encoder.integer(row.startTime)
        return encoder.digest()
    }

    /// The exit columns of a `processes` row; `startHash` ties the exit to the image it ends.
    struct ProcessExitColumns: Sendable {
        var sessionID: String
        var seq: Int64
        var startHash: String
        var pid: Int64
        var exitTime: Int64
        var exitStatus: Int64
    }

    static func processExitHash(_ row: ProcessExitColumns, previous: [UInt8], encoder: inout Encoder) -> [UInt8] {
        encoder.reset(domain: processExitDomain, previous: previous)
        encoder.text(row.sessionID)
        encoder.integer(row.seq)
        encoder.text(row.startHash)
        encoder.integer(row.pid)
        encoder.integer(row.exitTime)
        encoder.integer(row.exitStatus)
        return encoder.digest()
    }

    /// The start columns of a `sessions` row (what `createSession` writes).
    struct SessionStartColumns: Sendable {
        var id: String
        var agent: String
        var command: String
        var cwd: String
        var policyPath: String
        var policySHA256: String
        var startTime: Int64
        var mode: String
        var context: String?
    }

    static func sessionStartDigest(_ row: SessionStartColumns) -> [UInt8] {
        var encoder = Encoder(domain: sessionStartDomain, previous: globalGenesis)
        encoder.text(row.id)
        encoder.text(row.agent)
        encoder.text(row.command)
        encoder.text(row.cwd)
        encoder.text(row.policyPath)
        encoder.text(row.policySHA256)
        encoder.integer(row.startTime)
        encoder.text(row.mode)
        encoder.text(row.context)
        return encoder.digest()
    }

    /// The end columns of a `sessions` row: the session's chain length and head are covered,
    /// so removing its last events (or any) is detectable once the session has ended.
    struct SessionEndColumns: Sendable {
        var id: String
        var endTime: Int64
        var exitStatus: Int64
        var linkCount: Int64
        var lastHash: String
    }

    static func sessionEndDigest(_ row: SessionEndColumns) -> [UInt8] {
        var encoder = Encoder(domain: sessionEndDomain, previous: globalGenesis)
        encoder.text(row.id)
        encoder.integer(row.endTime)
        encoder.integer(row.exitStatus)
        encoder.integer(row.linkCount)
        encoder.text(row.lastHash)
        return encoder.digest()
    }

    /// A `retention_log` row, as its `retention` link carries it.
    struct RetentionColumns: Sendable {
        var id: Int64
        var time: Int64
        var cutoff: Int64
        /// JSON array of session ids, as stored.
        var sessions: String
        var eventsRemoved: Int64
        var processesRemoved: Int64
    }

    static func retentionDigest(_ row: RetentionColumns) -> [UInt8] {
        var encoder = Encoder(domain: retentionDomain, previous: globalGenesis)
        encoder.integer(row.id)
        encoder.integer(row.time)
        encoder.integer(row.cutoff)
        encoder.text(row.sessions)
        encoder.integer(row.eventsRemoved)
        encoder.integer(row.processesRemoved)
        return encoder.digest()
    }

    /// A `session_chain` link.
    static func globalLinkHash(seq: Int64, kind: String, sessionID: String, digest: String, previous: [UInt8]) -> [UInt8] {
        var encoder = Encoder(domain: globalLinkDomain, previous: previous)
        encoder.integer(seq)
        encoder.text(kind)
        encoder.text(sessionID)
        encoder.text(digest)
        return encoder.digest()
    }

    // MARK: - Hex

    private static let hexDigits = Array("0123456789abcdef".utf8)

    public static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { output in
            hexDigits.withUnsafeBufferPointer { digits in
                for (index, byte) in bytes.enumerated() {
                    output[index * 2] = digits[Int(byte >> 4)]
                    output[index * 2 + 1] = digits[Int(byte & 0x0f)]
                }
            }
            return bytes.count * 2
        }
    }

    /// Decodes lowercase or uppercase hex; nil when malformed.
    public static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(digits.count / 2)
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 0x30...0x39: digit - 0x30
            case 0x61...0x66: digit - 0x61 + 10
            case 0x41...0x46: digit - 0x41 + 10
            default: nil
            }
        }
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            output.append(high << 4 | low)
            index += 2
        }
        return output
    }
}
