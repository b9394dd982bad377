import CSupport
import Glibc
import SystemPackage
import Synchronization

/// Why the agent's DNS can't be captured in this session (no network namespace to be had).
struct DNSCaptureUnavailable: Error, Sendable {
    let errno: Errno
    let what: String

    var message: String { "\(what): \(errno)" }
}

/// The session's DNS capture: the namespace helper (dns.c) and what the forwarder needs to know
/// about the sockets it swapped in.
///
/// A connect, sendto or sendmsg of the agent's to port 53 of any address swaps the agent's
/// socket (same fd number, same kind, same flags) for one made in the capture namespace and
/// connected (or sent) there to the same address: the agent talks to the resolver it chose, as
/// far as any syscall shows, and every query reaches `DNSForwarder`.
final class DNSCapture: Sendable {
    private let control: Mutex<Int32>
    /// UDP v4, UDP v6, TCP v4, TCP v6 in the namespace; -1 where the family is missing.
    let listeners: [Int32]
    let names = ResolvedNames()
    /// The agent process behind each swapped-in socket, by its local port in the namespace.
    private let origins = Mutex<[UInt32: ProcessFacts]>([:])
    static let originCapacity = 4096

    /// The namespace's SO_NETNS_COOKIE (Linux 5.14), to know its sockets again; nil without it.
    private let namespaceCookie: UInt64?

    private init(control: Int32, listeners: [Int32]) {
        self.control = Mutex(control)
        self.listeners = listeners
        namespaceCookie = listeners.first { $0 >= 0 }.flatMap(Self.namespaceCookie)
    }

    static func namespaceCookie(_ socket: Int32) -> UInt64? {
        var cookie: UInt64 = 0
        var length = socklen_t(8)
        return getsockopt(socket, SOL_SOCKET, 71 /* SO_NETNS_COOKIE */, &cookie, &length) == 0 ? cookie : nil
    }

    /// Whether `socket` was made in the capture namespace (a DNS socket swapped in earlier).
    func isCaptured(_ socket: Int32) -> Bool {
        guard let namespaceCookie else { return false }
        return Self.namespaceCookie(socket) == namespaceCookie
    }

    /// Binds an unbound datagram socket to port 0 of the wildcard address, so the port its
    /// queries come from is known before it sends.
    func bindAnyPortIfUnbound(_ socket: Int32, domain: Int32) {
        guard Self.localPort(socket) == 0 else { return }
        if domain == AF_INET6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
    }

    /// Makes the namespace and its listeners.
    static func start() -> Result<DNSCapture, DNSCaptureUnavailable> {
        var control: Int32 = -1
        var stage: Int32 = 0
        var listeners: (Int32, Int32, Int32, Int32) = (-1, -1, -1, -1)
        let rc = withUnsafeMutableBytes(of: &listeners) { raw in
            agentgate_dns_namespace_start(&control, raw.baseAddress!.assumingMemoryBound(to: Int32.self), &stage)
        }
        guard rc == 0 else {
            let what = switch stage {
            case 1: "no network namespace of its own (unshare(CLONE_NEWUSER|CLONE_NEWNET))"
            case 2: "loopback could not be brought up in its network namespace"
            case 3: "its network namespace could not route every address locally"
            case 4: "could not listen on port 53 in its network namespace"
            default: "the DNS capture helper failed"
            }
            return .failure(DNSCaptureUnavailable(errno: Errno(rawValue: -rc), what: what))
        }
        return .success(DNSCapture(control: control, listeners: [listeners.0, listeners.1, listeners.2, listeners.3]))
    }

    /// A fresh socket of this kind in the capture namespace (close-on-exec), or -errno.
    func makeSocket(domain: Int32, type: Int32, protocol: Int32) -> Int32 {
        control.withLock { agentgate_dns_namespace_socket($0, domain, type, `protocol`) }
    }

    func noteOrigin(socket: Int32, type: Int32, process: ProcessFacts) {
        guard let port = Self.localPort(socket) else { return }
        let key = UInt32(type == Int32(SOCK_STREAM.rawValue) ? 1 : 0) << 16 | UInt32(port)
        origins.withLock { origins in
            if origins.count >= Self.originCapacity { origins.removeAll(keepingCapacity: true) }
            origins[key] = process
        }
    }

