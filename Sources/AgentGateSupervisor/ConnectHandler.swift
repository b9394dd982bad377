import AgentGatePolicy
import CSupport
import Glibc

/// connect: performed by the supervisor on the agent's own socket (taken with pidfd_getfd),
/// with the supervisor's copy of the address, so the address decided on is the one used.
enum ConnectHandler {
    static func handle(_ call: TrappedCall, scratch: ThreadScratch) {
        let n = call.notification, core = call.core, process = call.process
        let socketFD = n.intArg(0)
        let length = Int64(Int32(truncatingIfNeeded: n.arg(2)))
        guard length >= 0, length <= Int64(AGENTGATE_SOCKADDR_CAPACITY) else {
            guard core.listener.isValid(n.id) else { return }
            call.deny(Refusal(EINVAL, "address length out of range"), action: .netEgress, target: "?")
            return
        }
        let rc = agentgate_read_memory(n.tid, n.arg(1), scratch.sockaddr, Int(length))
        let cwdFD = rc == 0 ? SocketAddress.cwdIfRelativeUnix(scratch.sockaddr, length: Int(length), tid: n.tid) : -1
        defer { agentgate_close(cwdFD) }
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else {
            call.deny(Refusal(-rc, "address unreadable"), action: .netEgress, target: "?")
            return
        }
        var address = SocketAddress(copying: scratch.sockaddr, length: Int(length))
        // An IP address shorter than its family's sockaddr (or no family at all) reaches nobody:
        // the kernel answers EINVAL before anything is looked up, so it gets that answer, not a
        // decision on the address its first bytes seem to name.
        let reachesNothing = address.family == -1 || (address.family == AF_INET && length < 16)
            || (address.family == AF_INET6 && length < 24)
        // A unix address is checked against the socket it will be connected on: taken once here
        // and used for the connect itself, so another thread can't swap the fd number between
        // the check and the connect (found by a review on 2026-12-07).
        var socketIsUnix = true
        var taken: Int32 = -1
        defer { if taken >= 0 { agentgate_close(taken) } }
        if address.family == AF_UNIX {
            switch unixAddressCheck(call, socketFD: socketFD, length: Int(length)) {
            case .fail(let errno): core.listener.fail(n.id, errno: errno); return
            case .otherFamily(let socket): socketIsUnix = false; taken = socket
            case .proceed(let socket): taken = socket
            }
        }
        // A unix path is resolved like an open (symlinks and all) and connected through the
        // resolved inode, so what is decided on is what is reached.
        // Resolved, and connected, with the agent's rights.
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            call.deny(Refusal(EACCES, refusal), action: .netEgress, target: address.target)
            return
        }
        // (A socket of another family is connected with the address as given: the kernel then
        // rejects the family, with nothing looked up.)
        let unixPathFD = socketIsUnix
            ? resolveUnixPath(&address, cwdFD: cwdFD, scratch: scratch, core: core, tid: n.tid, tgid: process.tgid) : -1 // closed by connect()
        let target = address.target
        if address.isMissingUnixPath {
            // Nothing there to reach: the kernel's own answer, with no decision to make or record.
            core.listener.fail(n.id, errno: address.resolveError)
            return
        }
        if reachesNothing {
            let verdict = Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision)
            connect(call, socketFD: socketFD, address: address, pathFD: unixPathFD, verdict: verdict, recorded: false,
                    taken: handOver(&taken))
            return
        }
        if core.refusesDNS && DNSCapture.isDNS(address) {
            agentgate_close(unixPathFD)
            call.deny(Refusal(EACCES, DNSSwap.noCaptureReason), action: .netEgress, target: target)
            return
        }
        if let capture = core.dns {
            // DNS goes to the session's forwarder, which decides each query.
            if DNSCapture.isDNS(address) {
                agentgate_close(unixPathFD)
                DNSSwap.connect(call, socketFD: socketFD, address: address, capture: capture)
                return
            }
            if DNSSwap.resolverBypassSockets.contains(target) || capture.isResolverSocket(unixPathFD) {
                agentgate_close(unixPathFD)
                call.deny(Refusal(ENOENT, DNSSwap.resolverBypassReason), action: .netEgress, target: target)
                return
            }
        }
        if unixPathFD >= 0, let hookSocket = core.hookSocket, ImageIdentity(fd: unixPathFD) == hookSocket {
            // The session's own hook socket, which `agentgate hook` reaches by name when the agent
            // didn't pass the inherited one on: plumbing of the supervisor's, with no policy
            // decision (the hook's request is decided and recorded when it comes).
            connect(call, socketFD: socketFD, address: address, pathFD: unixPathFD,
                    verdict: Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision), recorded: false,
                    taken: handOver(&taken))
            return
        }
        if address.family != AF_UNSPEC {
            let named = DNSSwap.attribution(of: address, core: core, tgid: process.tgid)
            let verdict = call.egressVerdict(target, n, resolvedName: named.name, shownAs: named.shown)
            address.target = named.shown
            guard verdict.letsCallProceed else {
                agentgate_close(unixPathFD)
                let errno = verdict.errno(or: EACCES)
                call.finish(verdict: verdict, action: .netEgress, target: named.shown, errno: errno, note: named.note)
                return
            }
            if address.resolveError != 0 {
                // The socket path doesn't resolve: the kernel would fail the same way.
                agentgate_close(unixPathFD)
                call.finish(verdict: verdict, action: .netEgress, target: target, errno: address.resolveError)
                return
            }
            connect(call, socketFD: socketFD, address: address, pathFD: unixPathFD, verdict: verdict, note: named.note,
                    taken: handOver(&taken))
        } else {
            // AF_UNSPEC dissolves an association; it reaches nobody.
            let verdict = Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision)
            connect(call, socketFD: socketFD, address: address, pathFD: unixPathFD, verdict: verdict, taken: handOver(&taken))
        }
    }

    /// The socket taken for the check, given to `connect`, which then owns it (-1 left here).
    private static func handOver(_ taken: inout Int32) -> Int32 {
        defer { taken = -1 }
        return taken
    }

    /// `proceed` and `otherFamily` carry the agent's socket, taken for the check: the connect
    /// must use that very socket.
    enum UnixAddressCheck { case proceed(Int32), fail(Int32), otherFamily(Int32) }

    /// What a unix address meets before any lookup: a unix socket rejects a length past
    /// `sockaddr_un` (unix_validate_addr: EINVAL); a socket of another family isn't looked up
    /// in the file system at all, and its own connect rejects the family (`otherFamily`: the
    /// path is then neither resolved nor used, as the kernel neither resolves nor uses it).
    private static func unixAddressCheck(_ call: TrappedCall, socketFD: Int32, length: Int) -> UnixAddressCheck {
        let socket = OwnedFD.copy(of: socketFD, from: call.notification.tid)
        guard socket.isValid else { return .fail(socket.raw == -ESRCH ? ESRCH : (socket.raw == -EBADF ? EBADF : -socket.raw)) }
        var domain: Int32 = 0
        var optionLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(socket.raw, SOL_SOCKET, SO_DOMAIN, &domain, &optionLength) == 0 else { return .fail(errno) }
        if domain != AF_UNIX { return .otherFamily(socket.release()) }
        if length > MemoryLayout<sockaddr_un>.size { return .fail(EINVAL) }
        return .proceed(socket.release())
    }

    /// For a pathname unix address: resolves the path from the agent's cwd, names the target by
    /// the resolved path and points the address at the resolved inode through /proc/self/fd.
    /// Returns the O_PATH fd to close after use, or -1.
    static func resolveUnixPath(_ address: inout SocketAddress, cwdFD: Int32, scratch: ThreadScratch,
                                core: SupervisorCore, tid: pid_t, tgid: pid_t) -> Int32 {
        guard let path = address.unixPathBytes else { return -1 }
        let prepared = scratch.prepared
        let base = cwdFD >= 0 && !path.isAbsolute ? cwdFD : AT_FDCWD
        var rc: Int32 = 0
        var name = ""
        switch core.prepare(prepared, base: base, path: path, flags: 0, resolve: 0, tid: tid, tgid: tgid) {
        case .prepared(let resolved): name = resolved
        case .failed(let errno): rc = -errno
        case .refused: rc = -EACCES
        }
        defer { agentgate_open_release(prepared) }
        guard rc == 0 else {
            let baseName = cwdFD >= 0 ? (ProcessTable.readLink("/proc/self/fd/\(cwdFD)") ?? "/") : "/"
            address.target = "unix:" + PathLexical.absolute(path.text, base: baseName)
            address.resolveError = -rc
            return -1
        }
        let fd = prepared.pointee.object_fd
        prepared.pointee.object_fd = -1
        address.target = "unix:" + name
        address.viaDescriptor(fd)
        return fd
    }

    /// Connects the agent's socket; closes `pathFD` (the resolved unix socket inode) when done.
    /// `taken`: the agent's socket when the caller has already taken it (and checked it); owned
    /// from here on. Else it is taken here.
    private static func connect(_ call: TrappedCall, socketFD: Int32, address: SocketAddress, pathFD: Int32, verdict: Verdict,
                                note: String? = nil, recorded: Bool = true, taken: Int32 = -1) {
        let n = call.notification, core = call.core, process = call.process
        let socket = taken >= 0 ? taken : OwnedFD.copy(of: socketFD, from: n.tid).release()
        guard socket >= 0 else {
            agentgate_close(pathFD)
            let errno = socket == -ESRCH ? ESRCH : (socket == -EBADF ? EBADF : -socket)
            guard core.listener.isValid(n.id) else { return }
            call.finish(verdict: verdict, action: .netEgress, target: address.target, errno: errno)
            return
        }
        if let capture = core.dns, address.family == AF_INET || address.family == AF_INET6, capture.isCaptured(socket) {
            // A socket swapped in for DNS lives where every address is the forwarder's.
            agentgate_close(socket)
            agentgate_close(pathFD)
            call.deny(Refusal(ENETUNREACH, "this socket was used for DNS, which the session's forwarder answers; "
                              + "other traffic needs a socket of its own"), action: .netEgress, target: address.target)
            return
        }
        let statusFlags = agentgate_get_status_flags(socket)
        // Netlink checks the connecting process's capabilities (multicast groups): never the
        // supervisor's CAP_NET_ADMIN, which the agent's netlink sockets don't carry.
        let withheld = address.family == AF_NETLINK && core.holdsNetworkAdminCapabilities
            && !call.policy.allowedUnsupervised.contains(.netAdmin)
        let body: @Sendable () -> Void = {
            let result = withheld
                ? Int32(SupervisorCore.withoutCapabilities(SupervisorCore.networkAdminCapabilities) {
                    Int(address.withSockaddr { agentgate_connect(socket, $0, $1) })
                  })
                : address.withSockaddr { agentgate_connect(socket, $0, $1) }
            if result == 0 && address.family == AF_UNIX {
                // The server will see the supervisor as its peer: remember whom it connected for.
                var inode: UInt64 = 0
                if agentgate_socket_inode(socket, &inode) == 0 { core.unixPeers.record(inode: inode, tgid: process.tgid) }
            }
            agentgate_close(socket)
            agentgate_close(pathFD)
            if recorded {
                call.reply(Int(result), verdict: verdict, action: .netEgress, target: address.target, note: note)
            } else if result < 0 {
                core.listener.fail(n.id, errno: -result)
            } else {
                core.listener.succeed(n.id, value: Int64(result))
            }
        }
        if statusFlags >= 0 && statusFlags & O_NONBLOCK != 0 {
            body() // non-blocking: returns at once, EINPROGRESS included
        } else {
            // A blocking connect must not stall other notifications.
            if !core.blocking.run(n, interruptErrno: BlockingOperations.interruptErrno(socket: socket), body) {
                agentgate_close(socket)
                agentgate_close(pathFD)
                call.finish(verdict: verdict, action: .netEgress, target: address.target, errno: EAGAIN, note: note)
            }
        }
    }
}

