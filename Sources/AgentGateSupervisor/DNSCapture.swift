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
    /// Device and inode of the name services' sockets (`DNSSwap.resolverBypassSockets`) that
    /// exist at start: a hard link to one is the same socket under another name.
    private let resolverSockets: [(UInt64, UInt64)]

    private init(control: Int32, listeners: [Int32]) {
        self.control = Mutex(control)
        self.listeners = listeners
        namespaceCookie = listeners.first { $0 >= 0 }.flatMap(Self.namespaceCookie)
        resolverSockets = DNSSwap.resolverBypassSockets.compactMap { target in
            var info = stat()
            guard stat(String(target.dropFirst(5)), &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
            return (UInt64(info.st_dev), UInt64(info.st_ino))
        }
    }

    /// Whether `pathFD` (the O_PATH fd of a resolved unix socket path) is one of the name
    /// services' sockets, under whatever name.
    func isResolverSocket(_ pathFD: Int32) -> Bool {
        guard pathFD >= 0, !resolverSockets.isEmpty else { return false }
        var info = stat()
        guard fstat(pathFD, &info) == 0 else { return false }
        return resolverSockets.contains { $0.0 == UInt64(info.st_dev) && $0.1 == UInt64(info.st_ino) }
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
            // Full: about half goes (ports are reused; an old entry is likely stale anyway).
            if origins.count >= Self.originCapacity { origins = origins.filter { _ in Bool.random() } }
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

    /// Why the capture doesn't take a socket.
    enum KindFailure: Error {
        /// The kernel's own answer to the call (ENOTSOCK; EISCONN for a connected or listening stream).
        case kernel(Int32)
        /// A socket the forwarder doesn't serve (raw, SCTP, another family).
        case notServed(String)
    }

    /// The kind of the agent's socket (the supervisor's copy), when it is one the capture takes:
    /// a UDP or TCP socket over IPv4 or IPv6; a stream neither connected nor listening.
    static func kind(of socket: Int32) -> Result<SocketKind, KindFailure> {
        func option(_ level: Int32, _ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(socket, level, name, &value, &length) == 0 ? value : nil
        }
        guard let domain = option(SOL_SOCKET, SO_DOMAIN) else { return .failure(.kernel(errno == ENOTSOCK ? ENOTSOCK : EBADF)) }
        guard domain == AF_INET || domain == AF_INET6 else { return .failure(.notServed("a socket of family \(domain)")) }
        guard let type = option(SOL_SOCKET, SO_TYPE), let proto = option(SOL_SOCKET, SO_PROTOCOL),
              type == Int32(SOCK_DGRAM.rawValue) && (proto == 0 || proto == Int32(IPPROTO_UDP))
                || type == Int32(SOCK_STREAM.rawValue) && (proto == 0 || proto == Int32(IPPROTO_TCP)) else {
            return .failure(.notServed("a socket neither UDP nor TCP"))
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        if type == Int32(SOCK_STREAM.rawValue) {
            let connected = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket, $0, &length) }
            } == 0
            if connected || option(SOL_SOCKET, SO_ACCEPTCONN) == 1 { return .failure(.kernel(EISCONN)) }
            length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        }
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        } == 0
        var bound: [UInt8]? = nil
        if named {
            let bytes = withUnsafeBytes(of: &storage) { Array($0.prefix(Int(length))) }
            if let port = IPKey.port(socketAddress: bytes), port != 0 { bound = bytes }
        }
        return .success(SocketKind(domain: domain, type: type, protocol: proto, statusFlags: agentgate_get_status_flags(socket),
                                   bound: bound))
    }

    /// The socket to put in the agent's place: made in the namespace, of the same kind, with
    /// the same status flags, IPV6_V6ONLY and timeouts, bound to the same port when the agent's
    /// was. Returns the fd or -errno.
    func replacement(for agentSocket: Int32, kind: SocketKind, connectingTo destination: SocketAddress? = nil) -> Int32 {
        let socket = makeSocket(domain: kind.domain, type: kind.type, protocol: kind.protocol)
        guard socket >= 0 else { return socket }
        func copy(_ level: Int32, _ name: Int32, size: Int) {
            var buffer = [UInt8](repeating: 0, count: size)
            var length = socklen_t(size)
            guard getsockopt(agentSocket, level, name, &buffer, &length) == 0 else { return }
            setsockopt(socket, level, name, buffer, length)
        }
        if kind.domain == AF_INET6 {
            copy(Int32(IPPROTO_IPV6), IPV6_V6ONLY, size: 4)
            copy(Int32(IPPROTO_IPV6), 25 /* IPV6_RECVERR */, size: 4)
        }
        copy(Int32(IPPROTO_IP), 11 /* IP_RECVERR */, size: 4)
        copy(SOL_SOCKET, SO_RCVTIMEO, size: MemoryLayout<timeval>.size)
        copy(SOL_SOCKET, SO_SNDTIMEO, size: MemoryLayout<timeval>.size)
        if kind.statusFlags >= 0 && kind.statusFlags & O_NONBLOCK != 0 {
            _ = fcntl(socket, F_SETFL, O_NONBLOCK)
        }
        // Bound where the host would bind it for this destination, so getsockname tells what
        // it tells bare (the "which address do I have" idiom: connect UDP to 8.8.8.8:53).
        var bound = kind.bound
        if bound == nil, let destination {
            switch Self.hostSourceAddress(domain: kind.domain, to: destination) {
            case .success(let address): bound = address
            case .failure(let errno):
                // The host can't reach it (ENETUNREACH…): the kernel's answer to the agent.
                agentgate_close(socket)
                return -errno.rawValue
            }
        }
        if let bound {
            // Any address is local in the namespace, but IPv6 binds only to configured ones
            // unless freed.
            var on: Int32 = 1
            if kind.domain == AF_INET6 { setsockopt(socket, Int32(IPPROTO_IPV6), Int32(AGENTGATE_IPV6_FREEBIND), &on, 4) }
            else { setsockopt(socket, Int32(IPPROTO_IP), 15 /* IP_FREEBIND */, &on, 4) }
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

extension DNSCapture {
    /// The local address (port 0) the host's routing picks for reaching `destination`: a UDP
    /// socket connected there says, without sending anything.
    /// Fails with the errno the kernel gives a connect there (ENETUNREACH with no route).
    static func hostSourceAddress(domain: Int32, to destination: SocketAddress) -> Result<[UInt8], Errno> {
        let probe = socket(domain, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return .failure(Errno(rawValue: errno)) }
        defer { agentgate_close(probe) }
        guard destination.withSockaddr({ Glibc.connect(probe, $0.assumingMemoryBound(to: sockaddr.self), $1) }) == 0 else {
            return .failure(Errno(rawValue: errno))
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        guard withUnsafeMutablePointer(to: &storage, {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) }
        }) == 0 else { return .failure(Errno(rawValue: errno)) }
        var bytes = withUnsafeBytes(of: &storage) { Array($0.prefix(Int(length))) }
        guard bytes.count >= 4 else { return .failure(.invalidArgument) }
        bytes[2] = 0; bytes[3] = 0
        if domain == AF_INET6 && bytes.count >= 28 { for i in 24..<28 { bytes[i] = 0 } } // no scope in the namespace
        return .success(bytes)
    }
}

extension SocketAddress {
    /// The address as the capture namespace reaches it: a link-local IPv6 resolver's scope
    /// (fe80::1%eth0) names an interface the namespace lacks; there every address is on
    /// loopback, interface 1.
    var inCaptureNamespace: SocketAddress {
        guard family == AF_INET6, bytes.count >= 28, bytes[24..<28].contains(where: { $0 != 0 }) else { return self }
        var copy = self
        copy.setScope(1)
        return copy
    }

    mutating func setScope(_ scope: UInt32) {
        withUnsafeBytes(of: scope) { raw in for i in 0..<4 { bytes[24 + i] = raw[i] } }
    }

    /// The port of an AF_INET or AF_INET6 address.
    var port: UInt16? { IPKey.port(socketAddress: bytes) }

    /// The address part, as the key names are kept by.
    var ipKey: IPKey? { IPKey(socketAddress: bytes) }
}
