import AgentGatePolicy
import CSupport
import Glibc
import Synchronization

/// The agent processes the supervisor connected unix sockets for. The kernel records the
/// connecting process as the peer of the server's end, and that process is the supervisor, which
/// performs every connect. This table lets SO_PEERCRED and SO_PEERPIDFD name the agent process
/// that asked for the connect instead. Bounded: the oldest entries go first.
final class UnixPeers: Sendable {
    static let capacity = 4096
    private struct State {
        var byInode: [UInt64: pid_t] = [:]
        var order: [UInt64] = []
        var next = 0
    }
    private let state = Mutex(State())

    /// Records that the supervisor connected the socket with `inode` for process `tgid`.
    func record(inode: UInt64, tgid: pid_t) {
        state.withLock { s in
            if s.byInode[inode] == nil {
                if s.order.count < Self.capacity {
                    s.order.append(inode)
                } else {
                    s.byInode[s.order[s.next]] = nil
                    s.order[s.next] = inode
                    s.next = (s.next + 1) % Self.capacity
                }
            }
            s.byInode[inode] = tgid
        }
    }

    func process(connectedThrough inode: UInt64) -> pid_t? {
        state.withLock { $0.byInode[inode] }
    }
}

/// getsockopt(SOL_SOCKET, SO_PEERCRED | SO_PEERPIDFD) and setsockopt(SOL_SOCKET, SO_PASSPIDFD).
/// What a socket says about its peer must never lead to the supervisor (whose pidfd would let the
/// agent copy the seccomp listener out of it) or to a process outside the session (whose fds it
/// could copy). The option is read by the supervisor on its copy of the agent's socket, and the
/// answer is corrected before it reaches the agent.
enum SocketOptionHandler {
    static func handle(_ call: TrappedCall) {
        let n = call.notification
        let syscall = call.syscall
        if syscall == "setsockopt", routingSocketOptions.contains(where: { $0.level == n.arg(1) & 0xffff_ffff && $0.name == n.arg(2) & 0xffff_ffff }) {
            // A source route: the packet goes first to an address the policy never decided
            // (the decided destination is only its last hop). Clearing (length 0) is harmless,
            // and depends on a register only, so it proceeds.
            if n.arg(4) & 0xffff_ffff == 0 {
                _ = call.core.listener.continueSyscall(n.id)
                return
            }
            call.deny(Refusal(EPERM, "a source route sends packets through addresses no rule decided"), action: .netEgress,
                      target: "setsockopt(level \(n.arg(1) & 0xffff_ffff), option \(n.arg(2) & 0xffff_ffff)): source routing")
            return
        }
        if syscall == "setsockopt" && n.arg(2) != socketOptionPassPidfd {
            // iptables, ip6tables, arptables, ebtables, IPVS: with CAP_NET_ADMIN they rewrite
            // where connections go (a DNAT to an address the policy denies).
            UnsupervisedRouteHandlers.unsupervised(call, route: .netAdmin, errno: EPERM,
                                                   target: "setsockopt(level \(n.arg(1)), option \(n.arg(2))): firewall tables")
            return
        }
        if syscall == "setsockopt" {
            // SCM_PIDFD hands the receiver a pidfd of each message's sender: for messages the
            // supervisor sent, its own; for those of other local programs, theirs. Refused as an
            // older kernel would refuse it, so programs fall back to SCM_CREDENTIALS.
            call.deny(Refusal(ENOPROTOOPT, "SCM_PIDFD would hand out pidfds of the supervisor and of processes outside the session"),
                      action: .netEgress, target: "SO_PASSPIDFD")
            return
        }
        peerOption(call)
    }

