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
/// Which fields a record kind has, in which order, is its field list (`RecordFields.swift`).
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

    /// The "previous hash" of a session's first event or process record (an HMAC under `key`
    /// for a keyed session).
    public static func sessionGenesis(_ sessionID: String, key: AuditKey? = nil) -> [UInt8] {
        var encoder = Encoder(domain: "agentgate.session-genesis.v2", previous: globalGenesis, key: key)
        encoder.text(sessionID)
        return encoder.digest()
    }

    /// Builds one link's input and hashes it: SHA-256, or HMAC-SHA256 under a key (chain
    /// version 3). Reuse one encoder (`reset`) to avoid allocations.
    public struct Encoder: Sendable {
        private(set) var bytes: [UInt8] = []
        /// The keyed MAC's state after the key, copied for each link; nil: plain SHA-256.
        private let mac: HMAC<SHA256>?

        public init(domain: String, previous: [UInt8], key: AuditKey? = nil) {
            mac = key?.mac
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
            if var mac {
                mac.update(data: bytes)
                return Array(mac.finalize())
            }
            var hasher = SHA256()
            bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            return Array(hasher.finalize())
        }
    }

    /// The hash of the link for `row` after `previous` (an event or process record in its
    /// session's chain). Reuse one encoder to avoid allocations.
    static func hash<Row: StoredRecordKind>(_ row: Row, previous: [UInt8], encoder: inout Encoder) -> [UInt8] {
        var row = row
        return hash(inPlace: &row, previous: previous, encoder: &encoder)
    }

    /// The same, visiting the caller's row where it is, without copying its fields: the
    /// writer's and verify's per-row path. The row is not changed.
    static func hash<Row: StoredRecordKind>(inPlace row: inout Row, previous: [UInt8], encoder: inout Encoder) -> [UInt8] {
        encoder.reset(domain: row.rowHashDomain, previous: previous)
        row.visitFields(&encoder)
        return encoder.digest()
    }

    /// The digest of a session start or end, or a retention record, that its `session_chain`
    /// link carries.
    static func digest<Row: StoredRecordKind>(_ row: Row) -> [UInt8] {
        var encoder = Encoder(domain: "", previous: [])
        return hash(row, previous: globalGenesis, encoder: &encoder)
    }

    static let globalLinkDomain = "agentgate.session-chain.v2"

    /// A `session_chain` link (an HMAC when `key` is given: its `key_id` is set).
    static func globalLinkHash(seq: Int64, kind: String, sessionID: String, digest: String, previous: [UInt8], key: AuditKey? = nil) -> [UInt8] {
        var encoder = Encoder(domain: globalLinkDomain, previous: previous, key: key)
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

/// Hashing a record: its hashed fields, in order.
extension AuditChain.Encoder: FieldVisitor {
    mutating func visit(_ field: FieldInfo, _ value: inout Int64) {
        if field.isHashed { integer(value) }
    }

    mutating func visit(_ field: FieldInfo, _ value: inout Int64?) {
        if field.isHashed { integer(value) }
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String) {
        if field.isHashed { text(value) }
    }

    mutating func visit(_ field: FieldInfo, _ value: inout String?) {
        if field.isHashed && !(value == nil && field.isOmittedWhenNull) { text(value) }
    }
}
