import CSupport
import Glibc
import Logging
import Synchronization
import SystemPackage

/// Who is on the other end of a control connection (SO_PEERCRED, as of its connect).
struct ControlPeer: Sendable {
    let pid: pid_t
    let uid: uid_t
    /// The peer runs under more seccomp filters than the supervisor, as every supervised agent
    /// does (a filter is inherited and can't be removed), or is another supervisor (which makes
    /// its agents' connects), or can't be shown to be neither: it may be acting for an agent of
    /// another session, so it may not answer asks or resume a paused session.
    var confined = true

    init(pid: pid_t, uid: uid_t, confined: Bool = true) {
        self.pid = pid
        self.uid = uid
        self.confined = confined
    }

    /// Whether the peer of `connection` (which connected as `pid`) runs under more seccomp
    /// filters than this supervisor: every agent of a session does (its supervisor's, plus the
    /// session's own, which can't be removed), while a person's terminal in the same
    /// environment (a container's default filter, say) has the same as the supervisor.
    /// /proc/PID/status is read while a pidfd of the very process that connected
    /// (SO_PEERPIDFD, Linux 6.5+; else pidfd_open, racing pid reuse) shows it still alive, so a
    /// recycled pid can't lend its status. True when that can't be established.
    static func isConfined(connection: Int32, pid: pid_t) -> Bool {
        var pidfd: Int32 = -1
        var length = UInt32(MemoryLayout<Int32>.size)
        if agentgate_getsockopt(connection, SOL_SOCKET, 77 /* SO_PEERPIDFD */, &pidfd, &length) != 0 || pidfd < 0 {
            pidfd = agentgate_pidfd_open(pid)
        }
        guard pidfd >= 0, let own = ownFilterCount else { return true }
        defer { close(pidfd) }
        let peer = filterCount("/proc/\(pid)/status")
        // An agent's connect is made by its supervisor (emulated), so the peer is then another
        // supervisor: a process holding a seccomp listener, or hiding its fds (supervisors are
        // not dumpable).
        let supervises = holdsSeccompListener(pid)
        guard let peer, agentgate_pidfd_send_signal(pidfd, 0, nil, 0) == 0 else { return true }
        return peer > own || supervises
    }

    /// Whether process `pid` holds a seccomp notification fd, or its fds can't be read.
    private static func holdsSeccompListener(_ pid: pid_t) -> Bool {
        guard let directory = opendir("/proc/\(pid)/fd") else { return true }
        defer { closedir(directory) }
        var link = [CChar](repeating: 0, count: 64)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.first?.isNumber == true else { continue }
            let count = readlink("/proc/\(pid)/fd/" + name, &link, link.count - 1)
            guard count > 0 else { continue }
            let target = link[..<count].map { UInt8(bitPattern: $0) }
            if String(decoding: target, as: UTF8.self) == "anon_inode:seccomp notify" { return true }
        }
        return false
    }

    /// This process's seccomp filters (the environment's: the supervisor installs none on itself).
    private static let ownFilterCount = filterCount("/proc/self/status")

    /// `Seccomp_filters:` of a /proc status file (Linux 5.9+), nil when unreadable.
    private static func filterCount(_ path: String) -> Int? {
        let status = open(path, O_RDONLY | O_CLOEXEC)
        guard status >= 0 else { return nil }
        defer { close(status) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = buffer.withUnsafeMutableBytes { read(status, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Seccomp_filters:") }) else { return nil }
        return Int(line.dropFirst("Seccomp_filters:".count).filter { !$0.isWhitespace })
    }

    /// `alice (uid 1000)`.
    var userDescription: String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 4096)
        let found = getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0 && result != nil
        let name = found ? String(cString: entry.pw_name) : "uid \(uid)"
        return found ? "\(name) (uid \(uid))" : name
    }
}

/// A supervisor's control socket (`agentgate pause/resume/kill`): a Unix stream socket, mode
/// 0600, in the user's `ControlDirectory`, served by one thread started with the session. Only
/// the supervisor's own uid or root may use it; the session can't reach it at all (its directory
/// is one of the core's protected directories, so a connect from inside is refused).
final class ControlServer: Sendable {
    let socketPath: String
    private let listenFD: Int32
    /// Written once to stop the thread.
    private let wakeFDs: (read: Int32, write: Int32)
    private let thread = Mutex<Thread?>(nil)
    private let removed = Atomic<Bool>(false)

    private init(socketPath: String, listenFD: Int32, wakeFDs: (Int32, Int32)) {
        self.socketPath = socketPath
        self.listenFD = listenFD
        self.wakeFDs = wakeFDs
    }