    private static func peerOption(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        let option = Int32(truncatingIfNeeded: n.arg(2))
        let valueAddress = n.arg(3)
        let lengthAddress = n.arg(4)
        var requested: Int32 = 0
        let lengthRead = agentgate_read_memory(n.tid, lengthAddress, &requested, 4)
        let socket = OwnedFD.copy(of: n.intArg(0), from: n.tid)
        guard core.listener.isValid(n.id) else { return }
        guard socket.raw >= 0 else { core.listener.fail(n.id, errno: socket.raw == -ESRCH ? ESRCH : EBADF); return }
        guard lengthRead == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        guard requested >= 0 else { core.listener.fail(n.id, errno: EINVAL); return }

        // The kernel's own answer on the same socket, for at most what the agent asked for. A
        // pidfd is asked for in full whatever the agent's length: the kernel installs it in the
        // supervisor's table either way, and it must be closed.
        var value = [UInt8](repeating: 0, count: 16)
        let isPidfd = option == Int32(AGENTGATE_SO_PEERPIDFD)
        var length = UInt32(isPidfd ? 4 : min(Int(requested), value.count))
        let rc = value.withUnsafeMutableBytes {
            agentgate_getsockopt(socket.raw, SOL_SOCKET, option, $0.baseAddress, &length)
        }
        guard rc == 0 else { core.listener.fail(n.id, errno: -rc); return }

        if option == Int32(AGENTGATE_SO_PEERCRED) {
            // struct ucred { pid_t pid; uid_t uid; gid_t gid; }, possibly cut short.
            if length >= 4 {
                let pid = value.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                if core.isSupervisorTask(pid) {
                    let agent = peerAgent(of: socket.raw, core: core) ?? 0 // 0: as for a peer in another pid namespace
                    withUnsafeBytes(of: agent) { for i in 0..<4 { value[i] = $0[i] } }
                }
            }
            deliver(call, value: value, length: length, valueAddress: valueAddress, lengthAddress: lengthAddress)
            return
        }

        // SO_PEERPIDFD: the kernel installed a pidfd in the supervisor's table.
        guard length >= 4 else { core.listener.fail(n.id, errno: EINVAL); return }
        var received = value.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        defer { agentgate_close(received) }
        var pid: pid_t = 0
        var isDirectory = false
        _ = agentgate_process_handle_target(received, &pid, &isDirectory)
        switch core.membership(of: pid) {
        case .supervisor:
            agentgate_close(received)
            received = -1
            guard let agent = peerAgent(of: socket.raw, core: core) else { core.listener.fail(n.id, errno: ENODATA); return }
            received = agentgate_pidfd_open_flags(agent, 0)
            guard received >= 0 else { core.listener.fail(n.id, errno: -received); return }
        case .outside:
            call.deny(Refusal(EPERM, "the socket's peer is a process outside the session"), action: .netEgress, target: "pid:\(pid)")
            return
        case .session, .gone:
            break
        }
        // Installed first, then its number written where the agent asked, then the reply.
        let installed = core.listener.inject(n.id, fd: received, cloexec: true, send: false)
        guard installed >= 0 else {
            if installed != -ENOENT { core.listener.fail(n.id, errno: -installed) }
            return
        }
        withUnsafeBytes(of: installed) { for i in 0..<4 { value[i] = $0[i] } }
        // As the kernel does: the fd is installed whatever the length, and at most 4 bytes written.
        deliver(call, value: value, length: UInt32(min(Int(requested), 4)), valueAddress: valueAddress, lengthAddress: lengthAddress)
    }

    /// The agent process the supervisor connected the other end of `socket` for.
    private static func peerAgent(of socket: Int32, core: SupervisorCore) -> pid_t? {
        var inode: UInt64 = 0
        var peer: UInt64 = 0
        guard agentgate_socket_inode(socket, &inode) == 0, agentgate_unix_peer_inode(inode, &peer) == 0 else { return nil }
        return core.unixPeers.process(connectedThrough: peer)
    }

    /// Writes the option's value and length where the agent asked, as the kernel would.
    private static func deliver(_ call: TrappedCall, value: [UInt8], length: UInt32, valueAddress: UInt64, lengthAddress: UInt64) {
        let n = call.notification, core = call.core
        var written = Int32(length)
        if length > 0 {
            let rc = value.withUnsafeBytes { agentgate_write_memory(n.tid, valueAddress, $0.baseAddress, Int(length)) }
            if rc != 0 { core.listener.fail(n.id, errno: EFAULT); return }
        }
        if agentgate_write_memory(n.tid, lengthAddress, &written, 4) != 0 { core.listener.fail(n.id, errno: EFAULT); return }
        core.listener.succeed(n.id, value: 0)
    }
}