/// A socket address copied out of the agent, with its audit name.
struct SocketAddress: Sendable {
    var bytes: [UInt8]
    let family: Int32
    var target: String
    var resolveError: Int32 = 0

    init(copying raw: UnsafeRawPointer, length: Int) {
        bytes = Array(UnsafeRawBufferPointer(start: raw, count: length))
        family = length >= 2 ? Int32(raw.load(as: UInt16.self)) : -1
        target = Self.name(bytes, family: family)
    }

    /// A pathname unix address for `name`, relative to the working directory.
    init(unixName name: [UInt8]) {
        bytes = withUnsafeBytes(of: UInt16(AF_UNIX)) { Array($0) } + name + [0]
        family = AF_UNIX
        target = Self.name(bytes, family: family)
    }

    /// A pathname unix address whose path doesn't resolve because a file or directory on it
    /// doesn't exist (ENOENT, ENOTDIR): the kernel fails a connect or send to it before any
    /// permission check, so it is answered that way with no decision, as mkdir of an existing
    /// name gets EEXIST (stat, which isn't supervised, tells the same).
    var isMissingUnixPath: Bool { resolveError == ENOENT || resolveError == ENOTDIR }

    /// The path of a pathname unix socket (not abstract), when there is one.
    var unixPath: String? { unixPathBytes?.text }

