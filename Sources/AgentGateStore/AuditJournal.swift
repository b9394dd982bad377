#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sends session anchors to systemd's journal, where one runs: one datagram of the journal's
/// native protocol to its socket (what sd_journal_send does), so libsystemd isn't linked.
/// Where there is no journal the anchor file is the only copy; `audit verify` says so once.
public enum AuditJournal {
    public static let socketPath = "/run/systemd/journal/socket"

    /// Whether a journal listens here.
    public static var isAvailable: Bool {
        var info = stat()
        return stat(socketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
    }

    /// The datagram: each field as `NAME\n<64-bit little-endian length><value>\n`, the form
    /// that takes any bytes (a session id is the user's text).
    static func datagram(_ anchor: AuditAnchor) -> [UInt8] {
        var fields: [(String, String)] = [
            ("MESSAGE", "agentgate: session \(anchor.sessionID) ended: \(anchor.lastSeq) chain links, head \(anchor.headHash)"),
            ("PRIORITY", "6"),
            ("SYSLOG_IDENTIFIER", "agentgate"),
            ("AGENTGATE_SESSION", anchor.sessionID),
            ("AGENTGATE_LAST_SEQ", "\(anchor.lastSeq)"),
            ("AGENTGATE_HEAD", anchor.headHash),
            ("AGENTGATE_TIME", "\(anchor.timeMicros)"),
        ]
        if let keyID = anchor.keyID { fields.append(("AGENTGATE_KEY_ID", keyID)) }
        var bytes: [UInt8] = []
        for (name, value) in fields { appendField(name, value, to: &bytes) }
        return bytes
    }

    /// Appends one field to a datagram in the form that takes any bytes (a value may hold a
    /// newline): `NAME\n<64-bit little-endian length><value>\n`.
    public static func appendField(_ name: String, _ value: String, to bytes: inout [UInt8]) {
        bytes += name.utf8
        bytes.append(UInt8(ascii: "\n"))
        withUnsafeBytes(of: UInt64(value.utf8.count).littleEndian) { bytes += $0 }
        bytes += value.utf8
        bytes.append(UInt8(ascii: "\n"))
    }

    /// Sends `anchor`; nothing happens when there is no journal. Never blocks.
    static func send(_ anchor: AuditAnchor) {
        guard isAvailable else { return }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (index, byte) in socketPath.utf8.enumerated() where index < path.count - 1 { path[index] = byte }
        }
        let bytes = datagram(anchor)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
    }
}
