import AgentGatePolicy
import CSupport
import Glibc
import SystemPackage

/// The agent's DNS sockets, swapped for sockets of the capture namespace (see `DNSCapture`).
enum DNSSwap {
    /// The agent's socket, taken once for the whole call, and what the swap makes of it.
    enum Prepared {
        /// A namespace socket of the same kind, not yet in the agent's place; `cloexec` is the
        /// agent's fd flag.
        case replacement(socket: Int32, cloexec: Bool)
        /// The kernel's answer to the call, with nothing to decide (EBADF, ENOTSOCK, EISCONN).
        case kernelError(Int32)
        /// DNS the capture can't take (a raw socket, a family it doesn't serve): refused.
        case uncapturable(String)
    }

    static let capturedReason = "DNS: every query is decided by the session's forwarder"
    static let noCaptureReason = "DNS is refused: the session could not capture it (see the supervisor's warning at start; "
        + "--no-dns-capture lets DNS through, decided by address)"

    /// Takes the agent's `socketFD` (once: the kind decided on is the socket replaced) and makes
    /// its replacement. `connectingTo`: the address a connect names, so the replacement is bound
    /// where the host would bind it (getsockname shows the host's own address, as bare).
    static func prepare(_ call: TrappedCall, socketFD: Int32, capture: DNSCapture, connectingTo address: SocketAddress?) -> Prepared {
        let n = call.notification
        let pidfd = agentgate_pidfd_open(n.tid)
        let agentSocket = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, socketFD) : pidfd
        agentgate_close(pidfd)
        guard agentSocket >= 0 else { return .kernelError(agentSocket == -ESRCH ? ESRCH : EBADF) }
        defer { agentgate_close(agentSocket) }
        let kind: DNSCapture.SocketKind
        switch DNSCapture.kind(of: agentSocket) {
        case .success(let found): kind = found
        case .failure(.kernel(let errno)): return .kernelError(errno)
        case .failure(.notServed(let what)): return .uncapturable(what)
        }
        let cloexec = agentgate_fd_cloexec(n.tid, socketFD)
        guard cloexec >= 0 else { return .kernelError(EBADF) }
        let replacement = capture.replacement(for: agentSocket, kind: kind, connectingTo: address)
        if replacement == -ENETUNREACH || replacement == -EHOSTUNREACH || replacement == -EINVAL || replacement == -EAFNOSUPPORT
            || replacement == -EADDRINUSE || replacement == -EADDRNOTAVAIL {
            return .kernelError(-replacement) // what the kernel says to this connect on the host
        }
        guard replacement >= 0 else { return .uncapturable("the capture could not make its socket (\(Errno(rawValue: -replacement)))") }
        return .replacement(socket: replacement, cloexec: cloexec == 1)
    }

    /// Puts `replacement` in the place of the agent's `socketFD` (ADDFD with SETFD: whatever
    /// the fd number holds by now is closed, never used). Returns 0 or -errno.
    static func install(_ call: TrappedCall, replacement: Int32, cloexec: Bool, socketFD: Int32) -> Int32 {
        let n = call.notification
        guard call.core.listener.isValid(n.id) else { return -ESRCH }
        let installed = call.core.listener.inject(n.id, fd: replacement, cloexec: cloexec, targetFD: socketFD, send: false)
        return installed < 0 ? installed : 0
    }

    /// Answers a call whose DNS couldn't be captured: never a fallback to the real resolver.
    static func refuseUncapturable(_ call: TrappedCall, _ what: String, target: String) {
        call.deny(Refusal(EACCES, "DNS that the session's forwarder can't take is refused: \(what)"), action: .netEgress,
                  target: target)
    }

    /// connect to port 53: a namespace socket of the same kind is connected to the same address
    /// (there it reaches the forwarder at once, UDP or TCP), and only then put in the agent's
    /// place; a connect that fails leaves the agent's socket as it was.
    static func connect(_ call: TrappedCall, socketFD: Int32, address: SocketAddress, capture: DNSCapture) {
        let n = call.notification, core = call.core
        switch prepare(call, socketFD: socketFD, capture: capture, connectingTo: address) {
        case .kernelError(let errno):
            guard core.listener.isValid(n.id) else { return }
            core.listener.fail(n.id, errno: errno)
        case .uncapturable(let what):
            guard core.listener.isValid(n.id) else { return }
            refuseUncapturable(call, what, target: address.target)
        case .replacement(let socket, let cloexec):
            defer { agentgate_close(socket) }
            let result = address.inCaptureNamespace.withSockaddr { agentgate_connect(socket, $0, $1) }
            var errno: Int32? = result < 0 ? -result : nil
            if result == 0 || result == -EINPROGRESS {
                let installed = install(call, replacement: socket, cloexec: cloexec, socketFD: socketFD)
                if installed < 0 {
                    guard installed != -ESRCH else { return }
                    call.deny(Refusal(EACCES, "DNS capture failed (\(Errno(rawValue: -installed))): the query can't be supervised"),
                              action: .netEgress, target: address.target)
                    return
                }
                var type: Int32 = 0
                var length = socklen_t(4)
                getsockopt(socket, SOL_SOCKET, SO_TYPE, &type, &length)
                capture.noteOrigin(socket: socket, type: type, process: call.process)
            } else {
                guard core.listener.isValid(n.id) else { return }
                errno = -result
            }
            if let errno { core.listener.fail(n.id, errno: errno) } else { core.listener.succeed(n.id, value: 0) }
            call.record(DecisionRecorder.Entry(syscall: call.syscall, action: .netEgress, target: address.target,
                                               decision: .allow, reason: capturedReason, errno: errno))
        }
    }

    /// Name services that resolve without DNS: nscd, and systemd-resolved's varlink socket (used
    /// by nss-resolve). Refused as if absent (ENOENT), so glibc falls back to DNS, which the
    /// session's forwarder sees and decides.
    static let resolverBypassSockets: Set<String> = [
        "unix:/run/nscd/socket", "unix:/var/run/nscd/socket",
        "unix:/run/systemd/resolve/io.systemd.Resolve", "unix:/run/systemd/resolve/io.systemd.Resolve.Monitor",
    ]
    static let resolverBypassReason =
        "name resolution outside DNS (nscd, systemd-resolved) is refused so resolvers ask DNS, which the session decides"

    /// Whether a socket address (as the agent gave it) is port 53 of an IPv4 or IPv6 address.
    static func isDNS(_ name: [UInt8]) -> Bool {
        guard let port = IPKey.port(socketAddress: name) else { return false }
        return port == 53
    }

    /// The name a connect's address was resolved from, the target as recorded and shown
    /// ("registry.example:443 (104.16.0.35)"), and what the event says about it.
    struct Named {
        var name: String? = nil
        var shown: String
        var note: String? = nil
    }

    static func attribution(of address: SocketAddress, core: SupervisorCore, tgid: pid_t) -> Named {
        guard let capture = core.dns, let key = address.ipKey, let port = address.port else { return Named(shown: address.target) }
        var host = Substring(address.target)
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        // Loopback is `localhost` to the policy already, named or not: its connects keep their
        // address, and aren't said to be unresolved.
        let isLoopback = (key.high == 0 && key.low == 1) || (key.high == 0 && key.low >> 24 == 0xffff_7f)
        guard let found = capture.names.attribution(of: key, tgid: tgid, includingHosts: !isLoopback) else {
            if isLoopback { return Named(shown: address.target) }
            return Named(shown: address.target, note: "\(host) was not resolved by the agent: only address and network rules apply")
        }
        let note = found.source == .hosts ? "\(host) is \(found.name) in /etc/hosts" : "resolved by the agent from \(found.name)"
        return Named(name: found.name, shown: "\(found.name):\(port) (\(host))", note: note)
    }
}