    /// The same, as the bytes the kernel will resolve.
    var unixPathBytes: RawPath? {
        guard family == AF_UNIX, bytes.count > 2, bytes[2] != 0 else { return nil }
        return RawPath(bytes: bytes[2...].prefix { $0 != 0 })
    }

    /// Points the address at an O_PATH fd of the resolved socket inode.
    mutating func viaDescriptor(_ fd: Int32) {
        let path = Array("/proc/self/fd/\(fd)".utf8) + [0]
        bytes = Array(bytes[0..<2]) + path
    }

    func withSockaddr<R>(_ body: (UnsafeRawPointer, UInt32) -> R) -> R {
        bytes.withUnsafeBytes { body($0.baseAddress!, UInt32($0.count)) }
    }

    /// For a relative unix path, an O_PATH fd of the agent's cwd; -1 otherwise.
    static func cwdIfRelativeUnix(_ raw: UnsafeRawPointer, length: Int, tid: pid_t) -> Int32 {
        guard length > 2, Int32(raw.load(as: UInt16.self)) == AF_UNIX else { return -1 }
        let first = raw.load(fromByteOffset: 2, as: UInt8.self)
        guard first != 0, first != UInt8(ascii: "/") else { return -1 }
        let fd = agentgate_openat(AT_FDCWD, "/proc/\(tid)/cwd", Int32(AGENTGATE_O_PATH) | O_DIRECTORY, 0)
        return fd
    }

