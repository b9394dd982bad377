import AgentGatePolicy
import CSupport
import Glibc
import SystemPackage
import Synchronization

/// sendto with a destination, sendmsg and sendmmsg: every message is decided on the
/// supervisor's copy of its address and sent by the supervisor, on its own copy of the agent's
/// socket (pidfd_getfd), from its copy of the payload. Nothing continues in the kernel: the fd
/// number could be dup2()ed to another socket between a check and the kernel's own lookup.
/// SCM_RIGHTS fds are translated into the supervisor's copies; other control messages pass as
/// they are.
enum SendHandler {
    static let maxPayload = 1 << 20
    static let maxMessages = 1024
    static let messageFastOpen: UInt64 = 0x2000_0000

    /// Agent memory not copied yet: a stream write larger than one copy.
    struct Span: Sendable {
        let address: UInt64
        let length: Int
    }

    /// One outgoing message, copied out of the agent.
    struct Message: Sendable {
        var payload: [UInt8]
        var name: [UInt8]?
        var control: [UInt8] = []
        /// On a stream: what follows `payload`, sent once it is (see `sendRest`).
        var rest: [Span] = []
    }

    /// The kernel's MAX_RW_COUNT: no single write moves more.
    static let maxReadWrite = 0x7fff_f000

    /// A message with its decided destination.
    struct Decided: Sendable {
        var message: Message
        var address: SocketAddress?
        var pathFD: Int32
        var target: String
        var verdict: Verdict
    }

    /// An address an IP socket refuses for its length: IPv4 needs a whole sockaddr_in; IPv6
    /// needs a family, and a whole sockaddr_in6 (RFC 2133's 24 bytes) or sockaddr_in for it.
    static func isTooShortForIP(_ name: [UInt8], domain: Int32) -> Bool {
        if domain == AF_INET { return name.count < 16 }
        guard name.count >= 2 else { return true }
        let family = Int32(UInt16(name[0]) | UInt16(name[1]) << 8)
        return (family == AF_INET6 && name.count < 24) || (family == AF_INET && name.count < 16)
    }

