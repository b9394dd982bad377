import AgentGatePolicy
import CSupport
import Glibc

/// bind: performed by the supervisor on its copy of the agent's socket (pidfd_getfd) with its
/// copy of the address, since the address is in memory the agent could change. Binding a
/// pathname unix socket creates a file: it is decided as fs_write on the resolved parent and
/// name, then bound with the agent's own path from the receiver thread's working directory
/// (its fs_struct is unshared) set to the agent's cwd, with the agent's umask.
enum BindHandler {
    static func handle(_ call: TrappedCall, scratch: ThreadScratch) {
        let n = call.notification, core = call.core, process = call.process
        let length = Int64(Int32(truncatingIfNeeded: n.arg(2)))
        guard length >= 0, length <= Int64(AGENTGATE_SOCKADDR_CAPACITY) else {
            guard core.listener.isValid(n.id) else { return }
            core.listener.fail(n.id, errno: EINVAL)
            return
        }
        let rc = agentgate_read_memory(n.tid, n.arg(1), scratch.sockaddr, Int(length))
        let address = SocketAddress(copying: scratch.sockaddr, length: Int(length))
        let socket = OwnedFD.copy(of: n.intArg(0), from: n.tid)
        let path = address.unixPath
        let cwd = path.map { $0.hasPrefix("/") ? AT_FDCWD : agentgate_openat(AT_FDCWD, "/proc/\(n.tid)/cwd", Int32(AGENTGATE_O_PATH) | O_DIRECTORY, 0) } ?? AT_FDCWD
        defer { if cwd >= 0 { agentgate_close(cwd) } }
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else { core.listener.fail(n.id, errno: -rc); return }
        guard socket.raw >= 0 else { core.listener.fail(n.id, errno: socket.raw == -EBADF ? EBADF : -socket.raw); return }

        guard let path else {
            // An IP, abstract or unnamed address: nothing in the file system, nothing to decide.
            // But the kernel checks the binding thread's privilege (a port below
            // ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE): bound with the agent's
            // credentials, so an agent that gave up root, or just that capability, can't bind
            // one through the supervisor. Netlink checks the binding process's capabilities
            // (multicast groups): never the supervisor's CAP_NET_ADMIN.
            let acting = core.actAsAgent(tid: n.tid, status: process.status)
            defer { core.restoreIdentity(acting.saved) }
            if let refusal = acting.refusal {
                call.fail(EACCES, action: .netEgress, target: address.target, verdict: nil, reason: refusal)
                return
            }
            let withheld = address.family == AF_NETLINK && core.holdsNetworkAdminCapabilities
                && !call.policy.allowedUnsupervised.contains(.netAdmin)
            let bindIt = { Int(address.withSockaddr { Glibc.bind(socket.raw, $0.assumingMemoryBound(to: sockaddr.self), $1) }) }
            let result = withheld ? SupervisorCore.withoutCapabilities(SupervisorCore.networkAdminCapabilities, bindIt) : bindIt()
            if result == 0 { core.listener.succeed(n.id, value: 0) } else { core.listener.fail(n.id, errno: Glibc.errno) }
            return
        }
        func deny(_ errno: Int32, _ target: String, _ verdict: Verdict?, _ reason: String) {
            call.fail(errno, action: .fsWrite, target: target, verdict: verdict, reason: reason)
        }
        let acting = core.actAsAgent(tid: n.tid, status: process.status)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal { deny(EACCES, path, nil, refusal); return }
        guard scratch.hasOwnFileSystemContext else {
            deny(EPERM, path, nil, "unix socket binds need a receiver thread with its own working directory"); return
        }
        // Under the namespace lock no agent mutation can reshape the path between the decision
        // and the kernel's own lookup in bind, so the agent's exact path can be bound (and
        // getsockname reports it as the agent wrote it). A person is never waited for under it:
        // a path the policy asks about is asked about outside, then resolved and decided again.
        var answered: (target: String, verdict: Verdict)?
        for _ in 0..<4 {
            var asking: (target: String, verdict: Verdict)?
            bindUnderLock(call, socket: socket, address: address, path: path, cwd: cwd, acting: acting, answered: answered,
                          asking: &asking)
            guard let asking else { return }
            answered = (asking.target, call.settled(asking.verdict, .fsWrite, target: asking.target, argv: nil))
        }
        deny(EACCES, path, nil, "the path kept changing while a person was asked")
    }

    private static func bindUnderLock(_ call: TrappedCall, socket: borrowing OwnedFD, address: SocketAddress, path: String, cwd: Int32,
                                      acting: (saved: SupervisorCore.SavedIdentity?, refusal: String?, status: ProcStatus?),
                                      answered: (target: String, verdict: Verdict)?, asking: inout (target: String, verdict: Verdict)?) {
        let n = call.notification, core = call.core, syscall = call.syscall, process = call.process
        func deny(_ errno: Int32, _ target: String, _ verdict: Verdict?, _ reason: String) {
            call.fail(errno, action: .fsWrite, target: target, verdict: verdict, reason: reason)
        }
        core.namespaceLock.withLock { _ in
            var entry = agentgate_path_entry()
            let target: String
            switch core.resolveEntry(&entry, base: cwd, path: address.unixPathBytes ?? RawPath(path), tid: n.tid, tgid: process.tgid) {
            case .prepared(let name): target = name
            case .failed(let errno): deny(errno, path, nil, "socket path unresolved"); return
            case .refused(let target, let reason): deny(EACCES, target, nil, reason); return
            }
            defer { agentgate_close(entry.parent_fd) }
            // A final ".", ".." or "/" can't be created: the kernel answers EADDRINUSE before it
            // checks any permission, so the bind is made with nothing to decide.
            let inert = entry.last_type != AGENTGATE_ENTRY_NAME
            var verdict = Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision)
            if !inert {
                if let reason = call.protectedReason(target, isWrite: true) { deny(EACCES, target, nil, reason); return }
                if let answered, answered.target == target {
                    verdict = answered.verdict
                } else {
                    verdict = call.decideBeforeAsking(.fsWrite, target: target, n)
                    if verdict.decision == .ask && verdict.enforced { asking = (target, verdict); return }
                }
                guard verdict.letsCallProceed else { deny(verdict.errno(or: EACCES), target, verdict, ""); return }
            }

            let umaskBits = mode_t((acting.status ?? call.agentStatus()).umask)
            // The agent's own string resolves the same way here (its cwd is ours for the call,
            // and the namespace lock holds every path still), unless it goes through a /proc magic
            // link: /proc/self/fd/K would name the supervisor's fd K. Then the name is bound in the
            // very directory that was decided, through its fd.
            var bound = address
            if entry.context.owner_count > 0 {
                let name = withUnsafeBytes(of: &entry.name) { Array($0.prefix { $0 != 0 }) }
                bound = SocketAddress(unixName: name)
                _ = agentgate_fchdir(entry.parent_fd)
            } else if cwd >= 0 {
                _ = agentgate_fchdir(cwd) // a relative path names a file in the agent's cwd
            }
            let previous = umask(umaskBits)
            let result = bound.withSockaddr { Glibc.bind(socket.raw, $0.assumingMemoryBound(to: sockaddr.self), $1) }
            let errno = result == 0 ? 0 : Glibc.errno
            umask(previous)
            _ = chdir("/")
            if result == 0 { core.listener.succeed(n.id, value: 0) } else { core.listener.fail(n.id, errno: errno) }
            if inert { return }
            call.record(.init(syscall: syscall, action: .fsWrite, target: target, verdict: verdict, errno: result == 0 ? nil : errno))
        }
    }
}