    static func name(_ bytes: [UInt8], family: Int32) -> String {
        switch family {
        case AF_INET where bytes.count >= 8:
            let port = Int(bytes[2]) << 8 | Int(bytes[3])
            // Connecting to 0.0.0.0 reaches this host's loopback: name it as the kernel uses it.
            if bytes[4..<8].allSatisfy({ $0 == 0 }) { return "127.0.0.1:\(port)" }
            return "\(bytes[4]).\(bytes[5]).\(bytes[6]).\(bytes[7]):\(port)"
        case AF_INET6 where bytes.count >= 24:
            let port = Int(bytes[2]) << 8 | Int(bytes[3])
            var address = Array(bytes[8..<24])
            if address.allSatisfy({ $0 == 0 }) { address[15] = 1 } // :: is ::1
            if address[0..<10].allSatisfy({ $0 == 0 }) && address[10] == 0xff && address[11] == 0xff
                && address[12..<16].allSatisfy({ $0 == 0 }) {
                address[12] = 127; address[15] = 1 // ::ffff:0.0.0.0 is ::ffff:127.0.0.1
            }
            return "[\(ipv6(address))]:\(port)"
        case AF_UNIX:
            guard bytes.count > 2 else { return "unix:" } // unnamed
            if bytes[2] == 0 { return "unix:@" + escaped(bytes[3...]) } // abstract: every byte counts
            return "unix:" + String(decoding: bytes[2...].prefix { $0 != 0 }, as: UTF8.self)
        case AF_VSOCK where bytes.count >= 16:
            // sockaddr_vm: family, reserved, port, cid (host order). CID 2 is the host.
            let port = bytes[4..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            let cid = bytes[8..<12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            return "vsock:\(cid):\(port)"
        case AF_UNSPEC:
            return "unspec"
        default:
            return "family:\(family)"
        }
    }

    /// RFC 5952 text for an IPv6 address (inet_ntop), e.g. 2001:db8::1 or ::ffff:1.2.3.4.
    static func ipv6(_ raw: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        return raw.withUnsafeBytes { address in
            guard inet_ntop(AF_INET6, address.baseAddress, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Printable bytes as they are, the rest as \xNN.
    static func escaped(_ bytes: ArraySlice<UInt8>) -> String {
        var text = ""
        for byte in bytes {
            if byte >= 0x21 && byte < 0x7f && byte != UInt8(ascii: "\\") { text.unicodeScalars.append(Unicode.Scalar(byte)) }
            else { text += "\\x" + String(byte, radix: 16).leftPadded(2) }
        }
        return text
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

/// For the fuzzer (Sources/agentgate-fuzz): what a socket address copied out of an agent is
/// named in decisions and the audit, and the unix path the kernel would resolve.
package func decodeSocketAddressForFuzzing(_ bytes: UnsafeRawBufferPointer) -> (target: String, unixPath: String?) {
    let address = SocketAddress(copying: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, length: bytes.count)
    return (address.target, address.unixPath)
}
