import AgentGateReports
import AgentGateStore
import Glibc

/// Where `-v` and `--log` send each decision as it is made: one whole line per decision, in a
/// single write, so it never splices into another writer's line. (A denial's line is written
/// before the process that caused it sees the failure; a line another process of the session
/// has left unfinished on the same terminal can't be seen from here — `--log` to a file or
/// another terminal keeps the two apart.)
struct DecisionEcho: Sendable {
    struct OpenError: Error, CustomStringConvertible {
        let path: String
        let errno: Int32
        var description: String { "cannot open the decision log \(path): \(String(cString: strerror(errno)))" }
    }

    /// What `-v` shows on stderr.
    enum Detail: Sendable {
        /// Execs, connects, and every decision that isn't a plain allow (`-v`): what explains
        /// a failure, without the reads a failing tool makes while it prints its error.
        case notable
        /// Every decision (`-vv`).
        case everything
    }

    /// The descriptors lines go to: 2 for `-v`, the `--log` file's (which gets every decision).
    let standardError: Detail?
    let logDescriptor: Int32?
    /// The `--log` file, when it is a regular file: the agent may not read or rewrite it.
    let protectedFiles: [String]

    var isEchoing: Bool { standardError != nil || logDescriptor != nil }

    /// Opens `logPath` (appending; created 0600) when given.
    init(standardError: Detail?, logPath: String?) throws(OpenError) {
        self.standardError = standardError
        var logDescriptor: Int32?
        var protectedFiles: [String] = []
        if let logPath {
            let fd = open(logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0o600)
            if fd < 0 { throw OpenError(path: logPath, errno: errno) }
            var info = stat()
            if fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG { protectedFiles.append(logPath) }
            logDescriptor = fd
        }
        self.logDescriptor = logDescriptor
        self.protectedFiles = protectedFiles
    }

    func write(_ event: DecisionEvent) {
        let toStandardError = switch standardError {
        case .everything: true
        case .notable: AuditFormat.isNotable(event)
        case nil: false
        }
        guard toStandardError || logDescriptor != nil else { return }
        var line = AuditFormat.echoLine(event)
        line.withUTF8 { bytes in
            if toStandardError { Self.writeAll(STDERR_FILENO, bytes) }
            if let logDescriptor { Self.writeAll(logDescriptor, bytes) }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return // a closed terminal or a full disk must not stop supervision
            }
            offset += written
        }
    }
}
