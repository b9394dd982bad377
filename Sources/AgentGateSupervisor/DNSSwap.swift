import AgentGatePolicy
import CSupport
import Glibc
import SystemPackage

/// The agent's DNS sockets, swapped for sockets of the capture namespace (see `DNSCapture`).
enum DNSSwap {
    /// What a swap did.
    enum Outcome {
        /// Not a socket the capture takes (a raw socket, a listener): decide the call as usual.
        case notCaptured
        /// The agent's fd now holds `socket` (the supervisor's copy, to close).
        case swapped(socket: Int32)
        /// The call has been answered (the swap failed, fail closed).
        case answered
    }

    static let capturedReason = "DNS: every query is decided by the session's forwarder"

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

    /// Puts a namespace socket of the same kind in the place of the agent's `socketFD`, for a
    /// connect or send to port 53. The agent's own socket is closed by the swap; nothing was ever
    /// sent through it.
    static func swap(_ call: TrappedCall, socketFD: Int32, capture: DNSCapture, target: String) -> Outcome {
        let n = call.notification, core = call.core
        let pidfd = agentgate_pidfd_open(n.tid)
        let agentSocket = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, socketFD) : pidfd
        agentgate_close(pidfd)
        guard agentSocket >= 0 else { return .notCaptured } // the usual path gives the kernel's error
        defer { agentgate_close(agentSocket) }
        guard let kind = DNSCapture.kind(of: agentSocket) else { return .notCaptured }
        let cloexec = agentgate_fd_cloexec(n.tid, socketFD)
        let replacement = cloexec >= 0 ? capture.replacement(for: agentSocket, kind: kind) : cloexec
        guard replacement >= 0 else {
            guard core.listener.isValid(n.id) else { return .answered }
            call.deny(Refusal(EACCES, "DNS capture failed (\(Errno(rawValue: -replacement))): the query can't be supervised"),
                      action: .netEgress, target: target)
            return .answered
        }
        guard core.listener.isValid(n.id) else { agentgate_close(replacement); return .answered }
        let installed = core.listener.inject(n.id, fd: replacement, cloexec: cloexec == 1, targetFD: socketFD, send: false)
        guard installed >= 0 else {
            agentgate_close(replacement)
            call.deny(Refusal(EACCES, "DNS capture failed (\(Errno(rawValue: -installed))): the query can't be supervised"),
                      action: .netEgress, target: target)
            return .answered
        }
        return .swapped(socket: replacement)
    }

    /// connect to port 53: swap, then connect the new socket to the same address (in the
    /// namespace that reaches the forwarder at once, UDP or TCP). Returns false when the
    /// socket isn't one the capture takes.
    static func connect(_ call: TrappedCall, socketFD: Int32, address: SocketAddress, capture: DNSCapture) -> Bool {
        let n = call.notification, core = call.core
        switch swap(call, socketFD: socketFD, capture: capture, target: address.target) {
        case .notCaptured: return false
        case .answered: return true
        case .swapped(let socket):
            defer { agentgate_close(socket) }
            let result = address.withSockaddr { agentgate_connect(socket, $0, $1) }
            if result == 0 || result == -EINPROGRESS {
                var type: Int32 = 0
                var length = socklen_t(4)
                getsockopt(socket, SOL_SOCKET, SO_TYPE, &type, &length)
                capture.noteOrigin(socket: socket, type: type, process: call.process)
            }
            let errno: Int32? = result < 0 ? -result : nil
            if let errno { core.listener.fail(n.id, errno: errno) } else { core.listener.succeed(n.id, value: 0) }
            call.record(DecisionRecorder.Entry(syscall: call.syscall, action: .netEgress, target: address.target,
                                               decision: .allow, reason: capturedReason, errno: errno))
            return true
        }
    }
}