    /// Binds and listens on `socketPath` (before the agent exists). A socket left there by a
    /// supervisor that died is replaced; a live one is an error.
    static func listen(at socketPath: String) throws(SupervisorError) -> ControlServer {
        if (try? ControlClient.send(ControlRequest(op: ControlOperation.status.rawValue), to: socketPath, timeoutMilliseconds: 1000)) != nil {
            throw SupervisorError(.listener, "a running session already has the control socket \(socketPath); choose another --session")
        }
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SupervisorError(.listener, "cannot create the control socket", errno: Errno(rawValue: errno)) }
        let bound = withUnixSocketAddress(socketPath) { bind(fd, $0, $1) == 0 ? 0 : -errno }
        // The directory is the user's alone (0700); the socket is made 0600 as well.
        guard bound == 0, chmod(socketPath, 0o600) == 0, Glibc.listen(fd, 16) == 0 else {
            let error = bound != 0 ? -bound : errno
            close(fd)
            if bound == 0 { unlink(socketPath) }
            throw SupervisorError(.listener, "cannot listen on the control socket \(socketPath)", errno: Errno(rawValue: error))
        }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            close(fd)
            unlink(socketPath)
            throw SupervisorError(.listener, "cannot create the control socket's wake-up pipe", errno: Errno(rawValue: errno))
        }
        for pipeFD in pipeFDs {
            _ = fcntl(pipeFD, F_SETFD, FD_CLOEXEC)
            _ = fcntl(pipeFD, F_SETFL, O_NONBLOCK)
        }
        return ControlServer(socketPath: socketPath, listenFD: fd, wakeFDs: (pipeFDs[0], pipeFDs[1]))
    }

    /// Starts the thread answering requests with `handle`. Returns false when it couldn't start.
    func start(log: Logger, handle: @escaping @Sendable (ControlRequest, ControlPeer) -> ControlResponse) -> Bool {
        let thread = Thread(stackSize: 512 << 10) { [self] in serve(log: log, handle: handle) }
        guard thread.start(detached: false) else { return false }
        self.thread.withLock { $0 = thread }
        return true
    }

    /// Stops the thread, removes the socket and closes it.
    func stop() {
        var byte: UInt8 = 1
        _ = write(wakeFDs.write, &byte, 1)
        if let thread = thread.withLock({ $0 }) { thread.join() }
        if !removed.exchange(true, ordering: .relaxed) {
            unlink(socketPath)
            close(listenFD)
            close(wakeFDs.read)
            close(wakeFDs.write)
        }
    }

    private func serve(log: Logger, handle: @Sendable (ControlRequest, ControlPeer) -> ControlResponse) {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFDs.read, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, 2, -1)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 || fds[1].revents != 0 { return }
            let connection = accept(listenFD, nil, nil)
            if connection < 0 { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC) // the supervisor never forks after the agent's start
            answer(connection, log: log, handle: handle)
            close(connection)
        }
    }

    /// Answers the requests of one connection, one line each, until it closes or idles 2 s.
    private func answer(_ connection: Int32, log: Logger, handle: @Sendable (ControlRequest, ControlPeer) -> ControlResponse) {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = UInt32(MemoryLayout.size(ofValue: credentials))
        guard agentgate_getsockopt(connection, SOL_SOCKET, Int32(AGENTGATE_SO_PEERCRED), &credentials, &length) == 0 else {
            log.warning("control socket: refused a connection whose credentials can't be read")
            _ = ControlLine.writeAll(connection, ControlLine.encode(ControlResponse.failure("permission denied: unknown peer")))
            return
        }
        let peer = ControlPeer(pid: credentials.0, uid: credentials.1,
                               confined: ControlPeer.isConfined(connection: connection, pid: credentials.0))
        let ownUID = getuid()
        // A connection made from inside the supervisor is one it made for the agent: never the
        // user's. Everyone but the supervisor's own user and root is refused.
        if peer.pid == getpid() || (peer.uid != ownUID && peer.uid != 0) {
            let who = peer.pid == getpid() ? "the supervised session" : peer.userDescription
            log.warning("control socket: refused a connection from \(who), pid \(peer.pid): only uid \(ownUID) or root may control this session")
            // The refusal answers the peer's first request (read for at most a second, not acted on).
            var ignored: [UInt8] = []
            _ = ControlLine.readLine(connection, buffer: &ignored, deadline: agentgate_monotonic_ns() + 1_000_000_000)
            _ = ControlLine.writeAll(connection, ControlLine.encode(ControlResponse.failure(
                "permission denied: only uid \(ownUID) or root may control this session")))
            return
        }
        var buffer: [UInt8] = []
        while let line = ControlLine.readLine(connection, buffer: &buffer, deadline: agentgate_monotonic_ns() + 2_000_000_000) {
            if line.isEmpty { continue }
            let response: ControlResponse
            if let request = ControlLine.decode(ControlRequest.self, line) {
                response = handle(request, peer)
            } else {
                response = .failure(#"not a control request: expected one JSON object per line, such as {"op": "status"}"#)
            }
            guard ControlLine.writeAll(connection, ControlLine.encode(response)) else { return }
        }
    }
}
