import Crypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The secret that keys the audit chains (HMAC-SHA256), `<database>.key`: one per database,
/// so per user (per machine for root's). Without it, a process that can write the database can
/// still edit a row, but can't compute the link that would make the edit verify.
///
/// The file is 0600, owned by the user, created on first use beside the database and
/// protected from the agent exactly as the database is (`AuditDatabaseFiles.all`). Its text:
///
///     agentgate-audit-key 1
///     key <64 hex digits>
///     created <µs since the Unix epoch>
public struct AuditKey: Sendable, Equatable {
    /// 32 random bytes.
    public let bytes: [UInt8]
    /// When the key was made: sessions that start later must be keyed (a rewrite that drops
    /// the key is a downgrade, not an old session).
    public let createdMicros: Int64

    /// A public name for the key (16 hex digits of a hash of it), stored with each keyed
    /// session so `verify` can tell "another key" from "edited".
    public var id: String {
        var hasher = SHA256()
        hasher.update(data: Array("agentgate.audit-key-id.v1".utf8) + bytes)
        return String(AuditChain.hex(Array(hasher.finalize())).prefix(16))
    }

    /// The HMAC every keyed link starts from (copied per link: no key setup per event).
    var mac: HMAC<SHA256> { HMAC<SHA256>(key: SymmetricKey(data: bytes)) }

    public init(bytes: [UInt8], createdMicros: Int64) {
        self.bytes = bytes
        self.createdMicros = createdMicros
    }

    static let header = "agentgate-audit-key 1"

    var fileText: String { "\(Self.header)\nkey \(AuditChain.hex(bytes))\ncreated \(createdMicros)\n" }

    /// Parses the key file's text; nil when it isn't one.
    static func parse(_ text: String) -> AuditKey? {
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count == 3, lines[0] == header, lines[1].hasPrefix("key "), lines[2].hasPrefix("created "),
              let bytes = AuditChain.bytes(hex: String(lines[1].dropFirst(4))), bytes.count == 32,
              let created = Int64(lines[2].dropFirst(8))
        else { return nil }
        return AuditKey(bytes: bytes, createdMicros: created)
    }

    /// Reads the key at `path`; nil when there is none. Refuses a key another user owns, or
    /// one others may read or write (it would not be a secret, or not ours).
    public static func load(path: String) throws(StoreError) -> AuditKey? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw StoreError(code: .cannotOpen, path: path, message: "opening the audit key failed", systemErrno: errno)
        }
        defer { Glibc.close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw StoreError(code: .cannotOpen, path: path, message: "stat of the audit key failed", systemErrno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            // The usual case: root reading an ordinary user's database (or the other way).
            let owner = info.st_mode & S_IFMT == S_IFREG && info.st_mode & 0o077 == 0 && info.st_uid != geteuid()
                ? "; it belongs to uid \(info.st_uid): run this as that user" : ""
            throw StoreError(
                code: .invalidData, path: path,
                message: "the audit key must be a regular file of uid \(geteuid()) with mode 0600 (it is mode "
                    + "\(String(info.st_mode & 0o7777, radix: 8)), uid \(info.st_uid)); not used\(owner)")
        }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0, let key = parse(String(decoding: buffer[0..<count], as: UTF8.self)) else {
            throw StoreError(code: .invalidData, path: path, message: "the audit key file is malformed")
        }
        return key
    }

    /// Reads the key at `path`, or makes one there (0600, from the system's random source).
    /// Safe against another process creating it at the same time: the first one made wins.
    public static func loadOrCreate(path: String) throws(StoreError) -> AuditKey {
        if let key = try load(path: path) { return key }
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let key = AuditKey(bytes: bytes, createdMicros: AuditClock.nowMicros())
        // Written whole under a temporary name, then linked into place: a reader never sees
        // half a key, and link() doesn't replace one another process made meanwhile.
        let temporary = path + ".new.\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw StoreError(code: .cannotOpen, path: path, message: "creating the audit key failed", systemErrno: errno)
        }
        defer { unlink(temporary) }
        let text = Array(key.fileText.utf8)
        let written = text.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        let failure = errno
        Glibc.close(descriptor)
        guard written == text.count, synced else {
            throw StoreError(code: .cannotOpen, path: path, message: "writing the audit key failed", systemErrno: failure)
        }
        if link(temporary, path) != 0 {
            guard errno == EEXIST, let theirs = try load(path: path) else {
                throw StoreError(code: .cannotOpen, path: path, message: "creating the audit key failed", systemErrno: errno)
            }
            return theirs
        }
        return key
    }
}
