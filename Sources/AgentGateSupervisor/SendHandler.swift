import AgentGatePolicy
import CSupport
import Glibc

/// sendto, sendmsg and sendmmsg that may name a destination (UDP, unix datagrams, TCP fast
/// open): decided on the supervisor's copy of the address and sent by the supervisor with its
/// copy of the payload. Stream sockets ignore a destination unless MSG_FASTOPEN is set, so
/// their sendmsg continues in the kernel without a decision.
enum SendHandler {
    static let maxPayload = 1 << 20
    static let messageFastOpen: UInt64 = 0x2000_0000

    static func handle(_ n: Notification, family: SyscallFamily, core: SupervisorCore, scratch: ThreadScratch) {
        let syscall = core.table.name(of: n.number)
        let process = core.processes.info(for: n.tid)
        let socketFD = n.intArg(0)
        let pidfd = agentgate_pidfd_open(n.tid)
        let socket = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, socketFD) : pidfd
        agentgate_close(pidfd)
        var socketType: Int32 = 0
        if socket >= 0 {
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_TYPE, &socketType, &length)
        }
        let flags: UInt64
        switch family {
        case .sendto: flags = n.arg(3)
        case .sendmsg: flags = n.arg(2)
        default: flags = n.arg(3)
        }
        if case .sendto = family {} else if socket >= 0, socketType == Int32(SOCK_STREAM.rawValue), flags & messageFastOpen == 0 {
            agentgate_close(socket)
            core.listener.continueSyscall(n.id) // no decision to make: a stream goes to its peer
            return
        }
        func fail(_ errno: Int32, _ reason: String, target: String = "?") {
            agentgate_close(socket)
            guard core.listener.isValid(n.id) else { return }
            core.listener.fail(n.id, errno: errno)
            core.recorder.record(.denied(syscall: syscall, action: .netEgress, target: target, reason: reason, errno: errno),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
        }
        guard socket >= 0 else { fail(socket == -EBADF ? EBADF : -socket, "socket unavailable"); return }
        if case .sendmmsg = family {
            // Each message can name its own destination and the kernel writes back per-message
            // lengths; not emulated yet, and libc falls back to one send per message.
            fail(ENOSYS, "sendmmsg on a datagram socket is not emulated")
            return
        }

        // Copy the destination and the payload.
        var payload: [UInt8] = []
        var nameAddress: UInt64 = 0
        var nameLength = 0
        if case .sendto = family {
            let length = Int(n.arg(2))
            guard length <= maxPayload else { fail(EMSGSIZE, "payload too large to inspect"); return }
            payload = [UInt8](repeating: 0, count: length)
            let rc = agentgate_read_memory(n.tid, n.arg(1), &payload, length)
            guard rc == 0 else { fail(-rc, "payload unreadable"); return }
            nameAddress = n.arg(4)
            nameLength = Int(Int32(truncatingIfNeeded: n.arg(5)))
        } else {
            var header = [UInt64](repeating: 0, count: 7) // struct msghdr
            let rc = header.withUnsafeMutableBytes { agentgate_read_memory(n.tid, n.arg(1), $0.baseAddress, 56) }
            guard rc == 0 else { fail(-rc, "msghdr unreadable"); return }
            nameAddress = header[0]
            nameLength = Int(UInt32(truncatingIfNeeded: header[1]))
            let (iov, iovCount, controlLength) = (header[2], Int(header[3]), header[5])
            guard controlLength == 0 else { fail(EPERM, "control messages on datagram sockets are not emulated"); return }
            guard iovCount <= 1024 else { fail(EMSGSIZE, "too many iovecs") ; return }
            var vectors = [UInt64](repeating: 0, count: iovCount * 2)
            if iovCount > 0 {
                let vrc = vectors.withUnsafeMutableBytes { agentgate_read_memory(n.tid, iov, $0.baseAddress, iovCount * 16) }
                guard vrc == 0 else { fail(-vrc, "iovec unreadable"); return }
            }
            for i in 0..<iovCount {
                let (base, length) = (vectors[2 * i], Int(vectors[2 * i + 1]))
                guard payload.count + length <= maxPayload else { fail(EMSGSIZE, "payload too large to inspect"); return }
                var chunk = [UInt8](repeating: 0, count: length)
                let crc = agentgate_read_memory(n.tid, base, &chunk, length)
                guard crc == 0 else { fail(-crc, "payload unreadable"); return }
                payload += chunk
            }
        }
        guard nameLength >= 0, nameLength <= 128 else { fail(EINVAL, "address length out of range"); return }
        if nameAddress != 0 && nameLength > 0 {
            let rc = agentgate_read_memory(n.tid, nameAddress, scratch.sockaddr, nameLength)
            guard rc == 0 else { fail(-rc, "address unreadable"); return }
        }
        let cwdFD = nameAddress != 0 ? SocketAddress.cwdIfRelativeUnix(scratch.sockaddr, length: nameLength, tid: n.tid) : -1
        defer { agentgate_close(cwdFD) }
        guard core.listener.isValid(n.id) else { agentgate_close(socket); return }
        if let refusal = core.credentialRefusal(tid: n.tid) { fail(EACCES, refusal); return }

        var address: SocketAddress? = nil
        var pathFD: Int32 = -1
        var verdict = Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision)
        var target = "connected peer"
        if nameAddress != 0 && nameLength > 0 {
            var copy = SocketAddress(copying: scratch.sockaddr, length: nameLength)
            pathFD = ConnectHandler.resolveUnixPath(&copy, cwdFD: cwdFD, scratch: scratch, core: core, tid: n.tid, tgid: process.tgid)
            target = copy.target
            address = copy
            verdict = core.policy.evaluate(.netEgress, target: target)
            if copy.resolveError != 0 && verdict.enforcedAllow { agentgate_close(pathFD); fail(copy.resolveError, "socket path unresolved", target: target); return }
        }
        guard verdict.enforcedAllow else {
            agentgate_close(pathFD)
            agentgate_close(socket)
            core.listener.fail(n.id, errno: EACCES)
            core.recorder.record(.init(syscall: syscall, action: .netEgress, target: target, verdict: verdict, errno: EACCES),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        let sendFlags = Int32(truncatingIfNeeded: flags) | Int32(MSG_NOSIGNAL)
        let finalTarget = target
        let finalAddress = address
        let finalPayload = payload
        let finalPathFD = pathFD
        let finalVerdict = verdict
        let body: @Sendable () -> Void = {
            let sent: Int = finalPayload.withUnsafeBytes { data in
                if let finalAddress {
                    return finalAddress.withSockaddr { addr, len in
                        Glibc.sendto(socket, data.baseAddress, data.count, sendFlags, addr.assumingMemoryBound(to: sockaddr.self), len)
                    }
                }
                return Glibc.send(socket, data.baseAddress, data.count, sendFlags)
            }
            let errno = sent < 0 ? Glibc.errno : 0
            agentgate_close(socket)
            agentgate_close(finalPathFD)
            if sent < 0 { core.listener.fail(n.id, errno: errno) } else { core.listener.succeed(n.id, value: Int64(sent)) }
            core.recorder.record(.init(syscall: syscall, action: .netEgress, target: finalTarget, verdict: finalVerdict, errno: sent < 0 ? errno : nil),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
        }
        let statusFlags = agentgate_get_status_flags(socket)
        if (statusFlags >= 0 && statusFlags & O_NONBLOCK != 0) || flags & UInt64(MSG_DONTWAIT) != 0 {
            body()
        } else {
            core.blocking.run(n.id, body)
        }
    }
}