    static func handle(_ call: TrappedCall, family: SyscallFamily, scratch: ThreadScratch) {
        let n = call.notification, core = call.core
        let syscall = call.syscall, process = call.process
        let pidfd = agentgate_pidfd_open(n.tid)
        var socket = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, n.intArg(0)) : pidfd
        agentgate_close(pidfd)
        var socketType: Int32 = 0
        var socketDomain: Int32 = 0
        if socket >= 0 {
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_TYPE, &socketType, &length)
            length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_DOMAIN, &socketDomain, &length)
        }
        let isSendto: Bool
        if case .sendto = family { isSendto = true } else { isSendto = false }
        let isBatch: Bool
        if case .sendmmsg = family { isBatch = true } else { isBatch = false }
        let flags: UInt64 = isBatch || isSendto ? n.arg(3) : n.arg(2)
        let isStream = socketType == Int32(SOCK_STREAM.rawValue)
        // A unix stream refuses any destination (EISCONN when connected, EOPNOTSUPP when not)
        // before it sends a byte: the send is made with the name as it is, and the kernel
        // answers, with nothing to decide. Other streams ignore a destination unless
        // MSG_FASTOPEN asks for a connect, and so does a unix seqpacket socket.
        let refusesName = isStream && socketDomain == AF_UNIX
        let ignoresName = (isStream && socketDomain != AF_UNIX && flags & messageFastOpen == 0)
            || (socketDomain == AF_UNIX && socketType == Int32(SOCK_SEQPACKET.rawValue))
        func refuse(_ refusal: Refusal, target: String = "?") {
            agentgate_close(socket)
            guard core.listener.isValid(n.id) else { return }
            call.deny(refusal, action: .netEgress, target: target)
        }
        guard socket >= 0 else { refuse(Refusal(socket == -EBADF ? EBADF : -socket, "socket unavailable")); return }

        // Copy every message (address and payload) before the one ID_VALID check.
        var messages: [Message] = []
        switch copyMessages(n, isSendto: isSendto, isBatch: isBatch, isStream: isStream) {
        case .success(let copied):
            messages = copied.map { message in
                var m = message
                if ignoresName { m.name = nil }
                // IPv4 UDP sends to sin_addr:sin_port even when sin_family is AF_UNSPEC: decide
                // (and send) it as the AF_INET address it is. IPv6 treats it as no address.
                if let name = m.name, name.count >= 2, name[0] == 0, name[1] == 0 {
                    if socketDomain == AF_INET && name.count >= 16 { m.name![0] = UInt8(AF_INET) }
                    else if socketDomain == AF_INET6 { m.name = nil }
                }
                return m
            }
        case .failure(let failure): refuse(failure); return
        }
        if isBatch && messages.isEmpty {
            // sendmmsg of no messages sends nothing and answers 0, once the fd is a socket.
            agentgate_close(socket)
            guard core.listener.isValid(n.id) else { return }
            if socketType == 0 { core.listener.fail(n.id, errno: ENOTSOCK) } else { core.listener.succeed(n.id, value: 0) }
            return
        }
        if messages.contains(where: { $0.name?.isEmpty == true }) {
            // sendto with a non-NULL address of length 0: an IP datagram socket refuses it
            // (udp_sendmsg: EINVAL); unix and other sockets take it as no address.
            if !isStream && (socketDomain == AF_INET || socketDomain == AF_INET6) {
                agentgate_close(socket)
                guard core.listener.isValid(n.id) else { return }
                core.listener.fail(n.id, errno: EINVAL)
                return
            }
            for index in messages.indices where messages[index].name?.isEmpty == true { messages[index].name = nil }
        }
        if !refusesName && !ignoresName && (socketDomain == AF_INET || socketDomain == AF_INET6),
           let short = messages.firstIndex(where: { $0.name.map { Self.isTooShortForIP($0, domain: socketDomain) } ?? false }) {
            // An address shorter than its family's sockaddr reaches nobody: the kernel's EINVAL
            // (udp_sendmsg, udpv6_sendmsg, a fast-open connect), not a decision on what its
            // first bytes seem to name. A batch sends the messages before it, as the kernel does.
            if short == 0 {
                agentgate_close(socket)
                guard core.listener.isValid(n.id) else { return }
                core.listener.fail(n.id, errno: EINVAL)
                return
            }
            messages.removeSubrange(short...)
        }
        let needsCwd = !refusesName && messages.contains { $0.name.map { Self.isRelativeUnix($0) } ?? false }
        let cwdFD = needsCwd ? agentgate_openat(AT_FDCWD, "/proc/\(n.tid)/cwd", Int32(AGENTGATE_O_PATH) | O_DIRECTORY, 0) : -1
        defer { agentgate_close(cwdFD) }
        guard core.listener.isValid(n.id) else { agentgate_close(socket); return }
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal { refuse(Refusal(EACCES, refusal)); return }

        // DNS to port 53 goes to the session's forwarder, through a socket swapped in for the
        // agent's (see DNSSwap); such a socket carries nothing else.
        var carriesDNS = false
        let toDNS = refusesName || ignoresName ? 0 : messages.filter { $0.name.map(DNSSwap.isDNS) ?? false }.count
        if toDNS > 0 && (core.refusesDNS || isStream) {
            // Without a capture, DNS is refused; over TCP it must connect first (no Fast Open).
            refuse(Refusal(EACCES, core.refusesDNS ? DNSSwap.noCaptureReason
                                                  : "DNS over TCP Fast Open is refused: connect, then send"), target: "port 53")
            return
        }
        if let capture = core.dns, socketDomain == AF_INET || socketDomain == AF_INET6, !isStream {
            let named = messages.filter { $0.name != nil }.count
            carriesDNS = capture.isCaptured(socket)
            if toDNS > 0 && toDNS < messages.count || carriesDNS && toDNS < named {
                refuse(Refusal(EACCES, "DNS and other traffic on one socket: DNS must go on a socket of its own"),
                       target: "connected peer")
                return
            }
            if toDNS > 0 && !carriesDNS {
                switch DNSSwap.prepare(call, socketFD: n.intArg(0), capture: capture, connectingTo: nil) {
                case .kernelError(let errno): refuse(Refusal(errno, "socket unavailable"), target: "port 53"); return
                case .uncapturable(let what):
                    agentgate_close(socket)
                    guard core.listener.isValid(n.id) else { return }
                    DNSSwap.refuseUncapturable(call, what, target: "port 53")
                    return
                case .replacement(let replacement, let cloexec):
                    capture.bindAnyPortIfUnbound(replacement, domain: socketDomain)
                    let installed = DNSSwap.install(call, replacement: replacement, cloexec: cloexec, socketFD: n.intArg(0))
                    agentgate_close(socket)
                    socket = replacement
                    guard installed == 0 else {
                        refuse(Refusal(EACCES, "DNS capture failed (\(Errno(rawValue: -installed))): the query can't be supervised"),
                               target: "port 53")
                        return
                    }
                    capture.noteOrigin(socket: socket, type: socketType, process: process)
                    carriesDNS = true
                }
            }
        }

        // Decide each message; the batch stops at the first denied one, as the kernel stops at
        // the first failing one.
        var decided: [Decided] = []
        var firstDenied: (target: String, verdict: Verdict)? = nil
        for message in messages {
            var entry = Decided(message: message, address: nil, pathFD: -1, target: "connected peer",
                                verdict: Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision))
            if let name = message.name, refusesName {
                entry.address = name.withUnsafeBytes { SocketAddress(copying: $0.baseAddress!, length: name.count) }
            } else if let name = message.name {
                var address = name.withUnsafeBytes { SocketAddress(copying: $0.baseAddress!, length: name.count) }
                entry.pathFD = ConnectHandler.resolveUnixPath(&address, cwdFD: cwdFD, scratch: scratch, core: core,
                                                              tid: n.tid, tgid: process.tgid)
                entry.target = address.target
                if address.isMissingUnixPath {
                    // The kernel's answer, with no decision (see SocketAddress.isMissingUnixPath).
                    // In a batch, the messages before it are sent and counted, as the kernel does.
                    agentgate_close(entry.pathFD)
                    if !decided.isEmpty { break }
                    agentgate_close(socket)
                    core.listener.fail(n.id, errno: address.resolveError)
                    return
                }
                if carriesDNS {
                    entry.verdict = Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision)
                } else {
                    let named = DNSSwap.attribution(of: address, core: core, tgid: process.tgid)
                    entry.verdict = call.egressVerdict(address.target, n, resolvedName: named.name, shownAs: named.shown)
                    entry.target = named.shown
                }
                if entry.verdict.letsCallProceed && address.resolveError != 0 {
                    agentgate_close(entry.pathFD)
                    if !decided.isEmpty { break }
                    refuse(Refusal(address.resolveError, "socket path unresolved"), target: address.target)
                    return
                }
                entry.address = address
            }
            guard entry.verdict.letsCallProceed else {
                agentgate_close(entry.pathFD)
                firstDenied = (entry.target, entry.verdict)
                break
            }
            decided.append(entry)
        }
        if decided.isEmpty, let denied = firstDenied {
            agentgate_close(socket)
            let errno = denied.verdict.errno(or: EACCES)
            call.finish(verdict: denied.verdict, action: .netEgress, target: denied.target, errno: errno)
            return
        }
        // Bit 31 (MSG_CMSG_COMPAT) is refused by a native sendmsg, which the supervisor sends
        // with, but means nothing to the agent's sendto: dropped there, as the kernel ignores it.
        let agentFlags = isSendto ? Int32(truncatingIfNeeded: flags) & ~Int32(bitPattern: 0x8000_0000) : Int32(truncatingIfNeeded: flags)
        let sendFlags = agentFlags | Int32(MSG_NOSIGNAL)
        // The kernel raises SIGPIPE in a thread whose stream send fails with EPIPE, unless it
        // passed MSG_NOSIGNAL; the supervisor always passes it, and raises the signal itself.
        let raisesPipeSignal = isStream && flags & UInt64(MSG_NOSIGNAL) == 0
        let isUnixSocket = socketDomain == AF_UNIX
        let withheldCapabilities: [Int32] = socketDomain == AF_NETLINK && core.holdsNetworkAdminCapabilities
            && !call.policy.allowedUnsupervised.contains(.netAdmin) ? SupervisorCore.networkAdminCapabilities : []
        let batchAddress = n.arg(1)
        let batch = decided
        let sendingSocket = socket
        let body: @Sendable () -> Void = {
            var sentMessages = 0
            var lastResult = 0
            var lastErrno: Int32 = 0
            let pidfd = batch.contains { !$0.message.control.isEmpty } ? agentgate_pidfd_open(n.tid) : -1
            defer { agentgate_close(pidfd) }
            let sender = Sender(tid: n.tid, tgid: process.tgid, claimsAgentPid: isUnixSocket && core.callingThreadCanClaimAgentPids)
            for (index, entry) in batch.enumerated() {
                // SCM_RIGHTS: the agent's fds, copied just for this message and closed after it.
                // SCM_CREDENTIALS: checked against the agent's own credentials.
                var message = entry
                var rights: [Int32] = []
                if !entry.message.control.isEmpty || sender.claimsAgentPid {
                    switch Self.translateControl(entry.message.control, pidfd: pidfd, sender: sender) {
                    case .success(let (control, fds)):
                        message.message.control = control
                        rights = fds
                    case .failure(let failure):
                        agentgate_close(entry.pathFD)
                        lastErrno = failure.code
                        break
                    }
                    if lastErrno != 0 { break }
                }
                // Netlink requests are checked against the sender's capabilities: sent by the
                // supervisor, they must not carry the CAP_NET_ADMIN or audit capabilities it
                // withholds from the agent's netlink sockets.
                let first = withheldCapabilities.isEmpty
                    ? Self.send(socket: sendingSocket, entry: message, flags: sendFlags)
                    : SupervisorCore.withoutCapabilities(withheldCapabilities) { Self.send(socket: sendingSocket, entry: message, flags: sendFlags) }
                let sendErrno = Glibc.errno
                for fd in rights { agentgate_close(fd) }
                Self.rightsInFlight.subtract(rights.count, ordering: .relaxed)
                agentgate_close(entry.pathFD)
                if first < 0 { lastErrno = sendErrno; break }
                var sent = first
                if first == message.message.payload.count && !message.message.rest.isEmpty {
                    sent += Self.sendRest(message.message.rest, socket: sendingSocket, flags: sendFlags & ~Int32(truncatingIfNeeded: messageFastOpen),
                                          n, core: core)
                }
                lastResult = sent
                sentMessages += 1
                if isBatch {
                    // struct mmsghdr: msg_len follows the 56-byte msghdr.
                    var length = UInt32(truncatingIfNeeded: sent)
                    _ = agentgate_write_memory(n.tid, batchAddress &+ UInt64(index * 64 + 56), &length, 4)
                }
                call.record(.init(syscall: syscall, action: .netEgress, target: entry.target, verdict: entry.verdict))
            }
            for entry in batch.dropFirst(sentMessages + 1) { agentgate_close(entry.pathFD) }
            agentgate_close(sendingSocket)
            let pipeSignal = lastErrno == EPIPE && raisesPipeSignal ? PipeSignal(n, core: core) : nil
            if core.waitsKillably { pipeSignal?.raise() }
            defer { if !core.waitsKillably { pipeSignal?.raise() } }
            if sentMessages == 0 || (!isBatch && lastErrno != 0) {
                let verdict = batch.first?.verdict ?? Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision)
                call.fail(lastErrno == 0 ? EACCES : lastErrno,
                          recording: .init(syscall: syscall, action: .netEgress, target: batch.first?.target ?? "?", verdict: verdict,
                                           errno: lastErrno))
            } else {
                core.listener.succeed(n.id, value: Int64(isBatch ? sentMessages : lastResult))
            }
        }
        if let denied = firstDenied {
            call.record(.init(syscall: syscall, action: .netEgress, target: denied.target, verdict: denied.verdict,
                              errno: denied.verdict.errno(or: EACCES)))
        }
        let statusFlags = agentgate_get_status_flags(socket)
        if (statusFlags >= 0 && statusFlags & O_NONBLOCK != 0) || flags & UInt64(MSG_DONTWAIT) != 0 {
            body()
        } else {
            if !core.blocking.run(n, interruptErrno: BlockingOperations.interruptErrno(socket: socket), body) {
                for entry in batch { agentgate_close(entry.pathFD) }
                agentgate_close(socket)
                core.listener.fail(n.id, errno: EAGAIN)
            }
        }
    }

    /// SIGPIPE for the agent's thread, as the kernel's stream send raises it with EPIPE (its
    /// siginfo names the supervisor as the sender, SI_USER; the kernel's names the thread). With a
    /// killable wait (see SupervisorCore.waitsKillably) it is queued before the answer, so it is
    /// pending when the call returns and, when it is fatal, the process dies in the call as it
    /// would unsupervised. Otherwise a pending signal would end the wait for the answer, so it
    /// is sent just after it. Either way through a pidfd of the thread taken while the call was
    /// still pending, so it names that very thread.
    private final class PipeSignal {
        private let pidfd: Int32

        init?(_ n: Notification, core: SupervisorCore) {
            let pidfd = agentgate_pidfd_open(n.tid)
            guard pidfd >= 0 else { return nil }
            guard core.listener.isValid(n.id) else { agentgate_close(pidfd); return nil }
            self.pidfd = pidfd
        }

        func raise() { _ = agentgate_pidfd_send_signal(pidfd, SIGPIPE, nil, 0) }

        deinit { agentgate_close(pidfd) }
    }

    /// The rest of a stream write longer than one copy: read from the agent and sent a chunk at a
    /// time, as the kernel copies a long write while it blocks, until everything is sent, a send
    /// stops short (a non-blocking socket is full) or fails. Each chunk is sent only if the call
    /// is still pending once it is read (its bytes are the agent's). Returns the bytes sent:
    /// after the first byte an error isn't reported, as the kernel reports what was sent.
    private static func sendRest(_ spans: [Span], socket: Int32, flags: Int32, _ n: Notification, core: SupervisorCore) -> Int {
        var buffer = [UInt8](repeating: 0, count: maxPayload)
        var sent = 0
        for span in spans {
            var offset = 0
            while offset < span.length {
                let length = min(maxPayload, span.length - offset)
                let rc = buffer.withUnsafeMutableBytes { agentgate_read_memory(n.tid, span.address &+ UInt64(offset), $0.baseAddress, length) }
                guard rc == 0, core.listener.isValid(n.id) else { return sent }
                let written = buffer.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, length, flags) }
                if written <= 0 { return sent }
                sent += written
                offset += written
                if written < length { return sent }
            }
        }
        return sent
    }

    /// sendmsg from the supervisor with the copied name, payload and control data.
    private static func send(socket: Int32, entry: Decided, flags: Int32) -> Int {
        var payload = entry.message.payload
        var control = entry.message.control
        var name = entry.address.map { address in address.withSockaddr { Array(UnsafeRawBufferPointer(start: $0, count: Int($1))) } } ?? []
        return payload.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                name.withUnsafeMutableBytes { nameBytes in
                    var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                    return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                        var header = msghdr()
                        header.msg_name = nameBytes.count > 0 ? nameBytes.baseAddress : nil
                        header.msg_namelen = socklen_t(nameBytes.count)
                        header.msg_iov = vectorPointer
                        header.msg_iovlen = 1
                        header.msg_control = controlBytes.count > 0 ? controlBytes.baseAddress : nil
                        header.msg_controllen = controlBytes.count
                        return Glibc.sendmsg(socket, &header, flags)
                    }
                }
            }
        }
    }

    /// SCM_MAX_FD: the kernel's limit of fds in one message.
    static let maxRightsPerMessage = 253
    /// fds copied for SCM_RIGHTS across all sends in flight: a bound, so an agent can't exhaust
    /// the supervisor's fd table with blocked sends full of rights.
    static let maxRightsInFlight = 4096
    static let rightsInFlight = Atomic<Int>(0)

    /// Who a message is sent for.
    struct Sender: Sendable {
        let tid: pid_t
        let tgid: pid_t
        /// The supervisor may name the agent as the sender (CAP_SYS_ADMIN), and the socket is a
        /// unix socket: receivers that ask for SCM_CREDENTIALS see the agent, not the supervisor.
        /// Without CAP_SYS_ADMIN the kernel lets a sender name only its own pid, so receivers
        /// see the supervisor's pid (with the agent's uid and gid): letting the agent's own
        /// sendmsg continue in the kernel would let it change the destination after the decision.
        let claimsAgentPid: Bool
    }

    /// Rewrites SCM_RIGHTS messages so they carry the supervisor's copies of the agent's fds,
    /// and checks SCM_CREDENTIALS against the agent's own credentials (the kernel would check
    /// them against the supervisor's, which may claim any pid). When the supervisor may, a
    /// message without credentials gets the agent's, which the kernel would have attached had
    /// the agent sent it. Returns the new control buffer and the copies (counted in
    /// `rightsInFlight`), which the caller closes and uncounts after sending.
    private static func translateControl(_ control: [UInt8], pidfd: Int32, sender: Sender) -> Result<([UInt8], [Int32]), Refusal> {
        var output = control
        var copies: [Int32] = []
        var offset = 0
        var hasCredentials = false
        func fail(_ failure: Refusal) -> Result<([UInt8], [Int32]), Refusal> {
            for fd in copies { agentgate_close(fd) }
            rightsInFlight.subtract(copies.count, ordering: .relaxed)
            return .failure(failure)
        }
        while offset + 16 <= control.count {
            // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }
            let length = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
            let level = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self) }
            let type = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self) }
            guard length >= 16, length <= UInt64(control.count - offset) else { break }
            if level == SOL_SOCKET && type == 1 /* SCM_RIGHTS */ {
                let count = (Int(length) - 16) / 4
                guard copies.count + count <= maxRightsPerMessage else {
                    return fail(Refusal(errno: EINVAL, reason: "more than \(maxRightsPerMessage) fds in one message"))
                }
                guard rightsInFlight.add(count, ordering: .relaxed).newValue <= maxRightsInFlight else {
                    rightsInFlight.subtract(count, ordering: .relaxed)
                    return fail(Refusal(errno: ENOBUFS, reason: "too many fds in flight through the supervisor"))
                }
                // Counted up front; any not copied below are uncounted by fail().
                var counted = count
                defer { if counted > 0 { rightsInFlight.subtract(counted, ordering: .relaxed) } }
                for i in 0..<count {
                    let at = offset + 16 + i * 4
                    let fd = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: Int32.self) }
                    let copy = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, fd) : -EBADF
                    guard copy >= 0 else { return fail(Refusal(errno: EBADF, reason: "SCM_RIGHTS names an fd the agent doesn't have")) }
                    copies.append(copy)
                    counted -= 1
                    withUnsafeBytes(of: copy) { bytes in for b in 0..<4 { output[at + b] = bytes[b] } }
                }
            }
            // A source route (IP_RETOPTS, IPV6_RTHDR, IPV6_2292RTHDR) sends the packet through
            // addresses no rule decided; IPV6_NEXTHOP hands it to a neighbour of the agent's
            // choosing (and needs CAP_NET_RAW, which the supervisor's send must not lend).
            if length > 16, (level == 0 && type == 7) || (level == 41 && (type == 57 || type == 5 || type == 9)) {
                return fail(Refusal(errno: EPERM, reason: "a source route or next hop sends packets through addresses no rule decided"))
            }
            if level == SOL_SOCKET && type == Int32(AGENTGATE_SCM_CREDENTIALS) {
                guard length >= 28 else { return fail(Refusal(errno: EINVAL, reason: "short SCM_CREDENTIALS")) }
                let claimed = control.withUnsafeBytes { raw in
                    (pid: raw.loadUnaligned(fromByteOffset: offset + 16, as: Int32.self),
                     uid: raw.loadUnaligned(fromByteOffset: offset + 20, as: UInt32.self),
                     gid: raw.loadUnaligned(fromByteOffset: offset + 24, as: UInt32.self))
                }
                if let refusal = credentialsRefusal(claimed, sender: sender) { return fail(refusal) }
                if claimed.pid == sender.tgid && !sender.claimsAgentPid {
                    // The agent names itself, which the kernel lets the supervisor's thread do
                    // only with CAP_SYS_ADMIN: without it, the supervisor's own pid goes instead,
                    // as when the kernel attaches the credentials (the uid and gid stay).
                    withUnsafeBytes(of: getpid()) { own in for b in 0..<4 { output[offset + 16 + b] = own[b] } }
                }
                hasCredentials = true
            }
            offset += (Int(length) + 7) & ~7 // CMSG_ALIGN
        }
        if sender.claimsAgentPid && !hasCredentials {
            // struct cmsghdr + struct ucred, CMSG_SPACE(12) = 32 bytes.
            var credentials = [UInt8](repeating: 0, count: 32)
            credentials.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt64(28), toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
                raw.storeBytes(of: Int32(AGENTGATE_SCM_CREDENTIALS), toByteOffset: 12, as: Int32.self)
                raw.storeBytes(of: sender.tgid, toByteOffset: 16, as: Int32.self)
                // The thread's real ids: the agent's (they are the supervisor's, or the thread acts
                // as the agent), as the kernel attaches them.
                raw.storeBytes(of: getuid(), toByteOffset: 20, as: UInt32.self)
                raw.storeBytes(of: getgid(), toByteOffset: 24, as: UInt32.self)
            }
            // Fewer than a header's bytes left over are ignored by the kernel's walk; they must
            // not run into the header added after them.
            if control.count - min(offset, control.count) < 16 { output.removeSubrange(min(offset, output.count)...) }
            let aligned = (output.count + 7) & ~7
            output += [UInt8](repeating: 0, count: aligned - output.count) + credentials
        }
        return .success((output, copies))
    }

    /// The kernel's scm_check_creds, applied to the agent: the pid must be its own (or it must
    /// hold CAP_SYS_ADMIN), and the uid and gid its real, effective or saved ones (or it must
    /// hold CAP_SETUID / CAP_SETGID).
    private static func credentialsRefusal(_ claimed: (pid: Int32, uid: UInt32, gid: UInt32), sender: Sender) -> Refusal? {
        let agent = ProcStatus(tid: sender.tid)
        guard agent.readOK, agent.uids.count >= 3, agent.gids.count >= 3 else {
            return Refusal(errno: EPERM, reason: "agent credentials unreadable")
        }
        let capSetgid: UInt64 = 1 << 6, capSetuid: UInt64 = 1 << 7, capSysAdmin: UInt64 = 1 << 21
        let pidOK = claimed.pid == sender.tgid || agent.capEff & capSysAdmin != 0
        let uidOK = agent.uids.prefix(3).contains(claimed.uid) || agent.capEff & capSetuid != 0
        let gidOK = agent.gids.prefix(3).contains(claimed.gid) || agent.capEff & capSetgid != 0
        return pidOK && uidOK && gidOK ? nil : Refusal(errno: EPERM, reason: "SCM_CREDENTIALS names someone the agent is not")
    }

    private static func isRelativeUnix(_ name: [UInt8]) -> Bool {
        name.count > 2 && Int32(UInt16(name[0]) | UInt16(name[1]) << 8) == AF_UNIX && name[2] != 0 && name[2] != UInt8(ascii: "/")
    }

    /// Reads the messages of a sendto, sendmsg or sendmmsg call. Every length is checked before
    /// it is converted or used: the arguments are the agent's.
    private static func copyMessages(_ n: Notification, isSendto: Bool, isBatch: Bool, isStream: Bool) -> Result<[Message], Refusal> {
        if isSendto {
            // The kernel sends at most INT_MAX bytes of one sendto.
            let requested = min(n.arg(2), UInt64(Int32.max))
            guard requested <= UInt64(maxPayload) || isStream else {
                return .failure(Refusal(errno: EMSGSIZE, reason: "payload too large to inspect"))
            }
            var payload = [UInt8](repeating: 0, count: min(Int(requested), maxPayload))
            let rc = agentgate_read_memory(n.tid, n.arg(1), &payload, payload.count)
            guard rc == 0 else { return .failure(Refusal(errno: -rc, reason: "payload unreadable")) }
            var message = Message(payload: payload, name: nil)
            if Int(requested) > payload.count {
                message.rest = [Span(address: n.arg(1) &+ UInt64(payload.count), length: min(Int(requested), maxReadWrite) - payload.count)]
            }
            // sendto's address length is an int: negative or past sockaddr_storage fails
            // (move_addr_to_kernel). A non-NULL address of length 0 is still an address, which
            // IP datagram sockets refuse (EINVAL); copyName would read it as none.
            let nameLength = Int32(truncatingIfNeeded: n.arg(5))
            guard nameLength >= 0 else { return .failure(Refusal(errno: EINVAL, reason: "address length out of range")) }
            if n.arg(4) != 0 && nameLength == 0 {
                message.name = []
                return .success([message])
            }
            switch copyName(n.tid, address: n.arg(4), length: UInt64(nameLength)) {
            case .success(let name):
                message.name = name
                return .success([message])
            case .failure(let failure): return .failure(failure)
            }
        }
        let count = isBatch ? min(UInt64(UInt32(truncatingIfNeeded: n.arg(2))), UInt64(maxMessages)) : 1 // vlen is an unsigned int
        guard count > 0 else { return .success([]) }
        var messages: [Message] = []
        var total = 0
        var controlTotal = 0
        for index in 0..<Int(count) {
            let stride = isBatch ? 64 : 56
            var header = [UInt64](repeating: 0, count: 7) // struct msghdr
            let rc = header.withUnsafeMutableBytes { agentgate_read_memory(n.tid, n.arg(1) &+ UInt64(index * stride), $0.baseAddress, 56) }
            guard rc == 0 else { return .failure(Refusal(errno: -rc, reason: "msghdr unreadable")) }
            // Control data counts against one 64 KiB budget per call, not per message.
            guard header[5] <= UInt64(65536 - controlTotal) else { return .failure(Refusal(errno: ENOBUFS, reason: "control data too large")) }
            controlTotal += Int(header[5])
            var control = [UInt8](repeating: 0, count: Int(header[5]))
            if !control.isEmpty {
                let crc = agentgate_read_memory(n.tid, header[4], &control, control.count)
                guard crc == 0 else { return .failure(Refusal(errno: -crc, reason: "control data unreadable")) }
            }
            guard header[3] <= 1024 else { return .failure(Refusal(errno: EMSGSIZE, reason: "too many iovecs")) }
            let iovCount = Int(header[3])
            var vectors = [UInt64](repeating: 0, count: iovCount * 2)
            if iovCount > 0 {
                let vrc = vectors.withUnsafeMutableBytes { agentgate_read_memory(n.tid, header[2], $0.baseAddress, iovCount * 16) }
                guard vrc == 0 else { return .failure(Refusal(errno: -vrc, reason: "iovec unreadable")) }
            }
            var payload: [UInt8] = []
            var rest: [Span] = []
            var restTotal = 0
            for i in 0..<iovCount {
                var length = 0
                // An iov_len above SSIZE_MAX fails the call (the kernel's import_iovec).
                guard vectors[2 * i + 1] <= UInt64(Int.max) else { return .failure(Refusal(errno: EINVAL, reason: "iovec length out of range")) }
                if vectors[2 * i + 1] > UInt64(maxPayload - total) {
                    // A datagram can't be cut; a stream's write is copied a part at a time (see
                    // sendRest), up to MAX_RW_COUNT as the kernel's.
                    guard isStream else { return .failure(Refusal(errno: EMSGSIZE, reason: "payload too large to inspect")) }
                    length = maxPayload - total
                    let beyond = min(Int(vectors[2 * i + 1]) - length, maxReadWrite - maxPayload - restTotal)
                    if beyond > 0 {
                        rest.append(Span(address: vectors[2 * i] &+ UInt64(length), length: beyond))
                        restTotal += beyond
                    }
                } else {
                    length = Int(vectors[2 * i + 1])
                }
                var chunk = [UInt8](repeating: 0, count: length)
                let crc = agentgate_read_memory(n.tid, vectors[2 * i], &chunk, length)
                guard crc == 0 else { return .failure(Refusal(errno: -crc, reason: "payload unreadable")) }
                payload += chunk
                total += length
            }
            // msg_namelen is an int: negative fails, more than sockaddr_storage is cut to it
            // (copy_msghdr_from_user), and a NULL name has none.
            let nameLength = header[0] == 0 ? 0 : Int32(truncatingIfNeeded: header[1])
            guard nameLength >= 0 else { return .failure(Refusal(errno: EINVAL, reason: "address length out of range")) }
            switch copyName(n.tid, address: header[0], length: UInt64(min(nameLength, Int32(AGENTGATE_SOCKADDR_CAPACITY)))) {
            case .success(let name): messages.append(Message(payload: payload, name: name, control: control, rest: rest))
            case .failure(let failure): return .failure(failure)
            }
        }
        return .success(messages)
    }

    private static func copyName(_ tid: pid_t, address: UInt64, length: UInt64) -> Result<[UInt8]?, Refusal> {
        guard address != 0, length > 0 else { return .success(nil) }
        guard length <= UInt64(AGENTGATE_SOCKADDR_CAPACITY) else { return .failure(Refusal(errno: EINVAL, reason: "address length out of range")) }
        var name = [UInt8](repeating: 0, count: Int(length))
        let rc = agentgate_read_memory(tid, address, &name, name.count)
        return rc == 0 ? .success(name) : .failure(Refusal(errno: -rc, reason: "address unreadable"))
    }
}