    /// The process a query came from, by its source port in the namespace.
    func origin(port: UInt16, stream: Bool) -> ProcessFacts? {
        let key = UInt32(stream ? 1 : 0) << 16 | UInt32(port)
        return origins.withLock { $0[key] }
    }

    static func localPort(_ socket: Int32) -> UInt16? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: &storage) { UInt16($0[2]) << 8 | UInt16($0[3]) }
    }

    /// Whether a connect or send to `address` (the agent's copy) is DNS the session captures:
    /// port 53 of an IPv4 or IPv6 address.
    static func isDNS(_ address: SocketAddress) -> Bool {
        (address.family == AF_INET || address.family == AF_INET6) && address.port == 53
    }

    /// What the swap needs to know about the agent's socket.
    struct SocketKind {
        let domain: Int32
        let type: Int32
        let `protocol`: Int32
        let statusFlags: Int32
        /// Its local address when it is bound to a port.
        let bound: [UInt8]?
    }

    /// The kind of the agent's socket (the supervisor's copy), when it is one the capture takes:
    /// a UDP or TCP socket, not listening. nil for anything else (a raw socket, a listener).
    static func kind(of socket: Int32) -> SocketKind? {
        func option(_ level: Int32, _ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(socket, level, name, &value, &length) == 0 ? value : nil
        }
        guard let domain = option(SOL_SOCKET, SO_DOMAIN), domain == AF_INET || domain == AF_INET6,
              let type = option(SOL_SOCKET, SO_TYPE),
              type == Int32(SOCK_DGRAM.rawValue) || type == Int32(SOCK_STREAM.rawValue),
              let proto = option(SOL_SOCKET, SO_PROTOCOL),
              option(SOL_SOCKET, SO_ACCEPTCONN) == 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        } == 0
        var bound: [UInt8]? = nil
        if named {
            let bytes = withUnsafeBytes(of: &storage) { Array($0.prefix(Int(length))) }
            if let port = IPKey.port(socketAddress: bytes), port != 0 { bound = bytes }
        }
        return SocketKind(domain: domain, type: type, protocol: proto, statusFlags: agentgate_get_status_flags(socket),
                          bound: bound)
    }

    /// The socket to put in the agent's place: made in the namespace, of the same kind, with
    /// the same status flags, IPV6_V6ONLY and timeouts, bound to the same port when the agent's
    /// was. Returns the fd or -errno.
    func replacement(for agentSocket: Int32, kind: SocketKind) -> Int32 {
        let socket = makeSocket(domain: kind.domain, type: kind.type, protocol: kind.protocol)
        guard socket >= 0 else { return socket }
        func copy(_ level: Int32, _ name: Int32, size: Int) {
            var buffer = [UInt8](repeating: 0, count: size)
            var length = socklen_t(size)
            guard getsockopt(agentSocket, level, name, &buffer, &length) == 0 else { return }
            setsockopt(socket, level, name, buffer, length)
        }
        if kind.domain == AF_INET6 { copy(Int32(IPPROTO_IPV6), IPV6_V6ONLY, size: 4) }
        copy(SOL_SOCKET, SO_RCVTIMEO, size: MemoryLayout<timeval>.size)
        copy(SOL_SOCKET, SO_SNDTIMEO, size: MemoryLayout<timeval>.size)
        if kind.statusFlags >= 0 && kind.statusFlags & O_NONBLOCK != 0 {
            _ = fcntl(socket, F_SETFL, O_NONBLOCK)
        }
        if let bound = kind.bound {
            // Every address is local in the namespace: the same address and port bind there.
            let rc = bound.withUnsafeBytes { bind(socket, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
            if rc != 0 {
                let error = Glibc.errno
                agentgate_close(socket)
                return -error
            }
        }
        return socket
    }
}

extension SocketAddress {
    /// The port of an AF_INET or AF_INET6 address.
    var port: UInt16? { IPKey.port(socketAddress: bytes) }

    /// The address part, as the key names are kept by.
    var ipKey: IPKey? { IPKey(socketAddress: bytes) }
}
